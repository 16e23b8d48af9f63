//! The kernel-link server (docs/kernel-link.md sections 4-8): a pure state machine. Bytes from the
//! host go in through `feed`; bytes for the host come out of `output`/`consume`; `pump` moves the
//! entry stream and console frames forward as far as the host's credit allows. The kernel's main
//! loop only shuttles bytes between this and a UART or virtio queue.
use crate::entry;
use crate::frame::{self, put_frame, put_stuffed, Decoder, Drop, Event, OVERHEAD};
use crate::sequencer::{Appended, Proposal, Sequencer, Status};
use crate::value::{self, s, Value};
use alloc::collections::VecDeque;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

pub const T_HELLO: u8 = 0x01;
pub const T_WELCOME: u8 = 0x02;
pub const T_PING: u8 = 0x03;
pub const T_PONG: u8 = 0x04;
pub const T_CLOSE: u8 = 0x05;
pub const T_ERROR: u8 = 0x06;
pub const T_PROPOSE: u8 = 0x10;
pub const T_RESULT: u8 = 0x11;
pub const T_SUBSCRIBE: u8 = 0x20;
pub const T_ENTRIES: u8 = 0x21;
pub const T_CREDIT: u8 = 0x22;
pub const T_CONSOLE: u8 = 0x30;

pub const VERSION: i64 = 1;
pub const MAX_REQUESTS: i64 = 8;
/// Largest ENTRIES payload we build. Frames are also kept to 1/8 of the window: the host grants
/// after consuming half a window, and small frames keep the pipe full across that round trip.
const BATCH_MAX: usize = 128 * 1024;
const CONSOLE_CHUNK: usize = 4096;
/// Console text kept while the host has no credit for it; beyond this the oldest is dropped and
/// a line says how much (never silently).
const CONSOLE_BACKLOG: usize = 256 * 1024;
/// Proposal ids for lines typed at the console (actor 0): far above any client's ids.
const CONSOLE_ID_BASE: i64 = 1 << 52;

/// A log entry as held for streaming: its encoding, and its ENTRIES list element (`05 len`
/// + encoding) prepared for the wire once.
struct Held { encoded: Vec<u8>, piece: frame::Prepared }

#[derive(Clone, Copy, Debug, Default)]
struct Credit { sent: u64, limit: u64, window: u64 }
impl Credit {
    fn new(window: u64) -> Self { Credit { sent: 0, limit: window, window } }
    /// docs/kernel-link.md section 6: within the limit, or alone when everything sent is consumed.
    fn allows(&self, size: u64) -> bool { self.sent + size <= self.limit || (self.limit >= self.window && self.sent == self.limit - self.window) }
}

struct Stream { rid: i64, next: u64, credit: Credit }

struct Session { host_max_frame: usize, console: Credit, console_frames: bool, stream: Option<Stream> }

#[derive(Default, Debug, Clone)]
pub struct Stats { pub frames_in: u64, pub text_in: u64, pub drops: u64, pub bad_messages: u64, pub errors_sent: u64, pub entries_sent: u64, pub console_dropped: u64 }

pub struct Server {
    pub seq: Sequencer,
    log: VecDeque<Held>,
    base: u64,
    log_bytes: usize,
    log_cap: usize,
    dec: Decoder,
    session: Option<Session>,
    /// Bytes being written (small frames and text gather here) ...
    out: Vec<u8>,
    /// ... and sealed chunks waiting for the wire (a driver may take whole chunks: no copy).
    queue: VecDeque<Vec<u8>>,
    front_pos: usize,
    queued: usize,
    console_backlog: VecDeque<u8>,
    line: Vec<u8>,
    line_overflow: bool,
    console_ids: i64,
    device: [u8; 16],
    boot: [u8; 16],
    os: String,
    pub max_frame: usize,
    pub stats: Stats,
    /// Some: the `sh` echoes are also gathered here for a second console (COM1 while the link is
    /// on virtio, so a person or a lab typing on COM1 sees the answer where they typed).
    pub mirror: Option<Vec<u8>>,
    /// The last console byte was a CR: a LF right after it ends nothing more (CR LF is one Enter).
    last_cr: bool,
    /// The bytes being fed were typed on the mirror's console (COM1): echo them there.
    pub typed_on_mirror: bool,
}

fn int(m: &Value, k: &str) -> Result<i64, String> { m.get(k).and_then(|v| v.as_int()).ok_or_else(|| format!("missing or non-int '{}'", k)) }
fn string<'a>(m: &'a Value, k: &str) -> Result<&'a str, String> { m.get(k).and_then(|v| v.as_str()).ok_or_else(|| format!("missing or non-string '{}'", k)) }

impl Server {
    /// A server whose sequencer has appended BOOT. `log_cap`: bytes of encoded entries kept for
    /// SUBSCRIBE (older ones are forgotten; asking for them gets `gone`).
    pub fn new(device: [u8; 16], boot: [u8; 16], os: &str, k: u64, max_frame: usize, log_cap: usize) -> Self {
        let mut srv = Server {
            seq: Sequencer::new(device, boot, os, k), log: VecDeque::new(), base: 0, log_bytes: 0, log_cap,
            dec: Decoder::new(max_frame), session: None, out: Vec::with_capacity(64 * 1024), queue: VecDeque::new(), front_pos: 0, queued: 0,
            console_backlog: VecDeque::new(), line: Vec::new(), line_overflow: false, console_ids: 0,
            device, boot, os: String::from(os), max_frame, stats: Stats::default(), mirror: None, last_cr: false, typed_on_mirror: false,
        };
        let mut a = Vec::new();
        srv.seq.boot(&mut a);
        srv.keep(a);
        srv
    }

