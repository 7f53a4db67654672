//! Write the seed corpora in `fuzz/corpus/<target>/` (committed; rerun
//! after `fuzz/certs/make.sh`):
//!
//!     cargo run --manifest-path fuzz/Cargo.toml --example make_seeds
//!
//! - `address`: valid and broken `host:port` strings, under a few networks
//!   and policies.
//! - `tls_server`: what real clients (our own engine, with each server
//!   configuration) sent: the ClientHello alone, and every client flight of
//!   a whole TLS 1.2 or 1.3 handshake; plus plaintext HTTP and an SSLv2
//!   hello.
//! - `tls_client`: what real servers sent back: the ServerHello flight
//!   (with the certificate) alone, and every server flight; plus an alert.
//!
//! Each TLS seed starts with the configuration byte and the schedule byte
//! (see `fuzz_targets/tls_*.rs`).

use std::fs;
use std::path::{Path, PathBuf};

use reseau_fuzz::{cert, client_configs, server_configs};
use tls::Config;
use tls::fuzzing::transcript;

fn dir(target: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus").join(target);
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

fn write(dir: &Path, name: &str, head: &[u8], body: &[u8]) {
    let mut data = head.to_vec();
    data.extend_from_slice(body);
    fs::write(dir.join(name), data).unwrap();
}

fn address_seeds() {
    let d = dir("address");
    let valid = [
        "localhost:80",
        "127.0.0.1:0",
        "[::1]:443",
        "[fe80::1%lo]:80",
        "[fe80::1%1]:8080",
        ":80",
        ":",
        "golang.org:",
        "[::1]:",
        "host%zone:80",
        "v4.test:https",
        "dual.test:svc",
        "DUAL.test.:0080",
        "v6.test:+443",
        "mapped.test:zero",
        "none.test:1",
        "[::ffff:127.0.0.1]:80",
        "0.0.0.0:65535",
        "[::]:http",
        "example.com:nosuchservice",
    ];
    let broken = [
        "localhost",
        "",
        "[::1]",
        "[::1]x:80",
        "::1:80",
        "[::1]:80:90",
        "[::1:80",
        "a[b:80",
        "a]b:80",
        "[a]]:80",
        "[[a]:80",
        "127.0.0.1%lo:80",
        "[fe80::1%]:80",
        "host:65536",
        "host:-1",
        "host:99999999999999999999",
    ];
    // Control bytes: tcp, tcp4, tcp6, udp, prefer IPv6, no IPv4, no IPv6,
    // a passed deadline.
    let ctls = [0u8, 1, 2, 3, 4, 8, 16, 32];
    for (i, s) in valid.iter().enumerate() {
        write(&d, &format!("valid-{i:02}"), &[ctls[i % ctls.len()]], s.as_bytes());
    }
    for (i, s) in broken.iter().enumerate() {
        write(&d, &format!("broken-{i:02}"), &[ctls[i % ctls.len()]], s.as_bytes());
    }
}

fn tls_seeds() {
    let (servers, clients) = (server_configs(), client_configs());
    // A TLS 1.3 client with a certificate, for server 3.
    let mtls13 = Config::builder()
        .ca_file(cert("ca.pem"))
        .server_name("localhost")
        .cert_file(cert("client.pem"))
        .key_file(cert("client.key"))
        .build()
        .unwrap();

    // (client config, server config, server selector byte, name)
    let server_side = [
        (&clients[1], 0u8, "tls13"),
        (&clients[3], 1, "tls12-client-cert"),
        (&clients[3], 2, "tls12-verify-if-given"),
        (&mtls13, 3, "tls13-client-cert"),
    ];
    let d = dir("tls_server");
    for (client, sel, name) in server_side {
        let t = transcript(client, &servers[usize::from(sel)]).unwrap_or_else(|e| panic!("{name}: {e}"));
        write(&d, &format!("{name}-hello"), &[sel, 0], &t.client_flights[0]);
        write(&d, &format!("{name}-all"), &[sel, 0], &t.client_flights.concat());
        write(&d, &format!("{name}-hello-5byte-chunks"), &[sel, 3], &t.client_flights[0]);
    }
    write(&d, "http-request", &[0, 0], b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
    write(&d, "sslv2-hello", &[0, 0], &[0x80, 0x2e, 0x01, 0x00, 0x02, 0x00, 0x15, 0x00, 0x00, 0x00, 0x10]);

    // (client selector byte, server config, name)
    let client_side = [(0u8, 0usize, "tls13"), (1, 2, "tls13-alpn"), (2, 0, "tls12"), (3, 1, "tls12-cert-request")];
    let d = dir("tls_client");
    for (sel, server, name) in client_side {
        let t = transcript(&clients[usize::from(sel)], &servers[server]).unwrap_or_else(|e| panic!("{name}: {e}"));
        write(&d, &format!("{name}-hello"), &[sel, 0], &t.server_flights[0]);
        write(&d, &format!("{name}-all"), &[sel, 0], &t.server_flights.concat());
        write(&d, &format!("{name}-hello-64byte-chunks"), &[sel, 5], &t.server_flights[0]);
    }
    // A handshake_failure alert.
    write(&d, "alert", &[0, 0], &[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]);
}

fn main() {
    address_seeds();
    tls_seeds();
    println!("seeds written under {}/corpus", env!("CARGO_MANIFEST_DIR"));
}
