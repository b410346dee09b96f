//! Dividing a set of items among the members of a group (Kazoo's `SetPartitioner`). Each
//! member joins a party at `{path}/party` (an ephemeral node `<id>-<guid>`, as a
//! [`ShallowParty`](super::ShallowParty) names it), computes its share deterministically (the
//! sorted items dealt round-robin over the sorted member ids), and takes a [`Lock`] on
//! `{path}/<item>` for every item of its share, so no two members ever work on one item even
//! while their views of the membership differ.
//!
//! The partitioner runs on its own task and publishes its [`PartitionState`]: `Allocating`
//! while it computes and locks its share, `Acquired(items)` once it holds them all, `Release`
//! when the membership changed (a [`ChildrenWatch`] on the party), the connection was
//! suspended or any of its item locks was lost ([`LockGuard::lost`]: its node deleted, or the
//! connection no longer trusted), after which it drops its locks and allocates again, and
//! `Failure` once the session has ended. Work on a share must stop as soon as the state leaves
//! `Acquired`.
//!
//! Member ids must be unique within the party: two members with one id would claim one share.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::children_watch::ChildrenWatch;
use super::lock::{Lock, LockGuard};
use super::policy::session_until;
use super::protected::{create_ephemeral_once, new_guid, OwnedNode, PendingNode};
use crate::client::Client;
use crate::error::{Error, Result};
use crate::path::validate_path;

/// Where a partitioner stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartitionState {
    /// Computing and locking this member's share.
    Allocating,
    /// Holding the locks of these items (sorted): work on them.
    Acquired(Vec<String>),
    /// The membership changed, the connection was suspended or an item's lock was lost: stop
    /// working on the share; the locks are being dropped and the set will be divided again.
    Release,
    /// The session the member joined with ended (even if the client renewed its session):
    /// the partitioner has stopped; start a new one to join again.
    Failure,
}

/// A member of a set partition. Dropping it stops the member, drops its locks and leaves the
/// party in the background; [`finish`](Self::finish) does the same and waits for the leave.
#[derive(Debug)]
pub struct SetPartitioner {
    id: String,
    /// The member node: owned until its delete is confirmed, so a cancelled
    /// [`finish`](Self::finish) still leaves the party when the partitioner drops.
    member: OwnedNode,
    states: watch::Receiver<PartitionState>,
    task: JoinHandle<()>,
}

impl SetPartitioner {
    /// Joins the partition of `items` at `path` as member `id` and starts allocating at once.
    pub async fn start<I, S>(client: &Client, path: &str, id: &str, items: I) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self::start_settled(client, path, id, items, Duration::ZERO).await
    }

    /// Like [`start`](Self::start), but allocates only once the membership has not changed for
    /// `time_boundary` (Kazoo's `time_boundary`), which saves rounds of locking while members
    /// join together.
    pub async fn start_settled<I, S>(
        client: &Client,
        path: &str,
        id: &str,
        items: I,
        time_boundary: Duration,
    ) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        validate_path(path)?;
        let path = path.trim_end_matches('/').to_owned();
        let party = format!("{path}/party");
        let mut set: Vec<String> = Vec::new();
        for item in items {
            let item = item.as_ref();
            if item.is_empty() || item.contains('/') || item == "party" {
                return Err(Error::InvalidArgument(format!(
                    "{item:?} cannot name a partitioned item"
                )));
            }
            validate_path(&format!("{path}/{item}"))?;
            set.push(item.to_owned());
        }
        set.sort();
        set.dedup();
        if id.contains('/') || id.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "{id:?} cannot name a partition member"
            )));
        }
        let member = format!("{party}/{id}-{}", new_guid(client).replace('-', ""));
        validate_path(&member)?;
        // The member node must not outlive a failed or cancelled start: a ghost member would
        // be dealt a share nobody works on.
        let mut pending = PendingNode::new(client);
        pending.arm(&member);
        let joined = create_ephemeral_once(client, &member, &[]).await?;
        let members = ChildrenWatch::start(client, &party)?;
        pending.disarm();
        let (tx, states) = watch::channel(PartitionState::Allocating);
        let task = tokio::spawn(run(
            Ctx {
                client: client.clone(),
                session_id: joined.ephemeral_owner,
                path,
                id: id.to_owned(),
                items: set,
                time_boundary,
                tx,
            },
            members,
        ));
        Ok(SetPartitioner {
            id: id.to_owned(),
            member: OwnedNode::new(client, member),
            states,
            task,
        })
    }

    /// This member's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The current state.
    pub fn state(&self) -> PartitionState {
        self.states.borrow().clone()
    }

    /// A receiver of every state change.
    pub fn states(&self) -> watch::Receiver<PartitionState> {
        self.states.clone()
    }

    /// Waits until this member holds its share and returns it; fails with
    /// [`Error::SessionExpired`] if the partitioner failed first.
    pub async fn wait_for_acquire(&self) -> Result<Vec<String>> {
        let mut rx = self.states.clone();
        let state = rx
            .wait_for(|s| matches!(s, PartitionState::Acquired(_) | PartitionState::Failure))
            .await
            .map(|s| s.clone())
            .unwrap_or(PartitionState::Failure);
        match state {
            PartitionState::Acquired(items) => Ok(items),
            _ => Err(Error::SessionExpired),
        }
    }

    /// Stops: drops the locks and leaves the party, waiting until the member node is gone.
    /// Dropping this future before it finishes still leaves the party, in the background.
    pub async fn finish(mut self) -> Result<()> {
        self.task.abort();
        self.member.delete().await
    }
}

