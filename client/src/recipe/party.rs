//! Group membership (Kazoo's `Party` and `ShallowParty`): each member holds an ephemeral node
//! under the party's path, so a member that dies leaves by itself. A `Party` stores the
//! member's id in its node's data (`<guid>__party__`); a `ShallowParty` puts it in the name
//! (`<id>-<guid>`) so listing members costs one call.

use super::children_watch::ChildrenWatch;
use super::protected::{create_ephemeral_once, new_guid, retry_on_loss};
use crate::client::Client;
use crate::error::{Error, Result};
use crate::path::validate_path;

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
        })
    }

    /// Joins (idempotent; safe across a lost reply).
    pub async fn join(&mut self) -> Result<()> {
        let data = match self.kind {
            Kind::Deep => self.id.as_bytes().to_vec(),
            Kind::Shallow => Vec::new(),
        };
        create_ephemeral_once(&self.client, &self.node, &data).await?;
        self.joined = true;
        Ok(())
    }

    /// Leaves (idempotent).
    pub async fn leave(&mut self) -> Result<()> {
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
