//! Bitswap messages: the 1.2.0 protobuf and its wire framing.
//!
//! This module owns the message types ([`Message`] and its parts), their protobuf encoding
//! (hand-written `quick-protobuf` `MessageWrite` / `MessageRead` impls, no code generation), and
//! the unsigned-varint length prefix every message carries on a stream ([`FrameDecoder`],
//! [`Message::encode_frame`]).
//!
//! ```text
//! message Message {
//!   message Wantlist {
//!     enum WantType { Block = 0; Have = 1; }
//!     message Entry { bytes block = 1; int32 priority = 2; bool cancel = 3;
//!                     WantType wantType = 4; bool sendDontHave = 5; }
//!     repeated Entry entries = 1; bool full = 2;
//!   }
//!   message Block { bytes prefix = 1; bytes data = 2; }
//!   enum BlockPresenceType { Have = 0; DontHave = 1; }
//!   message BlockPresence { bytes cid = 1; BlockPresenceType type = 2; }
//!   Wantlist wantlist = 1;
//!   repeated bytes blocks = 2;          // 1.0.0: raw CIDv0 blocks
//!   repeated Block payload = 3;         // 1.1.0+
//!   repeated BlockPresence blockPresences = 4;
//!   int32 pendingBytes = 5;
//! }
//! ```
//!
//! Decoding treats its input as hostile: it never panics, refuses bodies over
//! [`Limits::max_message_size`] and messages with more than [`Limits::max_entries`] wantlist
//! entries + blocks + presences (counted while parsing, so nothing large is allocated first),
//! requires every CID to parse completely and every enum to hold a defined value, and skips
//! unknown fields. Nested messages are always parsed by a fresh reader over exactly their own
//! bytes, so a nested length can never reach past its parent. Block data is not copied: it is
//! a [`Bytes`] slice of the input.

use bytes::{Buf, Bytes, BytesMut};
use cid::Cid;
use quick_protobuf::sizeofs::{sizeof_int32, sizeof_len};
use quick_protobuf::{BytesReader, MessageRead, MessageWrite, Writer, WriterBackend};

use crate::BitswapError;
use crate::prefix::Prefix;

/// The protocol id this crate speaks.
pub const PROTOCOL: &str = "/ipfs/bitswap/1.2.0";
/// The largest message the spec allows (and Helia and boxo accept): 4 MiB.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 4 * 1024 * 1024;
/// Default cap on wantlist entries + blocks + presences in one received message.
pub const DEFAULT_MAX_ENTRIES: usize = 8192;
/// Longest unsigned varint the length prefix may use.
const MAX_VARINT_LEN: usize = 10;

/// What a wantlist entry asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum WantType {
    /// Send me the block (`WANT_BLOCK`, wire value 0, the default).
    #[default]
    Block,
    /// Tell me whether you have it (`WANT_HAVE`, wire value 1).
    Have,
}

/// A HAVE or DONT_HAVE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PresenceType {
    /// The sender has the block (wire value 0).
    Have,
    /// The sender does not have the block (wire value 1).
    DontHave,
}

/// One wantlist entry: a want, or a cancel of an earlier want.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WantEntry {
    /// The block wanted.
    pub cid: Cid,
    /// Higher is more urgent.
    pub priority: i32,
    /// This entry revokes an earlier want of `cid`.
    pub cancel: bool,
    /// Block or presence.
    pub want_type: WantType,
    /// Answer DONT_HAVE if the block is not there.
    pub send_dont_have: bool,
}

impl WantEntry {
    /// A want.
    pub fn want(cid: Cid, want_type: WantType, priority: i32, send_dont_have: bool) -> Self {
        WantEntry {
            cid,
            priority,
            cancel: false,
            want_type,
            send_dont_have,
        }
    }

    /// A cancel.
    pub fn cancel(cid: Cid) -> Self {
        WantEntry {
            cid,
            priority: 0,
            cancel: true,
            want_type: WantType::Block,
            send_dont_have: false,
        }
    }
}

/// A HAVE / DONT_HAVE for one CID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockPresence {
    /// The block.
    pub cid: Cid,
    /// Have or not.
    pub presence: PresenceType,
}

/// A block as Bitswap 1.1.0+ sends it: the CID prefix and the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadBlock {
    /// The CID without its digest.
    pub prefix: Prefix,
    /// The block's bytes.
    pub data: Bytes,
}

impl PayloadBlock {
    /// The payload form of the block `cid` with bytes `data`.
    pub fn new(cid: &Cid, data: Bytes) -> Self {
        PayloadBlock {
            prefix: Prefix::of(cid),
            data,
        }
    }
}

