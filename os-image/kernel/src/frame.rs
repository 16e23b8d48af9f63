//! kernel-link framing (docs/kernel-link.md sections 1-3): CRC-32, stuffing, and the byte-level
//! stream decoder. The decoder holds at most one frame (16 + max_frame bytes) and never panics.
use alloc::vec::Vec;

pub const ESC: u8 = 0xFF;
pub const MARKER: u8 = 0x4C;
pub const OVERHEAD: usize = 16;
pub const HARD_MAX: usize = 2_097_152;

const fn crc_tables() -> [[u32; 256]; 8] {
    let mut t = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 { c = if c & 1 != 0 { 0xEDB88320 ^ (c >> 1) } else { c >> 1 }; k += 1 }
        t[0][i] = c;
        i += 1;
    }
    let mut s = 1;
    while s < 8 {
        let mut i = 0;
        while i < 256 { t[s][i] = (t[s - 1][i] >> 8) ^ t[0][(t[s - 1][i] & 0xff) as usize]; i += 1 }
        s += 1;
    }
    t
}
/// Slicing-by-8 tables: the link CRCs every byte it sends, and under TCG every cycle shows.
static CRC: [[u32; 256]; 8] = crc_tables();

pub fn crc32_update(mut c: u32, b: &[u8]) -> u32 {
    let mut chunks = b.chunks_exact(8);
    for w in &mut chunks {
        let lo = c ^ u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
        c = CRC[7][(lo & 0xff) as usize] ^ CRC[6][((lo >> 8) & 0xff) as usize] ^ CRC[5][((lo >> 16) & 0xff) as usize] ^ CRC[4][(lo >> 24) as usize]
            ^ CRC[3][w[4] as usize] ^ CRC[2][w[5] as usize] ^ CRC[1][w[6] as usize] ^ CRC[0][w[7] as usize];
    }
    for &x in chunks.remainder() { c = CRC[0][((c ^ x as u32) & 0xff) as usize] ^ (c >> 8) }
    c
}
/// CRC update that also says whether `b` holds an 0xFF byte: one pass over the bytes serves both
/// the frame's CRC and the stuffing decision (TCG makes every extra pass count).
pub fn crc32_update_ff(mut c: u32, b: &[u8]) -> (u32, bool) {
    let mut ff = 0u64;
    let mut chunks = b.chunks_exact(8);
    for w in &mut chunks {
        let x = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
        let n = !x;
        ff |= n.wrapping_sub(0x0101010101010101) & !n & 0x8080808080808080;
        let lo = c ^ (x as u32);
        let hi = (x >> 32) as u32;
        c = CRC[7][(lo & 0xff) as usize] ^ CRC[6][((lo >> 8) & 0xff) as usize] ^ CRC[5][((lo >> 16) & 0xff) as usize] ^ CRC[4][(lo >> 24) as usize]
            ^ CRC[3][(hi & 0xff) as usize] ^ CRC[2][((hi >> 8) & 0xff) as usize] ^ CRC[1][((hi >> 16) & 0xff) as usize] ^ CRC[0][(hi >> 24) as usize];
    }
    let mut tail_ff = false;
    for &x in chunks.remainder() { c = CRC[0][((c ^ x as u32) & 0xff) as usize] ^ (c >> 8); tail_ff |= x == ESC }
    (c, ff != 0 || tail_ff)
}

/// CRC-32 (IEEE/zlib): crc32(b"123456789") = 0xCBF43926.
pub fn crc32(b: &[u8]) -> u32 { !crc32_update(!0, b) }

/// Index of the first 0xFF in `b`, eight bytes at a time.
#[inline]
fn find_ff(b: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i + 8 <= b.len() {
        let w = !u64::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3], b[i + 4], b[i + 5], b[i + 6], b[i + 7]]);
        // a zero byte in w (= !bytes) is an 0xFF byte in the input
        if (w.wrapping_sub(0x0101010101010101) & !w & 0x8080808080808080) != 0 { break }
        i += 8;
    }
    b[i..].iter().position(|&x| x == ESC).map(|j| i + j)
}

