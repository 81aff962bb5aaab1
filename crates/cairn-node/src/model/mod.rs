//! The node's shared record types, at the bottom of the crate so no module loop can form
//! through them: what is stored about buckets and objects ([`records`]), encryption records
//! ([`crypt`]), heads and version records ([`heads`]), takeover certificates ([`takeover`]), and the codec ([`codec`]).
//! Modules above use these; these use only [`crate::identity`] and the error type.

pub mod codec;
pub mod crypt;
pub mod heads;
pub mod records;
pub mod takeover;