/// One Bitswap message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    /// The wantlist below replaces the receiver's copy of the sender's wantlist.
    pub full: bool,
    /// Wants and cancels.
    pub wantlist: Vec<WantEntry>,
    /// Bitswap 1.0.0 blocks (raw bytes of CIDv0 dag-pb blocks). Decoded for compatibility;
    /// this crate sends `payload` instead.
    pub blocks: Vec<Bytes>,
    /// Blocks (1.1.0+).
    pub payload: Vec<PayloadBlock>,
    /// HAVE / DONT_HAVE answers (1.2.0).
    pub presences: Vec<BlockPresence>,
    /// Bytes the sender still has queued for the receiver (informational).
    pub pending_bytes: i32,
}

/// Bounds applied when decoding untrusted input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest message body accepted, in bytes.
    pub max_message_size: usize,
    /// Most wantlist entries + blocks + presences accepted in one message.
    pub max_entries: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            max_entries: DEFAULT_MAX_ENTRIES,
        }
    }
}

/// Size of a length-delimited field with a one-byte tag and a body of `body` bytes.
pub(crate) fn field_len(body: usize) -> usize {
    1 + sizeof_len(body)
}

impl Message {
    /// True when the message carries nothing (no wantlist, blocks or presences).
    pub fn is_empty(&self) -> bool {
        !self.full
            && self.wantlist.is_empty()
            && self.blocks.is_empty()
            && self.payload.is_empty()
            && self.presences.is_empty()
    }

    /// Number of wantlist entries, blocks and presences.
    pub fn entry_count(&self) -> usize {
        self.wantlist.len() + self.blocks.len() + self.payload.len() + self.presences.len()
    }

    /// Bytes of block data carried (payload and 1.0 blocks).
    pub fn block_bytes(&self) -> usize {
        self.payload.iter().map(|b| b.data.len()).sum::<usize>()
            + self.blocks.iter().map(Bytes::len).sum::<usize>()
    }

    /// Length of the protobuf body.
    pub fn encoded_len(&self) -> usize {
        self.get_size()
    }

    /// The protobuf body.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.get_size());
        let mut w = Writer::new(&mut out);
        // Writing into a Vec cannot fail.
        self.write_message(&mut w)
            .expect("encoding a message into a Vec cannot fail");
        out
    }

    /// The body with its unsigned-varint length prefix: what goes on the stream.
    pub fn encode_frame(&self) -> Bytes {
        let body = self.encode();
        let mut buf = unsigned_varint::encode::u64_buffer();
        let len = unsigned_varint::encode::u64(body.len() as u64, &mut buf);
        let mut out = Vec::with_capacity(len.len() + body.len());
        out.extend_from_slice(len);
        out.extend_from_slice(&body);
        Bytes::from(out)
    }

    /// Decodes a protobuf body (without its length prefix). Never panics.
    pub fn decode(body: &Bytes, limits: &Limits) -> Result<Self, BitswapError> {
        if body.len() > limits.max_message_size {
            return Err(BitswapError::TooLarge {
                len: body.len(),
                max: limits.max_message_size,
            });
        }
        let buf: &[u8] = body;
        let mut r = BytesReader::from_bytes(buf);
        let mut msg = Message::default();
        let mut entries = 0usize;
        while !r.is_eof() {
            match r.next_tag(buf)? {
                10 => {
                    let sub = r.read_bytes(buf)?;
                    decode_wantlist(sub, &mut msg, &mut entries, limits)?;
                }
                18 => {
                    count(&mut entries, limits)?;
                    let data = r.read_bytes(buf)?;
                    msg.blocks.push(body.slice_ref(data));
                }
                26 => {
                    count(&mut entries, limits)?;
                    let sub = r.read_bytes(buf)?;
                    let raw: RawBlock = read_nested(sub)?;
                    msg.payload.push(PayloadBlock {
                        prefix: Prefix::parse(raw.prefix)?,
                        data: body.slice_ref(raw.data),
                    });
                }
                34 => {
                    count(&mut entries, limits)?;
                    let sub = r.read_bytes(buf)?;
                    let raw: RawPresence = read_nested(sub)?;
                    let presence = match raw.kind {
                        0 => PresenceType::Have,
                        1 => PresenceType::DontHave,
                        v => return Err(bad_field("blockPresences.type", v)),
                    };
                    msg.presences.push(BlockPresence {
                        cid: parse_cid("blockPresences.cid", raw.cid)?,
                        presence,
                    });
                }
                40 => msg.pending_bytes = r.read_int32(buf)?,
                tag => skip_unknown(&mut r, buf, tag)?,
            }
        }
        Ok(msg)
    }
}

