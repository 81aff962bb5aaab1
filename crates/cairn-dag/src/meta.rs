//! UnixFS 1.5 metadata: the optional `mode` (field 7) and `mtime` (field 8) of the UnixFS
//! `Data` message, as `ipfs add --preserve-mode --preserve-mtime` writes them.
//!
//! * [`with_metadata`] gives a file root (or any UnixFS node) carrying metadata. A file that is
//!   a single leaf (a raw block, or a dag-pb `File` node without links) gets a new dag-pb
//!   `File` root with one link to the unchanged leaf plus the metadata; a node with links (a
//!   balanced-layout root, a directory, a symlink) is re-encoded with the fields set. The leaves
//!   never change, so the file's data is stored once whatever its metadata.
//! * [`metadata_of`] reads the fields back.
//!
//! The encoding is byte-for-byte what rust-unixfs (and go/js) write: fields 7 and 8 last, a
//! zero `FractionalNanoseconds` omitted. Empty metadata changes nothing, so CIDs without
//! metadata stay exactly what `ipfs add` gives.

use cid::Cid;
use multihash_codetable::Code;
use rust_unixfs::file::adder::{FileBranchLink, rebuild_file_branch};

use crate::{Block, CidVersion, DAG_PB, DagError, RAW};

/// A modification time: seconds since the Unix epoch (may be negative) and nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct UnixTime {
    /// Whole seconds since 1970-01-01T00:00:00Z.
    pub secs: i64,
    /// Nanoseconds within the second (`< 1_000_000_000`).
    pub nsecs: u32,
}

/// UnixFS 1.5 metadata of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct UnixMeta {
    /// POSIX permission bits (the lowest 12: rwx for user/group/other, setuid, setgid,
    /// sticky).
    pub mode: Option<u32>,
    /// Modification time.
    pub mtime: Option<UnixTime>,
}

impl UnixMeta {
    /// Whether neither field is set (the node is encoded exactly as without metadata).
    pub fn is_empty(&self) -> bool {
        self.mode.is_none() && self.mtime.is_none()
    }

    /// As rust-unixfs's builder metadata (directories, symlinks).
    pub(crate) fn to_unixfs(self) -> rust_unixfs::Metadata {
        rust_unixfs::Metadata::new(self.mode, self.mtime.map(|t| (t.secs, t.nsecs)))
    }
}

pub(crate) const WIRE_VARINT: u8 = 0;
const WIRE_FIXED64: u8 = 1;
pub(crate) const WIRE_LEN: u8 = 2;
const WIRE_FIXED32: u8 = 5;

/// One protobuf field: its number, wire type, decoded varint (for varints), payload (for
/// length-delimited and fixed fields) and its raw bytes (tag included).
pub(crate) struct Field<'a> {
    pub(crate) number: u64,
    pub(crate) wire: u8,
    pub(crate) varint: u64,
    pub(crate) payload: &'a [u8],
    raw: &'a [u8],
}

fn read_varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *buf.get(*pos)?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

fn write_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Splits a protobuf message into its fields, in order.
pub(crate) fn fields(buf: &[u8]) -> Option<Vec<Field<'_>>> {
    let (fields, whole) = leading_fields(buf);
    whole.then_some(fields)
}

/// The fields of `buf` up to the first one that cannot be read, and whether they are all of it.
fn leading_fields(buf: &[u8]) -> (Vec<Field<'_>>, bool) {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        match read_field(buf, &mut pos) {
            Some(f) => out.push(f),
            None => return (out, false),
        }
    }
    (out, true)
}

