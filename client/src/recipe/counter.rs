//! A shared integer (Curator's `SharedCount`): one persistent node whose data is the value as
//! a 4-byte big-endian `i32`, changed by versioned compare-and-set so that concurrent writers
//! never lose an update. [`Counter::add`] is a compare-and-set loop; [`Counter::watch`] is a
//! stream of the values the node takes (a [`DataWatch`] underneath).
//!
//! The node is created with the seed value on first use. A compare-and-set whose reply is lost
//! is resolved by reading the node back, after a `sync` (the server reconnected to may be a
//! follower that has not applied the write yet): if its version has not moved the write did not apply
//! and is sent again; if the version moved by exactly one to a value that is not ours, ours did
//! not apply either; only when the outcome truly cannot be told (the node moved further, or
//! holds exactly our value one version on, which another writer could have written too) does
//! the call fail with [`Error::ConnectionLoss`], so an increment is never silently doubled.

use tokio::sync::broadcast;

use super::data_watch::DataWatch;
use super::protected::{catch_up, retry_on_loss};
use crate::client::{Client, CreateOptions};
use crate::error::{Error, Result};
use crate::path::validate_path;
use crate::proto::CreateMode;
use crate::state::State;

/// The value of a counter and the node version it was read at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CounterValue {
    /// The value.
    pub value: i32,
    /// The node's data version (pass it to [`Counter::try_set`]).
    pub version: i32,
}

/// A shared integer on one node, in Curator `SharedCount`'s byte format.
#[derive(Debug, Clone)]
pub struct Counter {
    client: Client,
    path: String,
    seed: i32,
}

/// Encodes `value` as Curator does: 4 bytes, big-endian.
pub fn encode(value: i32) -> [u8; 4] {
    value.to_be_bytes()
}

/// Decodes a counter node's data (exactly 4 bytes, big-endian).
pub fn decode(path: &str, data: &[u8]) -> Result<i32> {
    let bytes: [u8; 4] = data.try_into().map_err(|_| {
        Error::InvalidArgument(format!(
            "{path} holds {} bytes, not a 4-byte counter",
            data.len()
        ))
    })?;
    Ok(i32::from_be_bytes(bytes))
}

impl Counter {
    /// A counter at `path`, created (with parents) holding `seed` if it does not exist when
    /// first used.
    pub fn new(client: &Client, path: &str, seed: i32) -> Result<Counter> {
        validate_path(path)?;
        Ok(Counter {
            client: client.clone(),
            path: path.to_owned(),
            seed,
        })
    }

