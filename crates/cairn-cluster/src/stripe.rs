//! Reed-Solomon stripes (pure). A stripe is up to K blocks as they are — the IPFS blocks
//! themselves, so any IPFS peer can still fetch them by CID — plus M parity shards computed
//! over the blocks zero-padded to one shard length. Parity shard `j` is a raw block holding the
//! byte `j` then the parity bytes, named by its sha2-256 CID, which is its checksum: the
//! leading index keeps parity shards distinct even when their bytes agree (a one-block stripe's
//! parity shards are all copies of it), so each shard's holders can be counted apart. Data
//! shards are checked by their own CIDs. The dag-cbor stripe manifest lists them all and is
//! itself content-addressed.

use bytes::Bytes;
use cairn_dag::{Block, Cid, CidVersion};
use serde::{Deserialize, Serialize};

use crate::ClusterError;
use crate::policy::MAX_SHARDS;

/// Shard lengths are rounded up to a multiple of this (the coder works on 64-byte units).
const ALIGN: usize = 64;

/// The record of one stripe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Format version (1).
    pub v: u8,
    /// Length every shard is padded to for coding.
    pub shard_len: u32,
    /// The data blocks, in shard order (shard `i` is `data[i]`).
    pub data: Vec<Cid>,
    /// Each data block's length (to strip the padding after rebuilding).
    pub lens: Vec<u32>,
    /// The parity shards (shard `data.len() + j` is `parity[j]`).
    pub parity: Vec<Cid>,
}

impl Manifest {
    /// Data shards in this stripe (at most the policy's K; the last stripe of a write may be
    /// shorter).
    pub fn k(&self) -> usize {
        self.data.len()
    }

    /// Every shard's CID in shard order: data, then parity.
    pub fn shards(&self) -> impl Iterator<Item = &Cid> {
        self.data.iter().chain(&self.parity)
    }

    /// The shard index of `cid`, if it is part of this stripe.
    pub fn position(&self, cid: &Cid) -> Option<usize> {
        self.shards().position(|c| c.hash() == cid.hash())
    }

    /// The manifest as a content-addressed dag-cbor block.
    pub fn to_block(&self) -> Result<Block, ClusterError> {
        let data = serde_ipld_dagcbor::to_vec(self)
            .map_err(|e| ClusterError::Malformed(format!("stripe manifest: {e}")))?;
        let cid = cairn_dag::cid_of(CidVersion::V1, cairn_dag::DAG_CBOR, &data)?;
        Ok(Block {
            cid,
            data: data.into(),
        })
    }

    /// Reads and checks a manifest block (its hash, its shape).
    pub fn from_block(cid: &Cid, data: &[u8]) -> Result<Manifest, ClusterError> {
        cairn_dag::verify(cid, data)?;
        let m: Manifest = serde_ipld_dagcbor::from_slice(data)
            .map_err(|e| ClusterError::Malformed(format!("stripe manifest {cid}: {e}")))?;
        let sane = m.v == 1
            && !m.data.is_empty()
            && !m.parity.is_empty()
            && m.data.len() <= MAX_SHARDS as usize
            && m.parity.len() <= MAX_SHARDS as usize
            && m.lens.len() == m.data.len()
            && (m.shard_len as usize).is_multiple_of(ALIGN)
            && m.lens.iter().all(|&l| l <= m.shard_len);
        if !sane {
            return Err(ClusterError::Malformed(format!(
                "stripe manifest {cid} is inconsistent"
            )));
        }
        Ok(m)
    }
}

fn padded(data: &[u8], len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(len);
    v.extend_from_slice(data);
    v.resize(len, 0);
    v
}

