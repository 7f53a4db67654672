//! `reseau::Connection`: one echo function, written once over
//! `Box<dyn Connection>`, serves TCP, TLS and Unix connections; and
//! `reseau::Addr` prints as Go prints addresses.

use std::io::{Read, Write};
use std::thread;
use std::time::Instant;

use reseau::{Addr, Connection, tcp, tls, unix};
use testkit::{PATIENCE, soon};

/// The protocol code: echo what arrives until EOF, under an idle deadline,
/// then close. It knows nothing of the connection's kind.
fn echo(mut c: Box<dyn Connection>) -> std::io::Result<u64> {
    let mut total = 0;
    let mut buf = [0; 1024];
    loop {
        c.set_read_deadline(Some(Instant::now() + PATIENCE))?;
        c.set_write_deadline(Some(soon()))?;
        match c.read(&mut buf)? {
            0 => break,
            n => {
                c.write_all(&buf[..n])?;
                total += n as u64;
            }
        }
    }
    c.close()?;
    assert!(!c.is_open());
    Ok(total)
}

/// A client of the echo, also over the trait: send, read it all back,
/// close (the server reads EOF, and closes too).
fn client(mut c: Box<dyn Connection>) {
    c.set_deadline(Some(soon())).unwrap();
    let mut msg = vec![0; 10_000];
    testkit::stream_bytes(7, 0, &mut msg);
    c.write_all(&msg).unwrap();
    let mut back = vec![0; msg.len()];
    c.read_exact(&mut back).unwrap();
    assert_eq!(back, msg);
    c.close().unwrap();
    assert!(!c.is_open());
}

#[test]
fn one_echo_function_serves_tcp_tls_and_unix() {
    // TCP.
    let l = tcp::listen("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let server = thread::spawn(move || echo(Box::new(l.accept().unwrap())).unwrap());
    let c = tcp::connect_addr(addr).unwrap();
    assert_eq!(Connection::remote_addr(&c).unwrap().to_string(), addr.to_string());
    client(Box::new(c));
    assert_eq!(server.join().unwrap(), 10_000);

    // Unix.
    let path = testkit::scratch_dir("reseau-connection-unix").join("echo.sock");
    let l = unix::listen(&path).unwrap();
    let server = thread::spawn(move || echo(Box::new(l.accept().unwrap())).unwrap());
    let c = unix::connect(&path).unwrap();
    assert_eq!(Connection::remote_addr(&c).unwrap().to_string(), path.display().to_string());
    assert_eq!(Connection::local_addr(&c).unwrap().to_string(), "", "an unnamed client prints as Go's does");
    assert!(matches!(Connection::remote_addr(&c).unwrap(), Addr::Unix(a) if a.as_pathname() == Some(&path)));
    client(Box::new(c));
    assert_eq!(server.join().unwrap(), 10_000);

    // TLS.
    let cert = testkit::certs::localhost();
    let server_config = tls::Config::builder().cert_file(&cert.cert).key_file(&cert.key).build().unwrap();
    let client_config = tls::Config::builder().ca_file(&cert.cert).server_name("localhost").build().unwrap();
    let l = tls::listen("127.0.0.1:0", &server_config).unwrap();
    let addr = l.local_addr().unwrap();
    let server = thread::spawn(move || echo(Box::new(l.accept().unwrap())).unwrap());
    let c = tls::connect_addr(addr, &client_config).unwrap();
    assert!(matches!(Connection::remote_addr(&c).unwrap(), Addr::Inet(a) if a == addr));
    client(Box::new(c));
    assert_eq!(server.join().unwrap(), 10_000);
}

#[test]
fn addresses_print_as_go_prints_them() {
    let show = |a: Addr| a.to_string();
    assert_eq!(show(Addr::Inet("127.0.0.1:80".parse().unwrap())), "127.0.0.1:80");
    assert_eq!(show(Addr::Inet("[::1]:80".parse().unwrap())), "[::1]:80");
    let path = std::os::unix::net::SocketAddr::from_pathname("/run/app.sock").unwrap();
    assert_eq!(show(Addr::Unix(path)), "/run/app.sock");
    #[cfg(target_os = "linux")]
    {
        use std::os::linux::net::SocketAddrExt;
        let name = std::os::unix::net::SocketAddr::from_abstract_name("app").unwrap();
        assert_eq!(show(Addr::Unix(name)), "@app");
    }
}
