use super::*;

#[test]
fn resolv_conf_and_hosts() {
    let conf = parse_resolv_conf(
        "# k8s\nnameserver 10.96.0.10\nnameserver ::1\nsearch ns.svc.cluster.local svc.cluster.local\noptions ndots:5 timeout:2\n",
    );
    assert_eq!(
        conf,
        ResolvConf {
            nameservers: vec!["10.96.0.10".parse().unwrap(), "::1".parse().unwrap()],
            search: vec!["ns.svc.cluster.local".into(), "svc.cluster.local".into()],
            ndots: 5,
            timeout: Duration::from_secs(2),
        }
    );
    let hosts = "127.0.0.1 localhost\n# 10.0.0.9 db\n10.0.0.2  db db.local # the database\n::1 ip6-localhost\n";
    assert_eq!(parse_hosts(hosts, "db"), Some("10.0.0.2".parse().unwrap()));
    assert_eq!(
        parse_hosts(hosts, "DB.local"),
        Some("10.0.0.2".parse().unwrap())
    );
    assert_eq!(
        parse_hosts(hosts, "ip6-localhost"),
        Some("::1".parse().unwrap())
    );
    assert_eq!(parse_hosts(hosts, "nope"), None);
}

#[test]
fn search_order() {
    let conf = ResolvConf {
        nameservers: vec![],
        search: vec!["a.example".into(), "b.example".into()],
        ndots: 1,
        timeout: DEFAULT_TIMEOUT,
    };
    assert_eq!(
        candidates("db", &conf),
        ["db.a.example", "db.b.example", "db"]
    );
    assert_eq!(
        candidates("db.internal", &conf),
        [
            "db.internal",
            "db.internal.a.example",
            "db.internal.b.example"
        ]
    );
    assert_eq!(candidates("db.internal.", &conf), ["db.internal"]);
}

#[test]
fn unanswered_queries_go_again_to_the_next_nameserver() {
    let first = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = first.local_addr().unwrap().port();
    let second = std::net::UdpSocket::bind(("127.0.0.2", port)).unwrap();
    let stranger = std::net::UdpSocket::bind("127.0.0.3:0").unwrap();
    for s in [&first, &second] {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    // ::1 is of the other family than the first nameserver: left out.
    std::fs::write(
        dir.path().join("resolv.conf"),
        "nameserver 127.0.0.1\nnameserver ::1\nnameserver 127.0.0.2\noptions timeout:2\n",
    )
    .unwrap();
    let resolver = Resolver {
        hosts: dir.path().join("hosts"),
        resolv_conf: dir.path().join("resolv.conf"),
        port,
    };
    let now = Instant::now();
    let Ok(Err(mut lookup)) = resolve(&resolver, "web.test", 80, now, Duration::from_secs(30))
    else {
        panic!("a lookup should have begun");
    };
    // resolv.conf's timeout, shorter than a third of the attempt's.
    assert_eq!(lookup.resend_at(), now + Duration::from_secs(2));
    let mut buf = [0u8; 512];
    let (n, _) = first.recv_from(&mut buf).unwrap();
    let asked = buf[..n].to_vec();
    assert!(matches!(lookup.on_readable(Instant::now()), Step::Waiting));

    let later = now + Duration::from_secs(2);
    assert!(matches!(lookup.resend(later), Step::Waiting));
    assert_eq!(lookup.resend_at(), later + Duration::from_secs(2));
    let (n, from) = second.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], &asked[..], "the same query, same id");
    let id = u16::from_be_bytes([asked[0], asked[1]]);

    // An answer from somewhere else is not heard; the second nameserver's is.
    // (A server failure, which would end the lookup if it were heard.)
    stranger.send_to(&response(id, 2, false), from).unwrap();
    second.send_to(&response(id, 0, true), from).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let found = loop {
        match lookup.on_readable(Instant::now()) {
            Step::Found(addr) => break addr,
            Step::Failed(reason) => panic!("{reason}"),
            Step::Waiting => {
                assert!(Instant::now() < deadline, "no answer read");
                std::thread::yield_now();
            }
        }
    };
    assert_eq!(found, "10.1.2.3:80".parse().unwrap());

    // Round and round: the third send goes to the first nameserver again.
    assert!(matches!(lookup.resend(later), Step::Waiting));
    let (n, _) = first.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], &asked[..]);
}

/// An answer as a server sends it: the question, then a CNAME, then the A record, names
/// compressed.
fn response(id: u16, rcode: u8, with_a: bool) -> Vec<u8> {
    let mut p = query(id, "web.test", Record::A).unwrap();
    p[2] = 0x81;
    p[3] = 0x80 | rcode;
    let answers: u8 = if with_a { 2 } else { 1 };
    p[7] = answers;
    // CNAME web.test -> x (pointer to the question name at 12)
    p.extend_from_slice(&[0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 3, 1, b'x', 0]);
    if with_a {
        p.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 1, 2, 3]);
    }
    p
}

/// The answer to `asked` (a query as sent) with one AAAA record for fd00::7.
fn aaaa_response(asked: &[u8]) -> Vec<u8> {
    let mut p = asked.to_vec();
    p[2] = 0x81;
    p[3] = 0x80;
    p[7] = 1;
    p.extend_from_slice(&[0xc0, 12, 0, 28, 0, 1, 0, 0, 0, 60, 0, 16]);
    p.extend_from_slice(&"fd00::7".parse::<Ipv6Addr>().unwrap().octets());
    p
}

