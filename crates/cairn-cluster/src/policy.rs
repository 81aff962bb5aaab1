//! The redundancy policy: `replicas:N` (N whole copies of every block) or `ec:K+M` (stripes of
//! K data blocks plus M Reed-Solomon parity shards), how it is written in a config file, and the
//! write quorum each one needs before a PUT is acknowledged. K and M are at most
//! [`MAX_SHARDS`] (64), N at most [`MAX_REPLICAS`] (16); the piece protocol holds peers to the
//! same numbers ([`crate::limits`]).

use std::fmt;
use std::str::FromStr;

use crate::ClusterError;

/// How data is kept across the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Redundancy {
    /// `replicas:N`: N copies of every block on N distinct nodes.
    Replicas(u8),
    /// `ec:K+M`: stripes of up to K data blocks and M parity shards on K+M distinct nodes; any K
    /// shards of a stripe rebuild it.
    Ec {
        /// Data shards per stripe.
        k: u8,
        /// Parity shards per stripe.
        m: u8,
    },
}

/// Largest K or M accepted (stripes must stay small enough to read back in one go).
pub const MAX_SHARDS: u8 = 64;

/// Largest N of `replicas:N` (and of the copies a peer's `Put` may ask for): every copy is a
/// whole block, and repair holds all N at once.
pub const MAX_REPLICAS: u8 = 16;

impl Redundancy {
    /// How many pieces of a unit (a block, or a stripe of `data` blocks) exist in all.
    pub fn width(&self, data: usize) -> usize {
        match *self {
            Redundancy::Replicas(n) => n as usize,
            Redundancy::Ec { m, .. } => data + m as usize,
        }
    }

    /// How many pieces may be lost while the unit stays readable.
    pub fn tolerance(&self) -> usize {
        match *self {
            Redundancy::Replicas(n) => (n as usize).saturating_sub(1),
            Redundancy::Ec { m, .. } => m as usize,
        }
    }

    /// Pieces that must exist for the unit to be read: K' data blocks' worth of shards, or one
    /// copy.
    pub fn needed(&self, data: usize) -> usize {
        match *self {
            Redundancy::Replicas(_) => 1,
            Redundancy::Ec { .. } => data,
        }
    }

    /// The write quorum: whether a unit whose pieces are durable on nodes holding `per_node`
    /// pieces each may be acknowledged. It may when it would still be readable after losing
    /// any one more node — all pieces stored, or the missing ones queued for repair — and
    /// never when one node holds everything (a cluster that cannot yet spread a write refuses
    /// it rather than acknowledge data one failure away from loss).
    pub fn acknowledges(&self, per_node: &[usize], data: usize) -> bool {
        let total: usize = per_node.iter().sum();
        let largest = per_node.iter().copied().max().unwrap_or(0);
        total - largest >= self.needed(data)
    }
}

impl fmt::Display for Redundancy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Redundancy::Replicas(n) => write!(f, "replicas:{n}"),
            Redundancy::Ec { k, m } => write!(f, "ec:{k}+{m}"),
        }
    }
}

impl FromStr for Redundancy {
    type Err = ClusterError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| {
            ClusterError::Policy(format!(
                "{s:?}: {why} (expected \"replicas:N\" or \"ec:K+M\", e.g. \"ec:4+2\")"
            ))
        };
        let number = |t: &str, max: u8| -> Result<u8, ClusterError> {
            match t.trim().parse::<u8>() {
                Ok(n) if (1..=max).contains(&n) => Ok(n),
                _ => Err(bad(&format!("{t:?} is not a number from 1 to {max}"))),
            }
        };
        let (kind, rest) = s.trim().split_once(':').ok_or_else(|| bad("no ':'"))?;
        match kind {
            "replicas" => Ok(Redundancy::Replicas(number(rest, MAX_REPLICAS)?)),
            "ec" => {
                let (k, m) = rest.split_once('+').ok_or_else(|| bad("no '+'"))?;
                Ok(Redundancy::Ec {
                    k: number(k, MAX_SHARDS)?,
                    m: number(m, MAX_SHARDS)?,
                })
            }
            _ => Err(bad("unknown kind")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse_print_and_reject_nonsense() {
        for text in [
            "replicas:3",
            "ec:4+2",
            "ec:16+4",
            "replicas:1",
            "replicas:16",
            "ec:64+64",
        ] {
            let p: Redundancy = text.parse().unwrap();
            assert_eq!(p.to_string(), text);
        }
        assert_eq!(
            "ec:16+4".parse::<Redundancy>().unwrap(),
            Redundancy::Ec { k: 16, m: 4 }
        );
        for bad in [
            "",
            "ec:4",
            "ec:0+2",
            "ec:4+0",
            "replicas:",
            "raid:5",
            "ec:a+b",
            "ec:65+1",
            "replicas:0",
            "replicas:17",
        ] {
            let err = bad.parse::<Redundancy>().unwrap_err().to_string();
            assert!(err.contains("expected"), "{bad}: {err}");
        }
    }

    #[test]
    fn quorum_survives_one_more_node_loss() {
        let ec = Redundancy::Ec { k: 4, m: 2 };
        assert_eq!((ec.width(4), ec.needed(4), ec.tolerance()), (6, 4, 2));
        assert!(ec.acknowledges(&[1; 6], 4));
        assert!(ec.acknowledges(&[1; 5], 4), "one target down: 5 of 6");
        assert!(!ec.acknowledges(&[1; 4], 4), "one more loss would leave 3");
        assert!(ec.acknowledges(&[2, 2, 1, 1], 4), "6 shards on 4 nodes");
        assert!(!ec.acknowledges(&[6], 4), "everything on one node");
        assert!(ec.acknowledges(&[1, 1, 1], 1), "a one-block stripe: 1+2");
        let ec16 = Redundancy::Ec { k: 16, m: 4 };
        assert!(ec16.acknowledges(&[1; 17], 16) && !ec16.acknowledges(&[1; 16], 16));
        let r3 = Redundancy::Replicas(3);
        assert_eq!((r3.width(1), r3.tolerance()), (3, 2));
        assert!(r3.acknowledges(&[1, 1], 1) && !r3.acknowledges(&[1], 1));
        assert!(!r3.acknowledges(&[3], 1), "three copies on one node");
    }
}
