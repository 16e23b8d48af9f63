//! Test helpers: hex, and a small JSON reader for docs/vectors/axiom-v1.json (no crates here).
#![cfg(test)]
#![allow(dead_code)]
use std::collections::BTreeMap;

pub fn hex(b: &[u8]) -> String { b.iter().map(|x| format!("{:02x}", x)).collect() }
pub fn unhex(s: &str) -> Vec<u8> { (0..s.len() / 2).map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap()).collect() }

#[derive(Debug, Clone)]
pub enum Json { Null, Bool(bool), Num(f64), Str(String), Arr(Vec<Json>), Obj(BTreeMap<String, Json>) }

impl Json {
    pub fn get(&self, k: &str) -> Option<&Json> { if let Json::Obj(m) = self { m.get(k) } else { None } }
    pub fn str(&self) -> &str { if let Json::Str(s) = self { s } else { panic!("not a string: {:?}", self) } }
    pub fn num(&self) -> f64 { if let Json::Num(n) = self { *n } else { panic!("not a number: {:?}", self) } }
    pub fn arr(&self) -> &[Json] { if let Json::Arr(a) = self { a } else { panic!("not an array") } }
    pub fn obj(&self) -> &BTreeMap<String, Json> { if let Json::Obj(m) = self { m } else { panic!("not an object") } }
}

pub fn parse(s: &str) -> Json {
    let b = s.as_bytes();
    let mut i = 0;
    let v = val(b, &mut i);
    v
}
fn ws(b: &[u8], i: &mut usize) { while *i < b.len() && (b[*i] as char).is_ascii_whitespace() { *i += 1 } }
fn val(b: &[u8], i: &mut usize) -> Json {
    ws(b, i);
    match b[*i] {
        b'{' => {
            *i += 1;
            let mut m = BTreeMap::new();
            loop {
                ws(b, i);
                if b[*i] == b'}' { *i += 1; break }
                let k = if let Json::Str(k) = val(b, i) { k } else { panic!() };
                ws(b, i);
                assert_eq!(b[*i], b':');
                *i += 1;
                let v = val(b, i);
                m.insert(k, v);
                ws(b, i);
                if b[*i] == b',' { *i += 1 }
            }
            Json::Obj(m)
        }
        b'[' => {
            *i += 1;
            let mut a = Vec::new();
            loop {
                ws(b, i);
                if b[*i] == b']' { *i += 1; break }
                a.push(val(b, i));
                ws(b, i);
                if b[*i] == b',' { *i += 1 }
            }
            Json::Arr(a)
        }
        b'"' => {
            *i += 1;
            let mut out = String::new();
            loop {
                let c = b[*i];
                if c == b'"' { *i += 1; break }
                if c == b'\\' {
                    let e = b[*i + 1];
                    *i += 2;
                    match e {
                        b'n' => out.push('\n'), b't' => out.push('\t'), b'r' => out.push('\r'), b'b' => out.push('\u{8}'), b'f' => out.push('\u{c}'),
                        b'u' => {
                            let mut cp = u32::from_str_radix(std::str::from_utf8(&b[*i..*i + 4]).unwrap(), 16).unwrap();
                            *i += 4;
                            if (0xD800..0xDC00).contains(&cp) && b[*i] == b'\\' && b[*i + 1] == b'u' {
                                let lo = u32::from_str_radix(std::str::from_utf8(&b[*i + 2..*i + 6]).unwrap(), 16).unwrap();
                                *i += 6;
                                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                            }
                            out.push(char::from_u32(cp).unwrap_or('\u{fffd}'));
                        }
                        x => out.push(x as char),
                    }
                } else {
                    let start = *i;
                    while b[*i] != b'"' && b[*i] != b'\\' { *i += 1 }
                    out.push_str(std::str::from_utf8(&b[start..*i]).unwrap());
                }
            }
            Json::Str(out)
        }
        b't' => { *i += 4; Json::Bool(true) }
        b'f' => { *i += 5; Json::Bool(false) }
        b'n' => { *i += 4; Json::Null }
        _ => {
            let start = *i;
            while *i < b.len() && matches!(b[*i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') { *i += 1 }
            Json::Num(std::str::from_utf8(&b[start..*i]).unwrap().parse().unwrap())
        }
    }
}

pub fn vectors() -> Json {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/vectors/axiom-v1.json");
    parse(&std::fs::read_to_string(path).expect("docs/vectors/axiom-v1.json"))
}