/// The answer to `asked` saying the name exists but has no record of the kind asked.
fn no_record(asked: &[u8]) -> Vec<u8> {
    let mut p = asked.to_vec();
    p[2] = 0x81;
    p[3] = 0x80;
    p
}

#[test]
fn a_name_without_an_ipv4_address_is_asked_for_its_ipv6_one() {
    let server = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    server
        .set_read_timeout(Some(Duration::from_millis(10)))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("resolv.conf"), "nameserver 127.0.0.1\n").unwrap();
    let resolver = Resolver {
        hosts: dir.path().join("hosts"),
        resolv_conf: dir.path().join("resolv.conf"),
        port: server.local_addr().unwrap().port(),
    };
    let Ok(Err(mut lookup)) = resolve(&resolver, "v6.test", 80, Instant::now(), SECOND) else {
        panic!("a lookup should have begun");
    };
    // The lookup's next query, read while the lookup reads what came before it.
    let next_query = |lookup: &mut Lookup| {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut buf = [0u8; 512];
        loop {
            if let Ok((n, from)) = server.recv_from(&mut buf) {
                return (buf[..n].to_vec(), from);
            }
            assert!(matches!(lookup.on_readable(Instant::now()), Step::Waiting));
            assert!(Instant::now() < deadline, "no query came");
        }
    };
    let wait_step = |lookup: &mut Lookup| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match lookup.on_readable(Instant::now()) {
                Step::Waiting if Instant::now() < deadline => std::thread::yield_now(),
                other => return other,
            }
        }
    };
    let (a, from) = next_query(&mut lookup);
    assert_eq!(&a[a.len() - 4..], &[0, 1, 0, 1], "A first");
    server.send_to(&no_record(&a), from).unwrap();
    // Waiting for the AAAA answer: the A query's "nothing" moved it on.
    let (aaaa, from) = next_query(&mut lookup);
    assert_eq!(
        &aaaa[12..aaaa.len() - 4],
        &a[12..a.len() - 4],
        "the same name"
    );
    assert_eq!(&aaaa[aaaa.len() - 4..], &[0, 28, 0, 1], "then AAAA");
    assert_ne!(aaaa[..2], a[..2], "under a new id");
    server.send_to(&aaaa_response(&aaaa), from).unwrap();
    match wait_step(&mut lookup) {
        Step::Found(addr) => assert_eq!(addr, "[fd00::7]:80".parse().unwrap()),
        Step::Failed(reason) => panic!("{reason}"),
        Step::Waiting => panic!("no answer read"),
    }

    // No address of either kind: the lookup fails, naming what it asked.
    let Ok(Err(mut lookup)) = resolve(&resolver, "none.test", 80, Instant::now(), SECOND) else {
        panic!("a lookup should have begun");
    };
    for _ in 0..2 {
        let (q, from) = next_query(&mut lookup);
        server.send_to(&no_record(&q), from).unwrap();
    }
    match wait_step(&mut lookup) {
        Step::Failed(reason) => assert!(reason.contains("no address"), "{reason}"),
        _ => panic!("should have failed"),
    }
}

const SECOND: Duration = Duration::from_secs(1);

#[test]
fn answers() {
    let q = query(7, "web.test", Record::A).unwrap();
    assert_eq!(
        q,
        [
            0, 7, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, b'w', b'e', b'b', 4, b't', b'e', b's', b't', 0,
            0, 1, 0, 1
        ]
    );
    let found = Answer::Found("10.1.2.3".parse().unwrap());
    let a = |packet: &[u8]| parse_answer(7, Record::A, packet);
    assert_eq!(a(&response(7, 0, true)), found);
    assert_eq!(a(&response(7, 0, false)), Answer::NoRecord);
    assert_eq!(a(&response(7, 3, false)), Answer::NotHere);
    assert!(matches!(a(&response(7, 2, false)), Answer::Failed(_)));
    assert_eq!(
        parse_answer(8, Record::A, &response(7, 0, true)),
        Answer::Ignore
    );
    assert_eq!(a(&q), Answer::Ignore, "a query is not an answer");
    let whole = response(7, 0, true);
    for cut in 12..whole.len() {
        assert_ne!(a(&whole[..cut]), found, "{cut}");
    }
    // An AAAA query takes only AAAA records.
    assert_eq!(
        parse_answer(7, Record::Aaaa, &response(7, 0, true)),
        Answer::NoRecord
    );
    let q6 = query(7, "web.test", Record::Aaaa).unwrap();
    assert_eq!(
        parse_answer(7, Record::Aaaa, &aaaa_response(&q6)),
        Answer::Found("fd00::7".parse().unwrap())
    );
    // Truncated (TC): a record that made it in counts; none at all is no verdict.
    let mut cut_short = response(7, 0, true);
    cut_short[2] |= 0x02;
    assert_eq!(a(&cut_short), found);
    let mut cut_short = response(7, 0, false);
    cut_short[2] |= 0x02;
    match a(&cut_short) {
        Answer::Failed(reason) => assert!(reason.contains("cut short"), "{reason}"),
        other => panic!("a truncated answer without a record: {other:?}"),
    }
    let mut cut_inside = response(7, 0, true);
    cut_inside[2] |= 0x02;
    cut_inside.truncate(cut_inside.len() - 3);
    assert!(matches!(a(&cut_inside), Answer::Failed(r) if r.contains("cut short")));
    assert!(query(1, "a..b", Record::A).is_err());
    assert!(query(1, &"x".repeat(64), Record::A).is_err());
}
