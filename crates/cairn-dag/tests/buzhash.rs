//! The buzhash chunker cuts where Kubo's does: `vectors/buzhash-cuts.json` holds the chunk
//! lengths boxo's own `chunker/buzhash.go` (boxo 8df89a7, run with Go 1.19.8) gave for each
//! input below. Inputs: kind 0 is xorshift32 from `seed` (`x ^= x << 13; x ^= x >> 17;
//! x ^= x << 5`, each step's low byte), kind 1 zeros, kind 2 a line of text repeated. How they
//! were made is in `docs/plan-sync.md`.

use cairn_dag::buzhash::chunk_lengths;

fn input(kind: u64, seed: u32, size: usize) -> Vec<u8> {
    let text = b"the quick brown fox jumps over the lazy dog\n";
    let mut x = seed;
    (0..size)
        .map(|i| match kind {
            0 => {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            }
            1 => 0,
            _ => text[i % text.len()],
        })
        .collect()
}

#[test]
fn cuts_are_where_kubos_buzhash_puts_them() {
    let vectors: serde_json::Value =
        serde_json::from_str(include_str!("vectors/buzhash-cuts.json")).unwrap();
    let cases = vectors.as_array().unwrap();
    assert_eq!(cases.len(), 10);
    for case in cases {
        let (kind, seed, size) = (
            case["kind"].as_u64().unwrap(),
            case["seed"].as_u64().unwrap() as u32,
            case["size"].as_u64().unwrap() as usize,
        );
        let want: Vec<usize> = case["chunks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(
            chunk_lengths(&input(kind, seed, size)),
            want,
            "kind {kind}, seed {seed}, {size} bytes"
        );
    }
}