fn count(entries: &mut usize, limits: &Limits) -> Result<(), BitswapError> {
    *entries += 1;
    if *entries > limits.max_entries {
        Err(BitswapError::TooManyEntries {
            max: limits.max_entries,
        })
    } else {
        Ok(())
    }
}

fn bad_field(field: &'static str, value: i32) -> BitswapError {
    BitswapError::Field {
        field,
        reason: format!("undefined value {value}"),
    }
}

fn skip_unknown(r: &mut BytesReader, buf: &[u8], tag: u32) -> Result<(), BitswapError> {
    if tag >> 3 == 0 {
        return Err(BitswapError::Protobuf("field number 0".into()));
    }
    r.read_unknown(buf, tag)?;
    Ok(())
}

/// Parses a nested message from exactly its own bytes.
fn read_nested<'a, M: MessageRead<'a>>(sub: &'a [u8]) -> Result<M, BitswapError> {
    let mut r = BytesReader::from_bytes(sub);
    Ok(M::from_reader(&mut r, sub)?)
}

fn parse_cid(field: &'static str, bytes: &[u8]) -> Result<Cid, BitswapError> {
    if bytes.is_empty() {
        return Err(BitswapError::Field {
            field,
            reason: "missing CID".into(),
        });
    }
    let cid = Cid::try_from(bytes).map_err(|e| BitswapError::Field {
        field,
        reason: e.to_string(),
    })?;
    if cid.encoded_len() != bytes.len() {
        return Err(BitswapError::Field {
            field,
            reason: "trailing bytes after the CID".into(),
        });
    }
    Ok(cid)
}

fn decode_wantlist(
    sub: &[u8],
    msg: &mut Message,
    entries: &mut usize,
    limits: &Limits,
) -> Result<(), BitswapError> {
    let mut r = BytesReader::from_bytes(sub);
    while !r.is_eof() {
        match r.next_tag(sub)? {
            10 => {
                count(entries, limits)?;
                let bytes = r.read_bytes(sub)?;
                let raw: RawEntry = read_nested(bytes)?;
                let want_type = match raw.want_type {
                    0 => WantType::Block,
                    1 => WantType::Have,
                    v => return Err(bad_field("wantlist.entries.wantType", v)),
                };
                msg.wantlist.push(WantEntry {
                    cid: parse_cid("wantlist.entries.block", raw.block)?,
                    priority: raw.priority,
                    cancel: raw.cancel,
                    want_type,
                    send_dont_have: raw.send_dont_have,
                });
            }
            16 => msg.full = r.read_bool(sub)?,
            tag => skip_unknown(&mut r, sub, tag)?,
        }
    }
    Ok(())
}

/// A wantlist entry as it is on the wire.
#[derive(Default)]
struct RawEntry<'a> {
    block: &'a [u8],
    priority: i32,
    cancel: bool,
    want_type: i32,
    send_dont_have: bool,
}

impl<'a> MessageRead<'a> for RawEntry<'a> {
    fn from_reader(r: &mut BytesReader, bytes: &'a [u8]) -> quick_protobuf::Result<Self> {
        let mut m = RawEntry::default();
        while !r.is_eof() {
            match r.next_tag(bytes)? {
                10 => m.block = r.read_bytes(bytes)?,
                16 => m.priority = r.read_int32(bytes)?,
                24 => m.cancel = r.read_bool(bytes)?,
                32 => m.want_type = r.read_int32(bytes)?,
                40 => m.send_dont_have = r.read_bool(bytes)?,
                tag => read_unknown_field(r, bytes, tag)?,
            }
        }
        Ok(m)
    }
}

/// A payload block as it is on the wire.
#[derive(Default)]
struct RawBlock<'a> {
    prefix: &'a [u8],
    data: &'a [u8],
}

impl<'a> MessageRead<'a> for RawBlock<'a> {
    fn from_reader(r: &mut BytesReader, bytes: &'a [u8]) -> quick_protobuf::Result<Self> {
        let mut m = RawBlock::default();
        while !r.is_eof() {
            match r.next_tag(bytes)? {
                10 => m.prefix = r.read_bytes(bytes)?,
                18 => m.data = r.read_bytes(bytes)?,
                tag => read_unknown_field(r, bytes, tag)?,
            }
        }
        Ok(m)
    }
}

