//! A double barrier (ZooKeeper's recipe, Kazoo's `DoubleBarrier`): participants *enter* and
//! proceed together once `count` of them are present; they *leave* and proceed together once
//! all have left. Each participant is an ephemeral node, so one that dies stops counting as
//! present and never blocks the others' leaving.
//!
//! Rounds are kept apart by the `ready` node's generation, its modification zxid: a `ready`
//! counts only while a participant present when it was made (a node older than that zxid)
//! is still there. The last one out deletes its node and `ready` in one transaction; a
//! `ready` left behind by a round whose last participant died is stale, and the entrant that
//! completes the next round renews it (a versioned write, so two never both do) instead of
//! being released by it. `ready` is made or renewed only in a transaction that checks the
//! entrant's own node, so a write retried after that node died with its session cannot
//! release a later round.
//!
//! A participant's node exists only while `enter` runs or after it succeeded: an `enter` that
//! fails or is cancelled removes it, and `enter` returns `Ok` only while the node is there in
//! the client's current session. A participant that entered owns its node until a `leave`
//! returns: dropped before that (never left, or its `leave` cancelled half-way, say by a
//! timeout), it deletes the node in the background, as a participant that died would lose
//! it. Otherwise the others would wait in `leave` for it for as long as its session lives.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use super::protected::{
    create_ephemeral_once, delete_in_background, new_guid, retry_on_loss, PendingNode,
};
use crate::client::Client;
use crate::error::{Error, Result};
use crate::op::Op;
use crate::path::validate_path;
use crate::proto::CreateMode;

/// The node whose creation says the barrier is full.
const READY: &str = "ready";

/// One participant of a double barrier.
#[derive(Debug)]
pub struct DoubleBarrier {
    client: Client,
    path: String,
    node_name: String,
    count: usize,
    data: Vec<u8>,
    /// The session that owns this participant's node, once `enter` succeeded (0 before).
    session: AtomicI64,
    /// Whether a `leave` returned (its outcome told the caller): from then on the node is
    /// not this participant's to delete when dropped.
    settled: AtomicBool,
}

impl DoubleBarrier {
    /// A participant in the double barrier at `path` for `count` participants.
    pub fn new(client: &Client, path: &str, count: usize) -> Result<DoubleBarrier> {
        validate_path(path)?;
        if count == 0 {
            return Err(Error::InvalidArgument(
                "a double barrier needs at least one participant".into(),
            ));
        }
        Ok(DoubleBarrier {
            client: client.clone(),
            path: path.trim_end_matches('/').to_owned(),
            node_name: new_guid(client).replace('-', ""),
            count,
            data: Vec::new(),
            session: AtomicI64::new(0),
            settled: AtomicBool::new(false),
        })
    }

    fn node(&self) -> String {
        format!("{}/{}", self.path, self.node_name)
    }

    fn ready(&self) -> String {
        format!("{}/{READY}", self.path)
    }

    /// The participants present now (node names, sorted; the ready marker excluded).
    async fn present(&self) -> Result<Vec<String>> {
        let mut children =
            match retry_on_loss(&self.client, || self.client.get_children(&self.path)).await {
                Ok(c) => c,
                Err(Error::NoNode { .. }) => Vec::new(),
                Err(e) => return Err(e),
            };
        children.retain(|c| c != READY);
        children.sort();
        Ok(children)
    }

    /// Enters, and waits until `count` participants have entered. On failure, or if the
    /// future is dropped, this participant's node is removed. Fails with
    /// [`Error::SessionExpired`] if the node went with the session it was made in.
    pub async fn enter(&self) -> Result<()> {
        let client = &self.client;
        let node = self.node();
        let ready_path = self.ready();
        // A node left by a failed or cancelled enter would count as a participant forever:
        // later rounds would release one short, and leave() would wait for it.
        let mut pending = PendingNode::new(client);
        pending.arm(&node);
        client.ensure_path(&self.path).await?;
        let session = create_ephemeral_once(client, &node, &self.data)
            .await?
            .ephemeral_owner;
        loop {
            // Our node exists from here on, so a live `ready` seen now is of a round it
            // belongs to.
            let (ready, watcher) =
                retry_on_loss(client, || client.exists_watch(&ready_path)).await?;
            if let Some(ready) = &ready {
                if self.is_live(ready.mzxid).await? {
                    break;
                }
            }
            if self.present().await?.len() >= self.count {
                // Made (or renewed) now; the next look finds it live and proceeds.
                self.release_round(&node, session, ready.map(|r| r.version))
                    .await?;
                continue;
            }
            let event = watcher.await;
            if event.is_session_end() && (client.is_finished() || client.session_id() != session) {
                return Err(Error::SessionExpired);
            }
        }
        self.check_mine(session).await?;
        pending.disarm();
        self.session.store(session, Ordering::Relaxed);
        self.settled.store(false, Ordering::Relaxed);
        Ok(())
    }

