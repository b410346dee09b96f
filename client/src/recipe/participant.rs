//! The candidates of an election (latch or selector) as a reader sees them: each contender
//! node in sequence order with the id stored as its data, the first one leading.

use super::protected::{retry_on_loss, sorted_contenders_any};
use crate::client::Client;
use crate::error::{Error, Result};

/// A candidate as listed by [`LeaderLatch::participants`](super::LeaderLatch::participants).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Participant {
    /// The id the candidate registered with.
    pub id: String,
    /// Its node's name.
    pub node: String,
    /// Whether it currently leads.
    pub is_leader: bool,
}

/// The contenders under `dir` named with `marker`, first (the leader) first, each with the id
/// stored as its data; nodes that vanish while being read are left out.
pub(crate) async fn participants(
    client: &Client,
    dir: &str,
    marker: &str,
) -> Result<Vec<Participant>> {
    Ok(contenders_with_ids(client, dir, &[marker])
        .await?
        .into_iter()
        .enumerate()
        .map(|(i, (node, id))| Participant {
            id,
            node,
            is_leader: i == 0,
        })
        .collect())
}

/// The ids (node data, read as UTF-8, lossily) of the contenders under `dir` carrying any of
/// `markers`, in queue order (Kazoo's `Lock.contenders()`); nodes that vanish while being
/// read are left out.
pub(crate) async fn contender_ids(
    client: &Client,
    dir: &str,
    markers: &[&str],
) -> Result<Vec<String>> {
    Ok(contenders_with_ids(client, dir, markers)
        .await?
        .into_iter()
        .map(|(_, id)| id)
        .collect())
}

/// `(node name, id)` of each contender under `dir` carrying any of `markers`, in sequence
/// order; nodes that vanish while being read are left out.
async fn contenders_with_ids(
    client: &Client,
    dir: &str,
    markers: &[&str],
) -> Result<Vec<(String, String)>> {
    let children = match retry_on_loss(client, || client.get_children(dir)).await {
        Ok(c) => c,
        Err(Error::NoNode { .. }) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for node in sorted_contenders_any(children, markers) {
        let full = format!("{dir}/{node}");
        match retry_on_loss(client, || client.get_data(&full)).await {
            Ok((data, _)) => out.push((node, String::from_utf8_lossy(&data).into_owned())),
            Err(Error::NoNode { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}
