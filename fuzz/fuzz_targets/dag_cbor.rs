//! One untrusted dag-cbor block through the decoders the node runs on such blocks: the generic
//! link extraction every walk (GC marks, checks, CAR exports) uses, and the typed records a
//! mirror reads from an owner's DAG (bucket version, object record, bucket record, object
//! metadata), and a signed bucket head.
#![no_main]

use bytes::Bytes;
use cairn_dag::{CidVersion, DAG_CBOR, block, cid_of};
use cairn_node::model::records::{BucketRecord, ObjectMeta};
use cairn_node::model::codec::decode;
use cairn_node::model::heads::{ObjectRecord, SignedHead, VersionRecord};
use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: cairn_fuzz::write_seeds_if_asked("dag_cbor"),
    |data: &[u8]| {
        let bytes = Bytes::copy_from_slice(data);
        let cid = cid_of(CidVersion::V1, DAG_CBOR, data).unwrap();
        let _ = block::links_of(&cid, &bytes);
        let _ = block::dag_size(&cid, &bytes);
        let _ = cairn_dag::dir::describe(&cid, data);
        let _ = decode::<VersionRecord>(data);
        let _ = decode::<ObjectRecord>(data);
        let _ = decode::<BucketRecord>(data);
        let _ = decode::<ObjectMeta>(data);
        let _ = SignedHead::verify(data, None);
    }
);
