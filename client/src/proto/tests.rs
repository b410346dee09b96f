//! Property tests: every record survives an encode/decode round trip, and no decoder panics or
//! over-allocates on arbitrary bytes.

use super::*;
use bytes::BytesMut;
use proptest::prelude::*;

/// Round trip and arbitrary-bytes tests for each record type listed.
macro_rules! record_tests {
    ($($name:ident: $ty:ty,)*) => {
        mod round_trip {
            use super::*;
            proptest! {
                $(
                    #[test]
                    fn $name(v in any::<$ty>()) {
                        let bytes = v.to_bytes();
                        prop_assert!(bytes.len() >= <$ty as Record>::MIN_SIZE);
                        prop_assert_eq!(<$ty>::from_bytes(&bytes), Ok(v));
                    }
                )*
            }
        }
        mod arbitrary_bytes {
            use super::*;
            proptest! {
                $(
                    #[test]
                    fn $name(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
                        // Only "does not panic" is asserted: any outcome is a value or an error.
                        let _ = <$ty>::from_bytes(&bytes);
                    }
                )*
            }
        }
    };
}

record_tests! {
    id: Id,
    acl: Acl,
    stat: Stat,
    connect_request: ConnectRequest,
    connect_response: ConnectResponse,
    request_header: RequestHeader,
    reply_header: ReplyHeader,
    auth_packet: AuthPacket,
    path_request: PathRequest,
    watched_request: WatchedRequest,
    create_request: CreateRequest,
    create_ttl_request: CreateTtlRequest,
    delete_request: DeleteRequest,
    check_version_request: CheckVersionRequest,
    set_data_request: SetDataRequest,
    set_acl_request: SetAclRequest,
    add_watch_request: AddWatchRequest,
    remove_watches_request: RemoveWatchesRequest,
    set_watches: SetWatches,
    set_watches2: SetWatches2,
    reconfig_request: ReconfigRequest,
    sasl_token: SaslToken,
    watcher_event: WatcherEvent,
    create_response: CreateResponse,
    create2_response: Create2Response,
    stat_response: StatResponse,
    get_data_response: GetDataResponse,
    get_acl_response: GetAclResponse,
    get_children_response: GetChildrenResponse,
    get_children2_response: GetChildren2Response,
    sync_response: SyncResponse,
    get_ephemerals_response: GetEphemeralsResponse,
    get_all_children_number_response: GetAllChildrenNumberResponse,
    client_info: ClientInfo,
    who_am_i_response: WhoAmIResponse,
    error_response: ErrorResponse,
    multi_header: MultiHeader,
    multi_request: MultiRequest,
    multi_response: MultiResponse,
}

/// The body a reply to `request` would carry, used to pair opcodes with response shapes.
fn reply_opcodes() -> impl Strategy<Value = OpCode> {
    proptest::sample::select(OpCode::ALL)
}

