//! Session bookkeeping (`SessionTrackerImpl` + `ExpiryQueue`): ids and passwords drawn from
//! the server's seed, timeout negotiation, and expiry in tick-aligned buckets.
//!
//! Times are milliseconds since the server started, read from `tokio::time` by the caller,
//! so the tracker itself is pure and runs the same under paused time, turmoil, or a real
//! clock. A session's deadline is `now + timeout` rounded up to the next tick (ZooKeeper's
//! `roundToNextInterval`); every request on the session pushes it back.

use std::collections::{BTreeMap, BTreeSet};

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Length of a session password.
pub const PASSWORD_LEN: usize = 16;

/// One live session as the tracker sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// Negotiated timeout in milliseconds.
    pub timeout_ms: i32,
    /// The session's password.
    pub password: [u8; PASSWORD_LEN],
    /// When it expires unless touched, ms since server start (a multiple of the tick).
    pub expires_at: u64,
}

/// Clamps a requested session timeout into `[min, max]` (`processConnectRequest`).
pub fn negotiate_timeout(requested: i32, min_ms: i32, max_ms: i32) -> i32 {
    requested.max(min_ms).min(max_ms)
}

/// Live sessions, their passwords and deadlines.
#[derive(Debug, Clone)]
pub struct SessionTracker {
    tick_ms: u64,
    rng: ChaCha8Rng,
    next_id: i64,
    sessions: BTreeMap<i64, SessionInfo>,
    buckets: BTreeMap<u64, BTreeSet<i64>>,
}

impl SessionTracker {
    /// A tracker for server `server_id` (the session id's high byte, 1..=254), expiring in
    /// buckets of `tick_ms`, with ids and passwords drawn from `seed`.
    pub fn new(server_id: u8, tick_ms: u64, seed: u64) -> SessionTracker {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        // Like ZooKeeper: the server id in the high byte, a varying middle, a counter below.
        let middle = i64::from(rng.next_u32() & 0x00ff_ffff) << 24;
        let next_id = (i64::from(server_id) << 56) | middle | 1;
        SessionTracker {
            tick_ms: tick_ms.max(1),
            rng,
            next_id,
            sessions: BTreeMap::new(),
            buckets: BTreeMap::new(),
        }
    }

    fn deadline(&self, now: u64, timeout_ms: i32) -> u64 {
        let t = now.saturating_add(u64::try_from(timeout_ms).unwrap_or(0));
        (t / self.tick_ms + 1) * self.tick_ms
    }

    fn schedule(&mut self, id: i64, at: u64) {
        if let Some(info) = self.sessions.get_mut(&id) {
            if let Some(bucket) = self.buckets.get_mut(&info.expires_at) {
                bucket.remove(&id);
                if bucket.is_empty() {
                    self.buckets.remove(&info.expires_at);
                }
            }
            info.expires_at = at;
            self.buckets.entry(at).or_default().insert(id);
        }
    }

    /// Opens a session with a negotiated timeout: its id and password.
    pub fn create(&mut self, timeout_ms: i32, now: u64) -> (i64, [u8; PASSWORD_LEN]) {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let mut password = [0u8; PASSWORD_LEN];
        self.rng.fill_bytes(&mut password);
        let expires_at = self.deadline(now, timeout_ms);
        self.sessions.insert(
            id,
            SessionInfo {
                timeout_ms,
                password,
                expires_at,
            },
        );
        self.buckets.entry(expires_at).or_default().insert(id);
        (id, password)
    }

    /// Registers a session created elsewhere (an ensemble member applying its creation).
    pub fn insert(&mut self, id: i64, timeout_ms: i32, password: [u8; PASSWORD_LEN], now: u64) {
        self.remove(id);
        let expires_at = self.deadline(now, timeout_ms);
        self.sessions.insert(
            id,
            SessionInfo {
                timeout_ms,
                password,
                expires_at,
            },
        );
        self.buckets.entry(expires_at).or_default().insert(id);
    }

    /// The session, if live.
    pub fn get(&self, id: i64) -> Option<&SessionInfo> {
        self.sessions.get(&id)
    }

    /// Every live session.
    pub fn sessions(&self) -> &BTreeMap<i64, SessionInfo> {
        &self.sessions
    }

    /// Pushes the session's deadline back; false if it is not live.
    pub fn touch(&mut self, id: i64, now: u64) -> bool {
        let Some(timeout) = self.sessions.get(&id).map(|s| s.timeout_ms) else {
            return false;
        };
        let at = self.deadline(now, timeout);
        self.schedule(id, at);
        true
    }

    /// Changes the session's timeout (a reconnect negotiates it again) and touches it.
    pub fn set_timeout(&mut self, id: i64, timeout_ms: i32, now: u64) -> bool {
        match self.sessions.get_mut(&id) {
            Some(info) => info.timeout_ms = timeout_ms,
            None => return false,
        }
        self.touch(id, now)
    }

    /// Forgets a session (closed or expired).
    pub fn remove(&mut self, id: i64) -> Option<SessionInfo> {
        let info = self.sessions.remove(&id)?;
        if let Some(bucket) = self.buckets.get_mut(&info.expires_at) {
            bucket.remove(&id);
            if bucket.is_empty() {
                self.buckets.remove(&info.expires_at);
            }
        }
        Some(info)
    }

    /// The earliest deadline, if any session is live.
    pub fn next_expiry(&self) -> Option<u64> {
        self.buckets.keys().next().copied()
    }

    /// Sessions whose deadline is at or before `now`, in id order; they stay live until
    /// [`remove`](Self::remove)d.
    pub fn expired(&self, now: u64) -> Vec<i64> {
        self.buckets
            .range(..=now)
            .flat_map(|(_, ids)| ids.iter().copied())
            .collect::<BTreeSet<i64>>()
            .into_iter()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_clamps() {
        assert_eq!(negotiate_timeout(1, 4000, 40000), 4000);
        assert_eq!(negotiate_timeout(100_000, 4000, 40000), 40000);
        assert_eq!(negotiate_timeout(10_000, 4000, 40000), 10_000);
    }

    #[test]
    fn buckets_round_up_to_the_tick() {
        let mut t = SessionTracker::new(1, 2000, 7);
        let (id, pw) = t.create(4000, 500);
        assert_eq!(t.get(id).map(|s| s.expires_at), Some(6000));
        assert_eq!(id >> 56, 1);
        assert!(t.expired(5999).is_empty());
        assert_eq!(t.expired(6000), vec![id]);
        assert!(t.touch(id, 3000));
        assert_eq!(t.next_expiry(), Some(8000));
        assert!(t.expired(6000).is_empty());
        let again = SessionTracker::new(1, 2000, 7).create(4000, 0);
        assert_eq!(again, (id, pw), "same seed, same ids and passwords");
        assert!(t.remove(id).is_some());
        assert_eq!(t.next_expiry(), None);
    }
}
