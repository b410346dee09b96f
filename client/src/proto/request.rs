//! Request bodies for every opcode, and how a request is framed: a [`RequestHeader`] with the
//! xid and opcode, then the body.

use super::consts::{OpCode, AUTH_XID, PING_XID, SET_WATCHES_XID};
use super::jute::{Reader, Record};
use super::multi::MultiRequest;
use super::records::*;
use super::DecodeError;

/// One request, body included (the header's xid is assigned by the session).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// create (reply: path).
    Create(CreateRequest),
    /// create2 (reply: path and Stat).
    Create2(CreateRequest),
    /// createContainer.
    CreateContainer(CreateRequest),
    /// createTTL.
    CreateTtl(CreateTtlRequest),
    /// delete.
    Delete(DeleteRequest),
    /// deleteContainer (server internal, decoded for completeness).
    DeleteContainer(PathRequest),
    /// exists.
    Exists(WatchedRequest),
    /// getData (getConfig is a getData of `/zookeeper/config`).
    GetData(WatchedRequest),
    /// setData.
    SetData(SetDataRequest),
    /// getACL.
    GetAcl(PathRequest),
    /// setACL.
    SetAcl(SetAclRequest),
    /// getChildren.
    GetChildren(WatchedRequest),
    /// getChildren2.
    GetChildren2(WatchedRequest),
    /// sync.
    Sync(PathRequest),
    /// check (a version check on its own).
    Check(CheckVersionRequest),
    /// multi: an atomic transaction.
    Multi(MultiRequest),
    /// multiRead: several reads in one round trip.
    MultiRead(MultiRequest),
    /// auth (xid -4).
    Auth(AuthPacket),
    /// setWatches (xid -8).
    SetWatches(SetWatches),
    /// setWatches2 (xid -8).
    SetWatches2(SetWatches2),
    /// getEphemerals.
    GetEphemerals(PathRequest),
    /// getAllChildrenNumber.
    GetAllChildrenNumber(PathRequest),
    /// addWatch.
    AddWatch(AddWatchRequest),
    /// removeWatches.
    RemoveWatches(RemoveWatchesRequest),
    /// checkWatches.
    CheckWatches(RemoveWatchesRequest),
    /// whoAmI (empty body).
    WhoAmI,
    /// reconfig.
    Reconfig(ReconfigRequest),
    /// closeSession (empty body).
    CloseSession,
    /// ping (xid -2, empty body).
    Ping,
    /// sasl.
    Sasl(SaslToken),
}

impl Request {
    /// The opcode this request is sent with.
    pub fn op_code(&self) -> OpCode {
        match self {
            Request::Create(_) => OpCode::Create,
            Request::Create2(_) => OpCode::Create2,
            Request::CreateContainer(_) => OpCode::CreateContainer,
            Request::CreateTtl(_) => OpCode::CreateTtl,
            Request::Delete(_) => OpCode::Delete,
            Request::DeleteContainer(_) => OpCode::DeleteContainer,
            Request::Exists(_) => OpCode::Exists,
            Request::GetData(_) => OpCode::GetData,
            Request::SetData(_) => OpCode::SetData,
            Request::GetAcl(_) => OpCode::GetAcl,
            Request::SetAcl(_) => OpCode::SetAcl,
            Request::GetChildren(_) => OpCode::GetChildren,
            Request::GetChildren2(_) => OpCode::GetChildren2,
            Request::Sync(_) => OpCode::Sync,
            Request::Check(_) => OpCode::Check,
            Request::Multi(_) => OpCode::Multi,
            Request::MultiRead(_) => OpCode::MultiRead,
            Request::Auth(_) => OpCode::Auth,
            Request::SetWatches(_) => OpCode::SetWatches,
            Request::SetWatches2(_) => OpCode::SetWatches2,
            Request::GetEphemerals(_) => OpCode::GetEphemerals,
            Request::GetAllChildrenNumber(_) => OpCode::GetAllChildrenNumber,
            Request::AddWatch(_) => OpCode::AddWatch,
            Request::RemoveWatches(_) => OpCode::RemoveWatches,
            Request::CheckWatches(_) => OpCode::CheckWatches,
            Request::WhoAmI => OpCode::WhoAmI,
            Request::Reconfig(_) => OpCode::Reconfig,
            Request::CloseSession => OpCode::CloseSession,
            Request::Ping => OpCode::Ping,
            Request::Sasl(_) => OpCode::Sasl,
        }
    }