/// Appends `b` stuffed (each 0xFF as FF 00).
pub fn put_stuffed(out: &mut Vec<u8>, b: &[u8]) {
    let mut i = 0;
    while i < b.len() {
        match find_ff(&b[i..]) {
            None => { out.extend_from_slice(&b[i..]); return }
            Some(j) => { out.extend_from_slice(&b[i..i + j]); out.extend_from_slice(&[ESC, 0]); i += j + 1 }
        }
    }
}

/// a·b mod P in CRC-32's reflected bit order (zlib's multmodp).
pub fn multmodp(a: u32, mut b: u32) -> u32 {
    let mut m = 1u32 << 31;
    let mut p = 0u32;
    loop {
        if a & m != 0 {
            p ^= b;
            if a & (m - 1) == 0 { break }
        }
        m >>= 1;
        if m == 0 { break }
        b = if b & 1 != 0 { (b >> 1) ^ 0xEDB88320 } else { b >> 1 };
    }
    p
}
/// x^(8·n) mod P: the operator that moves a CRC past n bytes (zlib's crc32_combine_gen).
pub fn crc32_shift_op(n: usize) -> u32 {
    let mut p = 1u32 << 31; // x^0
    let mut x2n = 1u32 << 30; // x^1, squared as k grows: x^(2^k)
    let mut n = n as u64 * 8;
    while n != 0 {
        if n & 1 != 0 { p = multmodp(x2n, p) }
        x2n = multmodp(x2n, x2n);
        n >>= 1;
    }
    p
}
/// crc32(A ‖ B) from crc32(A), crc32(B) and crc32_shift_op(|B|).
#[inline]
pub fn crc32_combine(crc_a: u32, crc_b: u32, op_b: u32) -> u32 { multmodp(op_b, crc_a) ^ crc_b }

/// A payload piece prepared once (stuffed, with its CRC and shift operator), so framing it again
/// and again (every SUBSCRIBE resends the log) is a copy, not a CRC and a scan per byte.
pub struct Prepared { pub wire: Vec<u8>, pub len: usize, pub crc: u32, pub op: u32 }
impl Prepared {
    pub fn new(pieces: &[&[u8]]) -> Self {
        let len = pieces.iter().map(|p| p.len()).sum();
        let mut wire = Vec::with_capacity(len + 8);
        let mut c = !0u32;
        for p in pieces { c = crc32_update(c, p); put_stuffed(&mut wire, p) }
        Prepared { wire, len, crc: !c, op: crc32_shift_op(len) }
    }
}

/// Writes one frame piece by piece: the header first (the payload length must be known), then
/// payload pieces (CRC and stuffing in one go, no intermediate payload buffer), then `finish`.
pub struct FrameWriter { crc: u32, left: usize }
impl FrameWriter {
    pub fn start(out: &mut Vec<u8>, ty: u8, len: usize) -> Self {
        let mut hdr = [ESC, MARKER, ty, 0, 0, 0, 0, 0];
        hdr[4..8].copy_from_slice(&(len as u32).to_le_bytes());
        out.reserve(len + len / 64 + 32);
        out.extend_from_slice(&[ESC, MARKER]);
        put_stuffed(out, &hdr[2..]);
        put_stuffed(out, &crc32(&hdr).to_le_bytes());
        FrameWriter { crc: !0, left: len }
    }
    pub fn put(&mut self, out: &mut Vec<u8>, piece: &[u8]) {
        let (crc, has_ff) = crc32_update_ff(self.crc, piece);
        self.crc = crc;
        self.left = self.left.wrapping_sub(piece.len());
        if has_ff { put_stuffed(out, piece) } else { out.extend_from_slice(piece) }
    }
    /// A prepared piece: its stuffed bytes copied, its CRC combined in.
    pub fn put_prepared(&mut self, out: &mut Vec<u8>, p: &Prepared) {
        self.crc = !crc32_combine(!self.crc, p.crc, p.op);
        self.left = self.left.wrapping_sub(p.len);
        out.extend_from_slice(&p.wire);
    }
    pub fn finish(self, out: &mut Vec<u8>) {
        debug_assert_eq!(self.left, 0);
        put_stuffed(out, &(!self.crc).to_le_bytes());
    }
}

