//! The canonical value encoding (docs/axiom.md section 1). The decoder never panics on bytes
//! and never allocates more than the input holds: every count is checked against bytes left.
use alloc::string::String;
use alloc::vec::Vec;

pub const MAX_DEPTH: usize = 32;
const T_NULL: u8 = 0;
const T_FALSE: u8 = 1;
const T_TRUE: u8 = 2;
const T_INT: u8 = 3;
const T_FLOAT: u8 = 4;
const T_BYTES: u8 = 5;
const T_STRING: u8 = 6;
const T_LIST: u8 = 7;
const T_MAP: u8 = 8;
/// Number.MAX_SAFE_INTEGER: the TypeScript side holds ints up to this as `number`.
pub const MAX_SAFE: i64 = 9007199254740991;

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Bytes(Vec<u8>),
    Str(String),
    List(Vec<Value>),
    /// Keys unique and ascending by their UTF-8 bytes (build with `map`, which sorts).
    Map(Vec<(String, Value)>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct DecodeError { pub message: &'static str, pub offset: usize }

/// A map value from pairs in any order (later duplicates are dropped).
pub fn map(mut pairs: Vec<(String, Value)>) -> Value {
    pairs.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    pairs.dedup_by(|a, b| a.0 == b.0);
    Value::Map(pairs)
}
/// Shorthand for literal keys.
pub fn obj(pairs: &[(&str, Value)]) -> Value { map(pairs.iter().map(|(k, v)| (String::from(*k), v.clone())).collect()) }
pub fn s(x: &str) -> Value { Value::Str(String::from(x)) }

impl Value {
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(m) => m.binary_search_by(|(k, _)| k.as_bytes().cmp(key.as_bytes())).ok().map(|i| &m[i].1),
            _ => None,
        }
    }
    pub fn as_int(&self) -> Option<i64> { if let Value::Int(i) = self { Some(*i) } else { None } }
    /// An int the TypeScript side reads as a `number` (|v| ≤ 2^53 − 1).
    pub fn as_safe_int(&self) -> Option<i64> { self.as_int().filter(|i| i.unsigned_abs() <= MAX_SAFE as u64) }
    pub fn as_str(&self) -> Option<&str> { if let Value::Str(s) = self { Some(s) } else { None } }
    pub fn as_bytes(&self) -> Option<&[u8]> { if let Value::Bytes(b) = self { Some(b) } else { None } }
    pub fn is_map(&self) -> bool { matches!(self, Value::Map(_)) }
    pub fn entries(&self) -> &[(String, Value)] { if let Value::Map(m) = self { m } else { &[] } }
}

fn put_u32(out: &mut Vec<u8>, n: usize) { out.extend_from_slice(&(n as u32).to_le_bytes()) }

/// Appends the canonical encoding of `v`. Floats that hold an integral value are written as
/// ints and every NaN as the one canonical NaN, so the output always decodes.
pub fn encode_into(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Null => out.push(T_NULL),
        Value::Bool(b) => out.push(if *b { T_TRUE } else { T_FALSE }),
        Value::Int(i) => { out.push(T_INT); out.extend_from_slice(&i.to_le_bytes()) }
        Value::Float(f) => {
            if is_integral_i64(*f) { out.push(T_INT); out.extend_from_slice(&(*f as i64).to_le_bytes()) }
            else { out.push(T_FLOAT); out.extend_from_slice(&(if f.is_nan() { 0x7ff8000000000000u64 } else { f.to_bits() }).to_le_bytes()) }
        }
        Value::Bytes(b) => { out.push(T_BYTES); put_u32(out, b.len()); out.extend_from_slice(b) }
        Value::Str(s) => { out.push(T_STRING); put_u32(out, s.len()); out.extend_from_slice(s.as_bytes()) }
        Value::List(l) => { out.push(T_LIST); put_u32(out, l.len()); for x in l { encode_into(x, out) } }
        Value::Map(m) => {
            out.push(T_MAP);
            put_u32(out, m.len());
            for (k, x) in m { put_u32(out, k.len()); out.extend_from_slice(k.as_bytes()); encode_into(x, out) }
        }
    }
}
pub fn encode(v: &Value) -> Vec<u8> { let mut o = Vec::new(); encode_into(v, &mut o); o }

fn is_integral_i64(f: f64) -> bool { f.is_finite() && f == libm_trunc(f) && f >= -9.223372036854775808e18 && f < 9.223372036854775808e18 }
/// trunc without std: values ≥ 2^52 in magnitude are already integral.
fn libm_trunc(f: f64) -> f64 { if f.abs() >= 4503599627370496.0 { f } else { (f as i64) as f64 } }

struct Reader<'a> { b: &'a [u8], pos: usize }

