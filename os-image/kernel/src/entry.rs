//! Entry encoding (docs/axiom.md section 2): a 64-byte little-endian header, then the payload.
use alloc::vec::Vec;

pub const HEADER: usize = 64;
pub const MAX_PAYLOAD: usize = 1_048_576;
pub const GENESIS: [u8; 32] = [0; 32];

pub const BOOT: u8 = 1;
pub const COMMIT: u8 = 2;
pub const REJECT: u8 = 3;
pub const RECEIPT: u8 = 4;
pub const CHECKPOINT: u8 = 5;

pub const D_SYSTEM: u16 = 0;
pub const D_OS: u16 = 1;
pub const D_SESSION: u16 = 2;
pub const D_LAB: u16 = 3;

pub fn domain_name(d: u16) -> Option<&'static str> {
    match d { 0 => Some("system"), 1 => Some("os"), 2 => Some("session"), 3 => Some("lab"), _ => None }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Entry { pub kind: u8, pub domain: u16, pub seq: u64, pub time: u64, pub actor: u64, pub prev: [u8; 32], pub payload: Vec<u8> }

impl Entry {
    pub fn encode(&self) -> Vec<u8> {
        let mut o = Vec::with_capacity(HEADER + self.payload.len());
        o.push(1);
        o.push(self.kind);
        o.extend_from_slice(&self.domain.to_le_bytes());
        o.extend_from_slice(&self.seq.to_le_bytes());
        o.extend_from_slice(&self.time.to_le_bytes());
        o.extend_from_slice(&self.actor.to_le_bytes());
        o.extend_from_slice(&self.prev);
        o.extend_from_slice(&(self.payload.len() as u32).to_le_bytes());
        o.extend_from_slice(&self.payload);
        o
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum EntryError { Short, Version, Kind, TooLarge, Length, Payload }

fn u64_at(b: &[u8], at: usize) -> u64 { let mut a = [0u8; 8]; a.copy_from_slice(&b[at..at + 8]); u64::from_le_bytes(a) }

/// Decodes an entry and checks that its payload is one canonical value.
pub fn decode(b: &[u8]) -> Result<Entry, EntryError> {
    if b.len() < HEADER { return Err(EntryError::Short) }
    if b[0] != 1 { return Err(EntryError::Version) }
    if !(1..=5).contains(&b[1]) { return Err(EntryError::Kind) }
    let len = u32::from_le_bytes([b[60], b[61], b[62], b[63]]) as usize;
    if len > MAX_PAYLOAD { return Err(EntryError::TooLarge) }
    if len != b.len() - HEADER { return Err(EntryError::Length) }
    crate::value::decode(&b[HEADER..]).map_err(|_| EntryError::Payload)?;
    let mut prev = [0u8; 32];
    prev.copy_from_slice(&b[28..60]);
    Ok(Entry { kind: b[1], domain: u16::from_le_bytes([b[2], b[3]]), seq: u64_at(b, 4), time: u64_at(b, 12), actor: u64_at(b, 20), prev, payload: b[HEADER..].to_vec() })
}

pub fn hash(encoded: &[u8]) -> [u8; 32] { crate::blake3::hash(encoded) }

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{hex, unhex, vectors};

    #[test]
    fn shared_vector_entry() {
        let v = vectors();
        let e = v.get("entry").unwrap();
        let f = e.get("fields").unwrap();
        let mut prev = [0u8; 32];
        prev.copy_from_slice(&unhex(f.get("prev").unwrap().str()));
        let entry = Entry { kind: f.get("kind").unwrap().num() as u8, domain: f.get("domain").unwrap().num() as u16, seq: f.get("seq").unwrap().num() as u64, time: f.get("time").unwrap().num() as u64, actor: f.get("actor").unwrap().num() as u64, prev, payload: unhex(f.get("payload_hex").unwrap().str()) };
        let enc = entry.encode();
        assert_eq!(hex(&enc), e.get("encoding").unwrap().str());
        assert_eq!(hex(&hash(&enc)), e.get("hash").unwrap().str());
        assert_eq!(decode(&enc).unwrap(), entry);
        for i in 0..enc.len() { assert!(decode(&enc[..i]).is_err()) }
        let mut bad = enc.clone(); bad[0] = 2; assert_eq!(decode(&bad), Err(EntryError::Version));
        let mut bad = enc.clone(); bad[1] = 9; assert_eq!(decode(&bad), Err(EntryError::Kind));
    }

    #[test]
    fn shared_vector_blake3() {
        for c in vectors().get("blake3").unwrap().arr() {
            assert_eq!(hex(&hash(&unhex(c.get("input_hex").unwrap().str()))), c.get("hash").unwrap().str());
        }
    }
}
