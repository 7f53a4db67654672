//! Programs written as a user would write them from the README and the
//! guide, run as tests: an HTTP/1.0 request over `tls::connect` to `openssl
//! s_server -www`, a pool of std threads serving from one
//! `tcp::Listener::incoming`, and a TLS server in green threads.

// Results carry tls::Error, whose public fields make it large.
#![allow(clippy::result_large_err)]

use std::io::{BufRead, BufReader, Read, Write};
use std::sync::{Arc, mpsc};
use std::thread;

use reseau::{green, tcp, tls};
use testkit::certs::pki;
use testkit::child::SServer;
use testkit::{read_line, soon};

#[test]
fn http_get_over_tls_connect_to_s_server() {
    // s_server -www answers a GET with a page describing the session.
    let pki = pki();
    let server = SServer::www();
    let port = server.addr.port();

    // The program: trust our CA, dial by name, send a request, read the
    // response to the end of the stream.
    let config = tls::Config::builder().ca_file(pki.path("ca.pem")).build().unwrap();
    let mut conn = tls::connect(&format!("localhost:{port}"), &config).unwrap();
    conn.set_deadline(Some(soon())).unwrap();
    conn.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let mut response = String::new();
    conn.read_to_string(&mut response).unwrap();

    let (head, page) = response.split_once("\r\n\r\n").expect("a head and a body");
    assert_eq!(head.lines().next(), Some("HTTP/1.0 200 ok"), "{head}");
    // The page names the session s_server saw: ours, as we saw it.
    let st = conn.connection_state();
    let (version, cipher) = (st.version.unwrap().to_string(), st.cipher_suite.unwrap());
    assert!(page.contains(&format!("New, {version}, Cipher is {cipher}")), "{version} {cipher}:\n{page}");
    assert_eq!(st.server_name.as_deref(), Some("localhost"));
}

#[test]
fn std_thread_pool_serving_from_incoming() {
    const WORKERS: usize = 4;
    const CLIENTS: usize = 32;
    // The server: one listener shared by a fixed pool of std threads, each
    // taking connections from `incoming` until the listener is closed, and
    // answering each line upper-cased.
    let listener = Arc::new(tcp::listen("127.0.0.1:0").unwrap());
    let addr = listener.local_addr().unwrap();
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let listener = listener.clone();
            thread::spawn(move || {
                let mut served = 0;
                for conn in listener.incoming() {
                    let conn = conn.expect("accept");
                    conn.set_deadline(Some(soon())).unwrap();
                    let mut reader = BufReader::new(&conn);
                    let mut line = String::new();
                    while reader.read_line(&mut line).unwrap() > 0 {
                        (&conn).write_all(line.to_uppercase().as_bytes()).unwrap();
                        line.clear();
                    }
                    served += 1;
                }
                served
            })
        })
        .collect();

    let (done, finished) = mpsc::channel();
    for i in 0..CLIENTS {
        let done = done.clone();
        thread::spawn(move || {
            let mut c = tcp::connect_addr(addr).unwrap();
            c.set_deadline(Some(soon())).unwrap();
            let mut answers = Vec::new();
            for j in 0..3 {
                c.write_all(format!("client {i} line {j}\n").as_bytes()).unwrap();
                answers.push(read_line(&c).unwrap());
            }
            c.close().unwrap();
            done.send((i, answers)).unwrap();
        });
    }
    drop(done);
    let mut answered: Vec<_> = finished.iter().collect();
    answered.sort();
    assert_eq!(answered.len(), CLIENTS, "every client was answered");
    for (i, answers) in answered {
        let want: Vec<String> = (0..3).map(|j| format!("CLIENT {i} LINE {j}\n")).collect();
        assert_eq!(answers, want);
    }
    // Closing the listener ends every worker's `incoming`.
    listener.close().unwrap();
    let served: usize = workers.into_iter().map(|w| w.join().unwrap()).sum();
    assert_eq!(served, CLIENTS);
}

#[test]
fn tls_server_in_green_threads() {
    const CLIENTS: usize = 16;
    let pki = pki();
    let server_config =
        tls::Config::builder().cert_file(pki.path("server.pem")).key_file(pki.path("server.key")).build().unwrap();
    let client_config = tls::Config::builder().ca_file(pki.path("ca.pem")).build().unwrap();

    // The server: an accept loop in a green thread on a pool of two OS
    // threads, and a green thread per connection, each echoing until the
    // client closes.
    let pool = green::Pool::new(2).unwrap();
    let listener = Arc::new(tls::listen("127.0.0.1:0", &server_config).unwrap());
    let port = listener.local_addr().unwrap().port();
    let l = listener.clone();
    let acceptor = pool.spawn(move || {
        let mut handlers = Vec::new();
        for conn in l.incoming() {
            let mut conn = conn.expect("accept");
            handlers.push(green::spawn(move || {
                conn.set_deadline(Some(soon())).unwrap();
                let mut buf = [0u8; 256];
                let mut echoed = 0;
                loop {
                    match conn.read(&mut buf).unwrap() {
                        0 => return echoed,
                        n => conn.write_all(&buf[..n]).unwrap(),
                    }
                    echoed += 1;
                }
            }));
        }
        handlers.into_iter().map(|h| h.join().unwrap()).sum::<usize>()
    });

    // The clients: OS threads, dialing by name.
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let config = client_config.clone();
            thread::spawn(move || {
                let mut c = tls::connect(&format!("localhost:{port}"), &config).unwrap();
                c.set_deadline(Some(soon())).unwrap();
                let msg = format!("hello from client {i}\n");
                c.write_all(msg.as_bytes()).unwrap();
                assert_eq!(read_line(&c).unwrap(), msg);
                assert_eq!(c.connection_state().version, Some(tls::Version::Tls13));
                c.close().unwrap();
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    listener.close().unwrap();
    let echoed = acceptor.join().unwrap();
    assert!(echoed >= CLIENTS, "each connection echoed its line ({echoed} writes for {CLIENTS} clients)");
}
