//! A time-limited lease (Kazoo's `NonBlockingLease`): one holder at a time, identified by a
//! holder id, for a duration; a try to take it succeeds if nobody holds it, if the last lease
//! has expired, or if it is the holder's own (which renews it). It never waits.
//!
//! Time is the server's, never the client's: "now" is the modification time of a write to the
//! scratch node `{path}/.clock` (the leader stamps every transaction with its clock), and the
//! lease node `{path}/lease_holder` stores the expiry in server milliseconds with the holder.
//! The lease node is taken or renewed with a transaction that checks the version read, so two
//! contenders can never both win. The data format is this recipe's own (`zkit-lease 1`, the
//! expiry, the holder, one per line); Kazoo's wall-clock format is not used.
//!
//! The lease is advisory: as with any lease, a holder must stop using it before
//! [`NonBlockingLease::expires_at_ms`], allowing for the server clock's drift and delays.

use std::time::Duration;

use super::protected::{catch_up, retry_on_loss};
use crate::client::{Client, CreateOptions};
use crate::error::{Error, Result};
use crate::op::Op;
use crate::path::validate_path;
use crate::proto::CreateMode;

/// The format tag on the first line of a lease node.
const FORMAT: &str = "zkit-lease 1";

/// Who holds a lease, and until when (server milliseconds since the epoch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseHolder {
    /// The holder's id.
    pub holder: String,
    /// When the lease ends, on the server's clock.
    pub expires_at_ms: i64,
}

impl LeaseHolder {
    fn encode(&self) -> Vec<u8> {
        format!("{FORMAT}\n{}\n{}", self.expires_at_ms, self.holder).into_bytes()
    }

    fn decode(data: &[u8]) -> Option<LeaseHolder> {
        let text = std::str::from_utf8(data).ok()?;
        let mut lines = text.splitn(3, '\n');
        if lines.next()? != FORMAT {
            return None;
        }
        let expires_at_ms = lines.next()?.parse().ok()?;
        let holder = lines.next()?.to_owned();
        Some(LeaseHolder {
            holder,
            expires_at_ms,
        })
    }
}

/// The outcome of one try to take a lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NonBlockingLease {
    path: String,
    holder: String,
    obtained: bool,
    current: Option<LeaseHolder>,
}

impl NonBlockingLease {
    /// Tries once to take (or, for its current holder, renew) the lease at `path` for
    /// `duration` as `holder`. Look at [`obtained`](Self::obtained) for the outcome.
    pub async fn acquire(
        client: &Client,
        path: &str,
        duration: Duration,
        holder: &str,
    ) -> Result<NonBlockingLease> {
        validate_path(path)?;
        let path = path.trim_end_matches('/').to_owned();
        let node = format!("{path}/lease_holder");
        let duration_ms = i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
        let now = Self::server_now(client, &path).await?;
        let ours = LeaseHolder {
            holder: holder.to_owned(),
            expires_at_ms: now.saturating_add(duration_ms),
        };
        let outcome = |obtained: bool, current: Option<LeaseHolder>| NonBlockingLease {
            path: path.clone(),
            holder: holder.to_owned(),
            obtained,
            current,
        };
        let read = match retry_on_loss(client, || client.get_data(&node)).await {
            Ok((data, stat)) => Some((LeaseHolder::decode(&data), stat.version)),
            Err(Error::NoNode { .. }) => None,
            Err(e) => return Err(e),
        };
        let result = match read {
            None => client
                .create(&node, &ours.encode(), CreateMode::Persistent)
                .await
                .map(|_| ()),
            // A record in another format (a newer version of this recipe): leave it alone.
            Some((None, _)) => return Ok(outcome(false, None)),
            Some((Some(current), version)) => {
                if current.holder != holder && now < current.expires_at_ms {
                    tracing::debug!(%path, holder = %current.holder, "lease held");
                    return Ok(outcome(false, Some(current)));
                }
                client
                    .multi(&[
                        Op::check(&node, Some(version)),
                        Op::set_data(&node, &ours.encode(), None),
                    ])
                    .await
                    .map(|_| ())
            }
        };
        match result {
            Ok(()) => Ok(outcome(true, Some(ours))),
            Err(Error::NodeExists { .. } | Error::MultiFailed { .. }) => {
                // Another contender got there between our read and our write.
                let current = Self::holder_of(client, &node).await?;
                Ok(outcome(false, current))
            }
            Err(Error::ConnectionLoss) => {
                // The write may have applied: it did if the node holds exactly our record, as
                // the leader has it (a lagging follower may not show the write yet).
                client.wait_connected().await?;
                catch_up(client, &node).await?;
                let current = Self::holder_of(client, &node).await?;
                Ok(outcome(current.as_ref() == Some(&ours), current))
            }
            Err(e) => Err(e),
        }
    }

    /// The server's current time in milliseconds since the epoch: the modification time of a
    /// write to `{path}/.clock` (created, with parents, if missing).
    pub async fn server_now(client: &Client, path: &str) -> Result<i64> {
        let clock = format!("{}/.clock", path.trim_end_matches('/'));
        let opts = CreateOptions::new(CreateMode::Persistent).create_parents();
        loop {
            match retry_on_loss(client, || client.set_data(&clock, &[], None)).await {
                Ok(stat) => return Ok(stat.mtime),
                Err(Error::NoNode { .. }) => {
                    match retry_on_loss(client, || client.create_with(&clock, &[], &opts)).await {
                        Ok((_, stat)) => return Ok(stat.mtime),
                        Err(Error::NodeExists { .. }) => {}
                        Err(e) => return Err(e),
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The lease's current holder as stored (expired or not), `None` if there is none.
    pub async fn current(client: &Client, path: &str) -> Result<Option<LeaseHolder>> {
        validate_path(path)?;
        let node = format!("{}/lease_holder", path.trim_end_matches('/'));
        Self::holder_of(client, &node).await
    }

    async fn holder_of(client: &Client, node: &str) -> Result<Option<LeaseHolder>> {
        match retry_on_loss(client, || client.get_data(node)).await {
            Ok((data, _)) => Ok(LeaseHolder::decode(&data)),
            Err(Error::NoNode { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Whether this try took (or renewed) the lease.
    pub fn obtained(&self) -> bool {
        self.obtained
    }

    /// The lease's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The holder id this try used.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// Who held the lease as this try left it: this holder if obtained, else the other
    /// holder seen (`None` if the record could not be read).
    pub fn current_holder(&self) -> Option<&LeaseHolder> {
        self.current.as_ref()
    }

    /// When the lease obtained ends, on the server's clock (`None` if not obtained).
    pub fn expires_at_ms(&self) -> Option<i64> {
        self.current
            .as_ref()
            .filter(|_| self.obtained)
            .map(|c| c.expires_at_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trips() {
        let h = LeaseHolder {
            holder: "worker 1\nodd".into(),
            expires_at_ms: 1_700_000_000_123,
        };
        assert_eq!(LeaseHolder::decode(&h.encode()), Some(h));
        assert_eq!(LeaseHolder::decode(b"garbage"), None);
        assert_eq!(LeaseHolder::decode(b"zkit-lease 1\nx\ny"), None);
    }
}
