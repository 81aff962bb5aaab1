//! CID prefixes (Bitswap 1.1.0+ `payload` blocks) and block verification.
//!
//! A payload block travels as `prefix` + `data`, where the prefix is the CID without its digest:
//! four unsigned varints — CID version, content codec, multihash code, digest length. The
//! receiver rebuilds the CID by hashing the data, so a received block is verified by
//! construction: its CID *is* the hash of its bytes. Whether that CID is one anybody asked for
//! is the client's question (see `client`).
//!
//! Only sha2-256 with a 32-byte digest is hashed here (that is what Kubo, Helia and Cairn use
//! for blocks); anything else is rejected with [`BitswapError::Unsupported`].

use cairn_dag::{CidVersion, DAG_PB, SHA2_256};
use cid::{Cid, Version};

use crate::BitswapError;

/// Length of a sha2-256 digest.
pub const SHA2_256_LEN: u64 = 32;

/// A CID prefix: everything of a CID but the digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Prefix {
    /// CID version.
    pub version: Version,
    /// Multicodec of the content (0x70 dag-pb, 0x55 raw, 0x71 dag-cbor, ...).
    pub codec: u64,
    /// Multihash code (0x12 sha2-256).
    pub mh_code: u64,
    /// Digest length in bytes.
    pub mh_len: u64,
}

impl Prefix {
    /// The prefix of `cid`.
    pub fn of(cid: &Cid) -> Self {
        Prefix {
            version: cid.version(),
            codec: cid.codec(),
            mh_code: cid.hash().code(),
            mh_len: u64::from(cid.hash().size()),
        }
    }

    fn fields(&self) -> [u64; 4] {
        let version = match self.version {
            Version::V0 => 0,
            Version::V1 => 1,
        };
        [version, self.codec, self.mh_code, self.mh_len]
    }

    /// The encoded length of [`Prefix::to_bytes`].
    pub fn encoded_len(&self) -> usize {
        self.fields()
            .iter()
            .map(|v| quick_protobuf::sizeofs::sizeof_varint(*v))
            .sum()
    }

    /// The wire form: four unsigned varints.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        let mut buf = unsigned_varint::encode::u64_buffer();
        for v in self.fields() {
            out.extend_from_slice(unsigned_varint::encode::u64(v, &mut buf));
        }
        out
    }

    /// Parses the wire form. Exactly four minimal varints, CID version 0 or 1; trailing bytes
    /// are an error.
    pub fn parse(bytes: &[u8]) -> Result<Self, BitswapError> {
        let mut rest = bytes;
        let mut fields = [0u64; 4];
        for field in &mut fields {
            let (v, r) = unsigned_varint::decode::u64(rest)
                .map_err(|e| BitswapError::Prefix(e.to_string()))?;
            *field = v;
            rest = r;
        }
        if !rest.is_empty() {
            return Err(BitswapError::Prefix(format!(
                "{} trailing bytes",
                rest.len()
            )));
        }
        let version = match fields[0] {
            0 => Version::V0,
            1 => Version::V1,
            v => return Err(BitswapError::Prefix(format!("CID version {v}"))),
        };
        Ok(Prefix {
            version,
            codec: fields[1],
            mh_code: fields[2],
            mh_len: fields[3],
        })
    }

    /// Hashes `data` as this prefix says and returns the CID of the block. Only sha2-256 with a
    /// 32-byte digest is supported; CIDv0 must be dag-pb.
    pub fn cid_for(&self, data: &[u8]) -> Result<Cid, BitswapError> {
        if self.mh_code != SHA2_256 || self.mh_len != SHA2_256_LEN {
            return Err(BitswapError::Unsupported(format!(
                "multihash {:#x} of {} bytes",
                self.mh_code, self.mh_len
            )));
        }
        let version = match self.version {
            Version::V0 if self.codec == DAG_PB => CidVersion::V0,
            Version::V0 => {
                return Err(BitswapError::Unsupported(format!(
                    "CIDv0 with codec {:#x}",
                    self.codec
                )));
            }
            Version::V1 => CidVersion::V1,
        };
        cairn_dag::block::cid_of(version, self.codec, data)
            .map_err(|e| BitswapError::Unsupported(e.to_string()))
    }
}