    pub fn head(&self) -> u64 { self.seq.next }
    pub fn has_session(&self) -> bool { self.session.is_some() }
    pub fn log_base(&self) -> u64 { self.base }

    fn keep(&mut self, a: Vec<Appended>) {
        for x in a {
            let mut h = [5u8, 0, 0, 0, 0];
            h[1..].copy_from_slice(&(x.encoded.len() as u32).to_le_bytes());
            let piece = frame::Prepared::new(&[&h, &x.encoded]);
            self.log_bytes += x.encoded.len() + piece.wire.len();
            self.log.push_back(Held { encoded: x.encoded, piece });
        }
        while self.log_bytes > self.log_cap && self.log.len() > 1 {
            let x = self.log.pop_front().unwrap();
            self.log_bytes -= x.encoded.len() + x.piece.wire.len();
            self.base += 1;
        }
    }

    fn seal(&mut self) {
        if !self.out.is_empty() {
            self.queued += self.out.len();
            let cap = self.out.capacity().min(64 * 1024);
            self.queue.push_back(core::mem::replace(&mut self.out, Vec::with_capacity(cap)));
        }
    }
    /// Bytes waiting for the wire, from the front (call `consume` with what was sent).
    pub fn output(&mut self) -> &[u8] {
        if self.queue.is_empty() { self.seal() }
        match self.queue.front() { Some(f) => &f[self.front_pos..], None => &[] }
    }
    /// The driver sent `n` bytes of `output()`.
    pub fn consume(&mut self, mut n: usize) {
        while n > 0 {
            if self.queue.is_empty() { self.seal() }
            let Some(f) = self.queue.front() else { return };
            let k = n.min(f.len() - self.front_pos);
            self.front_pos += k;
            self.queued -= k;
            n -= k;
            if self.front_pos == f.len() { self.queue.pop_front(); self.front_pos = 0 }
        }
    }
    /// The next whole chunk for the wire (a DMA driver sends it without copying).
    pub fn take_chunk(&mut self) -> Option<Vec<u8>> {
        if self.queue.is_empty() { self.seal() }
        let mut c = self.queue.pop_front()?;
        self.queued -= c.len() - self.front_pos;
        if self.front_pos > 0 { c.drain(..self.front_pos); self.front_pos = 0 }
        Some(c)
    }
    pub fn pending(&self) -> usize { self.queued + self.out.len() }

    fn send(&mut self, ty: u8, v: &Value) { let p = value::encode(v); put_frame(&mut self.out, ty, &p) }

    fn error(&mut self, rid: i64, code: &str, detail: &str) {
        self.stats.errors_sent += 1;
        self.send(T_ERROR, &value::obj(&[("code", s(code)), ("detail", s(detail)), ("rid", Value::Int(rid))]));
    }

    fn welcome(&mut self, rid: i64) {
        let caps = Value::List(vec![s("console-frames"), s("entries"), s("propose")]);
        let v = value::obj(&[
            ("boot", Value::Bytes(self.boot.to_vec())), ("caps", caps), ("device", Value::Bytes(self.device.to_vec())),
            ("head", Value::Int(self.head() as i64)), ("max_frame", Value::Int(self.max_frame as i64)), ("max_requests", Value::Int(MAX_REQUESTS)),
            ("os", s(&self.os.clone())), ("rid", Value::Int(rid)), ("version", Value::Int(VERSION)),
        ]);
        self.send(T_WELCOME, &v);
    }

    /// At boot, once the link is up: the unsolicited WELCOME (rid 0).
    pub fn announce(&mut self) { self.welcome(0) }

    /// Console output from the kernel: raw (stuffed) text while no host takes CONSOLE frames,
    /// else queued for CONSOLE frames within the console credit.
    pub fn console(&mut self, text: &[u8]) {
        match &self.session {
            Some(sn) if sn.console_frames => {
                self.console_backlog.extend(text.iter().copied());
                if self.console_backlog.len() > CONSOLE_BACKLOG {
                    let cut = self.console_backlog.len() - CONSOLE_BACKLOG / 2;
                    self.console_backlog.drain(..cut);
                    self.stats.console_dropped += cut as u64;
                    let note = format!("\n[console: {} bytes dropped: the host granted no console credit]\n", cut);
                    for (i, b) in note.bytes().enumerate() { self.console_backlog.insert(i, b) }
                }
            }
            _ => put_stuffed(&mut self.out, text),
        }
    }

    // ---- input --------------------------------------------------------------------------------