proptest! {
    #[test]
    fn request_round_trip(req in any::<Request>(), xid in any::<i32>()) {
        let mut bytes = Vec::new();
        req.encode(xid, &mut bytes);
        let (header, decoded) = Request::decode_frame(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(header.xid, xid);
        prop_assert_eq!(header.op, req.op_code().code());
        prop_assert_eq!(decoded, req);
    }

    #[test]
    fn request_frames_from_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = Request::decode_frame(&bytes);
    }

    #[test]
    fn request_bodies_from_arbitrary_bytes(op in reply_opcodes(), bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = Request::decode_body(op, &mut Reader::new(&bytes));
    }

    #[test]
    fn responses_from_arbitrary_bytes(op in reply_opcodes(), bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = Response::from_bytes(op, &bytes);
    }

    #[test]
    fn response_round_trip(req in any::<Request>(), seed in any::<Stat>(), data in any::<Vec<u8>>()) {
        // Build a plausible body for the request's opcode, encode it, and read it back.
        let op = req.op_code();
        let body = match op {
            OpCode::Create => Response::Create(CreateResponse { path: "/a".into() }),
            OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => {
                Response::Create2(Create2Response { path: "/a".into(), stat: seed.clone() })
            }
            OpCode::Exists | OpCode::SetData | OpCode::SetAcl => Response::Stat(StatResponse { stat: seed.clone() }),
            OpCode::GetData | OpCode::Reconfig => Response::GetData(GetDataResponse { data, stat: seed.clone() }),
            OpCode::GetAcl => Response::GetAcl(GetAclResponse { acl: Acl::open_unsafe(), stat: seed.clone() }),
            OpCode::GetChildren => Response::GetChildren(GetChildrenResponse { children: vec!["x".into()] }),
            OpCode::GetChildren2 => Response::GetChildren2(GetChildren2Response { children: vec![], stat: seed.clone() }),
            OpCode::Sync => Response::Sync(SyncResponse { path: "/".into() }),
            OpCode::Multi | OpCode::MultiRead => Response::Multi(MultiResponse { results: vec![MultiResult::Check] }),
            OpCode::GetEphemerals => Response::GetEphemerals(GetEphemeralsResponse { ephemerals: vec!["/e".into()] }),
            OpCode::GetAllChildrenNumber => Response::GetAllChildrenNumber(GetAllChildrenNumberResponse { total_number: 3 }),
            OpCode::WhoAmI => Response::WhoAmI(WhoAmIResponse { client_info: vec![] }),
            OpCode::AddWatch => Response::AddWatch(ErrorResponse { err: 0 }),
            OpCode::Sasl => Response::Sasl(SaslToken { token: data }),
            _ => Response::Empty,
        };
        let mut bytes = Vec::new();
        body.encode(&mut bytes);
        prop_assert_eq!(Response::from_bytes(op, &bytes), Ok(body));
    }

    #[test]
    fn frame_round_trip(bodies in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..8), split in 0usize..512) {
        let mut wire = Vec::new();
        for b in &bodies {
            encode_frame(&mut wire, |out| out.extend_from_slice(b));
        }
        // Feed the stream in two pieces: frames come out whole, in order, wherever it is cut.
        let split = split.min(wire.len());
        let decoder = FrameDecoder::default();
        let mut buf = BytesMut::from(&wire[..split]);
        let mut out = Vec::new();
        while let Some(f) = decoder.decode(&mut buf).map_err(|e| TestCaseError::fail(e.to_string()))? {
            out.push(f.to_vec());
        }
        buf.extend_from_slice(&wire[split..]);
        while let Some(f) = decoder.decode(&mut buf).map_err(|e| TestCaseError::fail(e.to_string()))? {
            out.push(f.to_vec());
        }
        prop_assert_eq!(out, bodies);
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn frame_decoder_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512), max in 0usize..128) {
        let decoder = FrameDecoder::new(max);
        let mut buf = BytesMut::from(&bytes[..]);
        // Every frame out is within the maximum; the loop ends on "need more" or an error.
        while let Ok(Some(frame)) = decoder.decode(&mut buf) {
            prop_assert!(frame.len() <= max);
        }
        prop_assert!(buf.capacity() <= bytes.len().max(4 + max) + 64);
    }
}

#[test]
fn connect_records_tolerate_a_missing_read_only_flag() {
    let req = ConnectRequest {
        timeout: 30_000,
        passwd: vec![0; 16],
        read_only: false,
        ..Default::default()
    };
    let mut bytes = req.to_bytes();
    bytes.pop();
    assert_eq!(ConnectRequest::from_frame(&bytes), Ok(req));
    let resp = ConnectResponse {
        timeout: 4_000,
        session_id: 7,
        passwd: vec![1; 16],
        ..Default::default()
    };
    let mut bytes = resp.to_bytes();
    bytes.pop();
    assert_eq!(ConnectResponse::from_frame(&bytes), Ok(resp.clone()));
    // With the flag, the same record; with two extra bytes, trailing garbage.
    let mut bytes = resp.to_bytes();
    assert_eq!(ConnectResponse::from_frame(&bytes), Ok(resp));
    bytes.extend_from_slice(&[0, 0]);
    assert_eq!(
        ConnectResponse::from_frame(&bytes),
        Err(DecodeError::TrailingBytes { count: 2 })
    );
}

