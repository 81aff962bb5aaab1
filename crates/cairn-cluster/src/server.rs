//! The answering side of `/cairn/piece/1.0.0`: keep pieces durably, hand out blocks, say which
//! blocks are here and which stripe rebuilds a block. Synchronous (store I/O): called on a
//! blocking thread.
//!
//! Nothing received is trusted. A request is bounded ([`crate::limits`]) when it is decoded,
//! before anything in it is verified, allocated or stored. A `Put`'s manifest must pass
//! [`Manifest::from_block`]; each piece must match its CID, be a shard of that stripe and have
//! the length the manifest states for it (a parity shard also its index byte); `copies` must
//! be 1 to 16. The store then keeps the pieces without relabelling a piece or re-pointing a
//! block's stripe that an earlier `Put` established, and accounts each unit to the peer that
//! sent it first ([`cairn_store::pieces`]). The unit's owners, for piece GC, are the sender
//! or those the `Put` names (at most 16): only members may send a `Put`, and members are
//! trusted to say who owns a unit — nothing more (an owner's word frees a unit only when the
//! owner itself, asked directly, says it no longer references it).
//!
//! `Referenced` is answered from the local store's last GC mark ([`cairn_store::refs`]): true
//! for every block on any doubt.

use bytes::Bytes;
use cairn_dag::{Block, Cid};
use cairn_store::StoreError;
use cairn_store::pieces::{PieceOf, StripeRecord};
use serde_bytes::ByteBuf;

use crate::proto::{Request, Response, WireBlock};
use crate::stripe::Manifest;
use crate::{Cluster, ClusterError, proto};

impl Cluster {
    /// Answers one encoded request from `peer` (its peer id bytes: the owner of what it puts)
    /// with an encoded response; malformed or out-of-bounds input gets an error answer, never
    /// a panic.
    pub fn handle(&self, peer: &[u8], request: &[u8]) -> Vec<u8> {
        let response = match proto::decode_request(request) {
            Ok(r) => self.answer(peer, r),
            Err(e) => Response::Error(e.to_string()),
        };
        proto::encode(&response)
    }

    /// Answers a request from `peer` (this node's own, for pieces it keeps itself).
    pub(crate) fn answer(&self, peer: &[u8], request: Request) -> Response {
        if let Err(e) = request.check() {
            return Response::Error(e.to_string());
        }
        let result = match request {
            Request::Put {
                pieces,
                stripe,
                copies,
                owners,
            } => self
                .keep(peer, pieces, stripe, copies, owners)
                .map(|()| Response::Stored),
            Request::Referenced { blocks } => self
                .store()
                .referenced(&blocks)
                .map(Response::Referenced)
                .map_err(ClusterError::from),
            Request::Get { cid } => self.local_block(&cid).map(|b| match b {
                Some(data) => Response::Block(ByteBuf::from(data.to_vec())),
                None => Response::NotFound,
            }),
            Request::Has { cids } => cids
                .iter()
                .map(|c| self.store().has(c))
                .collect::<Result<Vec<bool>, _>>()
                .map(Response::Held)
                .map_err(ClusterError::from),
            Request::Pieces { cids } => cids
                .iter()
                .map(|c| Ok(self.store().piece(c)?.is_some() && self.store().has(c)?))
                .collect::<Result<Vec<bool>, cairn_store::StoreError>>()
                .map(Response::Held)
                .map_err(ClusterError::from),
            Request::Locate { cid } => self.locate_here(&cid),
            Request::PutRecord { key, bytes } => Ok(self.keep_record(&key, &bytes)),
            Request::GetRecord { key } => Ok(self.record_here(&key)),
        };
        result.unwrap_or_else(|e| Response::Error(e.to_string()))
    }

    /// A block held here, verified; a corrupt one is quarantined by the store and reported
    /// missing.
    pub(crate) fn local_block(&self, cid: &Cid) -> Result<Option<Bytes>, ClusterError> {
        match self.store().get_local(cid) {
            Ok(data) => Ok(Some(data)),
            Err(StoreError::NotFound(_)) | Err(StoreError::CorruptBlock { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The manifest of the stripe that rebuilds `cid`, if this node holds it.
    pub(crate) fn local_manifest(
        &self,
        cid: &Cid,
    ) -> Result<Option<(Cid, Manifest)>, ClusterError> {
        let Some(mcid) = self.store().stripe_of(cid)? else {
            return Ok(None);
        };
        let Some(bytes) = self.local_block(&mcid)? else {
            return Ok(None);
        };
        Ok(Some((mcid, Manifest::from_block(&mcid, &bytes)?)))
    }

    fn locate_here(&self, cid: &Cid) -> Result<Response, ClusterError> {
        let have = self.store().has(cid)?;
        let stripe = match self.store().stripe_of(cid)? {
            Some(mcid) => self.local_block(&mcid)?.map(|data| WireBlock {
                cid: mcid,
                data: ByteBuf::from(data.to_vec()),
            }),
            None => None,
        };
        Ok(Response::Located { have, stripe })
    }

    /// Keeps the pieces of a `Put` from `sender` (already bounded by [`Request::check`]), the
    /// unit's owners `owners` (`None`: the sender).
    fn keep(
        &self,
        sender: &[u8],
        pieces: Vec<WireBlock>,
        stripe: Option<WireBlock>,
        copies: Option<u8>,
        owners: Option<Vec<ByteBuf>>,
    ) -> Result<(), ClusterError> {
        let stripe = match stripe {
            Some(w) => {
                let manifest = Manifest::from_block(&w.cid, &w.data)?;
                Some((
                    Block {
                        cid: w.cid,
                        data: w.data.into_vec().into(),
                    },
                    manifest,
                ))
            }
            None => None,
        };
        let mut blocks = Vec::with_capacity(pieces.len());
        for p in pieces {
            if stripe.is_none() && p.data.len() > crate::limits::MAX_BLOCK {
                return Err(ClusterError::Malformed(format!(
                    "a replica of {} bytes (at most {})",
                    p.data.len(),
                    crate::limits::MAX_BLOCK
                )));
            }
            cairn_dag::verify(&p.cid, &p.data)?;
            if let Some((mcid, manifest)) = stripe.as_ref().map(|(b, m)| (b.cid, m)) {
                match manifest.position(&p.cid) {
                    None => {
                        return Err(ClusterError::Malformed(format!(
                            "{} is not a shard of stripe {mcid}",
                            p.cid
                        )));
                    }
                    Some(i) if !manifest.fits(i, &p.data) => {
                        return Err(ClusterError::Malformed(format!(
                            "{} ({} bytes) is not shard {i} of stripe {mcid} as its manifest states it",
                            p.cid,
                            p.data.len()
                        )));
                    }
                    Some(_) => {}
                }
            }
            let of = match &stripe {
                Some((b, _)) => PieceOf::Stripe(b.cid),
                None => PieceOf::Replica { cid: p.cid, copies },
            };
            blocks.push((
                Block {
                    cid: p.cid,
                    data: p.data.into_vec().into(),
                },
                of,
            ));
        }
        let record = stripe.as_ref().map(|(block, manifest)| StripeRecord {
            manifest: block,
            data: &manifest.data,
        });
        let owners: Option<Vec<Vec<u8>>> =
            owners.map(|list| list.into_iter().map(ByteBuf::into_vec).collect());
        self.store()
            .put_pieces_for(sender, owners.as_deref(), &blocks, record)?;
        Ok(())
    }
}
