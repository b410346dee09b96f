//! What every sequential-node recipe shares: protected ephemeral-sequential creation that
//! survives a lost reply (Curator's `_c_<guid>-` names), sorting contenders by sequence,
//! retrying idempotent calls through connection loss, and deleting a node in the background
//! until it is gone or the session is.

use std::future::Future;

use crate::client::{Client, CreateOptions};
use crate::error::{Error, Result};
use crate::proto::{CreateMode, Stat};

/// The prefix Curator puts before the guid of a protected node.
pub(crate) const PROTECTED_PREFIX: &str = "_c_";

/// A fresh guid from the client's seeded RNG, in UUID layout (`8-4-4-4-12` hex digits).
pub(crate) fn new_guid(client: &Client) -> String {
    let a = client.random_u64();
    let b = client.random_u64();
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xffff,
        b >> 48,
        b & 0xffff_ffff_ffff
    )
}

/// Runs an idempotent `op`, waiting for a reconnect and trying again after each
/// `ConnectionLoss`; any other outcome (the session's end included) is returned.
pub(crate) async fn retry_on_loss<T, F, Fut>(client: &Client, mut op: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    loop {
        match op().await {
            Err(Error::ConnectionLoss) => client.wait_connected().await?,
            other => return other,
        }
    }
}

/// Creates the ephemeral sequential node `{dir}/{name}` (name carrying `guid`), creating
/// missing parents (as containers with `containers`). When the reply is lost the create may have applied: the node is then
/// looked up by its guid, and taken only if this session owns it (a node of an earlier
/// session is about to vanish and is not ours).
pub(crate) async fn create_protected(
    client: &Client,
    dir: &str,
    name: &str,
    guid: &str,
    data: &[u8],
    containers: bool,
) -> Result<(String, Stat)> {
    let path = format!("{dir}/{name}");
    let opts = CreateOptions::new(CreateMode::EphemeralSequential);
    let opts = if containers {
        opts.create_parent_containers()
    } else {
        opts.create_parents()
    };
    // Cancelled while a create is in flight, the node may exist without anyone knowing its
    // name: the guard then finds it by guid and deletes it.
    let mut in_flight = InFlight {
        client: client.clone(),
        dir: dir.to_owned(),
        guid: guid.to_owned(),
        done: false,
    };
    let result = loop {
        match client.create_with(&path, data, &opts).await {
            Err(Error::ConnectionLoss) => {
                client.wait_connected().await?;
                if let Some(found) = find_ours(client, dir, guid).await? {
                    tracing::debug!(path = %found.0, "recovered protected node after a lost reply");
                    break Ok(found);
                }
            }
            other => break other,
        }
    };
    in_flight.done = true;
    result
}

/// A protected create that has not finished (see [`create_protected`]).
struct InFlight {
    client: Client,
    dir: String,
    guid: String,
    done: bool,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let (client, dir, guid) = (self.client.clone(), self.dir.clone(), self.guid.clone());
        spawn_cleanup(async move {
            // Caught up with the leader first (see `catch_up`), this lookup sees the create
            // if it was applied at all.
            if let Ok(Some((path, _))) = find_ours(&client, &dir, &guid).await {
                match retry_on_loss(&client, || client.delete(&path, None)).await {
                    Ok(()) | Err(Error::NoNode { .. }) => {
                        tracing::debug!(%path, "cancelled create cleaned up")
                    }
                    Err(e) => {
                        tracing::debug!(%path, error = %e, "cancelled create left to the session's end")
                    }
                }
            }
        });
    }
}