impl Drop for SetPartitioner {
    fn drop(&mut self) {
        // The member node, unless its delete was confirmed, goes in the background.
        self.task.abort();
    }
}

/// This member's share: the sorted `items` dealt round-robin over the sorted, distinct
/// `members`; empty if `id` is not a member.
pub(crate) fn share_of(id: &str, members: &[String], items: &[String]) -> Vec<String> {
    let mut members: Vec<&str> = members.iter().map(String::as_str).collect();
    members.sort_unstable();
    members.dedup();
    let mut items: Vec<&String> = items.iter().collect();
    items.sort();
    items.dedup();
    let Some(me) = members.iter().position(|m| *m == id) else {
        return Vec::new();
    };
    items
        .into_iter()
        .enumerate()
        .filter(|(i, _)| i % members.len() == me)
        .map(|(_, item)| item.clone())
        .collect()
}

/// The member ids in a party listing (`<id>-<guid>` names).
fn member_ids(names: &[String]) -> Vec<String> {
    names
        .iter()
        .filter_map(|n| n.rsplit_once('-').map(|(id, _)| id.to_owned()))
        .collect()
}

/// What the partitioner's task works with.
struct Ctx {
    client: Client,
    /// The session the member joined with: when it ends, so does the membership.
    session_id: i64,
    path: String,
    id: String,
    items: Vec<String>,
    time_boundary: Duration,
    tx: watch::Sender<PartitionState>,
}

impl Ctx {
    /// Whether the session the member joined with is over (even if the client renewed it).
    fn session_over(&self) -> bool {
        self.client.is_finished()
            || self.client.state() == crate::state::State::Lost
            || self.client.session_id() != self.session_id
    }
}

/// The next distinct party listing (an absent party counts as empty); `None` once the
/// session has ended.
async fn next_listing(members: &mut ChildrenWatch) -> Option<Vec<String>> {
    members.next().await.map(Option::unwrap_or_default)
}

/// How a round of holding a share ended.
enum RoundEnd {
    /// The membership changed to this listing.
    Changed(Vec<String>),
    /// The connection was suspended, a lock could not be taken or a held one was lost: wait
    /// for a reconnect (if need be) and divide again.
    Disconnected,
    /// The session ended.
    Failed,
}