#[test]
fn negative_and_oversized_frame_lengths_are_errors() {
    let decoder = FrameDecoder::new(100);
    let mut buf = BytesMut::from(&(-5i32).to_be_bytes()[..]);
    assert_eq!(
        decoder.decode(&mut buf),
        Err(DecodeError::NegativeLength { length: -5 })
    );
    let mut buf = BytesMut::from(&101i32.to_be_bytes()[..]);
    assert_eq!(
        decoder.decode(&mut buf),
        Err(DecodeError::FrameTooLarge {
            length: 101,
            max: 100
        })
    );
    let mut buf = BytesMut::from(&100i32.to_be_bytes()[..]);
    assert_eq!(decoder.decode(&mut buf), Ok(None));
    assert_eq!(DEFAULT_MAX_FRAME, 0xfffff);
}

#[test]
fn huge_vector_counts_do_not_allocate() {
    // A children list announcing i32::MAX entries in an 8-byte body.
    let mut bytes = Vec::new();
    bytes.put_i32(i32::MAX);
    bytes.put_i32(0);
    assert!(matches!(
        GetChildrenResponse::from_bytes(&bytes),
        Err(DecodeError::Truncated { .. })
    ));
    let mut bytes = Vec::new();
    bytes.put_i32(-7);
    assert_eq!(
        CreateResponse::from_bytes(&bytes),
        Err(DecodeError::NegativeLength { length: -7 })
    );
}

#[test]
fn null_buffers_and_strings_read_as_empty() {
    let mut bytes = Vec::new();
    bytes.put_i32(-1);
    assert_eq!(
        CreateResponse::from_bytes(&bytes),
        Ok(CreateResponse::default())
    );
}

#[test]
fn bad_enum_values_and_utf8_are_typed_errors() {
    let mut bytes = Vec::new();
    bytes.put_i32(99);
    bytes.put_i32(3);
    bytes.put_string("/a");
    assert_eq!(
        WatcherEvent::from_bytes(&bytes),
        Err(DecodeError::UnknownValue {
            kind: "event type",
            value: 99
        })
    );
    let mut bytes = Vec::new();
    bytes.put_buffer(&[0xff, 0xfe]);
    assert_eq!(
        CreateResponse::from_bytes(&bytes),
        Err(DecodeError::InvalidUtf8 { offset: 0 })
    );
    assert_eq!(
        OpCode::try_from(42),
        Err(DecodeError::UnknownValue {
            kind: "opcode",
            value: 42
        })
    );
    assert_eq!(
        CreateMode::try_from(6),
        Ok(CreateMode::PersistentSequentialWithTtl)
    );
    assert!(CreateMode::try_from(7).is_err());
}

#[test]
fn failed_multi_reply_layout() {
    // Earlier ops 0, the failing op its code, later ops RUNTIMEINCONSISTENCY.
    let resp = MultiResponse {
        results: vec![
            MultiResult::Error(ErrorCode::Ok),
            MultiResult::Error(ErrorCode::NodeExists),
            MultiResult::Error(ErrorCode::RuntimeInconsistency),
        ],
    };
    assert_eq!(resp.first_error(), Some((1, ErrorCode::NodeExists)));
    let bytes = resp.to_bytes();
    // Three (header + code) results of 9 + 4 bytes, then the closing header.
    assert_eq!(bytes.len(), 3 * 13 + 9);
    assert_eq!(
        &bytes[..13],
        &[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    );
    assert_eq!(&bytes[13..17], &[0xff, 0xff, 0xff, 0xff]);
    assert_eq!(&bytes[18..22], &(-110i32).to_be_bytes());
    assert_eq!(MultiResponse::from_bytes(&bytes), Ok(resp));
}

#[test]
fn every_numbered_constant_round_trips() {
    for op in OpCode::ALL {
        assert_eq!(OpCode::try_from(op.code()), Ok(*op));
    }
    for code in ErrorCode::ALL {
        assert_eq!(ErrorCode::try_from(code.code()), Ok(*code));
        assert!(!code.message().is_empty());
    }
    assert_eq!(ErrorCode::NoNode.code(), -101);
    assert_eq!(OpCode::WhoAmI.code(), 107);
    assert_eq!(KeeperState::Expired.code(), -112);
    assert_eq!(AddWatchMode::PersistentRecursive.code(), 1);
    assert_eq!(WatcherType::Any.code(), 3);
}