    /// The reserved xid this request always travels with, if it has one.
    pub fn reserved_xid(&self) -> Option<i32> {
        match self {
            Request::Ping => Some(PING_XID),
            Request::Auth(_) => Some(AUTH_XID),
            Request::SetWatches(_) | Request::SetWatches2(_) => Some(SET_WATCHES_XID),
            _ => None,
        }
    }

    /// The node the request addresses, if it addresses exactly one.
    pub fn path(&self) -> Option<&str> {
        Some(match self {
            Request::Create(r) | Request::Create2(r) | Request::CreateContainer(r) => &r.path,
            Request::CreateTtl(r) => &r.path,
            Request::Delete(r) => &r.path,
            Request::DeleteContainer(r)
            | Request::GetAcl(r)
            | Request::Sync(r)
            | Request::GetEphemerals(r)
            | Request::GetAllChildrenNumber(r) => &r.path,
            Request::Exists(r)
            | Request::GetData(r)
            | Request::GetChildren(r)
            | Request::GetChildren2(r) => &r.path,
            Request::SetData(r) => &r.path,
            Request::SetAcl(r) => &r.path,
            Request::Check(r) => &r.path,
            Request::AddWatch(r) => &r.path,
            Request::RemoveWatches(r) | Request::CheckWatches(r) => &r.path,
            _ => return None,
        })
    }

    /// Whether the request changes the tree (and so is ordered through the leader).
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            Request::Create(_)
                | Request::Create2(_)
                | Request::CreateContainer(_)
                | Request::CreateTtl(_)
                | Request::Delete(_)
                | Request::DeleteContainer(_)
                | Request::SetData(_)
                | Request::SetAcl(_)
                | Request::Check(_)
                | Request::Multi(_)
                | Request::Reconfig(_)
                | Request::CloseSession
        )
    }

    /// Appends the body (everything after the header).
    pub fn encode_body(&self, out: &mut Vec<u8>) {
        match self {
            Request::Create(r) | Request::Create2(r) | Request::CreateContainer(r) => r.encode(out),
            Request::CreateTtl(r) => r.encode(out),
            Request::Delete(r) => r.encode(out),
            Request::DeleteContainer(r)
            | Request::GetAcl(r)
            | Request::Sync(r)
            | Request::GetEphemerals(r)
            | Request::GetAllChildrenNumber(r) => r.encode(out),
            Request::Exists(r)
            | Request::GetData(r)
            | Request::GetChildren(r)
            | Request::GetChildren2(r) => r.encode(out),
            Request::SetData(r) => r.encode(out),
            Request::SetAcl(r) => r.encode(out),
            Request::Check(r) => r.encode(out),
            Request::Multi(r) | Request::MultiRead(r) => r.encode(out),
            Request::Auth(r) => r.encode(out),
            Request::SetWatches(r) => r.encode(out),
            Request::SetWatches2(r) => r.encode(out),
            Request::AddWatch(r) => r.encode(out),
            Request::RemoveWatches(r) | Request::CheckWatches(r) => r.encode(out),
            Request::Reconfig(r) => r.encode(out),
            Request::Sasl(r) => r.encode(out),
            Request::WhoAmI | Request::CloseSession | Request::Ping => {}
        }
    }

    /// Appends header and body for a request numbered `xid`.
    pub fn encode(&self, xid: i32, out: &mut Vec<u8>) {
        RequestHeader {
            xid,
            op: self.op_code().code(),
        }
        .encode(out);
        self.encode_body(out);
    }

    /// Reads the body of a request sent with opcode `op`.
    pub fn decode_body(op: OpCode, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match op {
            OpCode::Create => Request::Create(Record::decode(r)?),
            OpCode::Create2 => Request::Create2(Record::decode(r)?),
            OpCode::CreateContainer => Request::CreateContainer(Record::decode(r)?),
            OpCode::CreateTtl => Request::CreateTtl(Record::decode(r)?),
            OpCode::Delete => Request::Delete(Record::decode(r)?),
            OpCode::DeleteContainer => Request::DeleteContainer(Record::decode(r)?),
            OpCode::Exists => Request::Exists(Record::decode(r)?),
            OpCode::GetData => Request::GetData(Record::decode(r)?),
            OpCode::SetData => Request::SetData(Record::decode(r)?),
            OpCode::GetAcl => Request::GetAcl(Record::decode(r)?),
            OpCode::SetAcl => Request::SetAcl(Record::decode(r)?),
            OpCode::GetChildren => Request::GetChildren(Record::decode(r)?),
            OpCode::GetChildren2 => Request::GetChildren2(Record::decode(r)?),
            OpCode::Sync => Request::Sync(Record::decode(r)?),
            OpCode::Check => Request::Check(Record::decode(r)?),
            OpCode::Multi => Request::Multi(Record::decode(r)?),
            OpCode::MultiRead => Request::MultiRead(Record::decode(r)?),
            OpCode::Auth => Request::Auth(Record::decode(r)?),
            OpCode::SetWatches => Request::SetWatches(Record::decode(r)?),
            OpCode::SetWatches2 => Request::SetWatches2(Record::decode(r)?),
            OpCode::GetEphemerals => Request::GetEphemerals(Record::decode(r)?),
            OpCode::GetAllChildrenNumber => Request::GetAllChildrenNumber(Record::decode(r)?),
            OpCode::AddWatch => Request::AddWatch(Record::decode(r)?),
            OpCode::RemoveWatches => Request::RemoveWatches(Record::decode(r)?),
            OpCode::CheckWatches => Request::CheckWatches(Record::decode(r)?),
            OpCode::WhoAmI => Request::WhoAmI,
            OpCode::Reconfig => Request::Reconfig(Record::decode(r)?),
            OpCode::CloseSession => Request::CloseSession,
            OpCode::Ping => Request::Ping,
            OpCode::Sasl => Request::Sasl(Record::decode(r)?),
            OpCode::Notification | OpCode::CreateSession | OpCode::Error => {
                return Err(DecodeError::Malformed {
                    what: "request opcode a client cannot send",
                })
            }
        })
    }

    /// Reads one whole request frame body (header and body, nothing after), as a server does.
    pub fn decode_frame(bytes: &[u8]) -> Result<(RequestHeader, Request), DecodeError> {
        let mut r = Reader::new(bytes);
        let header = RequestHeader::decode(&mut r)?;
        let request = Request::decode_body(OpCode::try_from(header.op)?, &mut r)?;
        r.finish()?;
        Ok((header, request))
    }
}