    /// The counter's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Creates the node with the seed value unless it exists.
    async fn ensure(&self) -> Result<()> {
        let opts = CreateOptions::new(CreateMode::Persistent).create_parents();
        let data = encode(self.seed);
        match retry_on_loss(&self.client, || {
            self.client.create_with(&self.path, &data, &opts)
        })
        .await
        {
            Ok(_) | Err(Error::NodeExists { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The current value and its version.
    pub async fn get(&self) -> Result<CounterValue> {
        loop {
            match retry_on_loss(&self.client, || self.client.get_data(&self.path)).await {
                Ok((data, stat)) => {
                    return Ok(CounterValue {
                        value: decode(&self.path, &data)?,
                        version: stat.version,
                    })
                }
                Err(Error::NoNode { .. }) => self.ensure().await?,
                Err(e) => return Err(e),
            }
        }
    }

    /// Sets the value to `value` if the node is still at `expected_version`; `false` if
    /// another writer got there first. Fails with [`Error::ConnectionLoss`] only when the
    /// reply was lost and whether the write applied cannot be told (see the module docs).
    pub async fn try_set(&self, value: i32, expected_version: i32) -> Result<bool> {
        let data = encode(value);
        loop {
            match self
                .client
                .set_data(&self.path, &data, Some(expected_version))
                .await
            {
                Ok(_) => return Ok(true),
                Err(Error::BadVersion { .. }) => return Ok(false),
                Err(Error::NoNode { .. }) => {
                    self.ensure().await?;
                    return Ok(false);
                }
                Err(Error::ConnectionLoss) => {
                    self.client.wait_connected().await?;
                    // Read what the leader has, not what a lagging follower still shows:
                    // there the old version would send the write again (and `add` would
                    // increment twice).
                    catch_up(&self.client, &self.path).await?;
                    let now = self.get().await?;
                    if now.version == expected_version {
                        // Not applied: send it again.
                        continue;
                    }
                    if now.version == expected_version.wrapping_add(1) && now.value != value {
                        // Someone else's write took the version we wanted.
                        return Ok(false);
                    }
                    tracing::debug!(path = %self.path, "counter write outcome unknown");
                    return Err(Error::ConnectionLoss);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Sets the value unconditionally.
    pub async fn set(&self, value: i32) -> Result<()> {
        let data = encode(value);
        loop {
            match retry_on_loss(&self.client, || {
                self.client.set_data(&self.path, &data, None)
            })
            .await
            {
                Ok(_) => return Ok(()),
                Err(Error::NoNode { .. }) => self.ensure().await?,
                Err(e) => return Err(e),
            }
        }
    }

    /// Adds `delta` (wrapping on overflow, as Java's `int` does) by compare-and-set, retrying
    /// until no other writer interferes; returns the new value.
    pub async fn add(&self, delta: i32) -> Result<i32> {
        loop {
            let current = self.get().await?;
            let next = current.value.wrapping_add(delta);
            if self.try_set(next, current.version).await? {
                return Ok(next);
            }
        }
    }

    /// A stream of the counter's values (starting with the current one, if the node exists).
    pub fn watch(&self) -> Result<CounterWatch> {
        Ok(CounterWatch {
            path: self.path.clone(),
            // Subscribed before the data watch starts: no transition after it is missed.
            states: self.client.state_changes(),
            inner: DataWatch::start(&self.client, &self.path)?,
        })
    }
}

/// What [`CounterWatch::next_event`] yields (Curator's `SharedCountListener`, which hears
/// both the count and the connection's state).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CounterEvent {
    /// The counter took this value.
    Value(CounterValue),
    /// The client's connection state changed: while it is not connected the values seen may
    /// be stale, and on `Lost` the watch is about to end.
    State(State),
}

/// The values a counter takes, in order (distinct node versions). Dropping it stops watching.
#[derive(Debug)]
pub struct CounterWatch {
    path: String,
    states: broadcast::Receiver<State>,
    inner: DataWatch,
}

impl CounterWatch {
    /// The next value or connection state change, in the order they happen; `None` once the
    /// session has ended (after that state was yielded) and no value is left. A state change
    /// missed by a reader too slow to keep up is skipped (the next one still comes).
    pub async fn next_event(&mut self) -> Option<CounterEvent> {
        loop {
            let state = {
                let CounterWatch {
                    path,
                    states,
                    inner,
                } = self;
                tokio::select! {
                    biased;
                    state = states.recv() => state,
                    value = next_value(path, inner) => return value.map(CounterEvent::Value),
                }
            };
            match state {
                Ok(state) => return Some(CounterEvent::State(state)),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::debug!(path = %self.path, missed = n, "counter watch missed state changes");
                }
                // The client is gone: only values remain.
                Err(broadcast::error::RecvError::Closed) => {
                    return self.next().await.map(CounterEvent::Value);
                }
            }
        }
    }

    /// The next value; `None` once the session has ended. A missing node, or data that is not
    /// a 4-byte counter, is skipped.
    pub async fn next(&mut self) -> Option<CounterValue> {
        next_value(&self.path, &mut self.inner).await
    }
}

/// The next counter value `inner` sees at `path`, skipping a missing node and data that is
/// not a 4-byte counter; `None` once the session has ended.
async fn next_value(path: &str, inner: &mut DataWatch) -> Option<CounterValue> {
    loop {
        match inner.next().await? {
            Some(v) => match decode(path, &v.data) {
                Ok(value) => {
                    return Some(CounterValue {
                        value,
                        version: v.stat.version,
                    })
                }
                Err(e) => tracing::debug!(error = %e, "counter value skipped"),
            },
            None => tracing::trace!(%path, "counter node absent"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curator_byte_format() {
        assert_eq!(encode(1), [0, 0, 0, 1]);
        assert_eq!(encode(-2), [0xff, 0xff, 0xff, 0xfe]);
        assert_eq!(decode("/c", &[0, 0, 1, 0]), Ok(256));
        assert!(decode("/c", &[]).is_err());
        assert!(decode("/c", &[0, 0, 0, 0, 1]).is_err());
    }
}
