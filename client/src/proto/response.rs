//! Reply bodies, keyed by the opcode of the request they answer.
//!
//! A reply is a [`ReplyHeader`] and, when its `err` is 0, a body whose layout depends on the
//! request: the client knows it from its queue of pending requests (ZooKeeper answers in
//! order), the server from the request it is answering.

use super::consts::OpCode;
use super::jute::{Reader, Record};
use super::multi::MultiResponse;
use super::records::*;
use super::DecodeError;

/// The body of a successful reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// No body: delete, check, auth, ping, closeSession, setWatches, removeWatches,
    /// checkWatches.
    Empty,
    /// create: the created path.
    Create(CreateResponse),
    /// create2, createContainer, createTTL: path and Stat.
    Create2(Create2Response),
    /// exists, setData, setACL: a Stat.
    Stat(StatResponse),
    /// getData and reconfig: data and Stat.
    GetData(GetDataResponse),
    /// getACL.
    GetAcl(GetAclResponse),
    /// getChildren.
    GetChildren(GetChildrenResponse),
    /// getChildren2.
    GetChildren2(GetChildren2Response),
    /// sync.
    Sync(SyncResponse),
    /// multi and multiRead.
    Multi(MultiResponse),
    /// getEphemerals.
    GetEphemerals(GetEphemeralsResponse),
    /// getAllChildrenNumber.
    GetAllChildrenNumber(GetAllChildrenNumberResponse),
    /// whoAmI.
    WhoAmI(WhoAmIResponse),
    /// addWatch: a bare code (always 0 on success).
    AddWatch(ErrorResponse),
    /// sasl.
    Sasl(SaslToken),
}

impl Response {
    /// Reads the body of a successful reply to a request sent with opcode `op`.
    pub fn decode(op: OpCode, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match op {
            OpCode::Create => Response::Create(Record::decode(r)?),
            OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => {
                Response::Create2(Record::decode(r)?)
            }
            OpCode::Exists | OpCode::SetData | OpCode::SetAcl => Response::Stat(Record::decode(r)?),
            OpCode::GetData | OpCode::Reconfig => Response::GetData(Record::decode(r)?),
            OpCode::GetAcl => Response::GetAcl(Record::decode(r)?),
            OpCode::GetChildren => Response::GetChildren(Record::decode(r)?),
            OpCode::GetChildren2 => Response::GetChildren2(Record::decode(r)?),
            OpCode::Sync => Response::Sync(Record::decode(r)?),
            OpCode::Multi | OpCode::MultiRead => Response::Multi(Record::decode(r)?),
            OpCode::GetEphemerals => Response::GetEphemerals(Record::decode(r)?),
            OpCode::GetAllChildrenNumber => Response::GetAllChildrenNumber(Record::decode(r)?),
            OpCode::WhoAmI => Response::WhoAmI(Record::decode(r)?),
            OpCode::AddWatch => Response::AddWatch(Record::decode(r)?),
            OpCode::Sasl => Response::Sasl(Record::decode(r)?),
            OpCode::Delete
            | OpCode::DeleteContainer
            | OpCode::Check
            | OpCode::Auth
            | OpCode::Ping
            | OpCode::CloseSession
            | OpCode::SetWatches
            | OpCode::SetWatches2
            | OpCode::RemoveWatches
            | OpCode::CheckWatches => Response::Empty,
            OpCode::Notification | OpCode::CreateSession | OpCode::Error => {
                return Err(DecodeError::Malformed {
                    what: "reply to an opcode no request carries",
                })
            }
        })
    }

    /// Decodes exactly one body for opcode `op`, rejecting trailing bytes.
    pub fn from_bytes(op: OpCode, bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let response = Response::decode(op, &mut r)?;
        r.finish()?;
        Ok(response)
    }

    /// Appends the body.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Response::Empty => {}
            Response::Create(b) => b.encode(out),
            Response::Create2(b) => b.encode(out),
            Response::Stat(b) => b.encode(out),
            Response::GetData(b) => b.encode(out),
            Response::GetAcl(b) => b.encode(out),
            Response::GetChildren(b) => b.encode(out),
            Response::GetChildren2(b) => b.encode(out),
            Response::Sync(b) => b.encode(out),
            Response::Multi(b) => b.encode(out),
            Response::GetEphemerals(b) => b.encode(out),
            Response::GetAllChildrenNumber(b) => b.encode(out),
            Response::WhoAmI(b) => b.encode(out),
            Response::AddWatch(b) => b.encode(out),
            Response::Sasl(b) => b.encode(out),
        }
    }
}
