//! Session ticket keys: shared by a fleet, rotated live, secret. Peers:
//! `openssl s_client` (`-sess_out` / `-sess_in`) and our own client.

// Results carry tls::Error, whose public fields make it large.
#![allow(clippy::result_large_err)]

mod support;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::thread::JoinHandle;

use support::{client_builder, dial, pki, s_client, server_builder, soon};
use tls::Version;

/// A listener for `cfg` whose server sends "hi" on each of `n` connections
/// (so a TLS 1.3 client gets its ticket) and reports which resumed.
fn fleet_member(cfg: &tls::Config, n: usize) -> (SocketAddr, JoinHandle<Vec<bool>>) {
    let l = support::listener(cfg);
    let addr = l.local_addr().unwrap();
    let h = std::thread::spawn(move || {
        (0..n)
            .map(|_| {
                let mut c = l.accept().expect("accept");
                c.set_deadline(Some(soon())).unwrap();
                if c.handshake().is_err() {
                    return false;
                }
                c.write_all(b"hi").unwrap();
                let _ = c.read_to_end(&mut Vec::new());
                c.connection_state().session_resumed
            })
            .collect()
    });
    (addr, h)
}

/// Dial, read "hi", close: whether it resumed.
fn visit(addr: SocketAddr, client: &tls::Config) -> bool {
    let mut c = dial(addr, client).unwrap();
    c.read_exact(&mut [0u8; 2]).unwrap();
    let resumed = c.connection_state().session_resumed;
    c.close_write().unwrap();
    resumed
}

fn keyed(keys: Vec<[u8; 32]>) -> tls::Config {
    server_builder().session_ticket_keys(keys).build().unwrap()
}

#[test]
fn servers_sharing_keys_resume_each_others_sessions_and_others_do_not() {
    for max in [Version::Tls13, Version::Tls12] {
        // Separate configs (separate OpenSSL contexts): only the keys are shared.
        let (a, b, c) = (keyed(vec![[1; 32]]), keyed(vec![[1; 32]]), keyed(vec![[2; 32]]));
        let (addr_a, sa) = fleet_member(&a, 2);
        let (addr_b, sb) = fleet_member(&b, 1);
        let (addr_c, sc) = fleet_member(&c, 1);
        let client = client_builder().max_version(max).build().unwrap();
        let seen = [visit(addr_a, &client), visit(addr_b, &client), visit(addr_c, &client), visit(addr_a, &client)];
        // a: new; b: resumes a's; c (other keys): new; a: cannot open c's ticket.
        assert_eq!(seen, [false, true, false, false], "{max}");
        assert_eq!(sa.join().unwrap(), [false, false], "{max}");
        assert_eq!(sb.join().unwrap(), [true], "{max}");
        assert_eq!(sc.join().unwrap(), [false], "{max}");
    }
}

/// Servers with keys of their own (the default) are each a fleet of one.
#[test]
fn servers_with_their_own_keys_do_not_resume_each_others_sessions() {
    let (a, b) = (support::server_config(), support::server_config());
    let (addr_a, sa) = fleet_member(&a, 2);
    let (addr_b, sb) = fleet_member(&b, 1);
    let client = support::client_config();
    let seen = [visit(addr_a, &client), visit(addr_a, &client), visit(addr_b, &client)];
    assert_eq!(seen, [false, true, false]);
    assert_eq!(sa.join().unwrap(), [false, true]);
    assert_eq!(sb.join().unwrap(), [false]);
}

#[test]
fn a_live_rotation_keeps_old_tickets_resuming() {
    for max in [Version::Tls13, Version::Tls12] {
        let server = keyed(vec![[1; 32]]);
        let (addr, s) = fleet_member(&server, 4);
        let client = client_builder().max_version(max).build().unwrap();
        let mut seen = vec![visit(addr, &client)]; // a ticket under key 1
        server.set_session_ticket_keys(vec![[2; 32], [1; 32]]).unwrap();
        seen.push(visit(addr, &client)); // opened with key 1; the new ticket under key 2
        server.set_session_ticket_keys(vec![[2; 32]]).unwrap();
        seen.push(visit(addr, &client)); // key 1 retired: the ticket under 2 still opens
        server.set_session_ticket_keys(vec![[3; 32]]).unwrap();
        seen.push(visit(addr, &client)); // nothing opens it: a full handshake
        assert_eq!(seen, [false, true, true, false], "{max}");
        assert_eq!(s.join().unwrap(), seen, "{max}");
    }
}

/// `openssl s_client -sess_out` from one member, `-sess_in` at another.
#[test]
fn s_client_resumes_across_a_fleet() {
    let (a, b) = (keyed(vec![[7; 32], [8; 32]]), keyed(vec![[7; 32]]));
    // Each sends "hi" and closes (s_client, with -ign_eof, reads to the end).
    let member = |cfg: &tls::Config| {
        support::serve_one(cfg, |mut c| {
            c.handshake().unwrap();
            c.write_all(b"hi\n").unwrap();
            let resumed = c.connection_state().session_resumed;
            c.close().unwrap();
            resumed
        })
    };
    let (addr_a, sa) = member(&a);
    let (addr_b, sb) = member(&b);
    let session = pki().scratch("fleet-session.pem");
    let session = session.to_str().expect("a UTF-8 scratch path");
    let resume =
        |addr: SocketAddr, sess: &str| s_client(addr, &["-servername", "localhost", "-ign_eof", sess, session]);
    let first = resume(addr_a, "-sess_out");
    assert!(first.contains("New, TLSv1.3"), "{first}");
    let second = resume(addr_b, "-sess_in");
    assert!(second.contains("Reused, TLSv1.3"), "b should resume a's session: {second}");
    assert!(!sa.join().unwrap());
    assert!(sb.join().unwrap());
}

#[test]
fn keys_are_never_printed_and_never_empty() {
    let secret = [0xA5u8; 32];
    let builder = server_builder().session_ticket_keys(vec![secret]);
    let shown = format!("{builder:?}");
    assert!(shown.contains("<1 keys>"), "{shown}");
    assert!(!shown.contains("165") && !shown.to_lowercase().contains("a5, "), "{shown}");
    let cfg = builder.build().unwrap();
    let shown = format!("{cfg:?}");
    assert!(!shown.contains("165"), "{shown}");
    let e = server_builder().session_ticket_keys(Vec::new()).build().unwrap_err();
    assert!(e.0.contains("session_ticket_keys is empty"), "{e}");
    let e = cfg.set_session_ticket_keys(Vec::new()).unwrap_err();
    assert!(e.0.contains("session_ticket_keys is empty"), "{e}");
}
