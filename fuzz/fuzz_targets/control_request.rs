//! Arbitrary bytes as one request line from a control-socket client: decoding must return
//! Ok or Err, never panic, whatever a (local, but possibly hostile) client sends.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = tend::proto::decode_request(data) {
        // A request that decodes is one tend will act on: it must survive a round trip
        // through the encoder the client uses.
        let line = tend::proto::encode(&request);
        let again = tend::proto::decode_request(line.trim_ascii_end());
        assert_eq!(
            again.as_ref(),
            Ok(&request),
            "round trip changed {request:?}"
        );
    }
});
