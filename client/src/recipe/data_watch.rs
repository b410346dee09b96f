//! Configuration watching (Kazoo's `DataWatch`): a stream of every distinct value of one node,
//! starting with the current one (`None` while the node does not exist), deduplicated by the
//! node's modification zxid, re-armed after every event and every reconnect. The watch runs
//! on its own task; the stream ends when the client's session does.

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::follow::follow;
use crate::client::Client;
use crate::error::Result;
use crate::path::validate_path;
use crate::proto::Stat;

/// One value of a watched node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeValue {
    /// The data.
    pub data: Vec<u8>,
    /// The node's Stat when read.
    pub stat: Stat,
}

/// A stream of a node's distinct values. Dropping it stops watching.
#[derive(Debug)]
pub struct DataWatch {
    rx: mpsc::UnboundedReceiver<Option<NodeValue>>,
    task: JoinHandle<()>,
}

impl DataWatch {
    /// Starts watching `path` (which need not exist yet).
    pub fn start(client: &Client, path: &str) -> Result<DataWatch> {
        validate_path(path)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(watch_data(client.clone(), path.to_owned(), tx));
        Ok(DataWatch { rx, task })
    }

    /// The next distinct value: `Some(None)` when the node does not exist, `None` once the
    /// session has ended.
    pub async fn next(&mut self) -> Option<Option<NodeValue>> {
        self.rx.recv().await
    }
}

impl Drop for DataWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn watch_data(client: Client, path: String, tx: mpsc::UnboundedSender<Option<NodeValue>>) {
    let read = || async {
        let (data, stat, watcher) = client.get_data_watch(&path).await?;
        Ok((NodeValue { data, stat }, watcher))
    };
    // A deletion and re-creation differ by mzxid, even with the same bytes.
    follow(
        &client,
        &path,
        read,
        |v| v.as_ref().map(|v| v.stat.mzxid),
        tx,
    )
    .await;
}
