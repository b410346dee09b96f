//! Request preparation (`PrepRequestProcessor`): turns a write request into the [`Txn`] to
//! order, validating it against the current tree, in ZooKeeper's order of checks, so the
//! error a client gets is the one ZooKeeper would give.
//!
//! Validation reads the tree through a scratch [`View`] that records the effect of each
//! prepared operation (ZooKeeper's outstanding change records); a multi validates its
//! operations one by one against it, so a create followed by a create under it succeeds, and
//! two sequential creates under one parent get consecutive numbers. Nothing here mutates the
//! tree: a leader could prepare, replicate, then apply.

use std::collections::BTreeMap;

use zkit::path::validate_path;
use zkit::proto::{
    Acl, CheckVersionRequest, CreateRequest, CreateTtlRequest, DeleteRequest, ErrorCode, MultiOp,
    Perms, Request, SetAclRequest, SetDataRequest, Stat,
};

use super::acl::{check_acl, fixup_acl, AuthInfo};
use super::tree::{
    split_parent, DataTree, EphemeralKind, CONFIG_PATH, CONTAINER_OWNER, MAX_TTL, QUOTA_PATH,
    ZOOKEEPER_PATH,
};
use super::txn::{CreateReply, CreateTxn, Txn};

/// Who is asking, and under which server settings.
#[derive(Debug, Clone, Copy)]
pub struct PrepContext<'a> {
    /// The requesting session (0 for the server itself: the reaper).
    pub session_id: i64,
    /// The identities of the requesting connection.
    pub auth: &'a AuthInfo,
    /// Whether TTL nodes are enabled (`zookeeper.extendedTypesEnabled`).
    pub extended_types: bool,
}

/// What validation needs to know of a node: ZooKeeper's `ChangeRecord`.
#[derive(Debug, Clone)]
struct NodeRecord {
    stat: Stat,
    acl: Vec<Acl>,
    child_count: i32,
}

/// The tree as the requests prepared so far would leave it.
#[derive(Debug)]
pub struct View<'a> {
    tree: &'a DataTree,
    changes: BTreeMap<String, Option<NodeRecord>>,
}

