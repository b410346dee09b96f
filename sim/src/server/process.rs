//! Answering requests (`FinalRequestProcessor`): writes go through [`prep`](super::prep) and
//! [`Core::commit`]; reads are answered from the tree, leaving watches; session-level
//! requests (ping, auth, SetWatches, closeSession) are handled here too. Every request gets
//! exactly one reply, in request order, with the last applied zxid in its header.

use zkit::proto::{
    ClientInfo, Create2Response, CreateResponse, ErrorCode, ErrorResponse, GetAclResponse,
    GetAllChildrenNumberResponse, GetChildren2Response, GetChildrenResponse, GetDataResponse,
    GetEphemeralsResponse, MultiOp, MultiResponse, MultiResult, Perms, Request, Response,
    StatResponse, SyncResponse, WatchedRequest, WatcherType, WhoAmIResponse,
};

use super::acl::{check_acl, redact, AuthInfo};
use super::core::{reply_frame, Core, Flow};
use super::prep::{is_read_op, prepare};
use super::txn::{CreateReply, TxnResult};
use super::watches::WatchSet;

/// The body of a successful reply, or the error code of a failed one.
type Answer = Result<Response, ErrorCode>;

impl Core {
    /// Answers one decoded request of connection `conn` (session `session_id`).
    pub(crate) fn process(
        &mut self,
        conn: u64,
        session_id: i64,
        xid: i32,
        request: Request,
        frame: &[u8],
        now: u64,
    ) -> Flow {
        if self.replica.as_ref().is_some_and(|r| r.read_only) {
            if let Some(flow) = self.read_only_process(conn, session_id, xid, &request) {
                return flow;
            }
        } else if self.replica.is_some() {
            if let Some(flow) = self.replica_process(conn, xid, &request, frame) {
                return flow;
            }
        }
        let auth = match self.connections.get(&conn) {
            Some(c) => c.auth.clone(),
            None => return Flow::Close,
        };
        let mut flow = Flow::Continue;
        let (zxid, answer) = match &request {
            Request::Ping => (self.tree.last_zxid(), Ok(Response::Empty)),
            Request::Auth(packet) => {
                let code = match self.connections.get_mut(&conn) {
                    Some(c) => c.auth.add(&packet.scheme, &packet.auth),
                    None => ErrorCode::AuthFailed,
                };
                if code != ErrorCode::Ok {
                    tracing::info!(conn, scheme = %packet.scheme, "authentication failed");
                    flow = Flow::Close;
                }
                // ZooKeeper answers auth with zxid 0.
                (
                    0,
                    if code == ErrorCode::Ok {
                        Ok(Response::Empty)
                    } else {
                        Err(code)
                    },
                )
            }
            Request::SetWatches(sw) => {
                let set = WatchSet {
                    data: &sw.data_watches,
                    exist: &sw.exist_watches,
                    child: &sw.child_watches,
                    persistent: &[],
                    persistent_recursive: &[],
                };
                self.restore_watches(conn, sw.relative_zxid, &set);
                (self.tree.last_zxid(), Ok(Response::Empty))
            }
            Request::SetWatches2(sw) => {
                let set = WatchSet {
                    data: &sw.data_watches,
                    exist: &sw.exist_watches,
                    child: &sw.child_watches,
                    persistent: &sw.persistent_watches,
                    persistent_recursive: &sw.persistent_recursive_watches,
                };
                self.restore_watches(conn, sw.relative_zxid, &set);
                (self.tree.last_zxid(), Ok(Response::Empty))
            }
            Request::CloseSession => {
                let txn = prepare(&self.tree, &self.prep_context(&auth, session_id), &request);
                let (zxid, _) = self.commit(session_id, xid, &txn, now);
                self.sessions.remove(session_id);
                tracing::info!(
                    conn,
                    session = format_args!("0x{session_id:x}"),
                    "session closed"
                );
                flow = Flow::Close;
                (zxid, Ok(Response::Empty))
            }
            Request::Sasl(_) => (self.tree.last_zxid(), Err(ErrorCode::Unimplemented)),
            r if r.is_write() => {
                let txn = prepare(&self.tree, &self.prep_context(&auth, session_id), r);
                let (zxid, applied) = self.commit(session_id, xid, &txn, now);
                (zxid, write_answer(applied.result))
            }
            r => {
                let answer = self.read(conn, session_id, &auth, r);
                (self.tree.last_zxid(), answer)
            }
        };
        let frame = match &answer {
            Ok(body) => reply_frame(xid, zxid, ErrorCode::Ok, Some(body)),
            Err(code) => reply_frame(xid, zxid, *code, None),
        };
        if let Some(c) = self.connections.get_mut(&conn) {
            c.last_zxid = zxid;
        }
        self.send(conn, frame);
        if flow == Flow::Close {
            self.close_connection(conn);
        }
        flow
    }

