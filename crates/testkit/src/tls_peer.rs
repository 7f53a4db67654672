//! Our own TLS ends for tests that cross crates: configurations from the
//! test [`pki`], a server on a thread of its own, and a dial, each bounded
//! by [`PATIENCE`] so nothing hangs. Behind the `tls` feature, which the
//! tls and reseau test suites turn on.

// Results carry tls::Error, whose public fields make it large.
#![allow(clippy::result_large_err)]

use std::net::SocketAddr;
use std::thread::JoinHandle;

use crate::certs::pki;
use crate::{PATIENCE, soon};

/// A server configuration with certificate `name` (`"server"`, `"other"`,
/// `"expired"`) and a handshake bound so nothing hangs.
pub fn server_builder_with(name: &str) -> tls::ConfigBuilder {
    let pki = pki();
    tls::Config::builder()
        .cert_file(pki.path(&format!("{name}.pem")))
        .key_file(pki.path(&format!("{name}.key")))
        .handshake_timeout(PATIENCE)
}

/// The usual server: the localhost certificate.
pub fn server_builder() -> tls::ConfigBuilder {
    server_builder_with("server")
}

/// [`server_builder`], built.
pub fn server_config() -> tls::Config {
    server_builder().build().unwrap()
}

/// A client that trusts the test CA and verifies the name `localhost`.
pub fn client_builder() -> tls::ConfigBuilder {
    tls::Config::builder().ca_file(pki().path("ca.pem")).server_name("localhost").handshake_timeout(PATIENCE)
}

/// [`client_builder`], built.
pub fn client_config() -> tls::Config {
    client_builder().build().unwrap()
}

/// A TLS listener on 127.0.0.1 with a port of its own; accepts time out
/// after [`PATIENCE`].
pub fn listener(cfg: &tls::Config) -> tls::Listener {
    let l = tls::Listener::bind("127.0.0.1:0".parse().unwrap(), cfg).expect("bind a TLS listener");
    l.set_deadline(Some(soon())).unwrap();
    l
}

/// Serve one connection with `f`, on a thread of its own.
pub fn serve_one<T: Send + 'static>(
    cfg: &tls::Config,
    f: impl FnOnce(tls::Conn) -> T + Send + 'static,
) -> (SocketAddr, JoinHandle<T>) {
    let l = listener(cfg);
    let addr = l.local_addr().unwrap();
    let h = std::thread::spawn(move || {
        let c = l.accept().expect("accept");
        c.set_deadline(Some(soon())).unwrap();
        f(c)
    });
    (addr, h)
}

/// Dial `addr` with `cfg` (whose server name is `localhost`); the
/// connection gets deadlines [`PATIENCE`] away.
pub fn dial(addr: SocketAddr, cfg: &tls::Config) -> Result<tls::Conn, tls::Error> {
    let c = tls::connect_addr(addr, cfg)?;
    c.set_deadline(Some(soon())).unwrap();
    Ok(c)
}