/// Creates the ephemeral node `path` (a name unique to this caller) idempotently, so that a
/// lost reply or a second call is harmless: a node at `path` owned by this session is ours.
pub(crate) async fn create_ephemeral_once(
    client: &Client,
    path: &str,
    data: &[u8],
) -> Result<Stat> {
    let opts = CreateOptions::new(CreateMode::Ephemeral).create_parents();
    loop {
        match client.create_with(path, data, &opts).await {
            Ok((_, stat)) => return Ok(stat),
            Err(e @ (Error::ConnectionLoss | Error::NodeExists { .. })) => {
                client.wait_connected().await?;
                catch_up(client, path).await?;
                match retry_on_loss(client, || client.exists(path)).await? {
                    Some(stat) if stat.ephemeral_owner == client.session_id() => return Ok(stat),
                    // Someone else's (or an earlier session's, about to vanish).
                    Some(_) if matches!(e, Error::NodeExists { .. }) => return Err(e),
                    _ => {}
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// Brings the server this client is connected to up to date with the leader before a
/// lookup of what a lost reply may have done: after a reconnect it can be a follower that
/// has not applied the write yet (reads are only sequentially consistent). Missing a create
/// there would create a second node that queues behind the first forever; missing a set, a
/// delete or a transaction would make the recipe do it again or report it as not done. Every
/// read-back after a lost reply goes through here.
pub(crate) async fn catch_up(client: &Client, path: &str) -> Result<()> {
    match retry_on_loss(client, || client.sync(path)).await {
        Ok(()) | Err(Error::NoNode { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// This session's node under `dir` whose name carries `guid`, if any.
async fn find_ours(client: &Client, dir: &str, guid: &str) -> Result<Option<(String, Stat)>> {
    catch_up(client, dir).await?;
    let children = match retry_on_loss(client, || client.get_children(dir)).await {
        Ok(c) => c,
        Err(Error::NoNode { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    for child in children.iter().filter(|c| c.contains(guid)) {
        let path = format!("{dir}/{child}");
        let stat = retry_on_loss(client, || client.exists(&path)).await?;
        if let Some(stat) = stat {
            if stat.ephemeral_owner == client.session_id() {
                return Ok(Some((path, stat)));
            }
        }
    }
    Ok(None)
}

/// The sequence number ZooKeeper appended to a node name (its last ten digits).
pub(crate) fn sequence_of(name: &str) -> Option<u64> {
    let tail = name.get(name.len().checked_sub(10)?..)?;
    if tail.bytes().all(|b| b.is_ascii_digit()) {
        tail.parse().ok()
    } else {
        None
    }
}

/// The children of `dir` whose name contains `marker` and ends in a sequence, in sequence
/// order (ties broken by name).
pub(crate) fn sorted_contenders(children: Vec<String>, marker: &str) -> Vec<String> {
    sorted_contenders_any(children, &[marker])
}

/// Like [`sorted_contenders`], for children carrying any of `markers` (a read-write lock's
/// readers and writers share one directory and one sequence).
pub(crate) fn sorted_contenders_any(children: Vec<String>, markers: &[&str]) -> Vec<String> {
    let mut named: Vec<(u64, String)> = children
        .into_iter()
        .filter(|c| markers.iter().any(|m| c.contains(m)))
        .filter_map(|c| sequence_of(&c).map(|s| (s, c)))
        .collect();
    named.sort();
    named.into_iter().map(|(_, c)| c).collect()
}

/// Deletes recipe node `path` through connection loss, unless it is an ephemeral node of
/// another session than the client's current one: such a node (of an earlier session, the
/// client having renewed an expired one) is left for ZooKeeper to remove when it expires
/// that session, which may still be alive (a client-side `Lost` runs on the client's own
/// timer), unless the client was built with
/// [`delete_stale_recipe_nodes`](crate::Builder::delete_stale_recipe_nodes). A node that is
/// gone already counts as deleted.
pub(crate) async fn delete_recipe_node(client: &Client, path: &str) -> Result<()> {
    let Some(stat) = retry_on_loss(client, || client.exists(path)).await? else {
        return Ok(());
    };
    let owner = stat.ephemeral_owner;
    if owner != 0 && owner != client.session_id() && !client.deletes_stale_recipe_nodes() {
        tracing::debug!(%path, owner = format_args!("0x{owner:x}"), "node of an earlier session left to its expiry");
        return Ok(());
    }
    match retry_on_loss(client, || client.delete(path, Some(stat.version))).await {
        Ok(()) | Err(Error::NoNode { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Deletes `path` in the background, through connection loss, until it is gone or the
/// session ends (then the server removes the ephemeral node itself); a node of an earlier
/// session is left to that session's expiry (see [`delete_recipe_node`]).
pub(crate) fn delete_in_background(client: Client, path: String) {
    spawn_cleanup(async move {
        match delete_recipe_node(&client, &path).await {
            Ok(()) | Err(Error::NoNode { .. }) => tracing::debug!(%path, "recipe node deleted"),
            Err(e) => tracing::debug!(%path, error = %e, "recipe node left to the session's end"),
        }
    });
}

/// A node this client made and must remove (a held lock's, a latch's, a member's, a queue
/// entry's lock): its path stays owned until a delete is *confirmed*, so a release or close
/// that is cancelled half-way (its future dropped while the client is offline, say by a
/// timeout) still hands the node to the background delete when the owner is dropped, instead
/// of losing it with the dropped request (Curator's guaranteed delete).
#[derive(Debug)]
pub(crate) struct OwnedNode {
    client: Client,
    path: Option<String>,
    /// For a name another client may create after ours is gone (not a sequential one): the
    /// session that owns ours and its version. Deletes then touch only that node.
    owner: Option<(i64, i32)>,
}

impl OwnedNode {
    /// Owns `path`, a name only this owner ever creates (protected or guid-named).
    pub(crate) fn new(client: &Client, path: String) -> Self {
        OwnedNode {
            client: client.clone(),
            path: Some(path),
            owner: None,
        }
    }

    /// Owns `path`, a name others may create after ours is gone: only the node of
    /// `session_id` at `version` is ever deleted.
    pub(crate) fn shared_name(
        client: &Client,
        path: String,
        session_id: i64,
        version: i32,
    ) -> Self {
        OwnedNode {
            client: client.clone(),
            path: Some(path),
            owner: Some((session_id, version)),
        }
    }

    /// The node's path, while it is owned.
    pub(crate) fn path(&self) -> Option<&str> {
        self.path.as_deref()
    }

    /// Deletes the node and waits for the answer; the node is given up only once the delete
    /// (or its absence, or the session's end) is confirmed. If this future is dropped first,
    /// the node is still owned and dropping the owner deletes it in the background.
    pub(crate) async fn delete(&mut self) -> Result<()> {
        let Some(path) = self.path.clone() else {
            return Ok(());
        };
        if self
            .client
            .planted(crate::planted::PlantedBug::CancelledDeleteLosesNode)
        {
            // Planted: given up before the delete is confirmed.
            self.path = None;
        }
        let result = match self.owner {
            // A name only we create: left alone if it is an earlier session's (see
            // `delete_recipe_node`).
            None => delete_recipe_node(&self.client, &path).await,
            Some((_, version)) => {
                retry_on_loss(&self.client, || self.client.delete(&path, Some(version))).await
            }
        };
        match result {
            Ok(())
            | Err(Error::NoNode { .. })
            | Err(Error::SessionExpired)
            | Err(Error::Closed) => {}
            // Not our node at that path any more (ours went with its session).
            Err(Error::BadVersion { .. }) if self.owner.is_some() => {}
            Err(e) => return Err(e),
        }
        self.path = None;
        Ok(())
    }

    /// Gives the node up without deleting it (something else removed it, or must not).
    pub(crate) fn forget(&mut self) {
        self.path = None;
    }
}

impl Drop for OwnedNode {
    fn drop(&mut self) {
        let Some(path) = self.path.take() else {
            return;
        };
        match self.owner {
            None => delete_in_background(self.client.clone(), path),
            Some((session, _)) => {
                delete_owned_in_background(self.client.clone(), path, Some(session))
            }
        }
    }
}

/// Deletes `path` in the background, through connection loss, if the node there belongs to
/// `session_id` (`None`: to the client's session when the lookup runs): another client's node
/// of the same name, made after ours went with an earlier session, is left alone.
pub(crate) fn delete_owned_in_background(client: Client, path: String, session_id: Option<i64>) {
    spawn_cleanup(async move {
        let session_id = session_id.unwrap_or_else(|| client.session_id());
        // Requests of one session are answered in order: this sees a create sent before.
        let result = match retry_on_loss(&client, || client.exists(&path)).await {
            Ok(Some(stat)) if stat.ephemeral_owner == session_id => {
                retry_on_loss(&client, || client.delete(&path, Some(stat.version))).await
            }
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        };
        match result {
            Ok(()) | Err(Error::NoNode { .. }) => tracing::debug!(%path, "owned node deleted"),
            Err(e) => tracing::debug!(%path, error = %e, "owned node left to the session's end"),
        }
    });
}

/// A node that must go if the operation that created it does not finish (a cancelled or
/// failed acquire): dropping it while armed deletes the node in the background.
pub(crate) struct PendingNode {
    client: Client,
    path: Option<String>,
    /// `(dir, guid)` of a protected create that may be in flight: dropped before the create
    /// answered, the guard finds the node by its guid and deletes it.
    creating: Option<(String, String)>,
}

impl PendingNode {
    pub(crate) fn new(client: &Client) -> Self {
        PendingNode {
            client: client.clone(),
            path: None,
            creating: None,
        }
    }

    /// Covers a protected create of a node named with `guid` under `dir` that is about to
    /// be sent: if the guard is dropped before [`arm`](Self::arm) (the caller cancelled while
    /// the create was in flight), whatever node the create made is found and deleted.
    pub(crate) fn protect(&mut self, dir: &str, guid: &str) {
        self.creating = Some((dir.to_owned(), guid.to_owned()));
    }

    /// Arms the guard for `path`.
    pub(crate) fn arm(&mut self, path: &str) {
        self.creating = None;
        self.path = Some(path.to_owned());
    }

    /// Keeps the node: the operation succeeded.
    pub(crate) fn disarm(&mut self) -> Option<String> {
        self.creating = None;
        self.path.take()
    }
}

impl Drop for PendingNode {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            delete_in_background(self.client.clone(), path);
        } else if let Some((dir, guid)) = self.creating.take() {
            // The lookup is sent after the create on the same session, so ZooKeeper's
            // in-order processing shows it the node if the create applied.
            let client = self.client.clone();
            spawn_cleanup(async move {
                match find_ours(&client, &dir, &guid).await {
                    Ok(Some((path, _))) => delete_in_background(client, path),
                    Ok(None) => {}
                    Err(e) => {
                        tracing::debug!(%dir, %guid, error = %e, "cancelled create not found")
                    }
                }
            });
        }
    }
}

/// Runs a blocking attempt (`wait = true`), which only ends holding what it waited for.
pub(crate) async fn until_held<G>(attempt: impl Future<Output = Result<Option<G>>>) -> Result<G> {
    attempt
        .await?
        .ok_or_else(|| Error::Protocol("a blocking acquire returned without holding".into()))
}

/// Waits at most `timeout` for `wait`; `None` if it did not finish (dropping it cancels it,
/// which removes whatever it created).
pub(crate) async fn at_most<G>(
    timeout: std::time::Duration,
    wait: impl Future<Output = Result<G>>,
) -> Result<Option<G>> {
    match tokio::time::timeout(timeout, wait).await {
        Ok(r) => r.map(Some),
        Err(_) => Ok(None),
    }
}

/// Kazoo's `acquire(blocking, timeout)` over a recipe's three ways to acquire: not
/// `blocking`, one try (`timeout` ignored, as Kazoo does); blocking, waits at most `timeout`,
/// or for good without one.
pub(crate) async fn kazoo_acquire<G, T, W>(
    blocking: bool,
    timeout: Option<std::time::Duration>,
    try_once: T,
    wait: W,
) -> Result<Option<G>>
where
    T: Future<Output = Result<Option<G>>>,
    W: Future<Output = Result<G>>,
{
    match (blocking, timeout) {
        (false, _) => try_once.await,
        (true, Some(timeout)) => at_most(timeout, wait).await,
        (true, None) => wait.await.map(Some),
    }
}

/// Runs background cleanup (called from `Drop`s) on the current runtime. Without one (the
/// runtime itself is being dropped, as when a simulated host crashes) there is nothing to
/// run it on: the session's end removes the ephemeral nodes instead.
pub(crate) fn spawn_cleanup(cleanup: impl Future<Output = ()> + Send + 'static) {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            handle.spawn(cleanup);
        }
        Err(_) => tracing::debug!("no runtime for background cleanup; left to the session's end"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_and_sorting() {
        assert_eq!(sequence_of("_c_x-lock-0000000042"), Some(42));
        assert_eq!(sequence_of("lock-42"), None);
        assert_eq!(sequence_of("abc"), None);
        let sorted = sorted_contenders(
            vec![
                "_c_b-lock-0000000003".into(),
                "other".into(),
                "_c_a-lock-0000000001".into(),
                "x__lock__0000000002".into(),
            ],
            "lock-",
        );
        assert_eq!(sorted, ["_c_a-lock-0000000001", "_c_b-lock-0000000003"]);
    }
}
