//! Blocks and CIDs: computing a CID, verifying that bytes match one, and finding a block's links.

use bytes::Bytes;
use cid::Cid;
use multihash::Multihash;
use multihash_codetable::{Code, MultihashDigest};
use sha2::{Digest, Sha256};

use crate::{CidVersion, DAG_CBOR, DAG_PB, DagError, RAW, SHA2_256};

/// A block: bytes and the CID that names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// The block's CID.
    pub cid: Cid,
    /// The block's bytes.
    pub data: Bytes,
}

impl Block {
    /// Builds a block, hashing `data` with sha2-256 under the given codec.
    pub fn new(version: CidVersion, codec: u64, data: impl Into<Bytes>) -> Result<Self, DagError> {
        let data = data.into();
        let cid = cid_of(version, codec, &data)?;
        Ok(Block { cid, data })
    }

    /// Wraps bytes received with a claimed CID, verifying the claim.
    pub fn verified(cid: Cid, data: impl Into<Bytes>) -> Result<Self, DagError> {
        let data = data.into();
        verify(&cid, &data)?;
        Ok(Block { cid, data })
    }
}

fn sha256_multihash(data: &[u8]) -> Multihash<64> {
    let digest = Sha256::digest(data);
    Multihash::wrap(SHA2_256, &digest).expect("a 32-byte digest fits a 64-byte multihash")
}

/// The sha2-256 CID of `data` with the given codec. CIDv0 exists only for dag-pb; a raw block
/// under [`CidVersion::V0`] is an error.
pub fn cid_of(version: CidVersion, codec: u64, data: &[u8]) -> Result<Cid, DagError> {
    let mh = sha256_multihash(data);
    match version {
        CidVersion::V0 if codec == DAG_PB => {
            Cid::new_v0(mh).map_err(|e| DagError::Unsupported(e.to_string()))
        }
        CidVersion::V0 => Err(DagError::Unsupported(format!(
            "CIDv0 with codec {codec:#x}"
        ))),
        CidVersion::V1 => Ok(Cid::new_v1(codec, mh)),
    }
}

/// Re-hashes `data` with the hash function named by `cid` and compares. sha2-256 (SHA-NI where
/// the CPU has it), blake3, sha2-512, sha3 and identity are understood.
pub fn verify(cid: &Cid, data: &[u8]) -> Result<(), DagError> {
    let mh = cid.hash();
    let ok = match mh.code() {
        SHA2_256 => sha256_multihash(data).digest() == mh.digest(),
        0x00 => mh.digest() == data,
        code => {
            let code = Code::try_from(code)
                .map_err(|_| DagError::Unsupported(format!("multihash code {code:#x}")))?;
            code.digest(data).digest() == mh.digest()
        }
    };
    if ok {
        Ok(())
    } else {
        Err(DagError::HashMismatch(*cid))
    }
}

/// The CIDs a block links to, in order. dag-pb and dag-cbor are decoded; raw blocks and codecs
/// this node does not know have no visible links.
pub fn links_of(cid: &Cid, data: &Bytes) -> Result<Vec<Cid>, DagError> {
    let mut out = Vec::new();
    match cid.codec() {
        DAG_PB => {
            // `Bytes` in, so the node's data field is a zero-copy slice of the block.
            let node = ipld_dagpb::PbNode::from_bytes(data.clone())
                .map_err(|e| DagError::malformed(cid, e))?;
            out.extend(node.links.into_iter().map(|l| l.cid));
        }
        DAG_CBOR => {
            let ipld: ipld_core::ipld::Ipld =
                serde_ipld_dagcbor::from_slice(data).map_err(|e| DagError::malformed(cid, e))?;
            collect_ipld_links(&ipld, &mut out);
        }
        _ => {}
    }
    Ok(out)
}

/// The cumulative size of the DAG under a block (what a dag-pb link's Tsize holds): the block
/// plus the Tsizes of a dag-pb node's links; just the block for other codecs.
pub fn dag_size(cid: &Cid, data: &Bytes) -> Result<u64, DagError> {
    let own = data.len() as u64;
    if cid.codec() != DAG_PB {
        return Ok(own);
    }
    let node =
        ipld_dagpb::PbNode::from_bytes(data.clone()).map_err(|e| DagError::malformed(cid, e))?;
    Ok(own + node.links.iter().filter_map(|l| l.size).sum::<u64>())
}

fn collect_ipld_links(ipld: &ipld_core::ipld::Ipld, out: &mut Vec<Cid>) {
    use ipld_core::ipld::Ipld;
    match ipld {
        Ipld::Link(cid) => out.push(*cid),
        Ipld::List(items) => items.iter().for_each(|i| collect_ipld_links(i, out)),
        Ipld::Map(map) => map.values().for_each(|v| collect_ipld_links(v, out)),
        _ => {}
    }
}

/// Whether a block of this codec can have links (used to skip reading leaves in soft checks).
pub fn codec_may_link(codec: u64) -> bool {
    codec != RAW
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cid_of_hello_world_matches_kubo() {
        let cid = cid_of(CidVersion::V1, RAW, b"hello world\n").unwrap();
        assert_eq!(
            cid.to_string(),
            "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4"
        );
        assert!(cid_of(CidVersion::V0, RAW, b"x").is_err());
    }

    #[test]
    fn verify_detects_a_flipped_byte() {
        let block = Block::new(CidVersion::V1, RAW, &b"some bytes"[..]).unwrap();
        assert!(verify(&block.cid, &block.data).is_ok());
        let mut bad = block.data.to_vec();
        bad[0] ^= 1;
        assert!(matches!(
            verify(&block.cid, &bad),
            Err(DagError::HashMismatch(_))
        ));
    }

    #[test]
    fn verify_blake3() {
        let mh = Code::Blake3_256.digest(b"abc");
        let cid = Cid::new_v1(RAW, mh);
        assert!(verify(&cid, b"abc").is_ok());
        assert!(verify(&cid, b"abd").is_err());
    }

    #[test]
    fn links_of_dag_cbor_and_garbage() {
        let child = cid_of(CidVersion::V1, RAW, b"child").unwrap();
        let mut map = std::collections::BTreeMap::new();
        map.insert("a".to_string(), ipld_core::ipld::Ipld::Link(child));
        let bytes = serde_ipld_dagcbor::to_vec(&ipld_core::ipld::Ipld::Map(map)).unwrap();
        let cid = cid_of(CidVersion::V1, DAG_CBOR, &bytes).unwrap();
        assert_eq!(links_of(&cid, &Bytes::from(bytes)).unwrap(), vec![child]);
        let pb = cid_of(CidVersion::V1, DAG_PB, b"\xff\xff").unwrap();
        assert!(links_of(&pb, &Bytes::from_static(b"\xff\xff")).is_err());
    }
}
