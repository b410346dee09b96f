//! Following one node through one-shot watches: read it (leaving a watch), send the value if
//! it is new, wait for the watch, read again, through reconnects, and for a node that does not
//! exist yet (then an exists watch waits for it). `DataWatch` and `ChildrenWatch` are this loop
//! with different reads.

use std::future::Future;

use tokio::sync::mpsc;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::watch::Watcher;

/// Sends every distinct value of `path` (by `key`) to `tx`, `None` while the node is absent,
/// until the receiver is dropped or the client is finished.
pub(crate) async fn follow<T, K, F, Fut>(
    client: &Client,
    path: &str,
    mut read: F,
    key: impl Fn(&Option<T>) -> K,
    tx: mpsc::UnboundedSender<Option<T>>,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(T, Watcher)>>,
    K: PartialEq,
{
    let mut last: Option<K> = None;
    loop {
        let outcome = match read().await {
            Ok((value, watcher)) => Ok((Some(value), watcher)),
            Err(Error::NoNode { .. }) => match client.exists_watch(path).await {
                Ok((None, watcher)) => Ok((None, watcher)),
                // Created between the two reads: read it again.
                Ok((Some(_), _)) => continue,
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        let (value, watcher) = match outcome {
            Ok(v) => v,
            // A renewing client carries on in its next session (the drain of the expired
            // one fails what was queued with SessionExpired); the next read reports the gap.
            Err(Error::ConnectionLoss | Error::SessionExpired) if !client.is_finished() => {
                if client.wait_connected().await.is_err() {
                    return;
                }
                continue;
            }
            Err(e) => {
                tracing::debug!(%path, error = %e, "stopped following node");
                return;
            }
        };
        let k = key(&value);
        if last.as_ref() != Some(&k) {
            last = Some(k);
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
