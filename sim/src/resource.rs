//! The fenced resource: a store that accepts writes tagged with a lock's fencing token and
//! rejects any token lower than the highest it already accepted (Kleppmann's fencing). It
//! lives in the [`History`](crate::history::History), so every write and its verdict are
//! logged atomically at the simulated instant it happens.

/// A resource guarded by fencing tokens.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FencedResource {
    highest: Option<i64>,
    accepted: u64,
    rejected: u64,
}

impl FencedResource {
    /// Offers a write with `token`: accepted (true) unless a higher token was accepted before.
    pub fn write(&mut self, token: i64) -> bool {
        if self.highest.is_some_and(|h| token < h) {
            self.rejected += 1;
            return false;
        }
        self.highest = Some(token);
        self.accepted += 1;
        true
    }

    /// The highest token accepted so far.
    pub fn highest(&self) -> Option<i64> {
        self.highest
    }

    /// Writes accepted and rejected so far.
    pub fn counts(&self) -> (u64, u64) {
        (self.accepted, self.rejected)
    }
}