    /// Bytes from the host.
    pub fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.dec.push(b);
            while let Some(e) = self.dec.next() {
                match e {
                    Event::Text(t) => self.text_in(t),
                    Event::Frame(ty) => {
                        self.stats.frames_in += 1;
                        let payload = self.dec.payload().to_vec();
                        self.frame(ty, &payload);
                    }
                    Event::Drop(d) => {
                        self.stats.drops += 1;
                        if let Drop::Oversized { ty, len } = d {
                            self.error(0, "too-large", &format!("a frame of type {:#04x} with {} payload bytes exceeds max_frame {}: skipped", ty, len, self.max_frame));
                        }
                    }
                }
            }
        }
    }

    /// Console input: a typed line runs as an `sh` action of actor 0 (the device itself).
    fn text_in(&mut self, b: u8) {
        self.stats.text_in += 1;
        // Enter is CR from a terminal in raw mode (picocom, orbital-lab console), LF from a pipe,
        // CR LF from some: each ends the line once.
        let after_cr = core::mem::replace(&mut self.last_cr, b == b'\r');
        if b == b'\n' && after_cr { return }
        // Characters typed on COM1 beside a virtio link are echoed there, as a terminal's line
        // discipline echoes them (not text that came over the link: nobody types that on COM1).
        if let (true, Some(m)) = (self.typed_on_mirror, self.mirror.as_mut()) {
            if m.len() < 64 * 1024 {
                match b {
                    b'\r' | b'\n' => m.extend_from_slice(b"\r\n"),
                    0x7f | 0x08 => { if !self.line.is_empty() { m.extend_from_slice(b"\x08 \x08") } }
                    0x15 => m.extend_from_slice(b"^U\r\n"),
                    0x20..=0x7e | 0x80..=0xff | b'\t' => m.push(b),
                    _ => {}
                }
            }
        }
        match b {
            // Line editing as a terminal's line discipline does it: Backspace (DEL or BS) takes
            // back the last character (a whole UTF-8 sequence), Ctrl-U the whole line.
            0x7f | 0x08 => {
                while let Some(c) = self.line.pop() { if c & 0xc0 != 0x80 { break } }
            }
            0x15 => { self.line.clear(); self.line_overflow = false; }
            b'\r' | b'\n' => {
                let line = core::mem::take(&mut self.line);
                if core::mem::replace(&mut self.line_overflow, false) { self.console(b"console: line longer than 4096 bytes ignored\n"); return }
                match core::str::from_utf8(&line) {
                    Ok(l) => {
                        self.console_ids += 1;
                        let p = Proposal { actor: 0, id: CONSOLE_ID_BASE + self.console_ids, domain: 1, action: String::from("sh"), args: value::obj(&[("line", s(l))]), time: 0 };
                        self.propose(&p);
                    }
                    Err(_) => self.console(b"console: line is not UTF-8, ignored\n"),
                }
            }
            _ => { if self.line.len() < 4096 { self.line.push(b) } else { self.line_overflow = true } }
        }
    }

    /// Runs a proposal through the sequencer, keeps its entries, echoes `sh` on the console.
    pub fn propose(&mut self, p: &Proposal) -> Status {
        let mut a = Vec::new();
        let st = self.seq.propose(p, &mut a);
        self.keep(a);
        if let Status::Committed { outcome, .. } = &st {
            if p.domain == 1 && p.action == "sh" {
                let text = String::from_utf8_lossy_compat(&outcome.result);
                let line = p.args.get("line").and_then(|v| v.as_str()).unwrap_or("");
                let msg = format!("$ {}{}{}\n", line, if text.is_empty() { String::new() } else { format!("\n{}", text) }, if outcome.outcome == "error" { " (error)" } else { "" });
                self.console(msg.as_bytes());
                if let Some(m) = self.mirror.as_mut() { if m.len() < 64 * 1024 { m.extend_from_slice(msg.as_bytes()) } }
            }
        }
        st
    }

    fn frame(&mut self, ty: u8, payload: &[u8]) {
        let v = match value::decode(payload) { Ok(v) if v.is_map() => Some(v), _ => None };
        let rid = v.as_ref().and_then(|v| v.get("rid")).and_then(|r| r.as_int()).unwrap_or(0);
        if matches!(ty, T_WELCOME | T_PONG | T_ERROR | T_RESULT | T_ENTRIES | T_CONSOLE) {
            self.stats.bad_messages += 1;
            self.error(rid, "bad-message", &format!("frame type {:#04x} is sent by devices, not hosts", ty));
            return;
        }
        if !matches!(ty, T_HELLO | T_PING | T_CLOSE | T_PROPOSE | T_SUBSCRIBE | T_CREDIT) {
            self.error(rid, "unknown-type", &format!("unknown message type {:#04x}", ty));
            return;
        }
        let v = match v {
            Some(v) => v,
            None => { self.stats.bad_messages += 1; self.error(0, "bad-message", &format!("frame type {:#04x}: payload is not one canonical value that is a map", ty)); return }
        };
        let r = match ty {
            T_HELLO => self.hello(&v),
            T_PING => int(&v, "rid").map(|rid| { let head = self.head() as i64; self.send(T_PONG, &value::obj(&[("head", Value::Int(head)), ("rid", Value::Int(rid))])) }),
            T_CLOSE => { self.session = None; Ok(()) }
            _ if self.session.is_none() => {
                if ty != T_CREDIT { self.error(rid, "no-session", "send HELLO first") }
                Ok(())
            }
            T_PROPOSE => self.on_propose(&v),
            T_SUBSCRIBE => self.subscribe(&v),
            T_CREDIT => self.credit(&v),
            _ => Ok(()),
        };
        if let Err(detail) = r {
            self.stats.bad_messages += 1;
            self.error(rid, "bad-message", &format!("frame type {:#04x}: {}", ty, detail));
        }
    }

    fn hello(&mut self, v: &Value) -> Result<(), String> {
        let rid = int(v, "rid")?;
        let (min, max) = (int(v, "min")?, int(v, "max")?);
        let host_max = int(v, "max_frame")?;
        let cw = int(v, "console_window")?;
        string(v, "client")?;
        match v.get("caps") { Some(Value::List(l)) if l.iter().all(|c| c.as_str().is_some()) => {}, _ => return Err(String::from("missing or mistyped 'caps' (a list of strings)")) }
        if !(min <= VERSION && VERSION <= max) {
            self.error(rid, "version", &format!("device speaks {}..{}", VERSION, VERSION));
            return Ok(());
        }
        let cw = cw.max(0) as u64;
        self.session = Some(Session { host_max_frame: host_max.clamp(4096, frame::HARD_MAX as i64) as usize, console: Credit::new(cw), console_frames: cw > 0, stream: None });
        self.welcome(rid);
        Ok(())
    }

    fn on_propose(&mut self, v: &Value) -> Result<(), String> {
        let rid = int(v, "rid")?;
        let p = Proposal {
            action: String::from(string(v, "action")?), actor: int(v, "actor")?, domain: int(v, "domain")?, id: int(v, "id")?, time: int(v, "time")?,
            args: match v.get("args") { Some(a) if a.is_map() => a.clone(), _ => return Err(String::from("missing or mistyped 'args' (a map)")) },
        };
        // Entry fields are u64 and the TypeScript side holds them as safe ints: refuse the rest
        // here, as a protocol error, rather than write an entry no other implementation can.
        let safe = |x: i64| (0..=value::MAX_SAFE).contains(&x);
        if !safe(p.actor) || !safe(p.id) || !safe(p.time) || !(0..=0xffff).contains(&p.domain) {
            return Err(String::from("actor, id and time must be integers in 0..2^53-1, domain in 0..65535"));
        }
        let st = self.propose(&p);
        let (status, of, seq, receipt, reason, detail) = match st {
            Status::Committed { seq, receipt, .. } => ("committed", "committed", seq as i64, receipt as i64, "", String::new()),
            Status::Rejected { seq, reason, detail } => ("rejected", "rejected", seq as i64, -1, reason, detail),
            Status::Duplicate { committed, seq, receipt } => ("duplicate", if committed { "committed" } else { "rejected" }, seq as i64, receipt.map_or(-1, |r| r as i64), "", String::new()),
        };
        let m = value::obj(&[("detail", s(&detail)), ("of", s(of)), ("reason", s(reason)), ("receipt", Value::Int(receipt)), ("rid", Value::Int(rid)), ("seq", Value::Int(seq)), ("status", s(status))]);
        self.send(T_RESULT, &m);
        Ok(())
    }

    fn subscribe(&mut self, v: &Value) -> Result<(), String> {
        let rid = int(v, "rid")?;
        let from = int(v, "from")?;
        let window = int(v, "window")?;
        let prev = match v.get("prev").and_then(|p| p.as_bytes()) { Some(p) if p.len() == 32 => p, _ => return Err(String::from("missing or mistyped 'prev' (32 bytes)")) };
        let head = self.head();
        if let Some(sn) = self.session.as_mut() { sn.stream = None }
        if from < 0 { return Err(String::from("'from' must be ≥ 0")) }
        let from = from as u64;
        if from > head { self.error(rid, "ahead", &format!("from {} is beyond this device's head {} (a new log?)", from, head)); return Ok(()) }
        if from < self.base { self.error(rid, "gone", &format!("entries below {} are no longer held", self.base)); return Ok(()) }
        let have: [u8; 32] = if from == head { self.seq.head } else {
            let e = &self.log[(from - self.base) as usize].encoded;
            let mut h = [0u8; 32];
            h.copy_from_slice(&e[28..60]);
            h
        };
        if have[..] != prev[..] { self.error(rid, "diverged", &format!("prev does not match the hash of entry {} on this device", from as i64 - 1)); return Ok(()) }
        if let Some(sn) = self.session.as_mut() { sn.stream = Some(Stream { rid, next: from, credit: Credit::new(window.max(0) as u64) }) }
        Ok(())
    }

    fn credit(&mut self, v: &Value) -> Result<(), String> {
        let stream = int(v, "stream")?;
        let limit = int(v, "limit")?.max(0) as u64;
        if let Some(sn) = self.session.as_mut() {
            if stream == 0 { sn.console.limit = sn.console.limit.max(limit) }
            else if let Some(st) = sn.stream.as_mut() { if st.rid == stream { st.credit.limit = st.credit.limit.max(limit) } }
        }
        Ok(())
    }

    // ---- streams ------------------------------------------------------------------------------

    /// Emits console and entry frames while credit allows and fewer than `budget` bytes wait.
    pub fn pump(&mut self, budget: usize) {
        self.pump_console();
        while self.pending() < budget && self.pump_entries() {}
    }

    fn pump_console(&mut self) {
        loop {
            let Some(sn) = self.session.as_mut() else { return };
            if !sn.console_frames || self.console_backlog.is_empty() { return }
            let n = self.console_backlog.len().min(CONSOLE_CHUNK);
            let size = (OVERHEAD + 18 + n) as u64;
            if !sn.console.allows(size) { return }
            sn.console.sent += size;
            let text: Vec<u8> = self.console_backlog.drain(..n).collect();
            self.send(T_CONSOLE, &value::obj(&[("text", Value::Bytes(text))]));
        }
    }

    /// One ENTRIES frame, if there is an entry to send and credit for it.
    fn pump_entries(&mut self) -> bool {
        let head = self.head();
        let base = self.base;
        let Some(sn) = self.session.as_mut() else { return false };
        let max_payload = sn.host_max_frame;
        let Some(st) = sn.stream.as_mut() else { return false };
        if st.next >= head || st.next < base { return false }
        // payload = map{entries: list, seq: int, stream: int}: 5 + (11 + 5) + (7 + 9) + (10 + 9)
        const FIXED: usize = 56;
        let cap = (st.credit.window as usize / 8).clamp(4096, BATCH_MAX).min(max_payload);
        let mut n = 0usize;
        let mut size = FIXED;
        let mut i = (st.next - base) as usize;
        while i < self.log.len() {
            let add = 5 + self.log[i].encoded.len();
            let fits_credit = st.credit.sent + (OVERHEAD + size + add) as u64 <= st.credit.limit;
            if n > 0 && (size + add > cap || !fits_credit) { break }
            if n == 0 && size + add > max_payload { break } // cannot happen: entries ≤ 1 MiB + 64
            size += add;
            n += 1;
            i += 1;
            if !fits_credit { break } // a first entry beyond the limit only goes alone
        }
        if n == 0 { return false }
        let fsize = (OVERHEAD + size) as u64;
        if !st.credit.allows(fsize) { return false }
        st.credit.sent += fsize;
        let (rid, first) = (st.rid, st.next);
        st.next += n as u64;
        // Written straight into the output (the canonical map, keys entries < seq < stream): no
        // Value tree, each entry's stuffed bytes and CRC were prepared once when it was appended.
        let out = &mut self.out;
        let mut w = frame::FrameWriter::start(out, T_ENTRIES, size);
        let mut head = [0u8; 21];
        head[0] = 8; head[1..5].copy_from_slice(&3u32.to_le_bytes());
        head[5..9].copy_from_slice(&7u32.to_le_bytes()); head[9..16].copy_from_slice(b"entries");
        head[16] = 7; head[17..21].copy_from_slice(&(n as u32).to_le_bytes());
        w.put(out, &head);
        let start = (first - base) as usize;
        for k in 0..n { w.put_prepared(out, &self.log[start + k].piece) }
        let mut tail = [0u8; 35];
        tail[0..4].copy_from_slice(&3u32.to_le_bytes()); tail[4..7].copy_from_slice(b"seq"); tail[7] = 3; tail[8..16].copy_from_slice(&(first as i64).to_le_bytes());
        tail[16..20].copy_from_slice(&6u32.to_le_bytes()); tail[20..26].copy_from_slice(b"stream"); tail[26] = 3; tail[27..35].copy_from_slice(&rid.to_le_bytes());
        w.put(out, &tail);
        w.finish(out);
        // Chunks of about 64 KiB: one virtio descriptor (one device notification) carries several
        // frames, and the driver never copies them.
        if self.out.len() >= 64 * 1024 { self.seal() }
        self.stats.entries_sent += n as u64;
        true
    }

    /// The encoded entry at `seq`, while held.
    pub fn entry(&self, seq: u64) -> Option<&[u8]> { if seq < self.base { None } else { self.log.get((seq - self.base) as usize).map(|a| &a.encoded[..]) } }
    pub fn entry_kind(e: &[u8]) -> u8 { e[1] }
    pub fn _unused() { let _ = entry::HEADER; }
}

