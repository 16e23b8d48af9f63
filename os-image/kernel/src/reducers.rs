//! The `system` and `os` reducers (docs/os-domain.md), byte-for-byte the semantics of the
//! TypeScript reducers in axiom/reducers/: the same entries give the same state hashes, and
//! the sequencer's REJECT details and RECEIPT results are the same strings.
use crate::entry::{Entry, COMMIT, D_OS, RECEIPT, BOOT, REJECT};
use crate::value::{self, Value, MAX_SAFE};
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// BLAKE3(utf8(name) ‖ 0x00 ‖ value-encoding(state)).
pub fn state_hash(name: &str, state: &Value) -> [u8; 32] {
    let mut b = Vec::with_capacity(256);
    b.extend_from_slice(name.as_bytes());
    b.push(0);
    value::encode_into(state, &mut b);
    crate::blake3::hash(&b)
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct SystemState { pub boots: i64, pub commits: i64, pub rejects: i64, pub receipts: i64, pub open: BTreeSet<u64>, pub errors: i64 }

impl SystemState {
    pub fn apply(&mut self, e: &Entry, payload: Option<&Value>) {
        match e.kind {
            BOOT => self.boots += 1,
            COMMIT => { self.commits += 1; self.open.insert(e.seq); }
            REJECT => self.rejects += 1,
            RECEIPT => {
                let c = payload.and_then(|p| p.get("commit")).and_then(|v| v.as_safe_int());
                if c.map_or(false, |c| c >= 0 && self.open.remove(&(c as u64))) { self.receipts += 1 } else { self.errors += 1 }
            }
            _ => {}
        }
    }
    pub fn to_value(&self) -> Value {
        value::obj(&[
            ("boots", Value::Int(self.boots)), ("commits", Value::Int(self.commits)), ("rejects", Value::Int(self.rejects)),
            ("receipts", Value::Int(self.receipts)), ("open", Value::List(self.open.iter().map(|&s| Value::Int(s as i64)).collect())),
            ("errors", Value::Int(self.errors)),
        ])
    }
    pub fn hash(&self) -> [u8; 32] { state_hash("system", &self.to_value()) }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Service { pub running: bool, pub starts: i64 }

#[derive(Clone, Debug, PartialEq)]
pub struct OsState {
    pub caps: BTreeMap<String, BTreeSet<String>>,
    pub services: BTreeMap<String, Service>,
    pub kv: BTreeMap<String, String>,
    pub echoes: i64,
    pub jobs_count: i64,
    pub jobs_last: [u8; 32],
    pub errors: i64,
}

#[derive(Clone, Copy, PartialEq)]
enum Arg { Str, Int, Bytes }
struct Spec { name: &'static str, cap: &'static str, args: &'static [(&'static str, Arg, i64, i64)] }

const ACTIONS: &[Spec] = &[
    Spec { name: "echo", cap: "console", args: &[("text", Arg::Str, 0, 4096)] },
    Spec { name: "kv.set", cap: "kv", args: &[("key", Arg::Str, 1, 256), ("value", Arg::Str, 0, 4096)] },
    Spec { name: "kv.del", cap: "kv", args: &[("key", Arg::Str, 1, 256)] },
    Spec { name: "svc.start", cap: "svc", args: &[("name", Arg::Str, 1, 64)] },
    Spec { name: "svc.stop", cap: "svc", args: &[("name", Arg::Str, 1, 64)] },
    Spec { name: "cap.grant", cap: "admin", args: &[("actor", Arg::Int, 0, MAX_SAFE), ("cap", Arg::Str, 1, 32)] },
    Spec { name: "cap.revoke", cap: "admin", args: &[("actor", Arg::Int, 0, MAX_SAFE), ("cap", Arg::Str, 1, 32)] },
    Spec { name: "job.run", cap: "job", args: &[("name", Arg::Str, 1, 64), ("rounds", Arg::Int, 1, 100_000), ("seed", Arg::Bytes, 0, 64)] },
    Spec { name: "sh", cap: "console", args: &[("line", Arg::Str, 0, 4096)] },
];

fn spec(action: &str) -> Option<&'static Spec> { ACTIONS.iter().find(|s| s.name == action) }

