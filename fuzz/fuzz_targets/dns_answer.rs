//! Arbitrary bytes as a DNS server's answer (from the network, to PID 1): reading it must
//! give an address, a "no such record", a "try the next name", a failure or "not ours",
//! never a panic. The
//! resolver's files are parsed from the same bytes too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tend::shell::probes::dns;

fuzz_target!(|data: &[u8]| {
    let id = match data {
        [a, b, ..] => u16::from_be_bytes([*a, *b]),
        _ => 0,
    };
    let _ = dns::parse_answer(id, dns::Record::A, data);
    let _ = dns::parse_answer(id, dns::Record::Aaaa, data);
    let text = String::from_utf8_lossy(data);
    let conf = dns::parse_resolv_conf(&text);
    assert!(conf.ndots <= 15);
    for name in ["db", "db.internal", "db."] {
        let _ = dns::parse_hosts(&text, name);
        let names = dns::candidates(name, &conf);
        assert!(names.len() <= conf.search.len() + 1);
    }
});