impl<'a> Reader<'a> {
    fn need(&self, n: usize) -> Result<(), DecodeError> {
        if n > self.b.len() - self.pos { Err(DecodeError { message: "a length or count runs past the end", offset: self.pos }) } else { Ok(()) }
    }
    fn u32(&mut self) -> Result<usize, DecodeError> {
        self.need(4)?;
        let v = u32::from_le_bytes([self.b[self.pos], self.b[self.pos + 1], self.b[self.pos + 2], self.b[self.pos + 3]]);
        self.pos += 4;
        Ok(v as usize)
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        self.need(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(&self.b[self.pos..self.pos + 8]);
        self.pos += 8;
        Ok(u64::from_le_bytes(a))
    }
    fn utf8(&mut self, n: usize) -> Result<String, DecodeError> {
        self.need(n)?;
        let at = self.pos;
        let s = core::str::from_utf8(&self.b[at..at + n]).map_err(|_| DecodeError { message: "invalid UTF-8", offset: at })?;
        self.pos += n;
        Ok(String::from(s))
    }
    fn value(&mut self, depth: usize) -> Result<Value, DecodeError> {
        if depth > MAX_DEPTH { return Err(DecodeError { message: "nested deeper than 32", offset: self.pos }) }
        self.need(1)?;
        let tag = self.b[self.pos];
        self.pos += 1;
        Ok(match tag {
            T_NULL => Value::Null,
            T_FALSE => Value::Bool(false),
            T_TRUE => Value::Bool(true),
            T_INT => Value::Int(self.u64()? as i64),
            T_FLOAT => {
                let at = self.pos;
                let bits = self.u64()?;
                let f = f64::from_bits(bits);
                if f.is_nan() {
                    if bits != 0x7ff8000000000000 { return Err(DecodeError { message: "non-canonical NaN", offset: at }) }
                } else if is_integral_i64(f) {
                    return Err(DecodeError { message: "integral float: must be an int", offset: at });
                }
                Value::Float(f)
            }
            T_BYTES => { let n = self.u32()?; self.need(n)?; let v = self.b[self.pos..self.pos + n].to_vec(); self.pos += n; Value::Bytes(v) }
            T_STRING => { let n = self.u32()?; Value::Str(self.utf8(n)?) }
            T_LIST => {
                let n = self.u32()?;
                self.need(n)?; // every element takes at least one byte
                let mut l = Vec::with_capacity(n);
                for _ in 0..n { l.push(self.value(depth + 1)?) }
                Value::List(l)
            }
            T_MAP => {
                let n = self.u32()?;
                self.need(n.saturating_mul(5))?;
                let mut m: Vec<(String, Value)> = Vec::with_capacity(n);
                for _ in 0..n {
                    let at = self.pos;
                    let kl = self.u32()?;
                    self.need(kl)?;
                    if let Some((p, _)) = m.last() {
                        if p.as_bytes() >= &self.b[self.pos..self.pos + kl] { return Err(DecodeError { message: "map keys are not unique and ascending", offset: at }) }
                    }
                    let k = self.utf8(kl)?;
                    let v = self.value(depth + 1)?;
                    m.push((k, v));
                }
                Value::Map(m)
            }
            _ => return Err(DecodeError { message: "unknown value tag", offset: self.pos - 1 }),
        })
    }
}

/// Decodes exactly one canonical value filling all of `b`.
pub fn decode(b: &[u8]) -> Result<Value, DecodeError> {
    let mut r = Reader { b, pos: 0 };
    let v = r.value(1)?;
    if r.pos != b.len() { return Err(DecodeError { message: "trailing bytes after the value", offset: r.pos }) }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{hex, unhex, vectors};

    #[test]
    fn shared_vectors_values() {
        let v = vectors();
        let mut n = 0;
        for case in v.get("values").unwrap().arr() {
            let b = unhex(case.get("hex").unwrap().str());
            let d = decode(&b).unwrap_or_else(|e| panic!("{}: {:?}", case.get("name").unwrap().str(), e));
            assert_eq!(hex(&encode(&d)), case.get("hex").unwrap().str());
            n += 1;
        }
        assert!(n > 5);
        for case in v.get("bad_values").unwrap().arr() {
            let b = unhex(case.get("hex").unwrap().str());
            assert!(decode(&b).is_err(), "accepted bad value {}", case.get("name").unwrap().str());
        }
    }

    #[test]
    fn canonical_floats() {
        assert_eq!(encode(&Value::Float(3.0)), encode(&Value::Int(3)));
        assert_eq!(encode(&Value::Float(-0.0)), encode(&Value::Int(0)));
        assert_eq!(hex(&encode(&Value::Float(f64::NAN))), "04000000000000f87f");
        assert!(decode(&unhex("040000000000000840")).is_err()); // 3.0 as float
        assert!(decode(&unhex("04010000000000f87f")).is_err()); // other NaN
        assert!(decode(&unhex("04000000000000f07f")).is_ok()); // +inf
        assert_eq!(decode(&unhex("049a9999999999f13f")).unwrap(), Value::Float(1.1));
    }

    #[test]
    fn hostile_lengths_do_not_allocate() {
        assert!(decode(&unhex("07ffffffff")).is_err());
        assert!(decode(&unhex("08ffffffff")).is_err());
        assert!(decode(&unhex("05ffffffff00")).is_err());
        let mut deep = vec![7u8, 1, 0, 0, 0].repeat(40);
        deep.push(0);
        assert!(decode(&deep).is_err());
        // Every prefix of a valid value is rejected, never a panic.
        let full = encode(&obj(&[("a", Value::List(vec![Value::Int(1), s("x")])), ("b", Value::Bytes(vec![1, 2]))]));
        for i in 0..full.len() { assert!(decode(&full[..i]).is_err()) }
        // Random bytes never panic.
        let mut x = 0x1234_5678u64;
        for _ in 0..20000 {
            let mut b = vec![0u8; (x % 24) as usize];
            for c in b.iter_mut() { x ^= x << 13; x ^= x >> 7; x ^= x << 17; *c = (x % 10) as u8 }
            let _ = decode(&b);
            x = x.wrapping_add(1);
        }
    }
}