impl<'a> View<'a> {
    /// A view of `tree` with no pending change.
    pub fn new(tree: &'a DataTree) -> View<'a> {
        View {
            tree,
            changes: BTreeMap::new(),
        }
    }

    fn get(&self, path: &str) -> Result<NodeRecord, ErrorCode> {
        match self.changes.get(path) {
            Some(Some(rec)) => Ok(rec.clone()),
            Some(None) => Err(ErrorCode::NoNode),
            None => self
                .tree
                .node(path)
                .map(|n| NodeRecord {
                    stat: n.stat.clone(),
                    acl: n.acl.clone(),
                    child_count: tree_len(n.children.len()),
                })
                .ok_or(ErrorCode::NoNode),
        }
    }

    fn exists(&self, path: &str) -> bool {
        self.get(path).is_ok()
    }
}

fn tree_len(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// Prepares a write request (`Request::is_write`) into the transaction to order: the change,
/// or [`Txn::Error`] with the code the client will get. Requests that are not writes yield
/// `Txn::Error(BadArguments)`.
pub fn prepare(tree: &DataTree, ctx: &PrepContext<'_>, request: &Request) -> Txn {
    let mut view = View::new(tree);
    let prepared = match request {
        Request::Create(r) => create(&mut view, ctx, r, -1, CreateOp::Create),
        Request::Create2(r) => create(&mut view, ctx, r, -1, CreateOp::Create2),
        Request::CreateContainer(r) => create(&mut view, ctx, r, -1, CreateOp::Container),
        Request::CreateTtl(r) => create_ttl(&mut view, ctx, r),
        Request::Delete(r) => delete(&mut view, ctx, r),
        Request::DeleteContainer(r) => delete_container(&mut view, &r.path),
        Request::SetData(r) => set_data(&mut view, ctx, r),
        Request::SetAcl(r) => set_acl(&mut view, ctx, r),
        Request::Check(r) => check(&mut view, ctx, r),
        // ZooKeeper 3.8 refuses a multi holding a read as a whole: `MultiOperationRecord`
        // will not mix read and write ops, and a multi of reads alone fails too in
        // `PrepRequestProcessor`, which turns such exceptions into an error txn with
        // MARSHALLINGERROR: it takes a zxid like any failed write, and the connection stays
        // open (all observed against 3.8.0 by tests/conformance.rs).
        Request::Multi(m) if m.ops.iter().any(is_read_op) => Err(ErrorCode::MarshallingError),
        Request::Multi(m) => return multi(&mut view, ctx, &m.ops),
        Request::Reconfig(_) => Err(ErrorCode::ReconfigDisabled),
        Request::CloseSession => Ok(Txn::CloseSession {
            session_id: ctx.session_id,
        }),
        _ => Err(ErrorCode::BadArguments),
    };
    prepared.unwrap_or_else(Txn::Error)
}

/// Whether `op` is a read (getData, getChildren): the ops of a multiRead.
pub(crate) fn is_read_op(op: &MultiOp) -> bool {
    matches!(op, MultiOp::GetData(_) | MultiOp::GetChildren(_))
}

/// Prepares the server's own deletion of an expired container or TTL node.
pub fn prepare_delete_container(tree: &DataTree, path: &str) -> Txn {
    delete_container(&mut View::new(tree), path).unwrap_or_else(Txn::Error)
}

/// Prepares a multi: operation by operation on the view; after the first failure the rest
/// become `RuntimeInconsistency` and nothing will be applied.
fn multi(view: &mut View<'_>, ctx: &PrepContext<'_>, ops: &[MultiOp]) -> Txn {
    let mut txns = Vec::with_capacity(ops.len());
    let mut failed = false;
    for op in ops {
        if failed {
            txns.push(Txn::Error(ErrorCode::RuntimeInconsistency));
            continue;
        }
        let prepared = match op {
            // As ZooKeeper 3.8's `MultiOperationRecord` does, the three plain create opcodes
            // become one op whose opcode follows the flags: `createContainer` for a container,
            // else `create`, answered with the path alone: a create2 in a multi gets no Stat
            // (ZOOKEEPER-4026, fixed only in 3.9).
            MultiOp::Create(r) | MultiOp::Create2(r) | MultiOp::CreateContainer(r) => {
                let op = if r.flags.is_container() {
                    CreateOp::Container
                } else {
                    CreateOp::Create
                };
                create(view, ctx, r, -1, op)
            }
            MultiOp::CreateTtl(r) => create_ttl(view, ctx, r),
            MultiOp::Delete(r) => delete(view, ctx, r),
            MultiOp::SetData(r) => set_data(view, ctx, r),
            MultiOp::Check(r) => check(view, ctx, r),
            // Not reached from `prepare`, which refuses a multi holding a read as a whole.
            MultiOp::GetChildren(_) | MultiOp::GetData(_) => Err(ErrorCode::MarshallingError),
        };
        match prepared {
            Ok(txn) => txns.push(txn),
            Err(code) => {
                failed = true;
                view.changes.clear();
                txns.push(Txn::Error(code));
            }
        }
    }
    Txn::Multi(txns)
}

/// Which opcode a create came with: it decides the reply and, for containers and TTL nodes,
/// the kind of node (as in ZooKeeper, the opcode wins over the flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CreateOp {
    Create,
    Create2,
    Container,
    Ttl,
}

fn check_session(view: &View<'_>, ctx: &PrepContext<'_>) -> Result<(), ErrorCode> {
    if ctx.session_id == 0 || view.tree.has_session(ctx.session_id) {
        Ok(())
    } else {
        Err(ErrorCode::SessionExpired)
    }
}

fn create_ttl(
    view: &mut View<'_>,
    ctx: &PrepContext<'_>,
    r: &CreateTtlRequest,
) -> Result<Txn, ErrorCode> {
    let plain = CreateRequest {
        path: r.path.clone(),
        data: r.data.clone(),
        acl: r.acl.clone(),
        flags: r.flags,
    };
    create(view, ctx, &plain, r.ttl, CreateOp::Ttl)
}

fn create(
    view: &mut View<'_>,
    ctx: &PrepContext<'_>,
    r: &CreateRequest,
    ttl: i64,
    op: CreateOp,
) -> Result<Txn, ErrorCode> {
    let mode = r.flags;
    // validateCreateRequest
    if mode.is_ttl() && !ctx.extended_types {
        return Err(ErrorCode::Unimplemented);
    }
    if mode.is_ttl() {
        if ttl <= 0 || ttl > MAX_TTL {
            return Err(ErrorCode::BadArguments);
        }
    } else if ttl >= 0 || op == CreateOp::Ttl {
        return Err(ErrorCode::BadArguments);
    }
    check_session(view, ctx)?;
    // validatePathForCreate
    if !r.path.contains('/') || r.path.contains('\0') {
        return Err(ErrorCode::BadArguments);
    }
    let parent_path = match r.path.rfind('/') {
        Some(0) | None => "/".to_owned(),
        Some(i) => r.path[..i].to_owned(),
    };
    let acl = fixup_acl(ctx.auth, &r.acl)?;
    let parent = view.get(&parent_path)?;
    check_acl(ctx.auth, &parent.acl, Perms::CREATE)?;
    let path = if mode.is_sequential() {
        format!("{}{:010}", r.path, parent.stat.cversion)
    } else {
        r.path.clone()
    };
    valid_path(&path)?;
    if view.exists(&path) {
        return Err(ErrorCode::NodeExists);
    }
    if matches!(
        EphemeralKind::of(parent.stat.ephemeral_owner),
        EphemeralKind::Session(_)
    ) {
        return Err(ErrorCode::NoChildrenForEphemerals);
    }
    let new_cversion = parent.stat.cversion.wrapping_add(1);
    let ephemeral_owner = match op {
        CreateOp::Container => CONTAINER_OWNER,
        CreateOp::Ttl => EphemeralKind::ttl_owner(ttl),
        CreateOp::Create | CreateOp::Create2 if mode.is_ephemeral() => ctx.session_id,
        CreateOp::Create | CreateOp::Create2 => 0,
    };
    let reply = match op {
        CreateOp::Create => CreateReply::Path,
        _ => CreateReply::PathAndStat,
    };
    // Record the effect for the rest of a multi.
    let mut parent_after = parent;
    parent_after.child_count += 1;
    parent_after.stat.cversion = new_cversion;
    view.changes.insert(parent_path, Some(parent_after));
    view.changes.insert(
        path.clone(),
        Some(NodeRecord {
            stat: Stat {
                ephemeral_owner,
                ..Stat::default()
            },
            acl: acl.clone(),
            child_count: 0,
        }),
    );
    Ok(Txn::Create(CreateTxn {
        path,
        data: r.data.clone(),
        acl,
        ephemeral_owner,
        parent_cversion: new_cversion,
        reply,
    }))
}

/// The parent of a node to delete (`getParentPathAndValidate`): `BadArguments` for a path
/// without `/`, with NUL, or naming one of the nodes the server owns.
fn parent_for_delete(path: &str) -> Result<String, ErrorCode> {
    let special = matches!(path, "/" | ZOOKEEPER_PATH | QUOTA_PATH | CONFIG_PATH);
    if special || path.contains('\0') {
        return Err(ErrorCode::BadArguments);
    }
    split_parent(path)
        .map(|(p, _)| p.to_owned())
        .ok_or(ErrorCode::BadArguments)
}

fn check_version(current: i32, expected: i32) -> Result<i32, ErrorCode> {
    if expected != -1 && expected != current {
        return Err(ErrorCode::BadVersion);
    }
    Ok(current.wrapping_add(1))
}

fn record_delete(view: &mut View<'_>, parent_path: String, mut parent: NodeRecord, path: &str) {
    parent.child_count -= 1;
    view.changes.insert(parent_path, Some(parent));
    view.changes.insert(path.to_owned(), None);
}

fn delete(view: &mut View<'_>, ctx: &PrepContext<'_>, r: &DeleteRequest) -> Result<Txn, ErrorCode> {
    check_session(view, ctx)?;
    let parent_path = parent_for_delete(&r.path)?;
    let parent = view.get(&parent_path)?;
    check_acl(ctx.auth, &parent.acl, Perms::DELETE)?;
    let node = view.get(&r.path)?;
    check_version(node.stat.version, r.version)?;
    if node.child_count > 0 {
        return Err(ErrorCode::NotEmpty);
    }
    record_delete(view, parent_path, parent, &r.path);
    Ok(Txn::Delete {
        path: r.path.clone(),
    })
}

fn delete_container(view: &mut View<'_>, path: &str) -> Result<Txn, ErrorCode> {
    let parent_path = parent_for_delete(path)?;
    let node = view.get(path)?;
    if node.child_count > 0 {
        return Err(ErrorCode::NotEmpty);
    }
    if matches!(
        EphemeralKind::of(node.stat.ephemeral_owner),
        EphemeralKind::Session(_)
    ) {
        return Err(ErrorCode::BadVersion);
    }
    let parent = view.get(&parent_path)?;
    record_delete(view, parent_path, parent, path);
    Ok(Txn::Delete {
        path: path.to_owned(),
    })
}

fn valid_path(path: &str) -> Result<(), ErrorCode> {
    validate_path(path).map_err(|_| ErrorCode::BadArguments)
}

fn set_data(
    view: &mut View<'_>,
    ctx: &PrepContext<'_>,
    r: &SetDataRequest,
) -> Result<Txn, ErrorCode> {
    check_session(view, ctx)?;
    valid_path(&r.path)?;
    let mut node = view.get(&r.path)?;
    check_acl(ctx.auth, &node.acl, Perms::WRITE)?;
    let version = check_version(node.stat.version, r.version)?;
    node.stat.version = version;
    view.changes.insert(r.path.clone(), Some(node));
    Ok(Txn::SetData {
        path: r.path.clone(),
        data: r.data.clone(),
        version,
    })
}

fn set_acl(
    view: &mut View<'_>,
    ctx: &PrepContext<'_>,
    r: &SetAclRequest,
) -> Result<Txn, ErrorCode> {
    check_session(view, ctx)?;
    valid_path(&r.path)?;
    let acl = fixup_acl(ctx.auth, &r.acl)?;
    let mut node = view.get(&r.path)?;
    check_acl(ctx.auth, &node.acl, Perms::ADMIN)?;
    let version = check_version(node.stat.aversion, r.version)?;
    node.stat.aversion = version;
    node.acl = acl.clone();
    view.changes.insert(r.path.clone(), Some(node));
    Ok(Txn::SetAcl {
        path: r.path.clone(),
        acl,
        version,
    })
}

fn check(
    view: &mut View<'_>,
    ctx: &PrepContext<'_>,
    r: &CheckVersionRequest,
) -> Result<Txn, ErrorCode> {
    check_session(view, ctx)?;
    valid_path(&r.path)?;
    let node = view.get(&r.path)?;
    check_acl(ctx.auth, &node.acl, Perms::READ)?;
    check_version(node.stat.version, r.version)?;
    Ok(Txn::Check {
        path: r.path.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::txn::TxnHeader;
    use std::net::IpAddr;
    use zkit::proto::{CreateMode, MultiRequest};

    fn ctx(auth: &AuthInfo) -> PrepContext<'_> {
        PrepContext {
            session_id: 0,
            auth,
            extended_types: true,
        }
    }

    fn create_req(path: &str, mode: CreateMode) -> CreateRequest {
        CreateRequest {
            path: path.into(),
            data: vec![],
            acl: Acl::open_unsafe(),
            flags: mode,
        }
    }

    #[test]
    fn create_errors_in_order() {
        let tree = DataTree::new();
        let auth = AuthInfo::for_peer(IpAddr::from([127, 0, 0, 1]));
        let c = ctx(&auth);
        let p = |r: Request| prepare(&tree, &c, &r);
        assert_eq!(
            p(Request::Create(create_req("/a/b", CreateMode::Persistent))),
            Txn::Error(ErrorCode::NoNode)
        );
        assert_eq!(
            p(Request::Create(create_req("a", CreateMode::Persistent))),
            Txn::Error(ErrorCode::BadArguments)
        );
        assert_eq!(
            p(Request::Create(create_req(
                "/zookeeper",
                CreateMode::Persistent
            ))),
            Txn::Error(ErrorCode::NodeExists)
        );
        assert_eq!(
            p(Request::Create(create_req(
                "/a",
                CreateMode::PersistentWithTtl
            ))),
            Txn::Error(ErrorCode::BadArguments)
        );
        assert_eq!(
            p(Request::Delete(DeleteRequest {
                path: "/zookeeper".into(),
                version: -1
            })),
            Txn::Error(ErrorCode::BadArguments)
        );
    }

    /// ZooKeeper 3.8 answers a multi that holds a read with MARSHALLINGERROR for the whole
    /// request, in an error txn (checked against a real server by tests/conformance.rs).
    #[test]
    fn multi_holding_a_read_is_a_marshalling_error() {
        let tree = DataTree::new();
        let auth = AuthInfo::default();
        let c = ctx(&auth);
        let read = MultiOp::GetData(zkit::proto::WatchedRequest {
            path: "/".into(),
            watch: false,
        });
        let check = MultiOp::Check(CheckVersionRequest {
            path: "/".into(),
            version: -1,
        });
        for ops in [
            vec![read.clone()],
            vec![check.clone(), read.clone()],
            vec![read, check],
        ] {
            let m = Request::Multi(MultiRequest { ops });
            assert_eq!(
                prepare(&tree, &c, &m),
                Txn::Error(ErrorCode::MarshallingError)
            );
        }
    }

    #[test]
    fn multi_sequential_names_are_consecutive() {
        let mut tree = DataTree::new();
        let auth = AuthInfo::default();
        let c = ctx(&auth);
        let m = Request::Multi(MultiRequest {
            ops: vec![
                MultiOp::Create(create_req("/q", CreateMode::Persistent)),
                MultiOp::Create(create_req("/q/n-", CreateMode::PersistentSequential)),
                MultiOp::Create(create_req("/q/n-", CreateMode::PersistentSequential)),
            ],
        });
        let txn = prepare(&tree, &c, &m);
        assert!(!txn.is_error());
        let hdr = TxnHeader {
            session_id: 0,
            cxid: 0,
            zxid: 1,
            time: 0,
        };
        tree.apply(&hdr, &txn);
        assert!(tree.node("/q/n-0000000000").is_some());
        assert!(tree.node("/q/n-0000000001").is_some());
    }
}