async fn run(ctx: Ctx, mut members: ChildrenWatch) {
    let Some(mut listing) = next_listing(&mut members).await else {
        ctx.tx.send_replace(PartitionState::Failure);
        return;
    };
    loop {
        if ctx.session_over() {
            ctx.tx.send_replace(PartitionState::Failure);
            return;
        }
        ctx.tx.send_replace(PartitionState::Allocating);
        if !ctx.time_boundary.is_zero() {
            loop {
                tokio::select! {
                    biased;
                    () = tokio::time::sleep(ctx.time_boundary) => break,
                    next = next_listing(&mut members) => match next {
                        Some(l) => listing = l,
                        None => {
                            ctx.tx.send_replace(PartitionState::Failure);
                            return;
                        }
                    },
                }
            }
        }
        let share = share_of(&ctx.id, &member_ids(&listing), &ctx.items);
        tracing::debug!(id = %ctx.id, ?share, "partition share");
        let end = match acquire_share(&ctx, &share, &mut members).await {
            Ok(guards) => {
                ctx.tx.send_replace(PartitionState::Acquired(share));
                let end = hold(&ctx, &mut members, &guards).await;
                ctx.tx.send_replace(PartitionState::Release);
                drop(guards);
                end
            }
            Err(end) => end,
        };
        match end {
            RoundEnd::Changed(l) => listing = l,
            RoundEnd::Disconnected => {
                if ctx.client.wait_connected().await.is_err() || ctx.session_over() {
                    ctx.tx.send_replace(PartitionState::Failure);
                    return;
                }
            }
            RoundEnd::Failed => {
                ctx.tx.send_replace(PartitionState::Failure);
                return;
            }
        }
    }
}

/// Locks every item of `share`, giving up (and dropping what it took) if the membership
/// changes first.
async fn acquire_share(
    ctx: &Ctx,
    share: &[String],
    members: &mut ChildrenWatch,
) -> std::result::Result<Vec<LockGuard>, RoundEnd> {
    let mut guards = Vec::with_capacity(share.len());
    for item in share {
        let lock = Lock::new(&ctx.client, &format!("{}/{item}", ctx.path))
            .map_err(|_| RoundEnd::Failed)?
            .data(ctx.id.as_bytes());
        tokio::select! {
            biased;
            r = lock.acquire() => match r {
                Ok(g) => guards.push(g),
                Err(e) => {
                    tracing::debug!(id = %ctx.id, %item, error = %e, "partition lock failed");
                    if ctx.session_over() {
                        return Err(RoundEnd::Failed);
                    }
                    ctx.tx.send_replace(PartitionState::Release);
                    // Not a reason to spin: give the ensemble a moment before trying again.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    return Err(RoundEnd::Disconnected);
                }
            },
            next = next_listing(members) => {
                ctx.tx.send_replace(PartitionState::Release);
                return Err(next.map_or(RoundEnd::Failed, RoundEnd::Changed));
            }
        }
    }
    Ok(guards)
}

/// Holds the share until the membership changes, the connection is suspended or any lock of
/// the share is lost.
async fn hold(ctx: &Ctx, members: &mut ChildrenWatch, guards: &[LockGuard]) -> RoundEnd {
    let info = ctx.client.session_info();
    tokio::select! {
        biased;
        next = next_listing(members) => next.map_or(RoundEnd::Failed, RoundEnd::Changed),
        () = session_until(info, |i| !i.state.is_connected()) => {
            if ctx.session_over() {
                RoundEnd::Failed
            } else {
                RoundEnd::Disconnected
            }
        }
        () = any_lost(guards) => {
            tracing::info!(id = %ctx.id, "a partition lock was lost: dividing again");
            if ctx.session_over() {
                RoundEnd::Failed
            } else {
                RoundEnd::Disconnected
            }
        }
    }
}

/// Resolves as soon as any of `guards` is lost (never, if there are none).
async fn any_lost(guards: &[LockGuard]) {
    let mut each: Vec<Pin<Box<dyn Future<Output = ()> + Send + '_>>> = guards
        .iter()
        .map(|g| Box::pin(g.lost()) as Pin<Box<dyn Future<Output = ()> + Send + '_>>)
        .collect();
    std::future::poll_fn(|cx| {
        if each.iter_mut().any(|f| f.as_mut().poll(cx).is_ready()) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn shares_are_a_disjoint_cover() {
        let items = strings(&["i5", "i1", "i3", "i2", "i4"]);
        let members = strings(&["b", "a", "c"]);
        assert_eq!(share_of("a", &members, &items), ["i1", "i4"]);
        assert_eq!(share_of("b", &members, &items), ["i2", "i5"]);
        assert_eq!(share_of("c", &members, &items), ["i3"]);
        assert!(share_of("z", &members, &items).is_empty());
        assert_eq!(
            member_ids(&strings(&["w-1-abc", "x-def"])),
            strings(&["w-1", "x"])
        );
    }
}