/// Reads the field at `*at`, moving past it.
fn read_field<'a>(buf: &'a [u8], at: &mut usize) -> Option<Field<'a>> {
    let start = *at;
    let mut pos = start;
    let tag = read_varint(buf, &mut pos)?;
    let (number, wire) = (tag >> 3, (tag & 7) as u8);
    let (mut varint, mut payload) = (0, &buf[0..0]);
    match wire {
        WIRE_VARINT => varint = read_varint(buf, &mut pos)?,
        WIRE_FIXED64 | WIRE_FIXED32 => {
            let n = if wire == WIRE_FIXED64 { 8 } else { 4 };
            payload = buf.get(pos..pos + n)?;
            pos += n;
        }
        WIRE_LEN => {
            let len = usize::try_from(read_varint(buf, &mut pos)?).ok()?;
            payload = buf.get(pos..pos.checked_add(len)?)?;
            pos += len;
        }
        _ => return None,
    }
    *at = pos;
    Some(Field {
        number,
        wire,
        varint,
        payload,
        raw: &buf[start..pos],
    })
}

/// Whether `block` is protobuf that rust-unixfs reads within its bounds: the node and each
/// link are whole sequences of fields of their own bytes, and so is each `mtime` of the UnixFS
/// `Data` (as far as that reads).
///
/// rust-unixfs reads dag-pb with quick-protobuf 0.8, which does not check that a nested
/// message's fields end within it: a link (or an `mtime`) whose last field runs past its
/// length panics with an overflow where overflow checks are on (debug and test builds) and
/// reads on into its parent's bytes where they are off. Every cairn-dag call into rust-unixfs
/// on a block it did not make itself asks this first (found by the `dag_pb` fuzz target).
pub(crate) fn pb_well_formed(block: &[u8]) -> bool {
    let Some(node) = fields(block) else {
        return false;
    };
    node.iter().all(|f| match (f.number, f.wire) {
        (2, WIRE_LEN) => fields(f.payload).is_some(),
        // rust-unixfs reads `Data` up to its first unreadable field (then takes the node for
        // one without UnixFS data): each `mtime` before that must be whole
        (1, WIRE_LEN) => leading_fields(f.payload)
            .0
            .iter()
            .all(|g| (g.number, g.wire) != (8, WIRE_LEN) || fields(g.payload).is_some()),
        _ => true,
    })
}

/// rust-unixfs's description of a dag-pb block, [`NodeDescription::Other`] for one it cannot
/// read safely ([`pb_well_formed`]).
pub(crate) fn describe_pb(block: &[u8]) -> rust_unixfs::dir::NodeDescription {
    if pb_well_formed(block) {
        rust_unixfs::dir::describe(block)
    } else {
        rust_unixfs::dir::NodeDescription::Other
    }
}

/// The error of a dag-pb block rust-unixfs cannot read safely ([`pb_well_formed`]).
pub(crate) fn check_pb(cid: &Cid, block: &[u8]) -> Result<(), DagError> {
    if pb_well_formed(block) {
        Ok(())
    } else {
        Err(DagError::malformed(cid, "not well-formed dag-pb protobuf"))
    }
}

/// The links (raw field bytes, in order) and the `Data` payload of a dag-pb node.
fn pb_parts<'a>(cid: &Cid, block: &'a [u8]) -> Result<(Vec<&'a [u8]>, &'a [u8]), DagError> {
    let bad = || DagError::malformed(cid, "not a dag-pb node");
    let mut links = Vec::new();
    let mut data = None;
    for f in fields(block).ok_or_else(bad)? {
        match (f.number, f.wire) {
            (2, WIRE_LEN) => links.push(f.raw),
            (1, WIRE_LEN) => data = Some(f.payload),
            _ => return Err(bad()),
        }
    }
    Ok((links, data.unwrap_or_default()))
}

/// The metadata fields of a UnixFS `Data` message.
fn parse_meta(data: &[u8]) -> Option<UnixMeta> {
    let mut meta = UnixMeta::default();
    for f in fields(data)? {
        match (f.number, f.wire) {
            (7, WIRE_VARINT) => meta.mode = Some(f.varint as u32),
            (8, WIRE_LEN) => {
                let mut t = UnixTime::default();
                for g in fields(f.payload)? {
                    match (g.number, g.wire) {
                        (1, WIRE_VARINT) => t.secs = g.varint as i64,
                        (2, WIRE_FIXED32) => {
                            t.nsecs = u32::from_le_bytes(g.payload.try_into().ok()?)
                        }
                        _ => {}
                    }
                }
                meta.mtime = Some(t);
            }
            _ => {}
        }
    }
    Some(meta)
}