/// Checks an action's argument map against its spec: the TypeScript `checkArgs` message or None.
pub fn check_args(action: &str, args: &Value) -> Option<String> {
    let sp = match spec(action) { Some(s) => s, None => return Some(format!("unknown action '{}'", action)) };
    // A canonical map's keys are already in UTF-8 byte order: the first unexpected one in that
    // order is named (docs/os-domain.md), as the TypeScript reducer does.
    for (k, _) in args.entries().iter() {
        let k = k.as_str();
        if !sp.args.iter().any(|a| a.0 == k) {
            let takes: Vec<&str> = sp.args.iter().map(|a| a.0).collect();
            return Some(format!("unexpected argument '{}' (takes {})", k, takes.join(", ")));
        }
    }
    for &(k, ty, min, max) in sp.args {
        let v = match args.get(k) { Some(v) => v, None => return Some(format!("missing argument '{}'", k)) };
        match ty {
            Arg::Str => {
                let s = match v.as_str() { Some(s) => s, None => return Some(format!("'{}' must be a string", k)) };
                let n = s.len() as i64;
                if n < min || n > max { return Some(format!("'{}' must be {}..{} bytes, is {}", k, min, max, n)) }
            }
            Arg::Bytes => {
                let b = match v.as_bytes() { Some(b) => b, None => return Some(format!("'{}' must be bytes", k)) };
                let n = b.len() as i64;
                if n < min || n > max { return Some(format!("'{}' must be {}..{} bytes, is {}", k, min, max, n)) }
            }
            Arg::Int => {
                let i = match v.as_safe_int() { Some(i) => i, None => return Some(format!("'{}' must be an int", k)) };
                if i < min || i > max { return Some(format!("'{}' must be in {}..{}, is {}", k, min, max, i)) }
            }
        }
    }
    None
}

/// What a committed action yields: the RECEIPT's outcome and result bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome { pub outcome: &'static str, pub result: Vec<u8> }
fn ok(t: &str) -> Outcome { Outcome { outcome: "ok", result: t.as_bytes().to_vec() } }
fn err(t: &str) -> Outcome { Outcome { outcome: "error", result: t.as_bytes().to_vec() } }

/// job.run: h0 = BLAKE3(name ‖ 0x00 ‖ seed), h(i+1) = BLAKE3(h(i)), result h(rounds).
pub fn job_result(name: &str, rounds: i64, seed: &[u8]) -> [u8; 32] {
    let mut first = Vec::with_capacity(name.len() + 1 + seed.len());
    first.extend_from_slice(name.as_bytes());
    first.push(0);
    first.extend_from_slice(seed);
    let mut h = crate::blake3::hash(&first);
    for _ in 0..rounds { h = crate::blake3::hash(&h) }
    h
}

impl Default for OsState { fn default() -> Self { Self::new() } }

impl OsState {
    pub fn new() -> Self {
        let mut caps = BTreeMap::new();
        let all = ["console", "job", "kv", "svc"];
        let mut admin: BTreeSet<String> = all.iter().map(|s| s.to_string()).collect();
        admin.insert("admin".to_string());
        caps.insert("0".to_string(), admin);
        caps.insert("1".to_string(), all.iter().map(|s| s.to_string()).collect());
        caps.insert("2".to_string(), all.iter().map(|s| s.to_string()).collect());
        OsState { caps, services: BTreeMap::new(), kv: BTreeMap::new(), echoes: 0, jobs_count: 0, jobs_last: [0; 32], errors: 0 }
    }

    pub fn has_cap(&self, actor: i64, cap: &str) -> bool { self.caps.get(&actor.to_string()).map_or(false, |s| s.contains(cap)) }

    fn svc_start(&mut self, name: &str, apply: bool) -> bool {
        let starts = match self.services.get(name) { Some(s) if s.running => return false, Some(s) => s.starts, None => 0 };
        if apply { self.services.insert(name.to_string(), Service { running: true, starts: starts + 1 }); }
        true
    }
    fn svc_stop(&mut self, name: &str, apply: bool) -> bool {
        match self.services.get_mut(name) {
            Some(s) if s.running => { if apply { s.running = false } true }
            _ => false,
        }
    }