    /// Whether a `ready` modified at `mzxid` belongs to a round still under way: some
    /// participant present now was already there when it was written.
    async fn is_live(&self, mzxid: i64) -> Result<bool> {
        for name in self.present().await? {
            let path = format!("{}/{name}", self.path);
            let stat = retry_on_loss(&self.client, || self.client.exists(&path)).await?;
            if stat.is_some_and(|s| s.czxid < mzxid) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Releases the round: creates `ready`, or renews a stale one at `stale_version`, in one
    /// transaction with a check that our `node` (of `session`) still exists. Losing a race to
    /// another entrant doing the same is fine: the round is released either way.
    async fn release_round(
        &self,
        node: &str,
        session: i64,
        stale_version: Option<i32>,
    ) -> Result<()> {
        let client = &self.client;
        let ready = self.ready();
        let write = match stale_version {
            None => Op::create(&ready, &[], CreateMode::Persistent),
            Some(version) => Op::set_data(&ready, &[], Some(version)),
        };
        let ops = [Op::check(node, None), write];
        match client.multi(&ops).await {
            Ok(_) | Err(Error::MultiFailed { index: 1, .. }) => Ok(()),
            // Looked at again by the caller (the node's presence is checked before `Ok`).
            Err(Error::ConnectionLoss) => client.wait_connected().await,
            Err(Error::MultiFailed { index: 0, .. }) => Err(self.gone_error(session)),
            Err(e) => Err(e),
        }
    }

    /// Succeeds if this participant's node exists and belongs to `session`, the client's
    /// current one.
    async fn check_mine(&self, session: i64) -> Result<()> {
        let node = self.node();
        let stat = retry_on_loss(&self.client, || self.client.exists(&node)).await?;
        match stat {
            Some(s) if s.ephemeral_owner == session && self.client.session_id() == session => {
                Ok(())
            }
            _ => Err(self.gone_error(session)),
        }
    }

    /// The error for a node of `session` found missing.
    fn gone_error(&self, session: i64) -> Error {
        if self.client.session_id() != session || self.client.is_finished() {
            Error::SessionExpired
        } else {
            Error::NoNode { path: self.node() }
        }
    }

    /// Leaves, and waits until every participant has left. The last one out removes the
    /// ready marker with its node, so the barrier can be used again. Fails with
    /// [`Error::SessionExpired`] if this participant's node went with the session it entered
    /// in (it cannot tell whether the others have left).
    ///
    /// Dropping this future before it returns (a timeout) still removes this participant's
    /// node, in the background, once the barrier is dropped.
    pub async fn leave(&self) -> Result<()> {
        let result = self.leave_round().await;
        self.settled.store(true, Ordering::Relaxed);
        result
    }

    async fn leave_round(&self) -> Result<()> {
        let me = self.node_name.as_str();
        let session = self.session.load(Ordering::Relaxed);
        loop {
            let present = self.present().await?;
            let mine = present.iter().any(|c| c == me);
            if !mine && session != 0 && self.client.session_id() != session {
                // Waiting for "the others" could mean waiting for the next round.
                return Err(Error::SessionExpired);
            }
            if present.is_empty() {
                return self.delete(&self.ready()).await;
            }
            if present.len() == 1 && mine {
                if self.last_out().await? {
                    return Ok(());
                }
                continue;
            }
            if !mine {
                // Gone already: wait for the others to go.
                let lowest = format!("{}/{}", self.path, present[0]);
                self.wait_gone(&lowest).await?;
                continue;
            }
            let (lowest, highest) = (&present[0], &present[present.len() - 1]);
            if lowest == me {
                // The lowest leaves last: wait for the highest.
                self.wait_gone(&format!("{}/{highest}", self.path)).await?;
            } else {
                self.delete(&self.node()).await?;
                self.wait_gone(&format!("{}/{lowest}", self.path)).await?;
            }
        }
    }

    /// Deletes our node and `ready` together, so no entrant of the next round ever sees a
    /// `ready` without a participant of its round. `false`: look again.
    async fn last_out(&self) -> Result<bool> {
        let (node, ready) = (self.node(), self.ready());
        let ops = [Op::delete(&node, None), Op::delete(&ready, None)];
        match self.client.multi(&ops).await {
            Ok(_) => Ok(true),
            // No ready (a round that never filled): just go.
            Err(Error::MultiFailed { index: 1, .. }) => {
                self.delete(&node).await?;
                Ok(true)
            }
            Err(Error::ConnectionLoss) => {
                self.client.wait_connected().await?;
                // Only this participant deletes its node: gone, in the same session, means
                // the transaction applied (the next round's nodes must not be waited for).
                let stat = retry_on_loss(&self.client, || self.client.exists(&node)).await?;
                let session = self.session.load(Ordering::Relaxed);
                Ok(stat.is_none() && self.client.session_id() == session)
            }
            Err(Error::MultiFailed { index: 0, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn delete(&self, path: &str) -> Result<()> {
        match retry_on_loss(&self.client, || self.client.delete(path, None)).await {
            Ok(()) | Err(Error::NoNode { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Waits until `path` does not exist.
    async fn wait_gone(&self, path: &str) -> Result<()> {
        let (stat, watcher) =
            retry_on_loss(&self.client, || self.client.exists_watch(path)).await?;
        if stat.is_some() {
            let event = watcher.await;
            if event.is_session_end() && self.client.is_finished() {
                return Err(Error::SessionExpired);
            }
        }
        Ok(())
    }
}

impl Drop for DoubleBarrier {
    fn drop(&mut self) {
        // Entered, and no leave returned: the node is still ours (a leave cut short, or
        // none), and the others' leave waits for it.
        if *self.session.get_mut() != 0 && !*self.settled.get_mut() {
            tracing::debug!(node = %self.node(), "participant dropped inside the barrier");
            delete_in_background(self.client.clone(), self.node());
        }
    }
}