/// The UnixFS metadata of a block: empty for raw blocks and other codecs.
pub fn metadata_of(cid: &Cid, block: &[u8]) -> Result<UnixMeta, DagError> {
    if cid.codec() != DAG_PB {
        return Ok(UnixMeta::default());
    }
    let (_, data) = pb_parts(cid, block)?;
    parse_meta(data).ok_or_else(|| DagError::malformed(cid, "unreadable UnixFS data"))
}

/// `data` (a UnixFS `Data` message) with fields 7 and 8 replaced by `meta`.
fn set_meta(cid: &Cid, data: &[u8], meta: &UnixMeta) -> Result<Vec<u8>, DagError> {
    let mut out = Vec::with_capacity(data.len() + 24);
    for f in fields(data).ok_or_else(|| DagError::malformed(cid, "unreadable UnixFS data"))? {
        if f.number != 7 && f.number != 8 {
            out.extend_from_slice(f.raw);
        }
    }
    if let Some(mode) = meta.mode {
        out.push((7 << 3) | WIRE_VARINT);
        write_varint(&mut out, u64::from(mode));
    }
    if let Some(t) = meta.mtime {
        let mut msg = vec![(1 << 3) | WIRE_VARINT];
        write_varint(&mut msg, t.secs as u64);
        if t.nsecs != 0 {
            msg.push((2 << 3) | WIRE_FIXED32);
            msg.extend_from_slice(&t.nsecs.to_le_bytes());
        }
        out.push((8 << 3) | WIRE_LEN);
        write_varint(&mut out, msg.len() as u64);
        out.extend_from_slice(&msg);
    }
    Ok(out)
}

/// Re-encodes a dag-pb node with `meta` in its UnixFS data; links stay as they are.
fn reencode(cid: &Cid, block: &[u8], meta: &UnixMeta) -> Result<Block, DagError> {
    let (links, data) = pb_parts(cid, block)?;
    let data = set_meta(cid, data, meta)?;
    let mut out = Vec::with_capacity(block.len() + 24);
    for l in links {
        out.extend_from_slice(l);
    }
    out.push((1 << 3) | WIRE_LEN);
    write_varint(&mut out, data.len() as u64);
    out.extend_from_slice(&data);
    let version = match cid.version() {
        cid::Version::V0 => CidVersion::V0,
        cid::Version::V1 => CidVersion::V1,
    };
    Block::new(version, DAG_PB, out)
}

/// The UnixFS type and file size of a dag-pb node's data (`Type` field 1, `filesize` field 3,
/// or the length of inline `Data`, field 2, when `filesize` is absent).
fn type_and_size(cid: &Cid, data: &[u8]) -> Result<(u64, u64), DagError> {
    let (mut kind, mut filesize, mut inline) = (0, None, 0);
    for f in fields(data).ok_or_else(|| DagError::malformed(cid, "unreadable UnixFS data"))? {
        match (f.number, f.wire) {
            (1, WIRE_VARINT) => kind = f.varint,
            (2, WIRE_LEN) => inline = f.payload.len() as u64,
            (3, WIRE_VARINT) => filesize = Some(f.varint),
            _ => {}
        }
    }
    Ok((kind, filesize.unwrap_or(inline)))
}

/// UnixFS `Data.Type` values.
const TYPE_RAW: u64 = 0;
const TYPE_FILE: u64 = 2;

