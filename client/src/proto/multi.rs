//! Multi framing: a transaction (multi) or a batch of reads (multiRead) is a sequence of
//! [`MultiHeader`]-prefixed operations closed by a header with `done` set; the reply mirrors it
//! with one result per operation.
//!
//! A failed multi applies nothing: every result is an error result, earlier operations with
//! code 0, the failing one with its code, later ones with `RUNTIMEINCONSISTENCY`.

use super::consts::{ErrorCode, OpCode};
use super::jute::{Field, Reader, Record, Writer};
use super::records::*;
use super::DecodeError;

record! {
    /// Precedes each operation or result in a multi; `done` closes the sequence.
    pub struct MultiHeader {
        /// The operation's opcode number (-1 for an error result and for the closing header).
        pub op: i32,
        /// Set on the closing header.
        pub done: bool,
        /// The result code (-1 in requests and in the closing header).
        pub err: i32,
    }
}

/// The closing header of a multi request or reply.
const DONE: MultiHeader = MultiHeader {
    op: -1,
    done: true,
    err: -1,
};

/// One operation of a multi or multiRead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiOp {
    /// Create, replying with the path only.
    Create(CreateRequest),
    /// Create, replying with path and Stat.
    Create2(CreateRequest),
    /// Create a container node.
    CreateContainer(CreateRequest),
    /// Create a node with a TTL.
    CreateTtl(CreateTtlRequest),
    /// Delete a node.
    Delete(DeleteRequest),
    /// Write data.
    SetData(SetDataRequest),
    /// Check a version.
    Check(CheckVersionRequest),
    /// List children (multiRead only; `watch` is ignored by the server).
    GetChildren(WatchedRequest),
    /// Read data (multiRead only; `watch` is ignored by the server).
    GetData(WatchedRequest),
}

impl MultiOp {
    /// The opcode this operation is framed with.
    pub fn op_code(&self) -> OpCode {
        match self {
            MultiOp::Create(_) => OpCode::Create,
            MultiOp::Create2(_) => OpCode::Create2,
            MultiOp::CreateContainer(_) => OpCode::CreateContainer,
            MultiOp::CreateTtl(_) => OpCode::CreateTtl,
            MultiOp::Delete(_) => OpCode::Delete,
            MultiOp::SetData(_) => OpCode::SetData,
            MultiOp::Check(_) => OpCode::Check,
            MultiOp::GetChildren(_) => OpCode::GetChildren,
            MultiOp::GetData(_) => OpCode::GetData,
        }
    }

    /// The path the operation addresses.
    pub fn path(&self) -> &str {
        match self {
            MultiOp::Create(r) | MultiOp::Create2(r) | MultiOp::CreateContainer(r) => &r.path,
            MultiOp::CreateTtl(r) => &r.path,
            MultiOp::Delete(r) => &r.path,
            MultiOp::SetData(r) => &r.path,
            MultiOp::Check(r) => &r.path,
            MultiOp::GetChildren(r) | MultiOp::GetData(r) => &r.path,
        }
    }

    fn encode_body(&self, out: &mut Vec<u8>) {
        match self {
            MultiOp::Create(r) | MultiOp::Create2(r) | MultiOp::CreateContainer(r) => r.encode(out),
            MultiOp::CreateTtl(r) => r.encode(out),
            MultiOp::Delete(r) => r.encode(out),
            MultiOp::SetData(r) => r.encode(out),
            MultiOp::Check(r) => r.encode(out),
            MultiOp::GetChildren(r) | MultiOp::GetData(r) => r.encode(out),
        }
    }

    fn decode_body(op: OpCode, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match op {
            OpCode::Create => MultiOp::Create(Record::decode(r)?),
            OpCode::Create2 => MultiOp::Create2(Record::decode(r)?),
            OpCode::CreateContainer => MultiOp::CreateContainer(Record::decode(r)?),
            OpCode::CreateTtl => MultiOp::CreateTtl(Record::decode(r)?),
            OpCode::Delete => MultiOp::Delete(Record::decode(r)?),
            OpCode::SetData => MultiOp::SetData(Record::decode(r)?),
            OpCode::Check => MultiOp::Check(Record::decode(r)?),
            OpCode::GetChildren => MultiOp::GetChildren(Record::decode(r)?),
            OpCode::GetData => MultiOp::GetData(Record::decode(r)?),
            _ => {
                return Err(DecodeError::Malformed {
                    what: "operation inside a multi",
                })
            }
        })
    }
}

/// The body of a multi or multiRead request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MultiRequest {
    /// The operations, in order.
    pub ops: Vec<MultiOp>,
}

impl Record for MultiRequest {
    fn encode(&self, out: &mut Vec<u8>) {
        for op in &self.ops {
            MultiHeader {
                op: op.op_code().code(),
                done: false,
                err: -1,
            }
            .encode(out);
            op.encode_body(out);
        }
        DONE.encode(out);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut ops = Vec::new();
        loop {
            let h = MultiHeader::decode(r)?;
            if h.done {
                return Ok(MultiRequest { ops });
            }
            ops.push(MultiOp::decode_body(OpCode::try_from(h.op)?, r)?);
        }
    }

    const MIN_SIZE: usize = <MultiHeader as Record>::MIN_SIZE;
}

/// One result of a multi or multiRead reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiResult {
    /// A create framed as `create`: the path.
    Create(CreateResponse),
    /// A create2, createContainer or createTTL: path and Stat (always framed as create2).
    Create2(Create2Response),
    /// A delete succeeded.
    Delete,
    /// A setData succeeded.
    SetData(StatResponse),
    /// A check succeeded.
    Check,
    /// A getChildren read (multiRead).
    GetChildren(GetChildrenResponse),
    /// A getData read (multiRead).
    GetData(GetDataResponse),
    /// The operation failed, or was not applied because another one failed (code 0 for an
    /// earlier op, `RuntimeInconsistency` for a later one).
    Error(ErrorCode),
}