/// Appends one complete frame.
pub fn put_frame(out: &mut Vec<u8>, ty: u8, payload: &[u8]) {
    let mut hdr = [ESC, MARKER, ty, 0, 0, 0, 0, 0];
    hdr[4..8].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&[ESC, MARKER]);
    put_stuffed(out, &hdr[2..]);
    put_stuffed(out, &crc32(&hdr).to_le_bytes());
    put_stuffed(out, payload);
    put_stuffed(out, &crc32(payload).to_le_bytes());
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Drop { Cut, BadEscape, BadHeader, BadCrc, Oversized { ty: u8, len: u32 } }

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Event {
    Text(u8),
    /// A whole frame: its payload is `Decoder::payload()` until the next `push`.
    Frame(u8),
    Drop(Drop),
}

#[derive(Clone, Copy, PartialEq)]
enum Mode { Text, Header, Body, Skip }

pub struct Decoder {
    pub max_frame: usize,
    mode: Mode,
    esc: bool,
    hdr: [u8; 12],
    hdr_len: usize,
    body: Vec<u8>,
    body_want: usize,
    skip_left: usize,
    queue: [Event; 16],
    q_head: usize,
    q_len: usize,
    frame_ready: bool,
}

impl Decoder {
    pub fn new(max_frame: usize) -> Self {
        Decoder { max_frame: max_frame.min(HARD_MAX), mode: Mode::Text, esc: false, hdr: [ESC, MARKER, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], hdr_len: 0, body: Vec::new(), body_want: 0, skip_left: 0, queue: [Event::Text(0); 16], q_head: 0, q_len: 0, frame_ready: false }
    }
    pub fn in_frame(&self) -> bool { self.mode != Mode::Text }

    fn emit(&mut self, e: Event) {
        // Never more than 12 events per input byte (a damaged header re-reads 10 as text).
        let i = (self.q_head + self.q_len) % 16;
        self.queue[i] = e;
        self.q_len += 1;
    }
    /// The next event produced by the bytes pushed so far.
    pub fn next(&mut self) -> Option<Event> {
        if self.q_len == 0 { return None }
        let e = self.queue[self.q_head];
        self.q_head = (self.q_head + 1) % 16;
        self.q_len -= 1;
        Some(e)
    }
    /// Payload of the last `Event::Frame`.
    pub fn payload(&self) -> &[u8] { if self.frame_ready { &self.body[..self.body_want - 4] } else { &[] } }

    /// Feeds one byte; drain events with `next()` before the next push.
    pub fn push(&mut self, b: u8) {
        if self.frame_ready { self.frame_ready = false; self.body = Vec::new(); }
        if self.esc {
            self.esc = false;
            self.escape(b);
            return;
        }
        if b == ESC { self.esc = true; return }
        match self.mode {
            Mode::Text => self.emit(Event::Text(b)),
            _ => self.data(b),
        }
    }

    fn escape(&mut self, b: u8) {
        if self.mode == Mode::Text {
            match b {
                0 => self.emit(Event::Text(ESC)),
                MARKER => self.start(),
                _ => { self.emit(Event::Text(ESC)); self.push(b) } // lenient: raw FF is text
            }
            return;
        }
        match b {
            0 => self.data(ESC),
            MARKER => { self.abandon(Drop::Cut); self.start() }
            _ => { self.abandon(Drop::BadEscape); self.push(b) }
        }
    }

    fn start(&mut self) { self.mode = Mode::Header; self.hdr_len = 2; }
    fn abandon(&mut self, d: Drop) { self.mode = Mode::Text; self.hdr_len = 0; self.body = Vec::new(); self.emit(Event::Drop(d)); }

