//! Membership watching (Kazoo's `ChildrenWatch`): a stream of every distinct children list of
//! one node, starting with the current one (`None` while the node does not exist), re-armed
//! after every event and every reconnect. The stream ends when the client's session does.

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::protected::retry_on_loss;
use crate::client::Client;
use crate::error::{Error, Result};
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
    let mut last: Option<Option<Vec<String>>> = None;
    loop {
        let read = retry_on_loss(&client, || async {
            match client.get_children_watch(&path).await {
                Ok((mut children, watcher)) => {
                    children.sort();
                    Ok((Some(children), watcher))
                }
                Err(Error::NoNode { .. }) => match client.exists_watch(&path).await? {
                    (Some(_), _) => Err(Error::ConnectionLoss),
                    (None, watcher) => Ok((None, watcher)),
                },
                Err(e) => Err(e),
            }
        })
        .await;
        let (value, watcher) = match read {
            Ok(v) => v,
            Err(e) => {
                tracing::debug!(%path, error = %e, "children watch ends");
                return;
            }
        };
        if last.as_ref() != Some(&value) {
            last = Some(value.clone());
            if tx.send(value).is_err() {
                return;
            }
        }
        let event = watcher.await;
        if event.is_session_end() && client.is_finished() {
            return;
        }
    }
}