/// The node `root` with `meta` (see the module doc): a single-leaf file is wrapped in a
/// dag-pb `File` root with one link; any other UnixFS node is re-encoded with the fields set
/// (replacing metadata it had). Empty `meta` returns `root` unchanged. The new block keeps
/// the root's CID version (a raw leaf, always CIDv1, gets a CIDv1 dag-pb root).
pub fn with_metadata(root: &Block, meta: &UnixMeta) -> Result<Block, DagError> {
    if meta.is_empty() {
        return Ok(root.clone());
    }
    let cid = &root.cid;
    let (filesize, version) = match cid.codec() {
        RAW => (root.data.len() as u64, cid::Version::V1),
        DAG_PB => {
            let (links, data) = pb_parts(cid, &root.data)?;
            let (kind, size) = type_and_size(cid, data)?;
            if !links.is_empty() || (kind != TYPE_FILE && kind != TYPE_RAW) {
                return reencode(cid, &root.data, meta);
            }
            (size, cid.version())
        }
        other => {
            return Err(DagError::Unsupported(format!(
                "UnixFS metadata on a block of codec {other:#x}"
            )));
        }
    };
    // A leaf: a new root over it.
    let link = FileBranchLink {
        cid: *cid,
        blocksize: filesize,
        tsize: root.data.len() as u64,
    };
    let (wrapper, data) = rebuild_file_branch(filesize, &[link], version, Code::Sha2_256);
    reencode(&wrapper, &data, meta)
}

