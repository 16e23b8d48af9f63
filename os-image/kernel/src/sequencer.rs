//! The device's sequencer (docs/axiom.md sections 4, 5, 7): the single writer of the log. It
//! decides commit or reject, assigns seq and logical time, appends the receipt right after each
//! commit and a checkpoint whenever the next seq falls on one. Same decisions, same entry bytes as
//! the TypeScript Sequencer (axiom/sequencer.ts); it never reads a clock.
use crate::entry::{self, Entry, BOOT, CHECKPOINT, COMMIT, D_LAB, D_OS, D_SESSION, D_SYSTEM, RECEIPT, REJECT};
use crate::reducers::{Outcome, OsState, SystemState};
use crate::value::{self, s, Value, MAX_SAFE};
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// A client's proposal. Ints as the wire carried them (the link layer checks their types).
#[derive(Clone, Debug)]
pub struct Proposal { pub actor: i64, pub id: i64, pub domain: i64, pub action: String, pub args: Value, pub time: i64 }

#[derive(Clone, Debug, PartialEq)]
pub enum Status { Committed { seq: u64, receipt: u64, outcome: Outcome }, Rejected { seq: u64, reason: &'static str, detail: String }, Duplicate { committed: bool, seq: u64, receipt: Option<u64> } }

/// One appended entry: its seq, encoding and hash.
#[derive(Clone, Debug)]
pub struct Appended { pub seq: u64, pub encoded: Vec<u8>, pub hash: [u8; 32] }

pub struct Sequencer {
    pub k: u64,
    pub next: u64,
    pub head: [u8; 32],
    pub time: u64,
    pub system: SystemState,
    pub os: OsState,
    done: BTreeMap<(u64, i64), (bool, u64, Option<u64>)>,
    receipt_of: BTreeMap<u64, u64>,
    device: [u8; 16],
    boot: [u8; 16],
    os_name: String,
}

impl Sequencer {
    pub fn new(device: [u8; 16], boot: [u8; 16], os_name: &str, k: u64) -> Self {
        Sequencer { k: k.max(2), next: 0, head: entry::GENESIS, time: 0, system: SystemState::default(), os: OsState::new(), done: BTreeMap::new(), receipt_of: BTreeMap::new(), device, boot, os_name: String::from(os_name) }
    }

    /// The BOOT entry (a RAM-only kernel has no earlier log, so no commits to abort).
    pub fn boot(&mut self, out: &mut Vec<Appended>) {
        let p = value::obj(&[("device", Value::Bytes(self.device.to_vec())), ("boot", Value::Bytes(self.boot.to_vec())), ("os", s(&self.os_name.clone())), ("k", Value::Int(self.k as i64))]);
        self.append(BOOT, D_SYSTEM, 0, 0, p, out);
    }

    pub fn state_hashes(&self) -> ([u8; 32], [u8; 32]) { (self.system.hash(), self.os.hash()) }

    fn check(&self, p: &Proposal) -> Option<(&'static str, String)> {
        let safe = |x: i64| (0..=MAX_SAFE).contains(&x);
        if !safe(p.id) || !safe(p.actor) || !safe(p.time) { return Some(("bad-args", String::from("actor, id and time must be non-negative integers"))) }
        if !p.args.is_map() { return Some(("bad-args", String::from("args must be a map"))) }
        let size = value::encode(&value::obj(&[("id", Value::Int(p.id)), ("action", s(&p.action)), ("args", p.args.clone())])).len();
        if size > 1_000_000 { return Some(("bad-args", String::from("the proposal is larger than an entry payload may be"))) }
        match p.domain {
            1 => self.os.check(p.actor, &p.action, &p.args),
            2 | 3 => {
                if self.os.has_cap(p.actor, "console") { None }
                else { Some(("missing-capability", format!("actor {} lacks capability 'console' needed for {} actions", p.actor, if p.domain == 2 { "session" } else { "lab" }))) }
            }
            d => Some(("unknown-domain", format!("domain {} takes no proposals on this device (os = 1, session = 2, lab = 3)", d))),
        }
    }

    /// Decides a proposal and appends its entries to `out`.
    pub fn propose(&mut self, p: &Proposal, out: &mut Vec<Appended>) -> Status {
        if let Some(&(committed, seq, receipt)) = self.done.get(&(p.actor as u64, p.id)) {
            return Status::Duplicate { committed, seq, receipt };
        }
        let domain = p.domain as u16; // as the TypeScript DataView.setUint16 writes it
        if let Some((reason, detail)) = self.check(p) {
            let pl = value::obj(&[("id", Value::Int(p.id)), ("action", s(&p.action)), ("reason", s(reason)), ("detail", s(&detail))]);
            let seq = self.append(REJECT, domain, p.actor as u64, p.time as u64, pl, out);
            return Status::Rejected { seq, reason, detail };
        }
        let outcome = if domain == D_OS { self.os.clone_run(&p.action, &p.args) } else { Outcome { outcome: "ok", result: Vec::new() } };
        let pl = value::obj(&[("id", Value::Int(p.id)), ("action", s(&p.action)), ("args", p.args.clone())]);
        let seq = self.append(COMMIT, domain, p.actor as u64, p.time as u64, pl, out);
        let receipt = self.append_receipt(seq, domain, &outcome, out);
        Status::Committed { seq, receipt, outcome }
    }

