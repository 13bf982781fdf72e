//! Arbitrary bytes as a saved shared-memory file (read by PID 1 before any service starts):
//! decoding must be Ok or a clear Err, never a panic or a huge allocation from a lying
//! length; what decodes must encode back to the same bytes.
//!
//! Random bytes almost never carry the right checksum, so the same bytes are also given
//! behind the magic and followed by their true checksum: a file that is well-formed on the
//! outside, whose segment table (count, lengths) is arbitrary.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tend::shell::shm_store;

const MAGIC: &[u8] = b"TENDSHM1\n";

/// The file format's checksum (FNV-1a, 64 bits), written out again here.
fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn check(file: &[u8]) {
    if let Ok(segments) = shm_store::decode(file) {
        // Every segment takes at least its 24-byte header: a count cannot make more.
        assert!(segments.len() * 24 <= file.len());
        assert_eq!(shm_store::encode(&segments), file);
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    let mut file = MAGIC.to_vec();
    file.extend_from_slice(data);
    let sum = fnv1a(&file);
    file.extend_from_slice(&sum.to_le_bytes());
    check(&file);
});