#[cfg(test)]
mod arbitrary {
    use super::*;
    use proptest::prelude::*;

    impl Arbitrary for Request {
        type Parameters = ();
        type Strategy = BoxedStrategy<Self>;
        fn arbitrary_with(_: ()) -> Self::Strategy {
            prop_oneof![
                any::<CreateRequest>().prop_map(Request::Create),
                any::<CreateRequest>().prop_map(Request::Create2),
                any::<CreateRequest>().prop_map(Request::CreateContainer),
                any::<CreateTtlRequest>().prop_map(Request::CreateTtl),
                any::<DeleteRequest>().prop_map(Request::Delete),
                any::<PathRequest>().prop_map(Request::DeleteContainer),
                any::<WatchedRequest>().prop_map(Request::Exists),
                any::<WatchedRequest>().prop_map(Request::GetData),
                any::<SetDataRequest>().prop_map(Request::SetData),
                any::<PathRequest>().prop_map(Request::GetAcl),
                any::<SetAclRequest>().prop_map(Request::SetAcl),
                any::<WatchedRequest>().prop_map(Request::GetChildren),
                any::<WatchedRequest>().prop_map(Request::GetChildren2),
                any::<PathRequest>().prop_map(Request::Sync),
                any::<CheckVersionRequest>().prop_map(Request::Check),
                any::<MultiRequest>().prop_map(Request::Multi),
                any::<MultiRequest>().prop_map(Request::MultiRead),
                any::<AuthPacket>().prop_map(Request::Auth),
                any::<SetWatches>().prop_map(Request::SetWatches),
                any::<SetWatches2>().prop_map(Request::SetWatches2),
                any::<PathRequest>().prop_map(Request::GetEphemerals),
                any::<PathRequest>().prop_map(Request::GetAllChildrenNumber),
                any::<AddWatchRequest>().prop_map(Request::AddWatch),
                any::<RemoveWatchesRequest>().prop_map(Request::RemoveWatches),
                any::<RemoveWatchesRequest>().prop_map(Request::CheckWatches),
                Just(Request::WhoAmI),
                any::<ReconfigRequest>().prop_map(Request::Reconfig),
                Just(Request::CloseSession),
                Just(Request::Ping),
                any::<SaslToken>().prop_map(Request::Sasl),
            ]
            .boxed()
        }
    }
}