/// A block presence as it is on the wire.
#[derive(Default)]
struct RawPresence<'a> {
    cid: &'a [u8],
    kind: i32,
}

impl<'a> MessageRead<'a> for RawPresence<'a> {
    fn from_reader(r: &mut BytesReader, bytes: &'a [u8]) -> quick_protobuf::Result<Self> {
        let mut m = RawPresence::default();
        while !r.is_eof() {
            match r.next_tag(bytes)? {
                10 => m.cid = r.read_bytes(bytes)?,
                16 => m.kind = r.read_int32(bytes)?,
                tag => read_unknown_field(r, bytes, tag)?,
            }
        }
        Ok(m)
    }
}

fn read_unknown_field(r: &mut BytesReader, bytes: &[u8], tag: u32) -> quick_protobuf::Result<()> {
    if tag >> 3 == 0 {
        return Err(quick_protobuf::Error::Message("field number 0".into()));
    }
    r.read_unknown(bytes, tag)
}

// ---- encoding ----

impl WantEntry {
    fn body_len(&self) -> usize {
        let mut n = field_len(self.cid.encoded_len());
        if self.priority != 0 {
            n += 1 + sizeof_int32(self.priority);
        }
        if self.cancel {
            n += 2;
        }
        if self.want_type == WantType::Have {
            n += 2;
        }
        if self.send_dont_have {
            n += 2;
        }
        n
    }
}

impl MessageWrite for WantEntry {
    fn get_size(&self) -> usize {
        self.body_len()
    }

    fn write_message<W: WriterBackend>(&self, w: &mut Writer<W>) -> quick_protobuf::Result<()> {
        w.write_with_tag(10, |w| w.write_bytes(&self.cid.to_bytes()))?;
        if self.priority != 0 {
            w.write_with_tag(16, |w| w.write_int32(self.priority))?;
        }
        if self.cancel {
            w.write_with_tag(24, |w| w.write_bool(true))?;
        }
        if self.want_type == WantType::Have {
            w.write_with_tag(32, |w| w.write_enum(1))?;
        }
        if self.send_dont_have {
            w.write_with_tag(40, |w| w.write_bool(true))?;
        }
        Ok(())
    }
}

impl MessageWrite for BlockPresence {
    fn get_size(&self) -> usize {
        field_len(self.cid.encoded_len())
            + match self.presence {
                PresenceType::Have => 0,
                PresenceType::DontHave => 2,
            }
    }

    fn write_message<W: WriterBackend>(&self, w: &mut Writer<W>) -> quick_protobuf::Result<()> {
        w.write_with_tag(10, |w| w.write_bytes(&self.cid.to_bytes()))?;
        if self.presence == PresenceType::DontHave {
            w.write_with_tag(16, |w| w.write_enum(1))?;
        }
        Ok(())
    }
}

impl MessageWrite for PayloadBlock {
    fn get_size(&self) -> usize {
        // `data` is written even when empty: some decoders skip a block without it.
        field_len(self.prefix.encoded_len()) + field_len(self.data.len())
    }

    fn write_message<W: WriterBackend>(&self, w: &mut Writer<W>) -> quick_protobuf::Result<()> {
        w.write_with_tag(10, |w| w.write_bytes(&self.prefix.to_bytes()))?;
        w.write_with_tag(18, |w| w.write_bytes(&self.data))
    }
}

struct WantlistRef<'a> {
    full: bool,
    entries: &'a [WantEntry],
}

impl MessageWrite for WantlistRef<'_> {
    fn get_size(&self) -> usize {
        self.entries
            .iter()
            .map(|e| field_len(e.get_size()))
            .sum::<usize>()
            + if self.full { 2 } else { 0 }
    }

    fn write_message<W: WriterBackend>(&self, w: &mut Writer<W>) -> quick_protobuf::Result<()> {
        for e in self.entries {
            w.write_with_tag(10, |w| w.write_message(e))?;
        }
        if self.full {
            w.write_with_tag(16, |w| w.write_bool(true))?;
        }
        Ok(())
    }
}

impl Message {
    fn wantlist_ref(&self) -> Option<WantlistRef<'_>> {
        (self.full || !self.wantlist.is_empty()).then_some(WantlistRef {
            full: self.full,
            entries: &self.wantlist,
        })
    }
}

