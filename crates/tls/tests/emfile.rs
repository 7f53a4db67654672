//! Out of descriptors, TLS keeps working: a handshake and a bulk write on
//! threads that have never waited (no wake-up eventfd, and none to be had)
//! complete, and once descriptors are back the connection is intact. A
//! wait that cannot get its descriptor must never become a connection's
//! permanent failure. In a file of its own, with a single test, because
//! it lowers the process-wide RLIMIT_NOFILE.
//!
//! Linux only: it fills the descriptor table up to a limit found in `/proc`.
#![cfg(target_os = "linux")]

mod support;

use std::io::{Read, Write};
use std::sync::Arc;

use support::{PATIENCE, client_config, server_config};

#[test]
fn tls_handshakes_and_writes_while_out_of_descriptors() {
    let listener = support::listener(&server_config());
    let raw = tcp::connect_addr(listener.local_addr().unwrap()).unwrap();
    let server = Arc::new(listener.accept().unwrap());
    let client = Arc::new(tls::client(raw, &client_config()).unwrap());

    let ex = testkit::Exhausted::new();
    // Fresh threads: each would make its eventfd on its first wait, and cannot.
    let s = server.clone();
    let serving = std::thread::spawn(move || -> std::io::Result<Vec<u8>> {
        let mut got = vec![0; 1 << 20];
        (&*s).read_exact(&mut got)?;
        (&*s).write_all(b"done")?;
        Ok(got)
    });
    let c = client.clone();
    let sending = std::thread::spawn(move || -> std::io::Result<[u8; 4]> {
        c.set_timeout(Some(PATIENCE))?;
        let data: Vec<u8> = (0..1u32 << 20).map(|i| (i % 251) as u8).collect();
        (&*c).write_all(&data)?; // the handshake runs first, then 1 MiB
        let mut ack = [0; 4];
        (&*c).read_exact(&mut ack)?;
        Ok(ack)
    });
    let sent = testkit::within(PATIENCE * 2, "the client", move || sending.join().unwrap());
    let got = testkit::within(PATIENCE * 2, "the server", move || serving.join().unwrap());
    drop(ex);

    assert_eq!(&sent.expect("the client's handshake and write with no descriptors left"), b"done");
    let got = got.expect("the server's handshake and read with no descriptors left");
    assert!(got.iter().enumerate().all(|(i, b)| *b == (i % 251) as u8), "other bytes arrived");
    // Descriptors are back: nothing broke for good.
    assert!(client.is_open() && server.is_open());
    (&*client).write_all(b"again").unwrap();
    let mut b = [0; 5];
    (&*server).read_exact(&mut b).unwrap();
    assert_eq!(&b, b"again");
}