/// Encodes a stripe of `blocks` (1 to [`MAX_SHARDS`]) with `m` parity shards: the manifest,
/// its block, and the parity blocks.
pub fn encode(blocks: &[Block], m: usize) -> Result<(Manifest, Block, Vec<Block>), ClusterError> {
    if blocks.is_empty() || blocks.len() > MAX_SHARDS as usize || m == 0 || m > MAX_SHARDS as usize
    {
        return Err(ClusterError::Malformed(format!(
            "a stripe of {} blocks with {m} parity shards",
            blocks.len()
        )));
    }
    let longest = blocks.iter().map(|b| b.data.len()).max().unwrap_or(0);
    let shard_len = longest.div_ceil(ALIGN).max(1) * ALIGN;
    let originals: Vec<Vec<u8>> = blocks.iter().map(|b| padded(&b.data, shard_len)).collect();
    let parity = reed_solomon_simd::encode(blocks.len(), m, &originals)
        .map_err(|e| ClusterError::Coding(e.to_string()))?;
    let parity: Vec<Block> = parity
        .into_iter()
        .enumerate()
        .map(|(j, p)| {
            let mut framed = Vec::with_capacity(p.len() + 1);
            framed.push(j as u8);
            framed.extend_from_slice(&p);
            let cid = cairn_dag::cid_of(CidVersion::V1, cairn_dag::RAW, &framed)?;
            Ok(Block {
                cid,
                data: framed.into(),
            })
        })
        .collect::<Result<_, ClusterError>>()?;
    let manifest = Manifest {
        v: 1,
        shard_len: shard_len as u32,
        data: blocks.iter().map(|b| b.cid).collect(),
        lens: blocks.iter().map(|b| b.data.len() as u32).collect(),
        parity: parity.iter().map(|b| b.cid).collect(),
    };
    let block = manifest.to_block()?;
    Ok((manifest, block, parity))
}

