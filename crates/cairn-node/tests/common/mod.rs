//! Helpers shared by the node's integration tests.
#![allow(dead_code)]

use std::io::Read;
use std::path::PathBuf;

/// `../shared` beside the project root (CI clones the project next to it).
pub fn shared_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("CAIRN_SHARED") {
        return PathBuf::from(dir);
    }
    let mut dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    loop {
        let candidate = dir.join("shared").join("vectors");
        if candidate.is_dir() {
            return dir.join("shared");
        }
        if !dir.pop() {
            panic!("../shared/vectors not found; set CAIRN_SHARED");
        }
    }
}

pub fn vectors() -> serde_json::Value {
    let path = shared_dir().join("vectors/unixfs-vectors.json");
    serde_json::from_slice(&std::fs::read(path).expect("read vectors")).expect("parse vectors")
}

/// The xorshift64* byte stream of the vectors, truncated to `len` bytes.
pub struct XorShift {
    x: u64,
    left: u64,
    carry: Vec<u8>,
}

impl XorShift {
    pub fn new(len: u64) -> Self {
        XorShift {
            x: 0x9E3779B97F4A7C15,
            left: len,
            carry: Vec::new(),
        }
    }

    pub fn bytes(len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len);
        XorShift::new(len as u64).read_to_end(&mut out).unwrap();
        out
    }

    fn next_word(&mut self) -> [u8; 8] {
        let mut x = self.x;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.x = x;
        x.wrapping_mul(0x2545F4914F6CDD1D).to_le_bytes()
    }
}

impl Read for XorShift {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let want = (buf.len() as u64).min(self.left) as usize;
        let mut n = 0;
        while n < want {
            if self.carry.is_empty() {
                self.carry = self.next_word().to_vec();
            }
            let take = (want - n).min(self.carry.len());
            buf[n..n + take].copy_from_slice(&self.carry[..take]);
            self.carry.drain(..take);
            n += take;
        }
        self.left -= want as u64;
        Ok(want)
    }
}

pub fn input_for(vector: &serde_json::Value) -> Box<dyn Read> {
    let name = vector["name"].as_str().unwrap();
    let size = vector["size"].as_u64().unwrap();
    match name {
        "empty" => Box::new(std::io::empty()),
        "one-byte" => Box::new(&b"a"[..]),
        "hello-world-nl" => Box::new(&b"hello world\n"[..]),
        "hello-world" => Box::new(&b"hello world"[..]),
        n if n.starts_with("xs-") => Box::new(XorShift::new(size)),
        other => panic!("unknown vector {other}"),
    }
}