/// `String::from_utf8_lossy` without std's Cow dance in no_std.
trait Lossy { fn from_utf8_lossy_compat(b: &[u8]) -> String; }
impl Lossy for String {
    fn from_utf8_lossy_compat(b: &[u8]) -> String {
        match core::str::from_utf8(b) { Ok(t) => String::from(t), Err(_) => b.iter().map(|&c| if c < 0x80 { c as char } else { '\u{fffd}' }).collect() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{Decoder, Event};

    /// A minimal host: frames to the server, decoded events back.
    struct Host { dec: Decoder, text: Vec<u8>, frames: Vec<(u8, Value)>, drops: usize }
    impl Host {
        fn new() -> Self { Host { dec: Decoder::new(frame::HARD_MAX), text: Vec::new(), frames: Vec::new(), drops: 0 } }
        fn send(&self, srv: &mut Server, ty: u8, v: Value) { let mut w = Vec::new(); put_frame(&mut w, ty, &value::encode(&v)); srv.feed(&w) }
        fn recv(&mut self, srv: &mut Server) {
            srv.pump(1 << 20);
            let mut out = Vec::new();
            while let Some(c) = srv.take_chunk() { out.extend_from_slice(&c) }
            assert_eq!(srv.pending(), 0);
            for b in out {
                self.dec.push(b);
                while let Some(e) = self.dec.next() {
                    match e {
                        Event::Text(t) => self.text.push(t),
                        Event::Frame(ty) => self.frames.push((ty, value::decode(self.dec.payload()).unwrap())),
                        Event::Drop(_) => self.drops += 1,
                    }
                }
            }
        }
        fn take(&mut self) -> Vec<(u8, Value)> { core::mem::take(&mut self.frames) }
    }
    fn hello(cw: i64, rid: i64) -> Value {
        value::obj(&[("caps", Value::List(vec![])), ("client", s("test")), ("console_window", Value::Int(cw)), ("max", Value::Int(1)), ("max_frame", Value::Int(2097152)), ("min", Value::Int(1)), ("rid", Value::Int(rid))])
    }
    fn propose(rid: i64, actor: i64, id: i64, action: &str, args: Value) -> Value {
        value::obj(&[("action", s(action)), ("actor", Value::Int(actor)), ("args", args), ("domain", Value::Int(1)), ("id", Value::Int(id)), ("rid", Value::Int(rid)), ("time", Value::Int(0))])
    }
    fn server() -> Server { Server::new([1; 16], [2; 16], "orbital-guest test", 8, 65536, 1 << 20) }
    fn subscribe(rid: i64, from: i64, prev: [u8; 32], window: i64) -> Value {
        value::obj(&[("from", Value::Int(from)), ("prev", Value::Bytes(prev.to_vec())), ("rid", Value::Int(rid)), ("window", Value::Int(window))])
    }

    #[test]
    fn handshake_propose_stream() {
        let mut srv = server();
        let mut h = Host::new();
        srv.console(b"boot text \xff\n");
        srv.announce();
        h.recv(&mut srv);
        assert_eq!(h.text, b"boot text \xff\n");
        let f = h.take();
        assert_eq!(f[0].0, T_WELCOME);
        assert_eq!(f[0].1.get("rid"), Some(&Value::Int(0)));
        assert_eq!(f[0].1.get("head"), Some(&Value::Int(1)));
        // Requests before HELLO: no-session; PING always answered.
        h.send(&mut srv, T_PROPOSE, propose(5, 1, 1, "echo", value::obj(&[("text", s("x"))])));
        h.send(&mut srv, T_PING, value::obj(&[("rid", Value::Int(6))]));
        h.recv(&mut srv);
        let f = h.take();
        assert_eq!(f[0].1.get("code"), Some(&s("no-session")));
        assert_eq!((f[1].0, f[1].1.get("head")), (T_PONG, Some(&Value::Int(1))));
        h.send(&mut srv, T_HELLO, hello(65536, 7));
        h.recv(&mut srv);
        let f = h.take();
        assert_eq!((f[0].0, f[0].1.get("rid"), f[0].1.get("version")), (T_WELCOME, Some(&Value::Int(7)), Some(&Value::Int(1))));
        h.send(&mut srv, T_PROPOSE, propose(8, 1, 1, "sh", value::obj(&[("line", s("set a b"))])));
        h.recv(&mut srv);
        let f = h.take();
        assert_eq!(f[0].0, T_RESULT);
        assert_eq!(f[0].1.get("status"), Some(&s("committed")));
        assert_eq!((f[0].1.get("seq"), f[0].1.get("receipt")), (Some(&Value::Int(1)), Some(&Value::Int(2))));
        assert_eq!(f[1].0, T_CONSOLE); // "$ set a b\na=b"
        assert_eq!(f[1].1.get("text").unwrap().as_bytes().unwrap(), b"$ set a b\na=b\n");
        // Duplicate.
        h.send(&mut srv, T_PROPOSE, propose(9, 1, 1, "sh", value::obj(&[("line", s("set a b"))])));
        h.recv(&mut srv);
        let f = h.take();
        assert_eq!((f[0].1.get("status"), f[0].1.get("seq"), f[0].1.get("receipt")), (Some(&s("duplicate")), Some(&Value::Int(1)), Some(&Value::Int(2))));
        // Stream from 0, then resume from 2 with the right prev; wrong prev diverges; ahead.
        h.send(&mut srv, T_SUBSCRIBE, subscribe(10, 0, [0; 32], 1 << 20));
        h.recv(&mut srv);
        let f = h.take();
        assert_eq!(f[0].0, T_ENTRIES);
        let es = if let Some(Value::List(l)) = f[0].1.get("entries") { l.clone() } else { panic!() };
        assert_eq!(es.len(), 3);
        let h1 = entry::hash(es[1].as_bytes().unwrap());
        h.send(&mut srv, T_SUBSCRIBE, subscribe(11, 2, h1, 1 << 20));
        h.send(&mut srv, T_SUBSCRIBE, subscribe(12, 2, [9; 32], 1 << 20));
        h.send(&mut srv, T_SUBSCRIBE, subscribe(13, 99, [0; 32], 1 << 20));
        h.recv(&mut srv);
        let f = h.take();
        assert_eq!(f[0].0, T_ERROR); // the 11 stream was replaced by 12 before pump: no frames for it
        assert_eq!(f[0].1.get("code"), Some(&s("diverged")));
        assert_eq!(f[1].1.get("code"), Some(&s("ahead")));
        h.send(&mut srv, T_SUBSCRIBE, subscribe(14, 2, h1, 1 << 20));
        h.recv(&mut srv);
        let f = h.take();
        assert_eq!((f[0].0, f[0].1.get("seq"), f[0].1.get("stream")), (T_ENTRIES, Some(&Value::Int(2)), Some(&Value::Int(14))));
        // New entries flow to the live stream.
        h.send(&mut srv, T_PROPOSE, propose(15, 1, 2, "echo", value::obj(&[("text", s("hi"))])));
        h.recv(&mut srv);
        let f = h.take();
        assert_eq!(f[0].0, T_RESULT);
        assert_eq!((f[1].0, f[1].1.get("seq")), (T_ENTRIES, Some(&Value::Int(3))));
    }

    #[test]
    fn output_by_pieces_equals_output_by_chunks() {
        let run = |by_chunks: bool| {
            let mut srv = server();
            let h = Host::new();
            h.send(&mut srv, T_HELLO, hello(65536, 1));
            for i in 0..40 { h.send(&mut srv, T_PROPOSE, propose(10 + i, 1, i + 1, "sh", value::obj(&[("line", s(&format!("set k{} {}", i, "v\u{ff}".repeat(i as usize))))]))); }
            h.send(&mut srv, T_SUBSCRIBE, subscribe(2, 0, [0; 32], 1 << 20));
            srv.pump(1 << 20);
            let mut out = Vec::new();
            let mut step = 1;
            while srv.pending() > 0 {
                if by_chunks { out.extend_from_slice(&srv.take_chunk().unwrap()) }
                else { let o = srv.output(); let n = o.len().min(step); out.extend_from_slice(&o[..n]); srv.consume(n); step = step % 97 + 13 }
            }
            out
        };
        assert_eq!(run(true), run(false));
    }

    #[test]
    fn hello_resets_close_ends_version_mismatch_errs() {
        let mut srv = server();
        let mut h = Host::new();
        h.send(&mut srv, T_HELLO, hello(0, 1));
        h.send(&mut srv, T_SUBSCRIBE, subscribe(2, 0, [0; 32], 1 << 20));
        h.recv(&mut srv);
        assert!(h.take().iter().any(|(t, _)| *t == T_ENTRIES));
        // A new HELLO ends the stream: a new entry is not streamed to the old subscription.
        h.send(&mut srv, T_HELLO, hello(0, 3));
        h.send(&mut srv, T_PROPOSE, propose(4, 1, 1, "echo", value::obj(&[("text", s("x"))])));
        h.recv(&mut srv);
        let f = h.take();
        assert!(f.iter().all(|(t, _)| *t != T_ENTRIES), "{:?}", f);
        // CLOSE ends the session: requests get no-session; PING still answers.
        h.send(&mut srv, T_CLOSE, value::obj(&[("detail", s("")), ("reason", s("normal"))]));
        h.send(&mut srv, T_PROPOSE, propose(5, 1, 2, "echo", value::obj(&[("text", s("x"))])));
        h.send(&mut srv, T_PING, value::obj(&[("rid", Value::Int(6))]));
        h.recv(&mut srv);
        let f = h.take();
        assert_eq!(f[0].1.get("code"), Some(&s("no-session")));
        assert_eq!(f[1].0, T_PONG);
        // No common version.
        let mut v = hello(0, 7);
        if let Value::Map(m) = &mut v { for (k, x) in m.iter_mut() { if k == "min" { *x = Value::Int(2) } if k == "max" { *x = Value::Int(3) } } }
        h.send(&mut srv, T_HELLO, v);
        h.recv(&mut srv);
        let f = h.take();
        assert_eq!((f[0].1.get("code"), f[0].1.get("detail")), (Some(&s("version")), Some(&s("device speaks 1..1"))));
        assert!(!srv.has_session());
    }

    #[test]
    fn credit_is_never_exceeded() {
        let mut srv = server();
        let mut h = Host::new();
        h.send(&mut srv, T_HELLO, hello(0, 1));
        for i in 0..200 { h.send(&mut srv, T_PROPOSE, propose(100 + i, 1, i + 1, "kv.set", value::obj(&[("key", s("k")), ("value", s(&"v".repeat(300)))]))); }
        h.recv(&mut srv);
        h.take();
        let window = 4000i64;
        h.send(&mut srv, T_SUBSCRIBE, subscribe(2, 0, [0; 32], window));
        let (mut consumed, mut limit, mut got, mut alone) = (0i64, window, 0usize, 0);
        for _ in 0..1000 {
            h.recv(&mut srv);
            let f = h.take();
            if f.is_empty() { break }
            for (ty, v) in f {
                assert_eq!(ty, T_ENTRIES);
                let size = (16 + value::encode(&v).len()) as i64;
                // Within the granted limit, or alone once everything sent was consumed.
                if consumed + size > limit { assert_eq!(consumed, limit - window, "frame beyond credit"); alone += 1 }
                consumed += size;
                if let Some(Value::List(l)) = v.get("entries") { got += l.len() }
            }
            limit = consumed + window;
            h.send(&mut srv, T_CREDIT, value::obj(&[("limit", Value::Int(limit)), ("stream", Value::Int(2))]));
        }
        let _ = alone;
        assert_eq!(got as u64, srv.head());
    }

    #[test]
    fn credit_limit_holds_without_grants() {
        let mut srv = server();
        let mut h = Host::new();
        h.send(&mut srv, T_HELLO, hello(0, 1));
        for i in 0..100 { h.send(&mut srv, T_PROPOSE, propose(100 + i, 1, i + 1, "echo", value::obj(&[("text", s(&"x".repeat(500)))]))); }
        h.recv(&mut srv);
        h.take();
        h.send(&mut srv, T_SUBSCRIBE, subscribe(2, 0, [0; 32], 3000));
        h.recv(&mut srv);
        let total: usize = h.take().iter().map(|(_, v)| 16 + value::encode(v).len()).sum();
        assert!(total <= 3000 && total > 1000, "sent {} bytes against a 3000-byte window", total);
    }

    #[test]
    fn bad_input_is_answered_not_fatal() {
        let mut srv = server();
        let mut h = Host::new();
        h.send(&mut srv, T_HELLO, hello(65536, 1));
        // garbage, a bad payload, an unknown type, a wrong-typed field, an oversized frame
        let mut x = 7u64;
        let junk: Vec<u8> = (0..5000).map(|_| { x ^= x << 13; x ^= x >> 7; x ^= x << 17; if x % 50 == 0 { b'\n' } else { (x >> 16) as u8 } }).collect();
        srv.feed(&junk);
        let mut w = Vec::new();
        put_frame(&mut w, T_PROPOSE, &[1, 2, 3]);
        put_frame(&mut w, 0x77, &value::encode(&value::obj(&[("rid", Value::Int(42))])));
        put_frame(&mut w, T_PROPOSE, &value::encode(&value::obj(&[("rid", Value::Int(43)), ("action", Value::Int(1))])));
        put_frame(&mut w, T_PROPOSE, &vec![0u8; 70000]);
        srv.feed(&w);
        h.send(&mut srv, T_PING, value::obj(&[("rid", Value::Int(44))]));
        h.recv(&mut srv);
        let f = h.take();
        let codes: Vec<String> = f.iter().filter(|(t, _)| *t == T_ERROR).map(|(_, v)| format!("{}:{}", v.get("code").unwrap().as_str().unwrap(), v.get("rid").unwrap().as_int().unwrap())).collect();
        assert!(codes.contains(&"bad-message:0".into()), "{:?}", codes);
        assert!(codes.contains(&"unknown-type:42".into()), "{:?}", codes);
        assert!(codes.contains(&"bad-message:43".into()), "{:?}", codes);
        assert!(codes.contains(&"too-large:0".into()), "{:?}", codes);
        assert!(f.iter().any(|(t, v)| *t == T_PONG && v.get("rid") == Some(&Value::Int(44))));
        // Typed console input still works after the junk.
        srv.feed(b"\necho still here\n");
        h.recv(&mut srv);
        let text: Vec<u8> = h.take().iter().filter(|(t, _)| *t == T_CONSOLE).flat_map(|(_, v)| v.get("text").unwrap().as_bytes().unwrap().to_vec()).collect();
        assert!(String::from_utf8_lossy(&text).contains("$ echo still here\nstill here\n"));
    }

    #[test]
    fn typed_lines_can_be_edited() {
        let mut srv = server();
        srv.mirror = Some(Vec::new());
        srv.typed_on_mirror = true;
        // Backspace (DEL and BS, a two-byte character taken back whole), then Ctrl-U.
        srv.feed("echo ab\u{e9}\x7f\x7fc\x08d\n".as_bytes());
        srv.feed(b"junk\x15echo clean\r");
        // Enter as CR (a raw terminal), LF (a pipe) or CR LF ends the line once.
        srv.feed(b"echo x\r\necho y\n");
        assert_eq!(String::from_utf8_lossy(srv.mirror.as_ref().unwrap()),
            "echo ab\u{e9}\x08 \x08\x08 \x08c\x08 \x08d\r\n$ echo ad\nad\njunk^U\r\necho clean\r\n$ echo clean\nclean\necho x\r\n$ echo x\nx\necho y\r\n$ echo y\ny\n");
    }

    #[test]
    fn sh_answers_are_mirrored_only_when_asked() {
        let mut srv = server();
        srv.feed(b"echo plain\n");
        assert!(srv.mirror.is_none());
        // COM1 beside a virtio link: the answer also goes where it was typed.
        srv.mirror = Some(Vec::new());
        srv.feed(b"echo over the link\n");
        srv.typed_on_mirror = true;
        srv.feed(b"set a 1\nget nokey\n");
        // The line that came over the link is answered there too, but its characters are not echoed.
        assert_eq!(String::from_utf8_lossy(srv.mirror.as_ref().unwrap()), "$ echo over the link\nover the link\nset a 1\r\n$ set a 1\na=1\nget nokey\r\n$ get nokey\nno such key: nokey (error)\n");
    }
}