impl MultiResult {
    fn op_code(&self) -> OpCode {
        match self {
            MultiResult::Create(_) => OpCode::Create,
            MultiResult::Create2(_) => OpCode::Create2,
            MultiResult::Delete => OpCode::Delete,
            MultiResult::SetData(_) => OpCode::SetData,
            MultiResult::Check => OpCode::Check,
            MultiResult::GetChildren(_) => OpCode::GetChildren,
            MultiResult::GetData(_) => OpCode::GetData,
            MultiResult::Error(_) => OpCode::Error,
        }
    }
}

/// The body of a multi or multiRead reply.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MultiResponse {
    /// One result per operation, in order.
    pub results: Vec<MultiResult>,
}

impl MultiResponse {
    /// The first failure in the results, with its index, if the transaction failed.
    pub fn first_error(&self) -> Option<(usize, ErrorCode)> {
        self.results.iter().enumerate().find_map(|(i, r)| match r {
            MultiResult::Error(code) if *code != ErrorCode::Ok => Some((i, *code)),
            _ => None,
        })
    }
}

impl Record for MultiResponse {
    fn encode(&self, out: &mut Vec<u8>) {
        for result in &self.results {
            let err = match result {
                MultiResult::Error(code) => code.code(),
                _ => 0,
            };
            MultiHeader {
                op: result.op_code().code(),
                done: false,
                err,
            }
            .encode(out);
            match result {
                MultiResult::Create(b) => b.encode(out),
                MultiResult::Create2(b) => b.encode(out),
                MultiResult::SetData(b) => b.encode(out),
                MultiResult::GetChildren(b) => b.encode(out),
                MultiResult::GetData(b) => b.encode(out),
                MultiResult::Error(code) => out.put_i32(code.code()),
                MultiResult::Delete | MultiResult::Check => {}
            }
        }
        DONE.encode(out);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut results = Vec::new();
        loop {
            let h = MultiHeader::decode(r)?;
            if h.done {
                return Ok(MultiResponse { results });
            }
            let op = OpCode::try_from(h.op)?;
            results.push(match op {
                OpCode::Create => MultiResult::Create(Record::decode(r)?),
                OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => {
                    MultiResult::Create2(Record::decode(r)?)
                }
                OpCode::Delete | OpCode::DeleteContainer => MultiResult::Delete,
                OpCode::SetData => MultiResult::SetData(Record::decode(r)?),
                OpCode::Check => MultiResult::Check,
                OpCode::GetChildren => MultiResult::GetChildren(Record::decode(r)?),
                OpCode::GetData => MultiResult::GetData(Record::decode(r)?),
                OpCode::Error => MultiResult::Error(ErrorCode::get(r)?),
                _ => {
                    return Err(DecodeError::Malformed {
                        what: "result inside a multi reply",
                    })
                }
            });
        }
    }

    const MIN_SIZE: usize = <MultiHeader as Record>::MIN_SIZE;
}

#[cfg(test)]
mod arbitrary {
    use super::*;
    use proptest::prelude::*;

    impl Arbitrary for MultiOp {
        type Parameters = ();
        type Strategy = BoxedStrategy<Self>;
        fn arbitrary_with(_: ()) -> Self::Strategy {
            prop_oneof![
                any::<CreateRequest>().prop_map(MultiOp::Create),
                any::<CreateRequest>().prop_map(MultiOp::Create2),
                any::<CreateRequest>().prop_map(MultiOp::CreateContainer),
                any::<CreateTtlRequest>().prop_map(MultiOp::CreateTtl),
                any::<DeleteRequest>().prop_map(MultiOp::Delete),
                any::<SetDataRequest>().prop_map(MultiOp::SetData),
                any::<CheckVersionRequest>().prop_map(MultiOp::Check),
                any::<WatchedRequest>().prop_map(MultiOp::GetChildren),
                any::<WatchedRequest>().prop_map(MultiOp::GetData),
            ]
            .boxed()
        }
    }

    impl Arbitrary for MultiRequest {
        type Parameters = ();
        type Strategy = BoxedStrategy<Self>;
        fn arbitrary_with(_: ()) -> Self::Strategy {
            proptest::collection::vec(any::<MultiOp>(), 0..6)
                .prop_map(|ops| MultiRequest { ops })
                .boxed()
        }
    }

    impl Arbitrary for MultiResult {
        type Parameters = ();
        type Strategy = BoxedStrategy<Self>;
        fn arbitrary_with(_: ()) -> Self::Strategy {
            prop_oneof![
                any::<CreateResponse>().prop_map(MultiResult::Create),
                any::<Create2Response>().prop_map(MultiResult::Create2),
                Just(MultiResult::Delete),
                any::<StatResponse>().prop_map(MultiResult::SetData),
                Just(MultiResult::Check),
                any::<GetChildrenResponse>().prop_map(MultiResult::GetChildren),
                any::<GetDataResponse>().prop_map(MultiResult::GetData),
                any::<ErrorCode>().prop_map(MultiResult::Error),
            ]
            .boxed()
        }
    }

    impl Arbitrary for MultiResponse {
        type Parameters = ();
        type Strategy = BoxedStrategy<Self>;
        fn arbitrary_with(_: ()) -> Self::Strategy {
            proptest::collection::vec(any::<MultiResult>(), 0..6)
                .prop_map(|results| MultiResponse { results })
                .boxed()
        }
    }
}
