//! The framings of `cairn backup` and of upload jobs.
//!
//! * First byte even: an `/api/v0/add/many` body (`Files::add_many`'s framing: per file,
//!   `u32` BE chunk lengths of 1 to `MAX_CHUNK` bytes, then 0) read by the node's own reader
//!   (`snapshot::read_add_many`) as it arrives in pieces of a fuzzed size; each file goes to
//!   a sink that counts its bytes.
//! * First byte odd: what an upload job reads back: a job id as the path gives it
//!   (`jobs::valid_job_id`), a snapshot name (`snapshot::check_snapshot_name`), and a job
//!   record (dag-cbor, `JobRecord`) as `Jobs::get` and `Jobs::resume` decode it from the
//!   store, with the CID version a resumed import takes from it.
#![no_main]

use bytes::Bytes;
use cairn_dag::CidVersion;
use cairn_fuzz::Input;
use cairn_node::NodeError;
use cairn_node::jobs::{JobRecord, valid_job_id};
use cairn_node::model::codec::decode;
use cairn_node::snapshot::{FileSink, MAX_CHUNK, check_snapshot_name, read_add_many};
use libfuzzer_sys::fuzz_target;

/// A file of an add-many stream: its size.
struct Count(u64);

impl FileSink for Count {
    type Out = u64;
    fn write(&mut self, bytes: &[u8]) -> Result<(), NodeError> {
        assert!(!bytes.is_empty() && bytes.len() <= MAX_CHUNK as usize);
        self.0 += bytes.len() as u64;
        Ok(())
    }
    fn finish(self) -> Result<u64, NodeError> {
        Ok(self.0)
    }
}

fuzz_target!(
    init: cairn_fuzz::write_seeds_if_asked("framings"),
    |data: &[u8]| {
        let mut input = Input::new(data);
        let which = input.byte();
        if which & 1 == 0 {
            let piece = (input.byte() as usize).max(1);
            let body = input.rest();
            let pieces: Vec<Bytes> = body.chunks(piece).map(Bytes::copy_from_slice).collect();
            if let Ok(sizes) = read_add_many(pieces, || Count(0)) {
                // every byte of a whole stream is framing or file
                let framing = 4 * (sizes.len() as u64) + 4 * count_chunks(body);
                assert_eq!(sizes.iter().sum::<u64>() + framing, body.len() as u64);
            }
        } else {
            let id = String::from_utf8_lossy(input.short()).into_owned();
            let _ = valid_job_id(&id);
            let _ = check_snapshot_name(&id);
            if let Ok(record) = decode::<JobRecord>(input.rest()) {
                let _ = CidVersion::try_from(record.cid_version);
                let _ = valid_job_id(&record.job_id);
            }
        }
    }
);

/// The non-zero chunk headers of a stream that reads whole.
fn count_chunks(mut body: &[u8]) -> u64 {
    let mut n = 0;
    while body.len() >= 4 {
        let len = u32::from_be_bytes([body[0], body[1], body[2], body[3]]) as usize;
        body = &body[4..];
        if len > 0 {
            n += 1;
            body = &body[len.min(body.len())..];
        }
    }
    n
}