    fn run_sh(&mut self, line: &str, apply: bool) -> Outcome {
        if apply { self.echoes += 1 }
        let words: Vec<&str> = line.split(' ').filter(|w| !w.is_empty()).collect();
        let cmd = words.first().copied().unwrap_or("");
        let rest = if words.is_empty() { &words[..] } else { &words[1..] };
        let key = rest.first().copied().unwrap_or("");
        let key_ok = |k: &str, max: usize| !k.is_empty() && k.len() <= max;
        match cmd {
            "" => ok(""),
            "echo" => ok(&rest.join(" ")),
            "help" => ok("echo get set del start stop ps help"),
            "set" => {
                let value = if rest.len() > 1 { rest[1..].join(" ") } else { String::new() };
                if !key_ok(key, 256) || value.len() > 4096 { return err("bad argument") }
                if apply { self.kv.insert(key.to_string(), value.clone()); }
                ok(&format!("{}={}", key, value))
            }
            "get" => {
                if !key_ok(key, 256) { return err("bad argument") }
                match self.kv.get(key) { Some(v) => ok(v), None => err(&format!("no such key: {}", key)) }
            }
            "del" => {
                if !key_ok(key, 256) { return err("bad argument") }
                if !self.kv.contains_key(key) { return err(&format!("no such key: {}", key)) }
                if apply { self.kv.remove(key); }
                ok(&format!("deleted {}", key))
            }
            "start" => {
                if !key_ok(key, 64) { return err("bad argument") }
                if self.svc_start(key, apply) { ok(&format!("started {}", key)) } else { err(&format!("already running: {}", key)) }
            }
            "stop" => {
                if !key_ok(key, 64) { return err("bad argument") }
                if self.svc_stop(key, apply) { ok(&format!("stopped {}", key)) } else { err(&format!("not running: {}", key)) }
            }
            "ps" => {
                let lines: Vec<String> = self.services.iter().map(|(n, v)| format!("{} {} starts={}", n, if v.running { "running" } else { "stopped" }, v.starts)).collect();
                ok(&lines.join("\n"))
            }
            _ => err(&format!("unknown command: {}", cmd)),
        }
    }

    /// Decides the receipt of a valid action and, when `apply`, applies its change.
    pub fn run(&mut self, action: &str, args: &Value, apply: bool) -> Outcome {
        let st = |k: &str| args.get(k).and_then(|v| v.as_str()).unwrap_or("");
        match action {
            "echo" => { if apply { self.echoes += 1 } ok(st("text")) }
            "kv.set" => { if apply { self.kv.insert(st("key").to_string(), st("value").to_string()); } ok("") }
            "kv.del" => {
                if !self.kv.contains_key(st("key")) { return err("no such key") }
                if apply { self.kv.remove(st("key")); }
                ok("")
            }
            "svc.start" => if self.svc_start(st("name"), apply) { ok("") } else { err("already running") },
            "svc.stop" => if self.svc_stop(st("name"), apply) { ok("") } else { err("not running") },
            "cap.grant" | "cap.revoke" => {
                if apply {
                    let a = args.get("actor").and_then(|v| v.as_int()).unwrap_or(0).to_string();
                    let c = st("cap").to_string();
                    if action == "cap.grant" { self.caps.entry(a).or_default().insert(c); }
                    else if let Some(set) = self.caps.get_mut(&a) { set.remove(&c); if set.is_empty() { self.caps.remove(&a); } }
                }
                ok("")
            }
            "job.run" => {
                let r = job_result(st("name"), args.get("rounds").and_then(|v| v.as_int()).unwrap_or(0), args.get("seed").and_then(|v| v.as_bytes()).unwrap_or(&[]));
                if apply { self.jobs_count += 1; self.jobs_last = r; }
                Outcome { outcome: "ok", result: r.to_vec() }
            }
            "sh" => self.run_sh(st("line"), apply),
            _ => err(&format!("unknown action {}", action)),
        }
    }

    pub fn apply(&mut self, e: &Entry, payload: Option<&Value>) {
        if e.kind != COMMIT || e.domain != D_OS { return }
        let p = match payload { Some(p) if p.is_map() => p, _ => { self.errors += 1; return } };
        let action = p.get("action").and_then(|v| v.as_str());
        let args = p.get("args").filter(|a| a.is_map());
        let id_ok = p.get("id").and_then(|v| v.as_safe_int()).is_some();
        match (action, args) {
            (Some(a), Some(args)) if id_ok && check_args(a, args).is_none() => { self.run(a, args, true); }
            _ => self.errors += 1,
        }
    }

