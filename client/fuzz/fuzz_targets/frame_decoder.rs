//! Fuzzes the frame decoder and every decoder behind it: arbitrary bytes split into frames
//! (with a small maximum so oversized lengths are exercised), each frame read as a handshake,
//! a request, a reply to every opcode and a notification. Nothing may panic, and no frame
//! may exceed the maximum.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use zkit::proto::*;

fuzz_target!(|data: &[u8]| {
    let Some((&max, stream)) = data.split_first() else {
        return;
    };
    let max = usize::from(max) * 16;
    let decoder = FrameDecoder::new(max);
    let mut buf = BytesMut::from(stream);
    while let Ok(Some(frame)) = decoder.decode(&mut buf) {
        assert!(frame.len() <= max);
        let _ = ConnectRequest::from_frame(&frame);
        let _ = ConnectResponse::from_frame(&frame);
        let _ = Request::decode_frame(&frame);
        let mut r = Reader::new(&frame);
        if ReplyHeader::decode(&mut r).is_ok() {
            let rest = &frame[r.position()..];
            let _ = WatcherEvent::from_bytes(rest);
            for op in OpCode::ALL {
                let _ = Response::from_bytes(*op, rest);
            }
        }
    }
});