    fn data(&mut self, b: u8) {
        match self.mode {
            Mode::Header => {
                self.hdr[self.hdr_len] = b;
                self.hdr_len += 1;
                if self.hdr_len < 12 { return }
                let len = u32::from_le_bytes([self.hdr[4], self.hdr[5], self.hdr[6], self.hdr[7]]);
                let hcrc = u32::from_le_bytes([self.hdr[8], self.hdr[9], self.hdr[10], self.hdr[11]]);
                self.hdr_len = 0;
                if crc32(&self.hdr[..8]) != hcrc || len as usize > HARD_MAX {
                    self.mode = Mode::Text;
                    self.emit(Event::Drop(Drop::BadHeader));
                    let again = self.hdr;
                    for &x in &again[2..12] { self.emit(Event::Text(x)) }
                } else if len as usize > self.max_frame {
                    self.mode = Mode::Skip;
                    self.skip_left = len as usize + 4;
                    self.emit(Event::Drop(Drop::Oversized { ty: self.hdr[2], len }));
                } else {
                    self.mode = Mode::Body;
                    self.body_want = len as usize + 4;
                    self.body = Vec::with_capacity(self.body_want);
                }
            }
            Mode::Body => {
                self.body.push(b);
                if self.body.len() < self.body_want { return }
                let n = self.body_want - 4;
                let want = u32::from_le_bytes([self.body[n], self.body[n + 1], self.body[n + 2], self.body[n + 3]]);
                self.mode = Mode::Text;
                if crc32(&self.body[..n]) == want { self.frame_ready = true; self.emit(Event::Frame(self.hdr[2])) }
                else { self.body = Vec::new(); self.emit(Event::Drop(Drop::BadCrc)) }
            }
            Mode::Skip => {
                self.skip_left -= 1;
                if self.skip_left == 0 { self.mode = Mode::Text }
            }
            Mode::Text => self.emit(Event::Text(b)),
        }
    }

