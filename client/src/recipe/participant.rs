//! The candidates of an election (latch or selector) as a reader sees them: each contender
//! node in sequence order with the id stored as its data, the first one leading.

use super::protected::{retry_on_loss, sorted_contenders};
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
    let children = match retry_on_loss(client, || client.get_children(dir)).await {
        Ok(c) => c,
        Err(Error::NoNode { .. }) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for node in sorted_contenders(children, marker) {
        let full = format!("{dir}/{node}");
        match retry_on_loss(client, || client.get_data(&full)).await {
            Ok((data, _)) => out.push(Participant {
                id: String::from_utf8_lossy(&data).into_owned(),
                is_leader: out.is_empty(),
                node,
            }),
            Err(Error::NoNode { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}
