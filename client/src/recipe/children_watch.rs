//! Membership watching (Kazoo's `ChildrenWatch`): a stream of every distinct children list of
//! one node, starting with the current one (`None` while the node does not exist), re-armed
//! after every event and every reconnect. The stream ends when the client's session does.

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::follow::follow;
use crate::client::Client;
use crate::error::Result;
use crate::path::validate_path;

/// A stream of a node's distinct children lists (sorted). Dropping it stops watching.
#[derive(Debug)]
pub struct ChildrenWatch {
    rx: mpsc::UnboundedReceiver<Option<Vec<String>>>,
    task: JoinHandle<()>,
}

impl ChildrenWatch {
    /// Starts watching the children of `path` (which need not exist yet).
    pub fn start(client: &Client, path: &str) -> Result<ChildrenWatch> {
        validate_path(path)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(watch_children(client.clone(), path.to_owned(), tx));
        Ok(ChildrenWatch { rx, task })
    }

    /// The next distinct children list (sorted): `Some(None)` when the node does not exist,
    /// `None` once the session has ended.
    pub async fn next(&mut self) -> Option<Option<Vec<String>>> {
        self.rx.recv().await
    }
}

impl Drop for ChildrenWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn watch_children(
    client: Client,
    path: String,
    tx: mpsc::UnboundedSender<Option<Vec<String>>>,
) {
    let read = || async {
        let (mut children, watcher) = client.get_children_watch(&path).await?;
        children.sort();
        Ok((children, watcher))
    };
    follow(&client, &path, read, Clone::clone, tx).await;
}