    /// End of stream (tests, tools): a pending FF is text; a frame in progress is cut.
    pub fn end(&mut self) {
        let pending_text = self.esc && self.mode == Mode::Text;
        self.esc = false;
        if self.mode != Mode::Text { self.abandon(Drop::Cut) }
        if pending_text { self.emit(Event::Text(ESC)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{hex, unhex, Json};

    fn link_vectors() -> Json {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/vectors/kernel-link-v1.json");
        crate::testutil::parse(&std::fs::read_to_string(path).expect("docs/vectors/kernel-link-v1.json"))
    }

    fn decode_all(wire: &[u8], max_frame: usize) -> Vec<String> {
        let mut d = Decoder::new(max_frame);
        let mut ev: Vec<String> = Vec::new();
        let mut text: Vec<u8> = Vec::new();
        let flush = |text: &mut Vec<u8>, ev: &mut Vec<String>| if !text.is_empty() { ev.push(format!("text {}", hex(text))); text.clear() };
        let handle = |d: &mut Decoder, ev: &mut Vec<String>, text: &mut Vec<u8>| {
            while let Some(e) = d.next() {
                match e {
                    Event::Text(b) => text.push(b),
                    Event::Frame(t) => { flush(text, ev); ev.push(format!("frame {} {}", t, hex(d.payload()))) }
                    Event::Drop(x) => { flush(text, ev); ev.push(format!("drop {}", match x { Drop::Cut => "cut", Drop::BadEscape => "bad-escape", Drop::BadHeader => "bad-header", Drop::BadCrc => "bad-crc", Drop::Oversized { .. } => "oversized" })) }
                }
            }
        };
        for &b in wire { d.push(b); handle(&mut d, &mut ev, &mut text) }
        d.end();
        handle(&mut d, &mut ev, &mut text);
        flush(&mut text, &mut ev);
        ev
    }

    #[test]
    fn stuffing_and_sliced_crc_agree_with_the_simple_forms() {
        let mut x = 99u64;
        for len in 0..200 {
            let b: Vec<u8> = (0..len).map(|_| { x ^= x << 13; x ^= x >> 7; x ^= x << 17; if x % 5 == 0 { 0xFF } else { x as u8 } }).collect();
            let mut simple = Vec::new();
            for &c in &b { simple.push(c); if c == 0xFF { simple.push(0) } }
            let mut fast = Vec::new();
            put_stuffed(&mut fast, &b);
            assert_eq!(fast, simple);
            let mut c = !0u32;
            for &y in &b { c = CRC[0][((c ^ y as u32) & 0xff) as usize] ^ (c >> 8) }
            assert_eq!(crc32(&b), !c);
            // in pieces
            let mut w = Vec::new();
            let mut fw = FrameWriter::start(&mut w, 7, b.len());
            for piece in b.chunks(1 + len % 13) { fw.put(&mut w, piece) }
            fw.finish(&mut w);
            let mut whole = Vec::new();
            put_frame(&mut whole, 7, &b);
            assert_eq!(w, whole);
        }
    }

    #[test]
    fn crc_combine_and_prepared_pieces() {
        let a: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
        let b: Vec<u8> = (0..4321u32).map(|i| (i * 13 + 5) as u8 | if i % 97 == 0 { 0xFF } else { 0 }).collect();
        let mut ab = a.clone(); ab.extend_from_slice(&b);
        assert_eq!(crc32_combine(crc32(&a), crc32(&b), crc32_shift_op(b.len())), crc32(&ab));
        assert_eq!(crc32_combine(crc32(&a), crc32(&[]), crc32_shift_op(0)), crc32(&a));
        let pb = Prepared::new(&[&b[..10], &b[10..]]);
        let mut w = Vec::new();
        let mut fw = FrameWriter::start(&mut w, 9, ab.len());
        fw.put(&mut w, &a);
        fw.put_prepared(&mut w, &pb);
        fw.finish(&mut w);
        let mut whole = Vec::new();
        put_frame(&mut whole, 9, &ab);
        assert_eq!(w, whole);
    }

    #[test]
    fn crc_vectors() {
        assert_eq!(crc32(b"123456789"), 0xCBF43926);
        for c in link_vectors().get("crc32").unwrap().arr() {
            assert_eq!(crc32(&unhex(c.get("hex").unwrap().str())) as f64, c.get("crc").unwrap().num());
        }
    }

    #[test]
    fn frame_vectors_encode() {
        for f in link_vectors().get("frames").unwrap().arr() {
            let mut out = Vec::new();
            put_frame(&mut out, f.get("type").unwrap().num() as u8, &unhex(f.get("payload_hex").unwrap().str()));
            assert_eq!(hex(&out), f.get("wire_hex").unwrap().str(), "{}", f.get("name").unwrap().str());
            // and the decoder gives the frame back
            let ev = decode_all(&out, HARD_MAX);
            assert_eq!(ev, vec![format!("frame {} {}", f.get("type").unwrap().num() as u8, f.get("payload_hex").unwrap().str())]);
        }
    }

    #[test]
    fn stream_vectors_decode() {
        for s in link_vectors().get("streams").unwrap().arr() {
            let want: Vec<String> = s.get("events").unwrap().arr().iter().map(|e| {
                if let Some(t) = e.get("text_hex") { format!("text {}", t.str()) }
                else if let Some(f) = e.get("frame") { format!("frame {} {}", f.get("type").unwrap().num() as u8, f.get("payload_hex").unwrap().str()) }
                else { format!("drop {}", e.get("drop").unwrap().str()) }
            }).collect();
            let got = decode_all(&unhex(s.get("wire_hex").unwrap().str()), s.get("max_frame").unwrap().num() as usize);
            assert_eq!(got, want, "stream {}", s.get("name").unwrap().str());
        }
    }

    #[test]
    fn garbage_never_panics_and_resyncs() {
        let mut x = 0x9E3779B97F4A7C15u64;
        let mut d = Decoder::new(4096);
        for _ in 0..200_000 {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            let b = match x % 8 { 0 => ESC, 1 => MARKER, 2 => 0, _ => (x >> 8) as u8 };
            d.push(b);
            while d.next().is_some() {}
        }
        // After any garbage, a marker restarts: a good frame is still found.
        let mut out = Vec::new();
        put_frame(&mut out, 3, &[8, 0, 0, 0, 0]);
        let mut found = false;
        for &b in &out { d.push(b); while let Some(e) = d.next() { if e == Event::Frame(3) { found = true } } }
        assert!(found);
    }
}