/// Rebuilds every data block of a stripe from the shards at hand (`shards[i]` is shard `i`, in
/// [`Manifest::shards`] order, `None` when missing). Shards that do not match their CID are
/// ignored; each rebuilt block is checked against its CID, so wrong bytes never come out.
pub fn rebuild(manifest: &Manifest, shards: &[Option<Bytes>]) -> Result<Vec<Block>, ClusterError> {
    let k = manifest.k();
    let len = manifest.shard_len as usize;
    let good = |i: usize| -> Option<&Bytes> {
        let data = shards.get(i)?.as_ref()?;
        let cid = manifest.shards().nth(i)?;
        cairn_dag::verify(cid, data).ok()?;
        Some(data)
    };
    let mut out: Vec<Option<Bytes>> = (0..k).map(|i| good(i).cloned()).collect();
    if out.iter().any(Option::is_none) {
        let originals: Vec<(usize, Vec<u8>)> = out
            .iter()
            .enumerate()
            .filter_map(|(i, d)| d.as_ref().map(|d| (i, padded(d, len))))
            .collect();
        let recovery: Vec<(usize, &[u8])> = (0..manifest.parity.len())
            .filter_map(|j| {
                let framed = good(k + j)?;
                match framed.split_first() {
                    Some((&index, parity)) if index as usize == j && parity.len() == len => {
                        Some((j, parity))
                    }
                    _ => None,
                }
            })
            .collect();
        if originals.len() + recovery.len() < k {
            return Err(ClusterError::Unrecoverable(format!(
                "stripe of {k}+{}: only {} shards readable",
                manifest.parity.len(),
                originals.len() + recovery.len()
            )));
        }
        let restored = reed_solomon_simd::decode(k, manifest.parity.len(), originals, recovery)
            .map_err(|e| ClusterError::Coding(e.to_string()))?;
        for (i, mut data) in restored {
            if i < k && out[i].is_none() {
                data.truncate(manifest.lens[i] as usize);
                out[i] = Some(data.into());
            }
        }
    }
    out.into_iter()
        .enumerate()
        .map(|(i, data)| {
            let cid = manifest.data[i];
            let data = data.ok_or_else(|| {
                ClusterError::Unrecoverable(format!("data shard {i} ({cid}) not rebuilt"))
            })?;
            cairn_dag::verify(&cid, &data).map_err(|_| {
                ClusterError::Unrecoverable(format!("rebuilt {cid} does not match its CID"))
            })?;
            Ok(Block { cid, data })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn raw(data: Vec<u8>) -> Block {
        let cid = cairn_dag::cid_of(CidVersion::V1, cairn_dag::RAW, &data).unwrap();
        Block {
            cid,
            data: data.into(),
        }
    }

    fn shards_of(blocks: &[Block], parity: &[Block]) -> Vec<Option<Bytes>> {
        blocks
            .iter()
            .chain(parity)
            .map(|b| Some(b.data.clone()))
            .collect()
    }

    #[test]
    fn any_k_shards_rebuild_the_stripe() {
        let blocks: Vec<Block> = (0..4u8)
            .map(|i| raw(vec![i; 1000 + 300 * i as usize]))
            .collect();
        let (manifest, mblock, parity) = encode(&blocks, 2).unwrap();
        assert_eq!(manifest.shard_len, 1920);
        assert_eq!(
            Manifest::from_block(&mblock.cid, &mblock.data).unwrap(),
            manifest
        );
        // Every way of losing two of the six shards.
        for a in 0..6 {
            for b in a + 1..6 {
                let mut shards = shards_of(&blocks, &parity);
                shards[a] = None;
                shards[b] = None;
                assert_eq!(rebuild(&manifest, &shards).unwrap(), blocks, "lost {a},{b}");
            }
        }
        let mut shards = shards_of(&blocks, &parity);
        shards[0] = None;
        shards[1] = None;
        shards[5] = None;
        let err = rebuild(&manifest, &shards).unwrap_err();
        assert!(matches!(err, ClusterError::Unrecoverable(_)), "{err}");
    }

    #[test]
    fn a_corrupt_shard_counts_as_missing_and_is_never_served() {
        let blocks: Vec<Block> = (0..4u8).map(|i| raw(vec![i + 1; 5000])).collect();
        let (manifest, _, parity) = encode(&blocks, 2).unwrap();
        let mut shards = shards_of(&blocks, &parity);
        let mut bad = shards[4].as_ref().unwrap().to_vec();
        bad[7] ^= 1;
        shards[4] = Some(bad.into());
        shards[0] = None;
        assert_eq!(rebuild(&manifest, &shards).unwrap(), blocks);
        let mut bad = shards[5].as_ref().unwrap().to_vec();
        bad[0] ^= 1;
        shards[5] = Some(bad.into());
        shards[1] = None; // 0, 1 missing; 4, 5 corrupt: not enough left
        assert!(rebuild(&manifest, &shards).is_err());
    }

    #[test]
    fn malformed_manifests_are_refused() {
        let blocks = vec![raw(vec![1; 10])];
        let (mut manifest, _, _) = encode(&blocks, 2).unwrap();
        manifest.lens.push(3);
        let block = manifest.to_block().unwrap();
        assert!(Manifest::from_block(&block.cid, &block.data).is_err());
        let (_, good, _) = encode(&blocks, 2).unwrap();
        assert!(
            Manifest::from_block(&block.cid, &good.data).is_err(),
            "hash mismatch"
        );
        assert!(encode(&[], 2).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn stripes_round_trip(
            lens in proptest::collection::vec(0usize..3000, 1..17),
            m in 1usize..5,
            lost in any::<u64>(),
        ) {
            let blocks: Vec<Block> = lens.iter().enumerate()
                .map(|(i, &l)| raw((0..l).map(|j| (i * 31 + j) as u8).collect()))
                .collect();
            let (manifest, _, parity) = encode(&blocks, m).unwrap();
            let mut shards = shards_of(&blocks, &parity);
            let width = shards.len();
            for j in 0..m {
                shards[(lost as usize + j * 7) % width] = None;
            }
            prop_assert_eq!(rebuild(&manifest, &shards).unwrap(), blocks);
        }
    }
}
