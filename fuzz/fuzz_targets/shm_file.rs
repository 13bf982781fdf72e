//! Arbitrary bytes as a saved shared-memory file (read by PID 1 before any service starts):
//! decoding must be Ok or a clear Err, never a panic or a huge allocation from a lying
//! length; what decodes must encode back to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tend::shell::shm_store;

fuzz_target!(|data: &[u8]| {
    if let Ok(segments) = shm_store::decode(data) {
        assert_eq!(shm_store::encode(&segments), data);
    }
});