    fn restore_watches(&mut self, conn: u64, relative_zxid: i64, set: &WatchSet<'_>) {
        let fired = self
            .watches
            .set_watches(&self.tree, conn, relative_zxid, set);
        // Replayed events carry no zxid (-1), as in ZooKeeper.
        self.deliver(fired, -1);
    }

    /// Answers a read, leaving the watch it asks for.
    fn read(&mut self, conn: u64, session_id: i64, auth: &AuthInfo, request: &Request) -> Answer {
        match request {
            Request::Exists(r) => {
                if r.path.contains('\0') {
                    return Err(ErrorCode::BadArguments);
                }
                if r.watch {
                    self.watches.add_data_watch(&r.path, conn);
                }
                let node = self.tree.node(&r.path).ok_or(ErrorCode::NoNode)?;
                Ok(Response::Stat(StatResponse {
                    stat: node.client_stat(),
                }))
            }
            Request::GetData(r) => self.get_data(conn, auth, r, true).map(Response::GetData),
            Request::GetChildren(r) => self
                .get_children(conn, auth, r, true)
                .map(|(children, _)| Response::GetChildren(GetChildrenResponse { children })),
            Request::GetChildren2(r) => {
                self.get_children(conn, auth, r, true)
                    .map(|(children, stat)| {
                        Response::GetChildren2(GetChildren2Response { children, stat })
                    })
            }
            Request::GetAcl(r) => {
                let node = self.tree.node(&r.path).ok_or(ErrorCode::NoNode)?;
                check_acl(auth, &node.acl, Perms::READ | Perms::ADMIN)?;
                let acl = if check_acl(auth, &node.acl, Perms::ADMIN).is_ok() {
                    node.acl.clone()
                } else {
                    redact(&node.acl)
                };
                Ok(Response::GetAcl(GetAclResponse {
                    acl,
                    stat: node.client_stat(),
                }))
            }
            Request::Sync(r) => Ok(Response::Sync(SyncResponse {
                path: r.path.clone(),
            })),
            Request::GetEphemerals(r) => {
                let prefix = r.path.trim();
                let all = self.tree.ephemerals(session_id);
                let mine = all
                    .iter()
                    .filter(|p| prefix.is_empty() || prefix == "/" || p.starts_with(&r.path));
                let ephemerals = self.list_order.list(mine);
                Ok(Response::GetEphemerals(GetEphemeralsResponse {
                    ephemerals,
                }))
            }
            Request::GetAllChildrenNumber(r) => {
                let node = self.tree.node(&r.path).ok_or(ErrorCode::NoNode)?;
                check_acl(auth, &node.acl, Perms::READ)?;
                Ok(Response::GetAllChildrenNumber(
                    GetAllChildrenNumberResponse {
                        total_number: self.tree.all_children_number(&r.path),
                    },
                ))
            }
            Request::WhoAmI => Ok(Response::WhoAmI(WhoAmIResponse {
                client_info: auth
                    .ids()
                    .iter()
                    .map(|id| ClientInfo {
                        auth_scheme: id.scheme.clone(),
                        user: AuthInfo::user_name(id),
                    })
                    .collect(),
            })),
            Request::AddWatch(r) => {
                self.watches.add_watch(&r.path, conn, r.mode);
                Ok(Response::AddWatch(ErrorResponse { err: 0 }))
            }
            Request::RemoveWatches(r) | Request::CheckWatches(r)
                if matches!(
                    r.watcher_type,
                    WatcherType::Persistent | WatcherType::PersistentRecursive
                ) =>
            {
                // ZooKeeper 3.8 cannot convert these types and answers MARSHALLINGERROR.
                Err(ErrorCode::MarshallingError)
            }
            Request::RemoveWatches(r) => {
                if self.watches.remove(&r.path, conn, r.watcher_type) {
                    Ok(Response::Empty)
                } else {
                    Err(ErrorCode::NoWatcher)
                }
            }
            Request::CheckWatches(r) => {
                if self.watches.contains(&r.path, conn, r.watcher_type) {
                    Ok(Response::Empty)
                } else {
                    Err(ErrorCode::NoWatcher)
                }
            }
            // ZooKeeper 3.8's `FinalRequestProcessor` refuses a multiRead holding a write as a
            // whole: `MultiOperationRecord` will not mix read and write ops, and a write alone
            // is not a read op it knows; the exception becomes MARSHALLINGERROR, no zxid taken
            // (observed against 3.8.0 by tests/conformance.rs).
            Request::MultiRead(m) if !m.ops.iter().all(is_read_op) => {
                Err(ErrorCode::MarshallingError)
            }
            Request::MultiRead(m) => {
                let mut results = Vec::with_capacity(m.ops.len());
                for op in &m.ops {
                    // Watch flags inside a multiRead are ignored, as in ZooKeeper.
                    let result = match op {
                        MultiOp::GetData(r) => self
                            .get_data(conn, auth, r, false)
                            .map(MultiResult::GetData),
                        MultiOp::GetChildren(r) => {
                            self.get_children(conn, auth, r, false)
                                .map(|(children, _)| {
                                    MultiResult::GetChildren(GetChildrenResponse { children })
                                })
                        }
                        // Refused above.
                        _ => Err(ErrorCode::MarshallingError),
                    };
                    results.push(result.unwrap_or_else(MultiResult::Error));
                }
                Ok(Response::Multi(MultiResponse { results }))
            }
            _ => Err(ErrorCode::Unimplemented),
        }
    }

