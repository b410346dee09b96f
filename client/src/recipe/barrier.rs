//! A barrier (ZooKeeper's barrier recipe, Curator's `DistributedBarrier`): while its node
//! exists, everyone who waits on it waits; removing the node lets them all through.

use super::protected::retry_on_loss;
use crate::client::{Client, CreateOptions};
use crate::error::{Error, Result};
use crate::path::validate_path;
use crate::proto::CreateMode;

/// A barrier at one path.
#[derive(Debug, Clone)]
pub struct Barrier {
    client: Client,
    path: String,
}

impl Barrier {
    /// A barrier whose node is `path`.
    pub fn new(client: &Client, path: &str) -> Result<Barrier> {
        validate_path(path)?;
        Ok(Barrier {
            client: client.clone(),
            path: path.to_owned(),
        })
    }

    /// Raises the barrier (creates its node; already raised is fine).
    pub async fn raise(&self) -> Result<()> {
        let opts = CreateOptions::new(CreateMode::Persistent).create_parents();
        match retry_on_loss(&self.client, || {
            self.client.create_with(&self.path, &[], &opts)
        })
        .await
        {
            Ok(_) | Err(Error::NodeExists { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Lowers the barrier, releasing every waiter (already lowered is fine).
    pub async fn remove(&self) -> Result<()> {
        match retry_on_loss(&self.client, || self.client.delete(&self.path, None)).await {
            Ok(()) | Err(Error::NoNode { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Waits until the barrier is down (its node does not exist). Fails if the session ends.
    pub async fn wait(&self) -> Result<()> {
        loop {
            let (stat, watcher) =
                retry_on_loss(&self.client, || self.client.exists_watch(&self.path)).await?;
            if stat.is_none() {
                return Ok(());
            }
            let event = watcher.await;
            if event.is_session_end() && self.client.is_finished() {
                return Err(Error::SessionExpired);
            }
        }
    }
}