/// Whether this node can verify blocks named by `cid` (sha2-256, 32-byte digest).
pub fn check_supported(cid: &Cid) -> Result<(), BitswapError> {
    let mh = cid.hash();
    if mh.code() == SHA2_256 && u64::from(mh.size()) == SHA2_256_LEN {
        Ok(())
    } else {
        Err(BitswapError::Unsupported(format!(
            "{cid}: multihash {:#x} of {} bytes",
            mh.code(),
            mh.size()
        )))
    }
}

/// Re-hashes `data` and checks it is the block named by `cid`.
pub fn verify(cid: &Cid, data: &[u8]) -> Result<(), BitswapError> {
    check_supported(cid)?;
    cairn_dag::verify(cid, data).map_err(|_| BitswapError::HashMismatch(*cid))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_dag::{RAW, block::cid_of};

    #[test]
    fn prefix_round_trip_v0_and_v1() {
        let v0 = cid_of(CidVersion::V0, DAG_PB, b"hello").unwrap();
        let p0 = Prefix::of(&v0);
        // Kubo / boxo / Helia encode a CIDv0 prefix as version 0, dag-pb, sha2-256, 32.
        assert_eq!(p0.to_bytes(), vec![0x00, 0x70, 0x12, 0x20]);
        assert_eq!(Prefix::parse(&p0.to_bytes()).unwrap(), p0);
        assert_eq!(p0.cid_for(b"hello").unwrap(), v0);

        let v1 = cid_of(CidVersion::V1, RAW, b"hello").unwrap();
        let p1 = Prefix::of(&v1);
        assert_eq!(p1.to_bytes(), vec![0x01, 0x55, 0x12, 0x20]);
        assert_eq!(p1.encoded_len(), 4);
        assert_eq!(p1.cid_for(b"hello").unwrap(), v1);
        assert_ne!(p1.cid_for(b"hellO").unwrap(), v1);
    }

    #[test]
    fn prefix_rejects_malformed_and_unsupported() {
        assert!(matches!(Prefix::parse(&[]), Err(BitswapError::Prefix(_))));
        assert!(matches!(
            Prefix::parse(&[1, 0x55, 0x12]),
            Err(BitswapError::Prefix(_))
        ));
        assert!(matches!(
            Prefix::parse(&[1, 0x55, 0x12, 0x20, 0]),
            Err(BitswapError::Prefix(_))
        ));
        assert!(matches!(
            Prefix::parse(&[2, 0x55, 0x12, 0x20]),
            Err(BitswapError::Prefix(_))
        ));
        assert!(matches!(
            Prefix::parse(&[0xff; 12]),
            Err(BitswapError::Prefix(_))
        ));
        // blake3 (0x1e) parses but cannot be verified here.
        let blake3 = Prefix::parse(&[1, 0x55, 0x1e, 0x20]).unwrap();
        assert!(matches!(
            blake3.cid_for(b"x"),
            Err(BitswapError::Unsupported(_))
        ));
        // A truncated sha2-256 digest is refused too.
        let short = Prefix::parse(&[1, 0x55, 0x12, 0x14]).unwrap();
        assert!(matches!(
            short.cid_for(b"x"),
            Err(BitswapError::Unsupported(_))
        ));
        // CIDv0 exists only for dag-pb.
        let v0raw = Prefix::parse(&[0, 0x55, 0x12, 0x20]).unwrap();
        assert!(matches!(
            v0raw.cid_for(b"x"),
            Err(BitswapError::Unsupported(_))
        ));
    }

    #[test]
    fn verify_checks_hash() {
        let cid = cid_of(CidVersion::V1, RAW, b"abc").unwrap();
        verify(&cid, b"abc").unwrap();
        assert_eq!(verify(&cid, b"abd"), Err(BitswapError::HashMismatch(cid)));
    }
}
