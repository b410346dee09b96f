//! Group membership (Kazoo's `Party` and `ShallowParty`): each member holds an ephemeral node
//! under the party's path, so a member that dies leaves by itself. A `Party` stores the
//! member's id in its node's data (`<guid>__party__`); a `ShallowParty` puts it in the name
//! (`<id>-<guid>`) so listing members costs one call.
//!
//! A joined member stays joined across a session renewal (a client built with
//! [`renew_expired_session`](crate::Builder::renew_expired_session)): its node went with the
//! expired session, so a background task re-creates it in the new one (as Curator's
//! `GroupMember` does), waiting first for a node the old session may still hold. Between the
//! expiry and the re-join the member is absent from the listing.

use tokio::task::JoinHandle;

use super::children_watch::ChildrenWatch;
use super::protected::{create_ephemeral_once, new_guid, retry_on_loss};
use crate::client::Client;
use crate::error::{Error, Result};
use crate::path::validate_path;
use crate::state::State;

/// Where a party keeps each member's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// In the node's data.
    Deep,
    /// In the node's name.
    Shallow,
}

/// A party: join, leave, list the members.
#[derive(Debug)]
pub struct Party {
    client: Client,
    path: String,
    id: String,
    node: String,
    kind: Kind,
    joined: bool,
    /// While joined: re-creates the node after a session renewal.
    rejoin: Option<JoinHandle<()>>,
}

/// A party whose member ids live in node names (no data reads to list members).
#[derive(Debug)]
pub struct ShallowParty(Party);

impl Party {
    /// A party at `path`, for a member called `id`.
    pub fn new(client: &Client, path: &str, id: &str) -> Result<Party> {
        Self::with_kind(client, path, id, Kind::Deep)
    }

    fn with_kind(client: &Client, path: &str, id: &str, kind: Kind) -> Result<Party> {
        validate_path(path)?;
        let guid = new_guid(client).replace('-', "");
        let name = match kind {
            Kind::Deep => format!("{guid}__party__"),
            Kind::Shallow => format!("{id}-{guid}"),
        };
        let path = path.trim_end_matches('/').to_owned();
        let node = format!("{path}/{name}");
        validate_path(&node)?;
        Ok(Party {
            client: client.clone(),
            path,
            id: id.to_owned(),
            node,
            kind,
            joined: false,
            rejoin: None,
        })
    }

    /// Joins (idempotent; safe across a lost reply). The member then stays joined across
    /// session renewals until [`leave`](Self::leave) or the party is dropped.
    pub async fn join(&mut self) -> Result<()> {
        let data = match self.kind {
            Kind::Deep => self.id.as_bytes().to_vec(),
            Kind::Shallow => Vec::new(),
        };
        let stat = create_ephemeral_once(&self.client, &self.node, &data).await?;
        self.joined = true;
        if let Some(task) = self.rejoin.take() {
            task.abort();
        }
        self.rejoin = Some(tokio::spawn(keep_joined(
            self.client.clone(),
            self.node.clone(),
            data,
            stat.ephemeral_owner,
        )));
        Ok(())
    }

    /// Leaves (idempotent).
    pub async fn leave(&mut self) -> Result<()> {
        if let Some(task) = self.rejoin.take() {
            task.abort();
            // Stopped before the delete: it cannot re-create the node after it.
            let _ = task.await;
        }
        match retry_on_loss(&self.client, || self.client.delete(&self.node, None)).await {
            Ok(()) | Err(Error::NoNode { .. }) => {
                self.joined = false;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Whether this member has joined (and not left).
    pub fn is_joined(&self) -> bool {
        self.joined
    }

    /// The ids of the current members, sorted.
    pub async fn members(&self) -> Result<Vec<String>> {
        let children =
            match retry_on_loss(&self.client, || self.client.get_children(&self.path)).await {
                Ok(c) => c,
                Err(Error::NoNode { .. }) => return Ok(Vec::new()),
                Err(e) => return Err(e),
            };
        let mut ids = Vec::with_capacity(children.len());
        for child in children {
            match self.kind {
                Kind::Shallow => {
                    if let Some((id, _)) = child.rsplit_once('-') {
                        ids.push(id.to_owned());
                    }
                }
                Kind::Deep => {
                    if !child.ends_with("__party__") {
                        continue;
                    }
                    let node = format!("{}/{child}", self.path);
                    match retry_on_loss(&self.client, || self.client.get_data(&node)).await {
                        Ok((data, _)) => ids.push(String::from_utf8_lossy(&data).into_owned()),
                        Err(Error::NoNode { .. }) => {}
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// A stream of the party's membership changes (member node names); call
    /// [`members`](Self::members) on each to read the ids.
    pub fn watch(&self) -> Result<ChildrenWatch> {
        ChildrenWatch::start(&self.client, &self.path)
    }
}

impl Drop for Party {
    fn drop(&mut self) {
        // The node itself stays until the session ends, as before.
        if let Some(task) = self.rejoin.take() {
            task.abort();
        }
    }
}

/// Keeps `node` (made in `session`) existing across session renewals: whenever the client is
/// connected in another session than the node's, re-creates it there.
async fn keep_joined(client: Client, node: String, data: Vec<u8>, mut session: i64) {
    let mut info = client.session_info();
    loop {
        if client.is_finished() {
            return;
        }
        if client.state() == State::Connected && client.session_id() != session {
            match create_ephemeral_once(&client, &node, &data).await {
                Ok(stat) => {
                    tracing::debug!(%node, session = format_args!("0x{:x}", stat.ephemeral_owner), "party member re-joined after a session renewal");
                    session = stat.ephemeral_owner;
                    continue;
                }
                Err(Error::NodeExists { .. }) => {
                    // The expired session's node, not yet removed: wait for it to go.
                    if let Ok((Some(_), gone)) = client.exists_watch(&node).await {
                        let _ = gone.await;
                    }
                    continue;
                }
                Err(e) => {
                    tracing::debug!(%node, error = %e, "party re-join failed; tried again on the next change");
                }
            }
        }
        if info.changed().await.is_err() {
            return;
        }
    }
}

impl ShallowParty {
    /// A shallow party at `path`, for a member called `id` (which must be a valid node name).
    pub fn new(client: &Client, path: &str, id: &str) -> Result<ShallowParty> {
        Party::with_kind(client, path, id, Kind::Shallow).map(ShallowParty)
    }

    /// Joins (idempotent).
    pub async fn join(&mut self) -> Result<()> {
        self.0.join().await
    }

    /// Leaves (idempotent).
    pub async fn leave(&mut self) -> Result<()> {
        self.0.leave().await
    }

    /// The ids of the current members, sorted.
    pub async fn members(&self) -> Result<Vec<String>> {
        self.0.members().await
    }

    /// A stream of membership changes.
    pub fn watch(&self) -> Result<ChildrenWatch> {
        self.0.watch()
    }
}
