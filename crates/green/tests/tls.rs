//! TLS in green threads: 300 connections on one worker, each shared by a
//! reader and a writer green thread, against an echo server whose green
//! threads run on that same worker. A reader suspended while it holds the
//! connection's reader lock must never stall the writer's worker.

use std::io::{Read, Write};
use std::sync::Arc;

use green::Pool;

const CONNS: usize = 300;
const BYTES: usize = 64 * 1024;

#[test]
fn three_hundred_tls_connections_with_a_reader_and_a_writer_each_on_one_worker() {
    let cert = testkit::certs::localhost();
    let server_cfg = tls::Config::builder()
        .cert_file(&cert.cert)
        .key_file(&cert.key)
        .handshake_timeout(testkit::PATIENCE)
        .build()
        .unwrap();
    let client_cfg = tls::Config::builder().ca_file(&cert.cert).server_name("localhost").build().unwrap();
    let pool = Pool::new(1).unwrap();
    let listener = Arc::new(tls::listen("127.0.0.1:0", &server_cfg).unwrap());
    let addr = listener.local_addr().unwrap();

    let l = listener.clone();
    let server = pool.spawn(move || {
        while let Ok(conn) = l.accept() {
            green::spawn(move || {
                let mut conn = conn;
                let mut buf = [0; 4096];
                while let Ok(n @ 1..) = conn.read(&mut buf) {
                    if conn.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });

    let readers: Vec<_> = (0..CONNS)
        .map(|i| {
            let cfg = client_cfg.clone();
            pool.spawn(move || {
                let conn = Arc::new(tls::connect_addr(addr, &cfg).expect("TLS dial"));
                let mut data = vec![0; BYTES];
                testkit::stream_bytes(i as u64, 0, &mut data);
                let w = conn.clone();
                let sent = data.clone();
                let writer = green::spawn(move || {
                    for chunk in sent.chunks(1000) {
                        (&*w).write_all(chunk).unwrap();
                    }
                });
                let mut back = vec![0; BYTES];
                (&*conn).read_exact(&mut back).unwrap();
                writer.join().unwrap();
                back == data
            })
        })
        .collect();
    for (i, r) in readers.into_iter().enumerate() {
        let ok = testkit::within(testkit::PATIENCE * 6, "a TLS client to finish", move || r.join()).unwrap();
        assert!(ok, "connection {i} echoed other bytes");
    }
    listener.close().unwrap();
    server.join().unwrap();
    pool.shutdown();
}
