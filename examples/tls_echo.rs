//! A TLS echo server and a client talking to it, with certificates made on
//! the spot. `--mtls` makes it mutual TLS: the server requires and verifies
//! a client certificate.
//!
//! ```sh
//! cargo run --example tls_echo
//! cargo run --example tls_echo -- --mtls
//! ```

#[path = "support/certs.rs"]
mod certs;

use std::io::{Read, Write};
use std::thread;

use reseau::tls;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mtls = std::env::args().any(|a| a == "--mtls");
    let certs = certs::generate()?;

    let mut server_cfg = tls::Config::builder()
        .cert_file(certs.path("server.pem"))
        .key_file(certs.path("server.key"))
        .alpn_protocols(["echo/1"]);
    let mut client_cfg = tls::Config::builder().ca_file(certs.path("ca.pem")).alpn_protocols(["echo/1"]);
    if mtls {
        server_cfg =
            server_cfg.client_auth(tls::ClientAuth::RequireAndVerifyClientCert).client_ca_file(certs.path("ca.pem"));
        client_cfg = client_cfg.cert_file(certs.path("client.pem")).key_file(certs.path("client.key"));
    }
    let (server_cfg, client_cfg) = (server_cfg.build()?, client_cfg.build()?);

    let listener = tls::listen("127.0.0.1:0", &server_cfg)?;
    let port = listener.local_addr()?.port();
    println!("TLS echo server on 127.0.0.1:{port}{}", if mtls { " (mutual TLS)" } else { "" });

    let server = thread::spawn(move || -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let mut conn = listener.accept()?;
        conn.handshake()?;
        let st = conn.connection_state();
        println!("server: {:?}, client presented {} certificate(s)", st.version, st.peer_certificates.len());
        let mut buf = [0u8; 4096];
        loop {
            let n = conn.read(&mut buf)?;
            if n == 0 {
                return Ok(()); // the client's close_notify
            }
            conn.write_all(&buf[..n])?;
        }
    });

    let mut conn = tls::connect(&format!("localhost:{port}"), &client_cfg)?;
    let st = conn.connection_state();
    println!(
        "client: {} with {}, ALPN {:?}, server certificate chain of {}",
        st.version.map_or("?".into(), |v| v.to_string()),
        st.cipher_suite.unwrap_or_default(),
        st.alpn_protocol,
        st.peer_certificates.len()
    );
    for line in ["hello", "over TLS", "on memory BIOs"] {
        conn.write_all(line.as_bytes())?;
        let mut buf = vec![0u8; line.len()];
        conn.read_exact(&mut buf)?;
        println!("echo: {}", String::from_utf8_lossy(&buf));
    }
    conn.close_write()?;
    server.join().map_err(|_| "server panicked")?.map_err(|e| e.to_string())?;
    Ok(())
}
