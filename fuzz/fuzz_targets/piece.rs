//! Untrusted `/cairn/piece/1.0.0` messages and stripe manifests: the bytes as a request (what
//! `Cluster::handle` decodes with `decode_request`, within the bounds of
//! `cairn_cluster::limits`, with the manifest and piece checks of a `Put`), as a response
//! (what a node asking a peer decodes, with the manifest of a `Located`), and as a stripe
//! manifest block (`Manifest::from_block`, stored under its own CID).
#![no_main]

use cairn_cluster::limits;
use cairn_cluster::proto::{self, Request, Response};
use cairn_cluster::stripe::Manifest;
use cairn_dag::{CidVersion, DAG_CBOR, cid_of};
use libfuzzer_sys::fuzz_target;

fn manifest(cid: &cairn_dag::Cid, data: &[u8]) -> Option<Manifest> {
    let m = Manifest::from_block(cid, data).ok()?;
    // what the readers then rely on: the bounds of `cairn_cluster::limits`
    assert!(m.k() >= 1 && m.lens.len() == m.k() && !m.parity.is_empty());
    assert!(m.k() <= limits::MAX_DATA_SHARDS && m.parity.len() <= limits::MAX_PARITY_SHARDS);
    assert!(m.shard_len as usize <= limits::MAX_SHARD_LEN);
    assert!(m.check().is_ok());
    let _ = m.shards().count();
    let _ = m.position(cid);
    Some(m)
}

fuzz_target!(
    init: cairn_fuzz::write_seeds_if_asked("piece"),
    |data: &[u8]| {
        // what `Cluster::handle` reads: bounded requests only
        if let Ok(request) = proto::decode_request(data) {
            assert!(request.check().is_ok());
        }
        if let Ok(request) = proto::decode::<Request>(data) {
            if let Request::Put { pieces, stripe, .. } = &request {
                let m = stripe.as_ref().and_then(|w| manifest(&w.cid, &w.data));
                for p in pieces {
                    if cairn_dag::verify(&p.cid, &p.data).is_ok()
                        && let Some(m) = &m
                    {
                        if let Some(i) = m.position(&p.cid) {
                            let _ = m.fits(i, &p.data);
                        }
                    }
                }
            }
            assert_eq!(proto::decode::<Request>(&proto::encode(&request)).ok(), Some(request));
        }
        let _ = proto::decode_response(data);
        if let Ok(response) = proto::decode::<Response>(data) {
            if let Response::Located { stripe: Some(w), .. } = &response {
                let _ = manifest(&w.cid, &w.data);
            }
            assert_eq!(proto::decode::<Response>(&proto::encode(&response)).ok(), Some(response));
        }
        let cid = cid_of(CidVersion::V1, DAG_CBOR, data).unwrap();
        let _ = manifest(&cid, data);
    }
);
