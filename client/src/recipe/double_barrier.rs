//! A double barrier (ZooKeeper's recipe, Kazoo's `DoubleBarrier`): participants *enter* and
//! proceed together once `count` of them are present; they *leave* and proceed together once
//! all have left. Each participant is an ephemeral node, so one that dies stops counting as
//! present and never blocks the others' leaving.

use super::protected::{create_ephemeral_once, new_guid, retry_on_loss};
use crate::client::{Client, CreateOptions};
use crate::error::{Error, Result};
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

    /// Enters, and waits until `count` participants have entered.
    pub async fn enter(&self) -> Result<()> {
        let client = &self.client;
        let ready_path = self.ready();
        client.ensure_path(&self.path).await?;
        let (ready, watcher) = retry_on_loss(client, || client.exists_watch(&ready_path)).await?;
        create_ephemeral_once(client, &self.node(), &self.data).await?;
        if ready.is_some() {
            return Ok(());
        }
        if self.present().await?.len() >= self.count {
            let opts = CreateOptions::new(CreateMode::Persistent);
            return match retry_on_loss(client, || client.create_with(&ready_path, &[], &opts)).await
            {
                Ok(_) | Err(Error::NodeExists { .. }) => Ok(()),
                Err(e) => Err(e),
            };
        }
        let event = watcher.await;
        if event.is_session_end() {
            return Err(Error::SessionExpired);
        }
        Ok(())
    }

    /// Leaves, and waits until every participant has left. The last one out removes the
    /// ready marker, so the barrier can be used again.
    pub async fn leave(&self) -> Result<()> {
        let me = self.node_name.as_str();
        loop {
            let present = self.present().await?;
            let mine = present.iter().any(|c| c == me);
            if present.is_empty() || (present.len() == 1 && mine) {
                if mine {
                    self.delete(&self.node()).await?;
                }
                return self.delete(&self.ready()).await;
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