    fn append_receipt(&mut self, commit: u64, domain: u16, o: &Outcome, out: &mut Vec<Appended>) -> u64 {
        let pl = value::obj(&[("commit", Value::Int(commit as i64)), ("outcome", s(o.outcome)), ("result", Value::Bytes(o.result.clone())), ("result_hash", Value::Bytes(crate::blake3::hash(&o.result).to_vec()))]);
        self.append(RECEIPT, domain, 0, 0, pl, out)
    }

    fn append(&mut self, kind: u8, domain: u16, actor: u64, t: u64, payload: Value, out: &mut Vec<Appended>) -> u64 {
        if self.next % self.k == self.k - 1 {
            let (sys, os) = self.state_hashes();
            let states = value::obj(&[("system", Value::Bytes(sys.to_vec())), ("os", Value::Bytes(os.to_vec()))]);
            let pl = value::obj(&[("upto", Value::Int(self.next as i64 - 1)), ("states", states)]);
            self.append_one(CHECKPOINT, D_SYSTEM, 0, 0, pl, out);
        }
        self.append_one(kind, domain, actor, t, payload, out)
    }

    fn append_one(&mut self, kind: u8, domain: u16, actor: u64, t: u64, payload: Value, out: &mut Vec<Appended>) -> u64 {
        let e = Entry { kind, domain, seq: self.next, time: (self.time + 1).max(t), actor, prev: self.head, payload: value::encode(&payload) };
        let encoded = e.encode();
        let hash = entry::hash(&encoded);
        self.system.apply(&e, Some(&payload));
        self.os.apply(&e, Some(&payload));
        self.index(&e, &payload);
        self.next += 1;
        self.head = hash;
        self.time = e.time;
        out.push(Appended { seq: e.seq, encoded, hash });
        e.seq
    }

    fn index(&mut self, e: &Entry, p: &Value) {
        match e.kind {
            COMMIT | REJECT => {
                if let Some(id) = p.get("id").and_then(|v| v.as_safe_int()) { self.done.insert((e.actor, id), (e.kind == COMMIT, e.seq, None)); }
            }
            RECEIPT => {
                if let Some(c) = p.get("commit").and_then(|v| v.as_safe_int()) {
                    self.receipt_of.insert(c as u64, e.seq);
                    // The commit's (actor, id) record learns its receipt seq for duplicate answers.
                    for rec in self.done.values_mut().rev() {
                        if rec.0 && rec.1 == c as u64 { rec.2 = Some(e.seq); break }
                    }
                }
            }
            _ => {}
        }
        let _ = (D_SESSION, D_LAB);
    }
}

impl OsState {
    /// The receipt of a checked action, computed on the state before its COMMIT.
    pub fn clone_run(&mut self, action: &str, args: &Value) -> Outcome { self.run(action, args, false) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{hex, unhex, vectors};

    fn arr16(h: &str) -> [u8; 16] { let mut a = [0u8; 16]; a.copy_from_slice(&unhex(h)); a }

    #[test]
    fn shared_vector_sequencer_chain() {
        let v = vectors();
        let sv = v.get("sequencer").unwrap();
        let mut seq = Sequencer::new(arr16(sv.get("device").unwrap().str()), arr16(sv.get("boot").unwrap().str()), sv.get("os").unwrap().str(), sv.get("k").unwrap().num() as u64);
        let mut log: Vec<Appended> = Vec::new();
        seq.boot(&mut log);
        for st in sv.get("steps").unwrap().arr() {
            let pj = st.get("proposal").unwrap();
            let p = Proposal {
                actor: pj.get("actor").unwrap().num() as i64, id: pj.get("id").unwrap().num() as i64, domain: pj.get("domain").unwrap().num() as i64,
                action: pj.get("action").unwrap().str().into(), args: value::decode(&unhex(pj.get("args_hex").unwrap().str())).unwrap(), time: pj.get("time").unwrap().num() as i64,
            };
            let r = seq.propose(&p, &mut log);
            let want = st.get("status").unwrap().str();
            match &r {
                Status::Committed { seq: s, receipt, outcome } => {
                    assert_eq!(want, "committed");
                    assert_eq!(*s as f64, st.get("seq").unwrap().num());
                    assert_eq!(*receipt as f64, st.get("receipt_seq").unwrap().num());
                    assert_eq!(outcome.outcome, st.get("outcome").unwrap().str());
                    assert_eq!(hex(&outcome.result), st.get("result_hex").unwrap().str());
                }
                Status::Rejected { seq: s, reason, .. } => { assert_eq!(want, "rejected"); assert_eq!(*s as f64, st.get("seq").unwrap().num()); assert_eq!(*reason, st.get("reason").unwrap().str()); }
                Status::Duplicate { seq: s, .. } => { assert_eq!(want, "duplicate"); assert_eq!(*s as f64, st.get("seq").unwrap().num()); }
            }
            if let Some(h) = st.get("state_system") { assert_eq!(hex(&seq.system.hash()), h.str(), "system after {:?}", p.action) }
            if let Some(h) = st.get("state_os") { assert_eq!(hex(&seq.os.hash()), h.str(), "os after {:?}", p.action) }
        }
        let chain = sv.get("chain").unwrap().arr();
        assert_eq!(log.len(), chain.len());
        for (a, c) in log.iter().zip(chain) {
            assert_eq!(hex(&a.encoded), c.get("encoding").unwrap().str(), "entry {}", a.seq);
            assert_eq!(hex(&a.hash), c.get("hash").unwrap().str());
        }
    }
}
