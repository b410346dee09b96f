//! The order in which a server lists children and ephemeral nodes.
//!
//! ZooKeeper keeps a node's children (and a session's ephemeral nodes) in a Java `HashSet`
//! and answers in its iteration order: neither sorted nor insertion order, and two servers
//! need not agree (a table's size depends on its history). A recipe that takes the list as
//! sorted, or sorts protected names (`_c_<guid>-...`) by their whole name, works against a
//! sorted simulation and fails against the real thing. So the simulated server lists names
//! in the order of a keyed hash, the key drawn from its seed: deterministic for a seed,
//! unsorted, and different from one server to another. For one server, one set of names
//! always comes out in the same order (as a `HashSet` of one history would).

/// The listing order of a server whose seed is `seed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListOrder {
    key: u64,
}

impl ListOrder {
    /// The order of the server seeded with `seed`.
    pub fn new(seed: u64) -> ListOrder {
        ListOrder {
            key: mix(seed ^ 0x6c69_7374_6f72_6472),
        }
    }

    /// `names` in this server's order.
    pub fn list<'a>(&self, names: impl IntoIterator<Item = &'a String>) -> Vec<String> {
        let mut keyed: Vec<(u64, &String)> = names.into_iter().map(|n| (self.hash(n), n)).collect();
        keyed.sort_unstable();
        keyed.into_iter().map(|(_, n)| n.clone()).collect()
    }

    /// FNV-1a over the name from a keyed offset, finished by a 64-bit mixer.
    fn hash(&self, name: &str) -> u64 {
        let mut h = 0xcbf2_9ce4_8422_2325 ^ self.key;
        for b in name.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        mix(h)
    }
}

/// splitmix64's finaliser.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::ListOrder;

    fn names() -> Vec<String> {
        (0..12).map(|i| format!("n-{i:010}")).collect()
    }

    #[test]
    fn the_order_is_a_permutation_fixed_per_seed_and_not_sorted() {
        let names = names();
        let a = ListOrder::new(1).list(&names);
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, names, "the same names, each once");
        assert_ne!(a, names, "not sorted");
        assert_eq!(
            ListOrder::new(1).list(names.iter().rev()),
            a,
            "fixed per seed"
        );
        assert_ne!(
            ListOrder::new(2).list(&names),
            a,
            "another server, another order"
        );
    }
}
