//! Dialing: resolve, connect, and run the handshake, all under the dial's
//! time limit.

use std::fmt;
use std::net::SocketAddr;
use std::time::Instant;

use crate::config::Config;
use crate::conn::Conn;
use crate::error::Error;

/// A TLS dialer: a `tcp::Dialer` (network, timeouts, resolver, happy
/// eyeballs) plus a `Config`. The tcp dialer's timeout and deadline bound
/// the whole dial: resolution, connect and handshake.
///
/// ```no_run
/// use std::time::Duration;
/// let config = tls::Config::builder().alpn_protocols(["h2"]).build()?;
/// let dialer = tls::Dialer::new(tcp::Dialer::new().timeout(Duration::from_secs(5)), config);
/// let conn = dialer.connect("example.com:443")?;
/// assert!(conn.connection_state().handshake_complete);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Dialer {
    tcp: tcp::Dialer,
    config: Config,
}

impl Dialer {
    /// Dial with `tcp`'s options and `config`.
    pub fn new(tcp: tcp::Dialer, config: Config) -> Dialer {
        Dialer { tcp, config }
    }

    /// Resolve and connect to `address` (`"host:port"`), and complete the
    /// handshake. Without a configured server name, the host is verified
    /// (and sent as SNI unless it is an IP address).
    pub fn connect(&self, address: &str) -> Result<Conn, Error> {
        let deadline = self.tcp.deadline_from(Instant::now());
        // Configuration problems surface before any byte is sent.
        self.config.client_ctx().map_err(Error::Config)?;
        let host = tcp::split_host_port(address).map(|(h, _)| h.to_string()).unwrap_or_default();
        let name = strip_zone(&host);
        self.check_name(name)?;
        let tcp = self.tcp.connect(address).map_err(Error::Dial)?;
        self.finish(tcp, name, deadline)
    }

    /// Connect to `addr` and complete the handshake; without a configured
    /// server name, the certificate must carry `addr`'s IP.
    pub fn connect_addr(&self, addr: SocketAddr) -> Result<Conn, Error> {
        let deadline = self.tcp.deadline_from(Instant::now());
        self.config.client_ctx().map_err(Error::Config)?;
        let ip = addr.ip().to_string();
        self.check_name(&ip)?;
        let tcp = self.tcp.connect_addr(addr).map_err(Error::Dial)?;
        self.finish(tcp, &ip, deadline)
    }

    /// [`connect`](Dialer::connect) as a future, for an executor: it
    /// resolves, races happy eyeballs and connects with
    /// [`tcp::Dialer::connect_async`], then runs the handshake with
    /// [`Conn::poll_handshake`], never blocking the thread that polls it.
    /// The same deadlines (the tcp dialer's timeout, counted from this
    /// call, and deadline bound the handshake too), server-name rules and
    /// errors as `connect`. Executor-agnostic: the waits are reseau's
    /// reactor's.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// let config = tls::Config::builder().build()?;
    /// let dialer = tls::Dialer::new(tcp::Dialer::new().timeout(Duration::from_secs(5)), config);
    /// let conn = dialer.connect_async("example.com:443").await?;
    /// assert!(conn.connection_state().handshake_complete);
    /// # Ok(()) }
    /// ```
    pub fn connect_async(&self, address: &str) -> impl Future<Output = Result<Conn, Error>> + Send + 'static + use<> {
        let dialer = self.clone();
        let address = address.to_string();
        let deadline = self.tcp.deadline_from(Instant::now());
        let dial = self.tcp.connect_async(&address);
        async move {
            dialer.config.client_ctx().map_err(Error::Config)?;
            let host = tcp::split_host_port(&address).map(|(h, _)| h.to_string()).unwrap_or_default();
            let name = strip_zone(&host);
            dialer.check_name(name)?;
            let tcp = dial.await.map_err(Error::Dial)?;
            let conn = Conn::new_client(tcp, &dialer.config, Some(name), deadline)?;
            // On failure `conn` is dropped here, closing the socket.
            std::future::poll_fn(|cx| conn.poll_handshake(cx)).await?;
            Ok(conn)
        }
    }

    fn check_name(&self, derived: &str) -> Result<(), Error> {
        let s = self.config.settings();
        if s.verify_hostname() && s.server_name.is_none() && derived.is_empty() {
            return Err(Error::Config(crate::ConfigError(
                "no server name to verify: set server_name, dial a host name, or turn verify_peer off".into(),
            )));
        }
        Ok(())
    }

    fn finish(&self, tcp: tcp::Conn, name: &str, deadline: Option<Instant>) -> Result<Conn, Error> {
        let conn = Conn::new_client(tcp, &self.config, Some(name), deadline)?;
        // On failure `conn` is dropped here, closing the socket.
        conn.handshake()?;
        Ok(conn)
    }
}

/// `fe80::1%eth0` → `fe80::1`: the zone is not part of any certificate.
fn strip_zone(host: &str) -> &str {
    match host.rfind('%') {
        Some(i) if host[..i].parse::<std::net::Ipv6Addr>().is_ok() => &host[..i],
        _ => host,
    }
}

impl fmt::Debug for Dialer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dialer").field("tcp", &self.tcp).field("config", &self.config).finish()
    }
}
