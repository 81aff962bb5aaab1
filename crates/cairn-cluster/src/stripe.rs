//! Reed-Solomon stripes (pure). A stripe is up to K blocks as they are — the IPFS blocks
//! themselves, so any IPFS peer can still fetch them by CID — plus M parity shards computed
//! over the blocks zero-padded to one shard length. Parity shard `j` is a raw block holding the
//! byte `j` then the parity bytes, named by its sha2-256 CID, which is its checksum: the
//! leading index keeps parity shards distinct even when their bytes agree (a one-block stripe's
//! parity shards are all copies of it), so each shard's holders can be counted apart. Data
//! shards are checked by their own CIDs. The dag-cbor stripe manifest lists them all and is
//! itself content-addressed.
//!
//! Manifests come from peers, so none is trusted: [`Manifest::from_block`] and
//! [`Manifest::check`] hold one to the bounds of [`crate::limits`] — 1 to 64 data and parity
//! shards, `shard_len` exactly the longest block rounded up to 64 bytes and at most 2 MiB — and
//! [`rebuild`] checks the manifest again, then that enough verified shards of the stated
//! lengths are at hand, before it pads or allocates anything.

use bytes::Bytes;
use cairn_dag::{Block, Cid, CidVersion};
use serde::{Deserialize, Serialize};

use crate::ClusterError;
use crate::limits::{
    ALIGN, MAX_BLOCK, MAX_DATA_SHARDS, MAX_MANIFEST, MAX_PARITY_SHARDS, MAX_SHARD_LEN,
    MAX_STRIPE_WIDTH,
};

/// The shard length of a stripe whose longest data block is `longest` bytes.
pub fn shard_len_for(longest: usize) -> usize {
    longest.div_ceil(ALIGN).max(1) * ALIGN
}

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

    /// Reads and checks a manifest block: its size, its hash, then its shape ([`check`]).
    ///
    /// [`check`]: Manifest::check
    pub fn from_block(cid: &Cid, data: &[u8]) -> Result<Manifest, ClusterError> {
        if data.len() > MAX_MANIFEST {
            return Err(ClusterError::Malformed(format!(
                "stripe manifest {cid} of {} bytes (at most {MAX_MANIFEST})",
                data.len()
            )));
        }
        cairn_dag::verify(cid, data)?;
        let m: Manifest = serde_ipld_dagcbor::from_slice(data)
            .map_err(|e| ClusterError::Malformed(format!("stripe manifest {cid}: {e}")))?;
        m.check()
            .map_err(|why| ClusterError::Malformed(format!("stripe manifest {cid}: {why}")))?;
        Ok(m)
    }

    /// Whether this manifest is one [`encode`] could have made, within [`crate::limits`]:
    /// version 1; K = `data.len()` from 1 to 64 with one length each; M = `parity.len()` from 1
    /// to 64 (K + M ≤ 256); every length at most 2 MiB; `shard_len` the longest rounded up to 64
    /// bytes. Says what is wrong otherwise.
    pub fn check(&self) -> Result<(), String> {
        let (k, m) = (self.data.len(), self.parity.len());
        let longest = self.lens.iter().copied().max().unwrap_or(0) as usize;
        if self.v != 1 {
            Err(format!("version {}", self.v))
        } else if !(1..=MAX_DATA_SHARDS).contains(&k) {
            Err(format!("{k} data shards (1 to {MAX_DATA_SHARDS})"))
        } else if !(1..=MAX_PARITY_SHARDS).contains(&m) {
            Err(format!("{m} parity shards (1 to {MAX_PARITY_SHARDS})"))
        } else if k + m > MAX_STRIPE_WIDTH {
            Err(format!("{} shards (at most {MAX_STRIPE_WIDTH})", k + m))
        } else if self.lens.len() != k {
            Err(format!("{} lengths for {k} data shards", self.lens.len()))
        } else if longest > MAX_BLOCK {
            Err(format!(
                "a data block of {longest} bytes (at most {MAX_BLOCK})"
            ))
        } else if self.shard_len as usize > MAX_SHARD_LEN
            || self.shard_len as usize != shard_len_for(longest)
        {
            Err(format!(
                "shard_len {} for a longest block of {longest} bytes (must be {}, at most {MAX_SHARD_LEN})",
                self.shard_len,
                shard_len_for(longest)
            ))
        } else {
            Ok(())
        }
    }

    /// Whether `block` can be shard `i` of this stripe as this manifest describes it: a data
    /// block of its stated length, or a parity shard of `shard_len` bytes after its index byte.
    /// (Its CID is checked separately.)
    pub fn fits(&self, i: usize, block: &[u8]) -> bool {
        let k = self.k();
        if i < k {
            block.len() == self.lens[i] as usize
        } else if i < k + self.parity.len() {
            block.len() == self.shard_len as usize + 1 && block[0] as usize == i - k
        } else {
            false
        }
    }
}