    fn get_data(
        &mut self,
        conn: u64,
        auth: &AuthInfo,
        r: &WatchedRequest,
        watch: bool,
    ) -> Result<GetDataResponse, ErrorCode> {
        let node = self.tree.node(&r.path).ok_or(ErrorCode::NoNode)?;
        check_acl(auth, &node.acl, Perms::READ)?;
        let reply = GetDataResponse {
            data: node.data.clone(),
            stat: node.client_stat(),
        };
        if watch && r.watch {
            self.watches.add_data_watch(&r.path, conn);
        }
        Ok(reply)
    }

    fn get_children(
        &mut self,
        conn: u64,
        auth: &AuthInfo,
        r: &WatchedRequest,
        watch: bool,
    ) -> Result<(Vec<String>, zkit::proto::Stat), ErrorCode> {
        let node = self.tree.node(&r.path).ok_or(ErrorCode::NoNode)?;
        check_acl(auth, &node.acl, Perms::READ)?;
        let reply = (self.list_order.list(&node.children), node.client_stat());
        if watch && r.watch {
            self.watches.add_child_watch(&r.path, conn);
        }
        Ok(reply)
    }
}

/// The reply to a write, from what applying its transaction did.
pub(crate) fn write_answer(result: TxnResult) -> Answer {
    match result {
        TxnResult::Created { path, stat, reply } => Ok(match reply {
            CreateReply::Path => Response::Create(CreateResponse { path }),
            CreateReply::PathAndStat => Response::Create2(Create2Response { path, stat }),
        }),
        TxnResult::Deleted
        | TxnResult::Checked
        | TxnResult::SessionClosed(_)
        | TxnResult::SessionCreated => Ok(Response::Empty),
        TxnResult::DataSet(stat) | TxnResult::AclSet(stat) => {
            Ok(Response::Stat(StatResponse { stat }))
        }
        TxnResult::Multi(results) => Ok(Response::Multi(MultiResponse {
            results: results.into_iter().map(multi_result).collect(),
        })),
        TxnResult::Error(code) => Err(code),
    }
}

fn multi_result(result: TxnResult) -> MultiResult {
    match result {
        TxnResult::Created { path, stat, reply } => match reply {
            CreateReply::Path => MultiResult::Create(CreateResponse { path }),
            CreateReply::PathAndStat => MultiResult::Create2(Create2Response { path, stat }),
        },
        TxnResult::Deleted => MultiResult::Delete,
        TxnResult::DataSet(stat) => MultiResult::SetData(StatResponse { stat }),
        TxnResult::Checked => MultiResult::Check,
        TxnResult::Error(code) => MultiResult::Error(code),
        // Not produced inside a multi.
        TxnResult::AclSet(_)
        | TxnResult::Multi(_)
        | TxnResult::SessionCreated
        | TxnResult::SessionClosed(_) => MultiResult::Error(ErrorCode::SystemError),
    }
}