impl MessageWrite for Message {
    fn get_size(&self) -> usize {
        let mut n = 0;
        if let Some(wl) = self.wantlist_ref() {
            n += field_len(wl.get_size());
        }
        n += self
            .blocks
            .iter()
            .map(|b| field_len(b.len()))
            .sum::<usize>();
        n += self
            .payload
            .iter()
            .map(|b| field_len(b.get_size()))
            .sum::<usize>();
        n += self
            .presences
            .iter()
            .map(|p| field_len(p.get_size()))
            .sum::<usize>();
        if self.pending_bytes != 0 {
            n += 1 + sizeof_int32(self.pending_bytes);
        }
        n
    }

    fn write_message<W: WriterBackend>(&self, w: &mut Writer<W>) -> quick_protobuf::Result<()> {
        if let Some(wl) = self.wantlist_ref() {
            w.write_with_tag(10, |w| w.write_message(&wl))?;
        }
        for b in &self.blocks {
            w.write_with_tag(18, |w| w.write_bytes(b))?;
        }
        for b in &self.payload {
            w.write_with_tag(26, |w| w.write_message(b))?;
        }
        for p in &self.presences {
            w.write_with_tag(34, |w| w.write_message(p))?;
        }
        if self.pending_bytes != 0 {
            w.write_with_tag(40, |w| w.write_int32(self.pending_bytes))?;
        }
        Ok(())
    }
}

// ---- framing ----

/// Splits a byte stream into length-prefixed message bodies.
///
/// Push bytes as they arrive with [`FrameDecoder::push`] and take complete bodies with
/// [`FrameDecoder::next_frame`] until it returns `None`. A frame announcing more than the
/// maximum is refused as soon as its length prefix is complete, before its body is buffered, so
/// the buffer holds at most one maximum-size frame plus whatever was pushed since the last
/// drain.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: BytesMut,
    max: usize,
}