/// [`with_metadata`] and the DAG size (dag-pb Tsize) of the result.
pub fn with_metadata_sized(root: &Block, meta: &UnixMeta) -> Result<(Block, u64), DagError> {
    let block = with_metadata(root, meta)?;
    let size = crate::block::dag_size(&block.cid, &block.data)?;
    Ok((block, size))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Blocks whose nested protobuf messages run past their own length (a link, an `mtime`):
    /// quick-protobuf, under rust-unixfs, panicked on them with an overflow (found by the
    /// `dag_pb` fuzz target, the first one its crash input). Every reader answers an error.
    #[test]
    fn nested_messages_running_past_their_length_are_errors_not_panics() {
        use crate::dir::{DirListing, PathResolve, describe, symlink_target};
        use crate::{DAG_PB, cid_of, file, read::FileRead};
        let fuzzed = hex::decode(
            "12280a221220bc5891909cffffffff10129c558cb1466e2a88788e01d401caba2d95fb82e98c00b612\
             00122d0a24015512202d71164218110a1608021809200938ed03420b0880e2cfaa06150500b726b044\
             016200",
        )
        .unwrap();
        let blocks: [&[u8]; 4] = [
            &fuzzed,
            // a link of one byte (Tsize's tag) whose varint is the next byte, outside it
            &[0x12, 0x01, 0x18, 0x05, 0x0a, 0x02, 0x08, 0x01],
            // a directory whose `mtime` (field 8) holds a tag whose value lies past it
            &[0x0a, 0x06, 0x08, 0x01, 0x42, 0x01, 0x08, 0x01],
            // the same `mtime` on a file
            &[0x0a, 0x08, 0x08, 0x02, 0x18, 0x00, 0x42, 0x01, 0x08, 0x01],
        ];
        for block in blocks {
            assert!(!pb_well_formed(block), "{}", hex::encode(block));
            let cid = cid_of(crate::CidVersion::V1, DAG_PB, block).unwrap();
            assert_eq!(describe(&cid, block), crate::dir::NodeKind::Other);
            assert!(DirListing::start(&cid, block).is_err());
            assert!(symlink_target(&cid, block).is_err());
            assert!(file::branch_links(&cid, block).is_none());
            assert!(FileRead::new(cid, None).feed(block).is_err());
            let mut resolve = PathResolve::new(cid, "a");
            assert!(resolve.feed(block).is_err());
            assert!(crate::hamt::ShardLookup::new(cid, "a").feed(block).is_err());
            assert!(crate::dir_edit::DirEditor::open(&cid, block, crate::CidVersion::V1).is_err());
        }
        // a dag-pb node whose data is not UnixFS still resolves by link name, as before
        let leaf = cid_of(crate::CidVersion::V1, crate::RAW, b"x").unwrap();
        let node = ipld_dagpb::PbNode {
            links: vec![ipld_dagpb::PbLink {
                cid: leaf,
                name: Some("a".into()),
                size: Some(1),
            }],
            data: Some(bytes::Bytes::from_static(b"hello")),
        }
        .into_bytes();
        assert!(pb_well_formed(&node));
        let cid = cid_of(crate::CidVersion::V1, DAG_PB, &node).unwrap();
        let mut resolve = PathResolve::new(cid, "a");
        resolve.feed(&node).unwrap();
        assert_eq!(resolve.resolved(), leaf);
    }

    use crate::block::cid_of;
    use crate::dir::{NodeKind, describe};
    use crate::file::encode_bytes;
    use crate::read::FileRead;
    use bytes::Bytes;
    use std::collections::HashMap;

    fn read_all(blocks: &HashMap<Cid, Bytes>, root: Cid) -> Vec<u8> {
        let mut read = FileRead::new(root, None);
        let mut out = Vec::new();
        while let Some(cid) = read.next_cid() {
            out.extend_from_slice(read.feed(&blocks[&cid]).unwrap());
        }
        out
    }

    fn meta(mode: u32, secs: i64, nsecs: u32) -> UnixMeta {
        UnixMeta {
            mode: Some(mode),
            mtime: Some(UnixTime { secs, nsecs }),
        }
    }

    /// Every file shape: empty, one leaf (raw and dag-pb), several leaves, several levels.
    #[test]
    fn files_read_back_with_their_metadata_and_unchanged_leaves() {
        let sizes = [
            0usize,
            1,
            1000,
            crate::CHUNK_SIZE,
            3 * crate::CHUNK_SIZE + 7,
        ];
        for version in [CidVersion::V0, CidVersion::V1] {
            for &len in &sizes {
                let data: Vec<u8> = (0..len).map(|i| (i * 31 + i / 97) as u8).collect();
                let (blocks, root) = encode_bytes(&data, version);
                let mut store: HashMap<Cid, Bytes> =
                    blocks.iter().map(|b| (b.cid, b.data.clone())).collect();
                let root_block = blocks.last().unwrap();
                assert_eq!(root_block.cid, root.link.cid);
                let m = meta(0o640, 1_700_000_000 + len as i64, 123_456_789);
                let (with, dag_size) = with_metadata_sized(root_block, &m).unwrap();
                assert_ne!(with.cid, root.link.cid, "{version:?} {len}");
                assert_eq!(with.cid.codec(), DAG_PB);
                assert_eq!(
                    with.cid.version(),
                    match version {
                        CidVersion::V0 => cid::Version::V0,
                        CidVersion::V1 => cid::Version::V1,
                    }
                );
                crate::verify(&with.cid, &with.data).unwrap();
                assert_eq!(metadata_of(&with.cid, &with.data).unwrap(), m);
                assert_eq!(
                    describe(&with.cid, &with.data),
                    NodeKind::File { size: len as u64 }
                );
                store.insert(with.cid, with.data.clone());
                assert_eq!(read_all(&store, with.cid), data, "{version:?} {len}");
                let old_dag = crate::block::dag_size(&root_block.cid, &root_block.data).unwrap();
                if blocks.len() == 1 {
                    // a single leaf is linked, not copied: a small root over it
                    assert_eq!(dag_size, old_dag + with.data.len() as u64);
                    assert!(with.data.len() < 150, "{}", with.data.len());
                    assert_eq!(
                        crate::links_of(&with.cid, &with.data).unwrap(),
                        [root.link.cid]
                    );
                } else {
                    // the root is re-encoded over the same children
                    let old_len = root_block.data.len() as u64;
                    assert_eq!(dag_size, old_dag - old_len + with.data.len() as u64);
                    assert_eq!(
                        crate::links_of(&with.cid, &with.data).unwrap(),
                        crate::links_of(&root_block.cid, &root_block.data).unwrap()
                    );
                }
                // a root without metadata reads as empty metadata
                assert!(
                    metadata_of(&root_block.cid, &root_block.data)
                        .unwrap()
                        .is_empty()
                );
                // applying again replaces, it does not wrap twice
                let m2 = UnixMeta {
                    mode: Some(0o755),
                    mtime: None,
                };
                let again = with_metadata(&with, &m2).unwrap();
                assert_eq!(again, with_metadata(root_block, &m2).unwrap());
                assert_eq!(metadata_of(&again.cid, &again.data).unwrap(), m2);
            }
        }
    }

    #[test]
    fn empty_metadata_changes_nothing() {
        let (blocks, _) = encode_bytes(b"hello world\n", CidVersion::V0);
        let b = &blocks[0];
        assert_eq!(&with_metadata(b, &UnixMeta::default()).unwrap(), b);
    }

    /// The bytes equal rust-unixfs's own encoding of metadata (the one go and js share): a
    /// multi-leaf file added with metadata by its `FileAdder`, and a directory and a symlink
    /// built with metadata.
    #[test]
    fn encoding_matches_rust_unixfs() {
        use rust_unixfs::file::adder::FileAdder;
        let data: Vec<u8> = (0..(2 * crate::CHUNK_SIZE + 5))
            .map(|i| (i % 251) as u8)
            .collect();
        for (m, nsecs) in [(0o644, 0u32), (0o4755, 999_999_999)] {
            let um = meta(m, -5, nsecs);
            let mut adder = FileAdder::builder()
                .with_cid_version(cid::Version::V1)
                .with_metadata(um.to_unixfs())
                .build();
            let mut all: Vec<(Cid, Vec<u8>)> = Vec::new();
            let mut consumed = 0;
            while consumed < data.len() {
                let (ready, n) = adder.push(&data[consumed..]);
                all.extend(ready);
                consumed += n;
            }
            all.extend(adder.finish());
            let (expected_cid, expected) = all.last().unwrap().clone();
            let (blocks, _) = encode_bytes(&data, CidVersion::V1);
            let ours = with_metadata(blocks.last().unwrap(), &um).unwrap();
            assert_eq!(ours.cid, expected_cid);
            assert_eq!(&ours.data[..], &expected[..]);
            assert_eq!(metadata_of(&ours.cid, &ours.data).unwrap(), um);
        }

        // a directory: built with metadata == built without, then re-encoded
        let (_, file) = encode_bytes(b"x", CidVersion::V0);
        let dm = meta(0o700, 1_600_000_000, 5);
        let build = |with: bool| {
            let mut b = crate::dir::DirectoryBuilder::new(CidVersion::V0);
            if with {
                b.add_dir_with("d", &dm).unwrap();
            }
            b.add_link("d/x", file.link.cid, file.link.dag_size)
                .unwrap();
            b.build().unwrap().pop().unwrap().block
        };
        let (plain, built) = (build(false), build(true));
        assert_eq!(metadata_of(&built.cid, &built.data).unwrap(), dm);
        assert_eq!(with_metadata(&plain, &dm).unwrap(), built);
        assert_eq!(
            describe(&built.cid, &built.data),
            NodeKind::Directory { sharded: false }
        );
        // a symlink
        let sm = UnixMeta {
            mode: None,
            mtime: Some(UnixTime { secs: 42, nsecs: 0 }),
        };
        let link = crate::dir::symlink_with("target", CidVersion::V1, &sm);
        assert_eq!(metadata_of(&link.cid, &link.data).unwrap(), sm);
        assert_eq!(
            with_metadata(&crate::dir::symlink("target", CidVersion::V1), &sm).unwrap(),
            link
        );
        assert_eq!(
            crate::dir::symlink_target(&link.cid, &link.data).unwrap(),
            "target"
        );
    }

    #[test]
    fn garbage_is_refused() {
        let cid = cid_of(CidVersion::V1, DAG_PB, b"\xff\xff").unwrap();
        assert!(metadata_of(&cid, b"\xff\xff").is_err());
        let block = Block {
            cid,
            data: Bytes::from_static(b"\xff\xff"),
        };
        assert!(with_metadata(&block, &meta(0o644, 0, 0)).is_err());
        let cbor = Block::new(CidVersion::V1, crate::DAG_CBOR, &b"\xa0"[..]).unwrap();
        assert!(with_metadata(&cbor, &meta(0o644, 0, 0)).is_err());
        assert!(metadata_of(&cbor.cid, &cbor.data).unwrap().is_empty());
    }
}