fn padded(data: &[u8], len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(len);
    v.extend_from_slice(data);
    v.resize(len, 0);
    v
}

/// Encodes a stripe of `blocks` (1 to [`MAX_DATA_SHARDS`], each at most [`MAX_BLOCK`] bytes)
/// with `m` parity shards (1 to [`MAX_PARITY_SHARDS`]): the manifest, its block, and the parity
/// blocks.
pub fn encode(blocks: &[Block], m: usize) -> Result<(Manifest, Block, Vec<Block>), ClusterError> {
    if blocks.is_empty() || blocks.len() > MAX_DATA_SHARDS || m == 0 || m > MAX_PARITY_SHARDS {
        return Err(ClusterError::Malformed(format!(
            "a stripe of {} blocks with {m} parity shards",
            blocks.len()
        )));
    }
    let longest = blocks.iter().map(|b| b.data.len()).max().unwrap_or(0);
    if longest > MAX_BLOCK {
        return Err(ClusterError::Malformed(format!(
            "a block of {longest} bytes cannot be striped (at most {MAX_BLOCK})"
        )));
    }
    let shard_len = shard_len_for(longest);
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
///
/// Nothing is padded or allocated until the manifest has passed [`Manifest::check`] and at
/// least K shards are at hand that verify against their CIDs and have the lengths the
/// manifest states: a lying manifest costs at most the shards actually received.
pub fn rebuild(manifest: &Manifest, shards: &[Option<Bytes>]) -> Result<Vec<Block>, ClusterError> {
    manifest
        .check()
        .map_err(|why| ClusterError::Malformed(format!("stripe manifest: {why}")))?;
    let k = manifest.k();
    let len = manifest.shard_len as usize;
    let good = |i: usize| -> Option<&Bytes> {
        let data = shards.get(i)?.as_ref()?;
        let cid = manifest.shards().nth(i)?;
        cairn_dag::verify(cid, data).ok()?;
        Some(data)
    };
    let mut out: Vec<Option<Bytes>> = (0..k).map(|i| good(i).cloned()).collect();
    if let Some(i) = (0..k).find(|&i| out[i].as_ref().is_some_and(|d| !manifest.fits(i, d))) {
        return Err(ClusterError::Malformed(format!(
            "data shard {i} ({}) is not of the length its manifest states",
            manifest.data[i]
        )));
    }
    if out.iter().any(Option::is_none) {
        // Count first, pad after: K usable shards or nothing is allocated.
        let recovery: Vec<(usize, &[u8])> = (0..manifest.parity.len())
            .filter_map(|j| {
                let framed = good(k + j)?;
                if !manifest.fits(k + j, framed) {
                    return None;
                }
                Some((j, &framed[1..]))
            })
            .collect();
        let present = out.iter().filter(|d| d.is_some()).count();
        if present + recovery.len() < k {
            return Err(ClusterError::Unrecoverable(format!(
                "stripe of {k}+{}: only {} shards readable",
                manifest.parity.len(),
                present + recovery.len()
            )));
        }
        let originals: Vec<(usize, Vec<u8>)> = out
            .iter()
            .enumerate()
            .filter_map(|(i, d)| d.as_ref().map(|d| (i, padded(d, len))))
            .collect();
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

    #[test]
    fn a_lying_shard_len_is_refused_before_anything_is_allocated() {
        // H2: one data shard present of two, one parity shard listed, shard_len 2 GiB.
        let p = raw(vec![7; 10]);
        let missing = raw(vec![8; 10]).cid;
        let x = raw(vec![0, 1, 2]).cid;
        let manifest = Manifest {
            v: 1,
            shard_len: 1 << 31,
            data: vec![missing, p.cid],
            lens: vec![10, 10],
            parity: vec![x],
        };
        let block = manifest.to_block().unwrap();
        let refused = Manifest::from_block(&block.cid, &block.data).is_err();
        // Handed to rebuild anyway (a manifest from before the bound): refused before any
        // shard is padded.
        let shards = vec![None, Some(p.data.clone()), None];
        let (result, largest) = crate::test_alloc::largest_during(|| rebuild(&manifest, &shards));
        let err = result.unwrap_err();
        assert!(
            matches!(
                err,
                ClusterError::Unrecoverable(_) | ClusterError::Malformed(_)
            ),
            "{err}"
        );
        assert!(largest < 1 << 20, "allocated {largest} bytes");
        assert!(refused, "the decoder refuses it");
    }

    /// A manifest of `k` data blocks (the longest `longest` bytes) and `m` parity shards, with
    /// made-up CIDs (only its shape matters).
    fn shaped(k: usize, m: usize, longest: u32) -> Manifest {
        let cid = |i: usize| raw(i.to_be_bytes().to_vec()).cid;
        let mut lens = vec![1; k];
        lens[0] = longest;
        Manifest {
            v: 1,
            shard_len: shard_len_for(longest as usize) as u32,
            data: (0..k).map(cid).collect(),
            lens,
            parity: (k..k + m).map(cid).collect(),
        }
    }

    fn decodes(m: &Manifest) -> bool {
        let block = m.to_block().unwrap();
        Manifest::from_block(&block.cid, &block.data).is_ok()
    }

    #[test]
    fn manifests_at_the_limits_are_accepted_and_one_past_them_refused() {
        use crate::limits::*;
        let max = MAX_BLOCK as u32;
        assert!(decodes(&shaped(1, 1, 0)));
        assert!(decodes(&shaped(MAX_DATA_SHARDS, MAX_PARITY_SHARDS, max)));
        assert_eq!(shaped(1, 1, max).shard_len as usize, MAX_SHARD_LEN);
        assert!(!decodes(&shaped(MAX_DATA_SHARDS + 1, 1, 10)), "K = 65");
        assert!(!decodes(&shaped(1, MAX_PARITY_SHARDS + 1, 10)), "M = 65");
        assert!(!decodes(&shaped(1, 0, 10)), "M = 0");
        let mut none = shaped(1, 1, 10);
        none.data.clear();
        none.lens.clear();
        assert!(!decodes(&none), "K = 0");
        assert!(!decodes(&shaped(1, 1, max + 1)), "a block past 2 MiB");
        // shard_len must be exactly what the lengths need: not 64 bytes more, not less.
        let mut wide = shaped(2, 1, 1000);
        wide.shard_len += ALIGN as u32;
        assert!(!decodes(&wide));
        let mut narrow = shaped(2, 1, 1000);
        narrow.shard_len -= ALIGN as u32;
        assert!(!decodes(&narrow));
        let mut lens = shaped(3, 1, 10);
        lens.lens.pop();
        assert!(!decodes(&lens), "one length short");
        let mut v2 = shaped(1, 1, 10);
        v2.v = 2;
        assert!(!decodes(&v2));
        // An oversized block is refused before it is even hashed or decoded.
        let big = vec![0u8; MAX_MANIFEST + 1];
        let cid = cairn_dag::cid_of(CidVersion::V1, cairn_dag::DAG_CBOR, &big).unwrap();
        let err = Manifest::from_block(&cid, &big).unwrap_err();
        assert!(err.to_string().contains("at most"), "{err}");
        // And encode never makes what the decoder would refuse.
        assert!(encode(&[raw(vec![1; MAX_BLOCK + 1])], 1).is_err());
        let (at_limit, _, _) = encode(&[raw(vec![1; MAX_BLOCK])], 1).unwrap();
        assert_eq!(at_limit.shard_len as usize, MAX_SHARD_LEN);
    }

    #[test]
    fn rebuild_counts_shards_of_the_stated_lengths_before_padding() {
        let blocks: Vec<Block> = (0..4u8).map(|i| raw(vec![i; 3000])).collect();
        let (manifest, _, parity) = encode(&blocks, 2).unwrap();
        let mut shards = shards_of(&blocks, &parity);
        shards[0] = None;
        shards[1] = None;
        shards[4] = None; // 3 of 4 needed
        let (result, largest) = crate::test_alloc::largest_during(|| rebuild(&manifest, &shards));
        assert!(matches!(result, Err(ClusterError::Unrecoverable(_))));
        assert!(largest < 3000, "nothing padded: {largest}");
        // A data block whose length is not the stated one: the manifest lies about it.
        let mut lying = manifest.clone();
        lying.lens[2] = 10;
        let shards = shards_of(&blocks, &parity);
        assert!(rebuild(&lying, &shards).is_err());
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
