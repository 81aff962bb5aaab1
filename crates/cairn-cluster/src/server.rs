//! The answering side of `/cairn/piece/1.0.0`: keep pieces durably, hand out blocks, say which
//! blocks are here and which stripe rebuilds a block. Synchronous (store I/O): called on a
//! blocking thread. Everything received is verified before it is kept.

use bytes::Bytes;
use cairn_dag::{Block, Cid};
use cairn_store::StoreError;
use cairn_store::pieces::{PieceOf, StripeRecord};
use serde_bytes::ByteBuf;

use crate::proto::{Request, Response, WireBlock};
use crate::stripe::Manifest;
use crate::{Cluster, ClusterError, proto};

impl Cluster {
    /// Answers one encoded request from a peer with an encoded response; malformed input gets
    /// an error answer, never a panic.
    pub fn handle(&self, request: &[u8]) -> Vec<u8> {
        let response = match proto::decode::<Request>(request) {
            Ok(r) => self.answer(r),
            Err(e) => Response::Error(e.to_string()),
        };
        proto::encode(&response)
    }

    pub(crate) fn answer(&self, request: Request) -> Response {
        let result = match request {
            Request::Put {
                pieces,
                stripe,
                copies,
            } => self.keep(pieces, stripe, copies).map(|()| Response::Stored),
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

    fn keep(
        &self,
        pieces: Vec<WireBlock>,
        stripe: Option<WireBlock>,
        copies: Option<u8>,
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
            cairn_dag::verify(&p.cid, &p.data)?;
            if let Some((mcid, manifest)) = stripe.as_ref().map(|(b, m)| (b.cid, m))
                && manifest.position(&p.cid).is_none()
            {
                return Err(ClusterError::Malformed(format!(
                    "{} is not a shard of stripe {mcid}",
                    p.cid
                )));
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
        self.store().put_pieces(&blocks, record)?;
        Ok(())
    }
}