    /// Sequencer-side check: None = commit it.
    pub fn check(&self, actor: i64, action: &str, args: &Value) -> Option<(&'static str, String)> {
        let sp = match spec(action) {
            Some(s) => s,
            None => {
                let known: Vec<&str> = ACTIONS.iter().map(|s| s.name).collect();
                return Some(("unknown-action", format!("the os domain has no action '{}' (known: {})", action, known.join(", "))));
            }
        };
        if let Some(bad) = check_args(action, args) { return Some(("bad-args", format!("{}: {}", action, bad))) }
        if !self.has_cap(actor, sp.cap) { return Some(("missing-capability", format!("actor {} lacks capability '{}' needed by {}", actor, sp.cap, action))) }
        None
    }

    pub fn to_value(&self) -> Value {
        let caps = value::map(self.caps.iter().map(|(a, set)| (a.clone(), Value::List(set.iter().map(|c| Value::Str(c.clone())).collect()))).collect());
        let services = value::map(self.services.iter().map(|(n, s)| (n.clone(), value::obj(&[("running", Value::Bool(s.running)), ("starts", Value::Int(s.starts))]))).collect());
        let kv = value::map(self.kv.iter().map(|(k, v)| (k.clone(), Value::Str(v.clone()))).collect());
        value::obj(&[
            ("caps", caps), ("services", services), ("kv", kv), ("echoes", Value::Int(self.echoes)),
            ("jobs", value::obj(&[("count", Value::Int(self.jobs_count)), ("last", Value::Bytes(self.jobs_last.to_vec()))])),
            ("errors", Value::Int(self.errors)),
        ])
    }
    pub fn hash(&self) -> [u8; 32] { state_hash("os", &self.to_value()) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{hex, vectors};

    #[test]
    fn initial_state_hashes() {
        let v = vectors();
        let init = v.get("initial_state").unwrap();
        assert_eq!(hex(&SystemState::default().hash()), init.get("system").unwrap().str());
        assert_eq!(hex(&OsState::new().hash()), init.get("os").unwrap().str());
    }

    #[test]
    fn sh_commands() {
        let mut s = OsState::new();
        let sh = |s: &mut OsState, l: &str| { let o = s.run("sh", &value::obj(&[("line", value::s(l))]), true); (o.outcome, String::from_utf8(o.result).unwrap()) };
        assert_eq!(sh(&mut s, "set a  hello   world"), ("ok", "a=hello world".into()));
        assert_eq!(sh(&mut s, "get a"), ("ok", "hello world".into()));
        assert_eq!(sh(&mut s, "get b"), ("error", "no such key: b".into()));
        assert_eq!(sh(&mut s, "get"), ("error", "bad argument".into()));
        assert_eq!(sh(&mut s, "start web"), ("ok", "started web".into()));
        assert_eq!(sh(&mut s, "start web"), ("error", "already running: web".into()));
        assert_eq!(sh(&mut s, "start db"), ("ok", "started db".into()));
        assert_eq!(sh(&mut s, "stop db"), ("ok", "stopped db".into()));
        assert_eq!(sh(&mut s, "ps"), ("ok", "db stopped starts=1\nweb running starts=1".into()));
        assert_eq!(sh(&mut s, "del a"), ("ok", "deleted a".into()));
        assert_eq!(sh(&mut s, ""), ("ok", "".into()));
        assert_eq!(sh(&mut s, "frob x"), ("error", "unknown command: frob".into()));
        assert_eq!(s.echoes, 12);
    }

    #[test]
    fn arg_messages_match_typescript() {
        let a = value::obj(&[("key", value::s("")), ("value", value::s("v"))]);
        assert_eq!(check_args("kv.set", &a).unwrap(), "'key' must be 1..256 bytes, is 0");
        let a = value::obj(&[("zz", Value::Null), ("2", Value::Null), ("10", Value::Null), ("text", value::s("x"))]);
        assert_eq!(check_args("echo", &a).unwrap(), "unexpected argument '10' (takes text)");
        let a = value::obj(&[("name", value::s("n")), ("rounds", Value::Float(1.5)), ("seed", Value::Bytes(vec![]))]);
        assert_eq!(check_args("job.run", &a).unwrap(), "'rounds' must be an int");
        let a = value::obj(&[("actor", Value::Int(-1)), ("cap", value::s("kv"))]);
        assert_eq!(check_args("cap.grant", &a).unwrap(), "'actor' must be in 0..9007199254740991, is -1");
        assert_eq!(check_args("svc.stop", &value::obj(&[])).unwrap(), "missing argument 'name'");
    }
}
