//! Placement (pure): which cluster members hold the pieces of a key. The targets of a key are
//! the `n` members closest to it by XOR distance — the metric Kademlia uses — between the
//! member's points and `sha256(key)`, all distinct, taken from as many failure domains
//! (zones) as possible first. Any node with the same member list computes the same targets, and
//! adding or removing a member changes the target set of exactly the keys whose `n` closest it
//! enters or leaves (the rendezvous property of "closest n"): only their pieces move.
//!
//! A member has [`POINTS`] points, `sha256(peer id ‖ i)`, and its distance to a key is that of
//! its closest point. With one point each, XOR-closest is lopsided in small clusters (a member
//! alone under a short prefix takes far more than its share: ±25 % with 10 members); several
//! points bring every member within ±20 % of its share (as virtual nodes do in consistent
//! hashing; more points would even it further at a cost per placement).
//!
//! A stripe's targets form a set: each of them holds one shard of it. Shard `i` is first placed
//! on `targets[i]`, but after members change a shard stays where it is as long as its holder is
//! still a target, and readers that miss ask the whole set.

use sha2::{Digest, Sha256};

/// One member of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Member {
    /// Its peer id, as bytes.
    pub id: Vec<u8>,
    /// Its failure domain, when the operator labelled it.
    pub zone: Option<String>,
}

impl Member {
    /// A member with no zone label.
    pub fn new(id: impl Into<Vec<u8>>) -> Self {
        Member {
            id: id.into(),
            zone: None,
        }
    }
}

/// A point in the XOR metric space.
pub type Point = [u8; 32];

/// Points per member.
pub const POINTS: u8 = 64;

/// Where a key sits in the XOR metric.
pub fn point(bytes: &[u8]) -> Point {
    Sha256::digest(bytes).into()
}

fn distance(a: &Point, b: &Point) -> Point {
    std::array::from_fn(|i| a[i] ^ b[i])
}

/// A member's points.
fn member_points(id: &[u8]) -> Vec<Point> {
    (0..POINTS)
        .map(|i| {
            let mut h = Sha256::new();
            h.update(id);
            h.update([i]);
            h.finalize().into()
        })
        .collect()
}

/// Members with their points computed once (hashing them is most of a placement's cost, and
/// reads place every block they miss).
#[derive(Debug, Clone)]
pub struct Ring {
    members: Vec<Member>,
    points: Vec<Vec<Point>>,
}

impl Ring {
    /// The ring of `members`.
    pub fn new(members: Vec<Member>) -> Ring {
        let points = members.iter().map(|m| member_points(&m.id)).collect();
        Ring { members, points }
    }

    /// Its members.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// The indexes (into [`members`](Self::members)) of the `n` targets of `key`, closest
    /// first within each round over the zones. With fewer than `n` members every member is
    /// returned once (the caller decides what several shards on one node mean).
    pub fn targets(&self, key: &[u8], n: usize) -> Vec<usize> {
        let at = point(key);
        let mut order: Vec<(Point, usize)> = self
            .points
            .iter()
            .enumerate()
            .map(|(i, pts)| {
                let d = pts
                    .iter()
                    .map(|p| distance(p, &at))
                    .min()
                    .expect("POINTS > 0");
                (d, i)
            })
            .collect();
        order.sort();
        let members = &self.members;
        let mut chosen = Vec::with_capacity(n.min(members.len()));
        let mut taken = vec![false; members.len()];
        // Rounds: each takes the closest not-yet-chosen member of every zone not yet used in
        // the round, so the first targets span as many zones as exist. Members without a label
        // share one zone, so with no labels at all this is plainly the n closest.
        while chosen.len() < n && chosen.len() < members.len() {
            let mut zones_used: Vec<Option<&str>> = Vec::new();
            for &(_, i) in &order {
                if chosen.len() == n {
                    break;
                }
                let zone = members[i].zone.as_deref();
                if taken[i] || zones_used.contains(&zone) {
                    continue;
                }
                zones_used.push(zone);
                taken[i] = true;
                chosen.push(i);
            }
        }
        chosen
    }
}

/// [`Ring::targets`] over `members` (computing their points).
pub fn targets(members: &[Member], key: &[u8], n: usize) -> Vec<usize> {
    Ring::new(members.to_vec()).targets(key, n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn members(n: usize) -> Vec<Member> {
        (0..n).map(|i| Member::new(format!("peer-{i}"))).collect()
    }

    fn target_ids(members: &[Member], key: &[u8], n: usize) -> BTreeSet<Vec<u8>> {
        targets(members, key, n)
            .into_iter()
            .map(|i| members[i].id.clone())
            .collect()
    }

    #[test]
    fn targets_are_distinct_deterministic_and_order_independent() {
        let all = members(20);
        let mut shuffled = all.clone();
        shuffled.reverse();
        for key in 0..200u32 {
            let key = key.to_be_bytes();
            let t = targets(&all, &key, 6);
            assert_eq!(t.len(), 6);
            assert_eq!(t.iter().collect::<BTreeSet<_>>().len(), 6);
            assert_eq!(target_ids(&all, &key, 6), target_ids(&shuffled, &key, 6));
        }
        assert_eq!(targets(&all[..3], b"k", 6).len(), 3, "fewer members than n");
    }

    #[test]
    fn zones_are_spread_before_any_repeats() {
        let mut all = members(12);
        for (i, m) in all.iter_mut().enumerate() {
            m.zone = Some(format!("z{}", i % 3));
        }
        for key in 0..100u32 {
            let t = targets(&all, &key.to_be_bytes(), 6);
            let zones: Vec<&str> = t.iter().map(|&i| all[i].zone.as_deref().unwrap()).collect();
            for window in zones.chunks(3) {
                let distinct: BTreeSet<_> = window.iter().collect();
                assert_eq!(distinct.len(), 3, "each round covers every zone: {zones:?}");
            }
        }
    }

    #[test]
    fn keys_spread_evenly_over_members() {
        let all = members(10);
        let mut load = vec![0u32; all.len()];
        for key in 0..10_000u32 {
            for i in targets(&all, &key.to_be_bytes(), 3) {
                load[i] += 1;
            }
        }
        // 3000 expected per member.
        for l in &load {
            assert!((2400..3600).contains(l), "more than 20 % off: {load:?}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn a_member_joining_or_leaving_moves_only_its_own_pieces(
            count in 4usize..30, n in 1usize..8, key in any::<[u8; 8]>(), extra in any::<u64>()
        ) {
            let all = members(count);
            let before = target_ids(&all, &key, n);
            // Join: the target set changes only if the newcomer enters it, replacing one.
            let mut joined = all.clone();
            let newcomer = Member::new(format!("new-{extra}"));
            joined.push(newcomer.clone());
            let after = target_ids(&joined, &key, n);
            if after.contains(&newcomer.id) {
                prop_assert_eq!(before.difference(&after).count(), if count >= n { 1 } else { 0 });
            } else {
                prop_assert_eq!(&after, &before);
            }
            // Leave: a non-target leaving changes nothing; a target leaving is replaced alone.
            let gone = all[(extra as usize) % count].id.clone();
            let left: Vec<Member> = all.iter().filter(|m| m.id != gone).cloned().collect();
            let after = target_ids(&left, &key, n);
            if before.contains(&gone) {
                prop_assert!(!after.contains(&gone));
                prop_assert_eq!(before.difference(&after).count(), 1);
                prop_assert!(after.difference(&before).count() <= 1);
            } else {
                prop_assert_eq!(&after, &before);
            }
        }
    }
}