impl FrameDecoder {
    /// A decoder refusing bodies over `max_message_size` bytes.
    pub fn new(max_message_size: usize) -> Self {
        FrameDecoder {
            buf: BytesMut::new(),
            max: max_message_size,
        }
    }

    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// True when no partial frame is buffered (a stream may end here cleanly).
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The next complete body, `None` if more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Bytes>, BitswapError> {
        let (len, rest) = match unsigned_varint::decode::u64(&self.buf) {
            Ok(v) => v,
            Err(unsigned_varint::decode::Error::Insufficient)
                if self.buf.len() < MAX_VARINT_LEN =>
            {
                return Ok(None);
            }
            Err(_) => return Err(BitswapError::Frame),
        };
        let header = self.buf.len() - rest.len();
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        if len > self.max {
            return Err(BitswapError::TooLarge { len, max: self.max });
        }
        if rest.len() < len {
            self.buf.reserve(len - rest.len());
            return Ok(None);
        }
        self.buf.advance(header);
        Ok(Some(self.buf.split_to(len).freeze()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use cairn_dag::{CidVersion, DAG_PB, RAW, block::cid_of};
    use proptest::prelude::*;

    fn cid(n: u32) -> Cid {
        cid_of(CidVersion::V1, RAW, &n.to_le_bytes()).unwrap()
    }

    fn b64(s: &str) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD.decode(s).unwrap()
    }

    fn sample() -> Message {
        let c0 = cid_of(CidVersion::V0, DAG_PB, b"v0 block").unwrap();
        Message {
            full: true,
            wantlist: vec![
                WantEntry::want(cid(1), WantType::Have, 7, true),
                WantEntry::want(c0, WantType::Block, -3, false),
                WantEntry::cancel(cid(2)),
            ],
            blocks: vec![Bytes::from_static(b"legacy")],
            payload: vec![
                PayloadBlock::new(&cid(3), Bytes::from_static(b"data")),
                PayloadBlock::new(&cid(4), Bytes::new()),
            ],
            presences: vec![
                BlockPresence {
                    cid: cid(5),
                    presence: PresenceType::Have,
                },
                BlockPresence {
                    cid: c0,
                    presence: PresenceType::DontHave,
                },
            ],
            pending_bytes: 1234,
        }
    }

    #[test]
    fn round_trip_all_fields() {
        let m = sample();
        let body = Bytes::from(m.encode());
        assert_eq!(body.len(), m.encoded_len());
        let back = Message::decode(&body, &Limits::default()).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.entry_count(), 8);
        assert_eq!(back.block_bytes(), 10);
    }

    #[test]
    fn empty_message_is_empty_bytes() {
        let m = Message::default();
        assert!(m.is_empty());
        assert!(m.encode().is_empty());
        assert_eq!(
            Message::decode(&Bytes::new(), &Limits::default()).unwrap(),
            m
        );
        // A full but empty wantlist is still written (it clears the receiver's copy).
        let full = Message {
            full: true,
            ..Message::default()
        };
        assert_eq!(full.encode(), vec![0x0a, 0x02, 0x10, 0x01]);
    }

    #[test]
    fn golden_boxo_block_presence() {
        // boxo bitswap/message/pb/cid_test.go: BlockPresence{Cid: CIDv0(sha256("foobar"))}
        // marshals to these 36 bytes (type Have = 0 is omitted).
        let expected: [u8; 36] = [
            10, 34, 18, 32, 195, 171, 143, 241, 55, 32, 232, 173, 144, 71, 221, 57, 70, 107, 60,
            137, 116, 229, 146, 194, 250, 56, 61, 74, 57, 96, 113, 76, 174, 240, 196, 242,
        ];
        let c = Cid::try_from(&expected[2..]).unwrap();
        assert_eq!(c.version(), cid::Version::V0);
        let p = BlockPresence {
            cid: c,
            presence: PresenceType::Have,
        };
        let mut out = Vec::new();
        p.write_message(&mut Writer::new(&mut out)).unwrap();
        assert_eq!(out, expected);
        // As a whole message: field 4, length 36.
        let m = Message {
            presences: vec![p],
            ..Message::default()
        };
        let mut framed = vec![0x22, 36];
        framed.extend_from_slice(&expected);
        assert_eq!(m.encode(), framed);
        assert_eq!(
            Message::decode(&Bytes::from(framed), &Limits::default()).unwrap(),
            m
        );
    }

    #[test]
    fn golden_elastic_ipfs_vectors() {
        // elastic-ipfs/bitswap-peer test/protocol.test.js (a JS Bitswap 1.2.0 server that
        // served Kubo in production): encodings of an Entry, a Block and a Wantlist.
        let entry = b64("CiQBcBIgQiiWoc6Cp7HMC6J8fY3iiGx9+VWIRz1eiKKKn8+g5D4QARgBIAEoAQ==");
        let c = Cid::try_from(&entry[2..38]).unwrap();
        let e = WantEntry {
            cid: c,
            priority: 1,
            cancel: true,
            want_type: WantType::Have,
            send_dont_have: true,
        };
        let mut out = Vec::new();
        e.write_message(&mut Writer::new(&mut out)).unwrap();
        assert_eq!(out, entry);
        let max_prio = b64("CiQBcBIgQiiWoc6Cp7HMC6J8fY3iiGx9+VWIRz1eiKKKn8+g5D4Q/////wcYASABKAE=");
        let mut out = Vec::new();
        WantEntry {
            priority: i32::MAX,
            ..e.clone()
        }
        .write_message(&mut Writer::new(&mut out))
        .unwrap();
        assert_eq!(out, max_prio);

        // Wrapped in a message: wantlist { entries: [entry] }.
        let mut body = vec![0x0a, (entry.len() + 2) as u8, 0x0a, entry.len() as u8];
        body.extend_from_slice(&entry);
        let m = Message::decode(&Bytes::from(body.clone()), &Limits::default()).unwrap();
        assert_eq!(m.wantlist, vec![e]);
        assert_eq!(m.encode(), body);

        // Block { prefix: v1 dag-pb sha2-256 32, data: ten zero bytes }.
        let block = b64("CgQBcBIgEgoAAAAAAAAAAAAA");
        let pb = PayloadBlock {
            prefix: Prefix::parse(&[1, 0x70, 0x12, 0x20]).unwrap(),
            data: Bytes::from(vec![0u8; 10]),
        };
        let mut out = Vec::new();
        pb.write_message(&mut Writer::new(&mut out)).unwrap();
        assert_eq!(out, block);

        // Wantlist([], full = true).
        assert_eq!(b64("EAE="), vec![0x10, 0x01]);
        let mut body = vec![0x0a, 0x02];
        body.extend_from_slice(&b64("EAE="));
        let m = Message::decode(&Bytes::from(body), &Limits::default()).unwrap();
        assert!(m.full && m.wantlist.is_empty());

        // BlockPresence written with an explicit default type (`10 00`): decodes as Have.
        let presence = b64("CiQBcBIgQiiWoc6Cp7HMC6J8fY3iiGx9+VWIRz1eiKKKn8+g5D4QAA==");
        let mut body = vec![0x22, presence.len() as u8];
        body.extend_from_slice(&presence);
        let m = Message::decode(&Bytes::from(body), &Limits::default()).unwrap();
        assert_eq!(
            m.presences,
            vec![BlockPresence {
                cid: c,
                presence: PresenceType::Have
            }]
        );
    }

    #[test]
    fn payload_data_is_zero_copy() {
        let m = Message {
            payload: vec![PayloadBlock::new(&cid(1), Bytes::from(vec![7u8; 1000]))],
            ..Message::default()
        };
        let body = Bytes::from(m.encode());
        let back = Message::decode(&body, &Limits::default()).unwrap();
        let data = &back.payload[0].data;
        let start = body.as_ptr() as usize;
        let p = data.as_ptr() as usize;
        assert!(p >= start && p + data.len() <= start + body.len());
    }

    #[test]
    fn oversize_rejected() {
        let m = Message {
            payload: vec![PayloadBlock::new(&cid(1), Bytes::from(vec![0u8; 2000]))],
            ..Message::default()
        };
        let body = Bytes::from(m.encode());
        let limits = Limits {
            max_message_size: 1000,
            ..Limits::default()
        };
        assert!(matches!(
            Message::decode(&body, &limits),
            Err(BitswapError::TooLarge { max: 1000, .. })
        ));
        // The frame decoder refuses as soon as the length prefix is read.
        let frame = m.encode_frame();
        let mut d = FrameDecoder::new(1000);
        d.push(&frame[..3]);
        assert!(matches!(d.next_frame(), Err(BitswapError::TooLarge { .. })));
    }

    #[test]
    fn too_many_entries_rejected() {
        let m = Message {
            wantlist: (0..20)
                .map(|i| WantEntry::want(cid(i), WantType::Have, 1, true))
                .collect(),
            ..Message::default()
        };
        let body = Bytes::from(m.encode());
        let limits = Limits {
            max_entries: 19,
            ..Limits::default()
        };
        assert_eq!(
            Message::decode(&body, &limits),
            Err(BitswapError::TooManyEntries { max: 19 })
        );
        let limits = Limits {
            max_entries: 20,
            ..Limits::default()
        };
        assert_eq!(Message::decode(&body, &limits).unwrap(), m);
    }

    #[test]
    fn malformed_inputs_are_errors() {
        let limits = Limits::default();
        let cases: Vec<Vec<u8>> = vec![
            vec![0x0a],                               // wantlist tag, no length
            vec![0x0a, 0x05, 0x0a],                   // wantlist longer than the message
            vec![0x0a, 0x02, 0x0a, 0x05],             // entry longer than its wantlist
            vec![0x0a, 0x02, 0x0a, 0x00],             // entry without a CID
            vec![0x0a, 0x04, 0x0a, 0x02, 0x0a, 0x00], // entry with an empty CID
            vec![0x22, 0x03, 0x0a, 0x01, 0x01],       // presence with a truncated CID
            vec![0x1a, 0x02, 0x0a, 0x00],             // payload with an empty prefix
            vec![0x00, 0x00],                         // field number 0
            vec![0x0b],                               // group start (deprecated)
            vec![0x2f],                               // unknown wire type 7
            vec![
                0x28, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
            ],
        ];
        for case in cases {
            assert!(
                Message::decode(&Bytes::from(case.clone()), &limits).is_err(),
                "{case:02x?}"
            );
        }
        // An undefined enum value.
        let c = cid(1).to_bytes();
        let mut entry = vec![0x0a, c.len() as u8];
        entry.extend_from_slice(&c);
        entry.extend_from_slice(&[0x20, 0x05]);
        let mut body = vec![0x0a, (entry.len() + 2) as u8, 0x0a, entry.len() as u8];
        body.extend_from_slice(&entry);
        assert!(matches!(
            Message::decode(&Bytes::from(body), &limits),
            Err(BitswapError::Field { .. })
        ));
        // A CID with trailing garbage.
        let mut p = vec![0x0a, (c.len() + 1) as u8];
        p.extend_from_slice(&c);
        p.push(0);
        let mut body = vec![0x22, p.len() as u8];
        body.extend_from_slice(&p);
        assert!(matches!(
            Message::decode(&Bytes::from(body), &limits),
            Err(BitswapError::Field { .. })
        ));
    }

    #[test]
    fn unknown_fields_are_skipped() {
        let mut body = sample().encode();
        // field 15 varint, field 14 length-delimited, field 13 fixed32, field 12 fixed64
        body.extend_from_slice(&[0x78, 0x96, 0x01]);
        body.extend_from_slice(&[0x72, 0x03, 1, 2, 3]);
        body.extend_from_slice(&[0x6d, 1, 2, 3, 4]);
        body.extend_from_slice(&[0x61, 1, 2, 3, 4, 5, 6, 7, 8]);
        let back = Message::decode(&Bytes::from(body), &Limits::default()).unwrap();
        assert_eq!(back, sample());
    }

    #[test]
    fn frames_split_and_join() {
        let a = sample();
        let b = Message {
            presences: vec![BlockPresence {
                cid: cid(9),
                presence: PresenceType::DontHave,
            }],
            ..Message::default()
        };
        let mut stream = a.encode_frame().to_vec();
        stream.extend_from_slice(&b.encode_frame());
        // Byte by byte.
        let mut d = FrameDecoder::new(DEFAULT_MAX_MESSAGE_SIZE);
        let mut got = Vec::new();
        for byte in &stream {
            d.push(std::slice::from_ref(byte));
            while let Some(f) = d.next_frame().unwrap() {
                got.push(Message::decode(&f, &Limits::default()).unwrap());
            }
        }
        assert_eq!(got, vec![a.clone(), b.clone()]);
        assert!(d.is_empty());
        // All at once.
        let mut d = FrameDecoder::new(DEFAULT_MAX_MESSAGE_SIZE);
        d.push(&stream);
        let f1 = d.next_frame().unwrap().unwrap();
        let f2 = d.next_frame().unwrap().unwrap();
        assert!(d.next_frame().unwrap().is_none());
        assert_eq!(Message::decode(&f1, &Limits::default()).unwrap(), a);
        assert_eq!(Message::decode(&f2, &Limits::default()).unwrap(), b);
        // A length prefix that never ends.
        let mut d = FrameDecoder::new(DEFAULT_MAX_MESSAGE_SIZE);
        d.push(&[0x80; 11]);
        assert_eq!(d.next_frame(), Err(BitswapError::Frame));
    }

    fn arb_cid() -> impl Strategy<Value = Cid> {
        (any::<u32>(), any::<bool>()).prop_map(|(n, v0)| {
            if v0 {
                cid_of(CidVersion::V0, DAG_PB, &n.to_le_bytes()).unwrap()
            } else {
                cid(n)
            }
        })
    }

    fn arb_message() -> impl Strategy<Value = Message> {
        let entry = (
            arb_cid(),
            any::<i32>(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(cid, priority, cancel, have, sdh)| WantEntry {
                cid,
                priority,
                cancel,
                want_type: if have {
                    WantType::Have
                } else {
                    WantType::Block
                },
                send_dont_have: sdh,
            });
        let block = (arb_cid(), proptest::collection::vec(any::<u8>(), 0..64))
            .prop_map(|(c, d)| PayloadBlock::new(&c, Bytes::from(d)));
        let presence = (arb_cid(), any::<bool>()).prop_map(|(cid, have)| BlockPresence {
            cid,
            presence: if have {
                PresenceType::Have
            } else {
                PresenceType::DontHave
            },
        });
        (
            any::<bool>(),
            proptest::collection::vec(entry, 0..8),
            proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..16), 0..3),
            proptest::collection::vec(block, 0..4),
            proptest::collection::vec(presence, 0..8),
            any::<i32>(),
        )
            .prop_map(
                |(full, wantlist, blocks, payload, presences, pending_bytes)| Message {
                    full,
                    wantlist,
                    blocks: blocks.into_iter().map(Bytes::from).collect(),
                    payload,
                    presences,
                    pending_bytes,
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = Message::decode(&Bytes::from(data.clone()), &Limits::default());
            let mut d = FrameDecoder::new(256);
            d.push(&data);
            while let Ok(Some(f)) = d.next_frame() {
                let _ = Message::decode(&f, &Limits::default());
            }
        }

        #[test]
        fn mutated_messages_never_panic(
            m in arb_message(),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut body = m.encode();
            if body.is_empty() {
                return Ok(());
            }
            for (i, b) in flips {
                let i = i.index(body.len());
                body[i] ^= b;
            }
            let _ = Message::decode(&Bytes::from(body.clone()), &Limits::default());
            body.truncate(cut.index(body.len()));
            let _ = Message::decode(&Bytes::from(body), &Limits::default());
        }

        #[test]
        fn arbitrary_messages_round_trip(m in arb_message()) {
            let body = Bytes::from(m.encode());
            prop_assert_eq!(body.len(), m.encoded_len());
            let back = Message::decode(&body, &Limits::default()).unwrap();
            prop_assert_eq!(back, m.clone());
            let mut d = FrameDecoder::new(DEFAULT_MAX_MESSAGE_SIZE);
            d.push(&m.encode_frame());
            let f = d.next_frame().unwrap().unwrap();
            prop_assert_eq!(f, body);
        }
    }
}
