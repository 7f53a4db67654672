//! Dialing through a SOCKS5 proxy: the client side of RFC 1928 (the
//! `CONNECT` command) with RFC 1929's username/password authentication.
//!
//! [`handshake`] runs the exchange on a connection to the proxy;
//! [`Dialer::socks5_proxy`](crate::Dialer::socks5_proxy) makes every dial
//! of a [`Dialer`](crate::Dialer) go through a proxy. Target names are sent
//! to the proxy as names (address type "domain"), so the proxy resolves
//! them; IP literals are sent as addresses.
//!
//! ```no_run
//! use std::time::{Duration, Instant};
//! use tcp::socks5;
//!
//! let proxy = tcp::connect("127.0.0.1:1080")?;
//! proxy.set_deadline(Some(Instant::now() + Duration::from_secs(5)))?;
//! let auth = socks5::Auth::new("alice", "s3cret");
//! let bound = socks5::handshake(&proxy, "example.com:443", Some(&auth))?;
//! proxy.set_deadline(None)?;
//! println!("the proxy connected from {bound}");
//! // `proxy` now carries the stream to example.com:443.
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};

use crate::conn::Conn;
use crate::error::AddressError;

const VERSION: u8 = 5;
const METHOD_NONE: u8 = 0x00;
const METHOD_USER_PASSWORD: u8 = 0x02;
const METHOD_UNACCEPTABLE: u8 = 0xFF;
/// RFC 1929's sub-negotiation version.
const AUTH_VERSION: u8 = 1;
const CMD_CONNECT: u8 = 1;
const ATYP_V4: u8 = 1;
const ATYP_DOMAIN: u8 = 3;
const ATYP_V6: u8 = 4;

/// Username and password for RFC 1929 authentication. The username takes
/// 1 to 255 bytes, the password at most 255; longer ones fail before any
/// byte is sent.
#[derive(Clone, PartialEq, Eq)]
pub struct Auth {
    /// The username.
    pub username: String,
    /// The password.
    pub password: String,
}

impl Auth {
    /// Credentials from a username and a password.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Auth {
        Auth { username: username.into(), password: password.into() }
    }

    pub(crate) fn check(&self) -> Result<(), Error> {
        if self.username.is_empty() || self.username.len() > 255 {
            return Err(Error::Authentication(format!(
                "username must take 1 to 255 bytes, not {}",
                self.username.len()
            )));
        }
        if self.password.len() > 255 {
            return Err(Error::Authentication(format!(
                "password must take at most 255 bytes, not {}",
                self.password.len()
            )));
        }
        Ok(())
    }
}

impl fmt::Debug for Auth {
    // The password stays out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth").field("username", &self.username).field("password", &"<redacted>").finish()
    }
}

/// The address the proxy connected from, as its reply names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BoundAddr {
    /// An IP address and port.
    Ip(SocketAddr),
    /// A host name and port.
    Domain(String, u16),
}

impl fmt::Display for BoundAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BoundAddr::Ip(addr) => addr.fmt(f),
            BoundAddr::Domain(host, port) => write!(f, "{host}:{port}"),
        }
    }
}

/// Why a SOCKS5 handshake failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The target address cannot be sent (checked before any I/O): it does
    /// not split into host and port, the host is empty, the port is not
    /// 1 to 65535, it has a zone, or the name is over 255 bytes.
    #[error("socks5: bad target {0}")]
    TargetAddress(String),
    /// The credentials cannot be sent (checked before any I/O), or the
    /// proxy refused them or wanted some it was not offered.
    #[error("socks5: authentication failed: {0}")]
    Authentication(String),
    /// The proxy's reply is not SOCKS5: wrong version, nonzero reserved
    /// byte, unknown address type, a method that was not offered.
    #[error("socks5: protocol error: {0}")]
    Protocol(String),
    /// The proxy could not connect to the target (RFC 1928 reply codes
    /// 1 to 8, with the RFC's text; other codes read "unknown error").
    #[error("socks5: {message} (reply {code})")]
    Reply {
        /// The reply code.
        code: u8,
        /// What the code means.
        message: String,
    },
    /// Reading from or writing to the proxy failed. A passed deadline is
    /// `ErrorKind::TimedOut` with [`DeadlineExceeded`](crate::DeadlineExceeded)
    /// inside; a proxy that hangs up early is `UnexpectedEof`.
    #[error(transparent)]
    Io(io::Error),
}

impl Error {
    /// Whether a deadline passed during the handshake.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Io(e) if e.kind() == io::ErrorKind::TimedOut)
    }

    /// The `io::ErrorKind` this failure reads as when carried in an
    /// `io::Error`.
    pub(crate) fn kind(&self) -> io::ErrorKind {
        match self {
            Error::TargetAddress(_) => io::ErrorKind::InvalidInput,
            Error::Authentication(_) => io::ErrorKind::PermissionDenied,
            Error::Protocol(_) => io::ErrorKind::InvalidData,
            Error::Reply { code: 5, .. } => io::ErrorKind::ConnectionRefused,
            Error::Reply { code: 3, .. } => io::ErrorKind::NetworkUnreachable,
            Error::Reply { code: 4, .. } => io::ErrorKind::HostUnreachable,
            Error::Reply { .. } => io::ErrorKind::Other,
            Error::Io(e) => e.kind(),
        }
    }
}

/// RFC 1928's text for a failure reply code.
fn reply_message(code: u8) -> &'static str {
    match code {
        1 => "general SOCKS server failure",
        2 => "connection not allowed by ruleset",
        3 => "network unreachable",
        4 => "host unreachable",
        5 => "connection refused",
        6 => "TTL expired",
        7 => "command not supported",
        8 => "address type not supported",
        _ => "unknown error",
    }
}

/// A target checked and ready to be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    Ip(IpAddr, u16),
    Domain(String, u16),
}

impl Target {
    /// Check `target` (`"host:port"`) the way the proxy will need it. The
    /// error is the message alone; callers add the address.
    pub(crate) fn parse(target: &str) -> Result<Target, AddressError> {
        let bad = |message: &str| AddressError::new(message, target);
        let (host, port) = crate::split_host_port(target)?;
        if host.is_empty() {
            return Err(bad("missing host in address"));
        }
        let port = match port.parse::<u16>() {
            Ok(p) if p != 0 && port.bytes().all(|b| b.is_ascii_digit()) => p,
            _ => return Err(bad("port must be 1 to 65535")),
        };
        if host.contains('%') {
            return Err(bad("a zone cannot be sent through a proxy"));
        }
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(Target::Ip(ip, port));
        }
        if host.len() > 255 {
            return Err(bad("host name longer than 255 bytes"));
        }
        Ok(Target::Domain(host.to_string(), port))
    }

    /// The address part of a request: type, address, port.
    fn encode(&self, out: &mut Vec<u8>) {
        let port = match self {
            Target::Ip(IpAddr::V4(ip), port) => {
                out.push(ATYP_V4);
                out.extend_from_slice(&ip.octets());
                port
            }
            Target::Ip(IpAddr::V6(ip), port) => {
                out.push(ATYP_V6);
                out.extend_from_slice(&ip.octets());
                port
            }
            Target::Domain(name, port) => {
                out.push(ATYP_DOMAIN);
                out.push(name.len() as u8); // checked: at most 255
                out.extend_from_slice(name.as_bytes());
                port
            }
        };
        out.extend_from_slice(&port.to_be_bytes());
    }
}

/// Ask the proxy at the other end of `conn` to connect to `target`
/// (`"host:port"`), authenticating with `auth` if given. On success `conn`
/// carries the stream to the target, and the address the proxy connected
/// from is returned.
///
/// Everything that can be checked is checked before the first byte goes
/// out. The conn's deadlines bound the exchange: set them first.
pub fn handshake(conn: &Conn, target: &str, auth: Option<&Auth>) -> Result<BoundAddr, Error> {
    let target = Target::parse(target).map_err(|e| Error::TargetAddress(e.to_string()))?;
    if let Some(auth) = auth {
        auth.check()?;
    }
    handshake_checked(conn, &target, auth)
}

/// [`handshake`] for a target and credentials already checked.
pub(crate) fn handshake_checked(conn: &Conn, target: &Target, auth: Option<&Auth>) -> Result<BoundAddr, Error> {
    let mut io = conn;
    // Greeting: the methods we accept. With credentials, offer both, as
    // Go's x/net/proxy does: the proxy picks.
    let greeting: &[u8] = match auth {
        Some(_) => &[VERSION, 2, METHOD_NONE, METHOD_USER_PASSWORD],
        None => &[VERSION, 1, METHOD_NONE],
    };
    io.write_all(greeting).map_err(Error::Io)?;
    let mut choice = [0u8; 2];
    io.read_exact(&mut choice).map_err(Error::Io)?;
    if choice[0] != VERSION {
        return Err(Error::Protocol(format!("version {} in the method reply", choice[0])));
    }
    match (choice[1], auth) {
        (METHOD_NONE, _) => {}
        (METHOD_USER_PASSWORD, Some(auth)) => authenticate(io, auth)?,
        (METHOD_UNACCEPTABLE, _) => {
            let offered = if auth.is_some() { "no authentication or username/password" } else { "no authentication" };
            return Err(Error::Authentication(format!("the proxy accepts none of the methods offered ({offered})")));
        }
        (method, _) => {
            return Err(Error::Protocol(format!("the proxy chose method {method:#04x}, which was not offered")));
        }
    }

    let mut request = vec![VERSION, CMD_CONNECT, 0];
    target.encode(&mut request);
    io.write_all(&request).map_err(Error::Io)?;
    let mut head = [0u8; 4];
    io.read_exact(&mut head).map_err(Error::Io)?;
    let [version, code, reserved, atyp] = head;
    if version != VERSION {
        return Err(Error::Protocol(format!("version {version} in the connect reply")));
    }
    if reserved != 0 {
        return Err(Error::Protocol(format!("reserved byte {reserved:#04x} in the connect reply")));
    }
    if code != 0 {
        return Err(Error::Reply { code, message: reply_message(code).to_string() });
    }
    read_bound_addr(io, atyp)
}

/// RFC 1929: send the credentials, read the verdict.
fn authenticate(mut io: &Conn, auth: &Auth) -> Result<(), Error> {
    let mut msg = Vec::with_capacity(3 + auth.username.len() + auth.password.len());
    msg.push(AUTH_VERSION);
    msg.push(auth.username.len() as u8); // checked: 1..=255
    msg.extend_from_slice(auth.username.as_bytes());
    msg.push(auth.password.len() as u8); // checked: at most 255
    msg.extend_from_slice(auth.password.as_bytes());
    io.write_all(&msg).map_err(Error::Io)?;
    let mut verdict = [0u8; 2];
    io.read_exact(&mut verdict).map_err(Error::Io)?;
    if verdict[0] != AUTH_VERSION {
        return Err(Error::Protocol(format!("version {} in the authentication reply", verdict[0])));
    }
    if verdict[1] != 0 {
        return Err(Error::Authentication(format!(
            "the proxy rejected the username and password (status {})",
            verdict[1]
        )));
    }
    Ok(())
}

fn read_bound_addr(mut io: &Conn, atyp: u8) -> Result<BoundAddr, Error> {
    let mut port = [0u8; 2];
    match atyp {
        ATYP_V4 => {
            let mut ip = [0u8; 4];
            io.read_exact(&mut ip).map_err(Error::Io)?;
            io.read_exact(&mut port).map_err(Error::Io)?;
            Ok(BoundAddr::Ip(SocketAddr::from((ip, u16::from_be_bytes(port)))))
        }
        ATYP_V6 => {
            let mut ip = [0u8; 16];
            io.read_exact(&mut ip).map_err(Error::Io)?;
            io.read_exact(&mut port).map_err(Error::Io)?;
            Ok(BoundAddr::Ip(SocketAddr::from((ip, u16::from_be_bytes(port)))))
        }
        ATYP_DOMAIN => {
            let mut len = [0u8; 1];
            io.read_exact(&mut len).map_err(Error::Io)?;
            let mut name = vec![0u8; usize::from(len[0])];
            io.read_exact(&mut name).map_err(Error::Io)?;
            io.read_exact(&mut port).map_err(Error::Io)?;
            let name =
                String::from_utf8(name).map_err(|_| Error::Protocol("the bound host name is not UTF-8".into()))?;
            Ok(BoundAddr::Domain(name, u16::from_be_bytes(port)))
        }
        other => Err(Error::Protocol(format!("address type {other:#04x} in the connect reply"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_checked() {
        assert_eq!(Target::parse("127.0.0.1:80").unwrap(), Target::Ip("127.0.0.1".parse().unwrap(), 80));
        assert_eq!(Target::parse("[::1]:443").unwrap(), Target::Ip("::1".parse().unwrap(), 443));
        assert_eq!(Target::parse("example.com:65535").unwrap(), Target::Domain("example.com".into(), 65535));
        let long = format!("{}:80", "a".repeat(256));
        for (bad, why) in [
            ("example.com", "missing port in address"),
            (":80", "missing host in address"),
            ("example.com:0", "port must be 1 to 65535"),
            ("example.com:65536", "port must be 1 to 65535"),
            ("example.com:+80", "port must be 1 to 65535"),
            ("example.com:http", "port must be 1 to 65535"),
            ("[fe80::1%eth0]:80", "a zone cannot be sent through a proxy"),
            (long.as_str(), "host name longer than 255 bytes"),
        ] {
            let err = Target::parse(bad).unwrap_err();
            assert_eq!(err.message, why, "{bad}");
            assert_eq!(err.addr, bad);
        }
        assert!(Target::parse(&format!("{}:80", "a".repeat(255))).is_ok());
    }

    #[test]
    fn encodes_each_address_type() {
        let mut out = Vec::new();
        Target::Domain("ab".into(), 0x1234).encode(&mut out);
        assert_eq!(out, [ATYP_DOMAIN, 2, b'a', b'b', 0x12, 0x34]);
        out.clear();
        Target::Ip("10.1.2.3".parse().unwrap(), 80).encode(&mut out);
        assert_eq!(out, [ATYP_V4, 10, 1, 2, 3, 0, 80]);
        out.clear();
        Target::Ip("::1".parse().unwrap(), 80).encode(&mut out);
        assert_eq!(out.len(), 1 + 16 + 2);
        assert_eq!(out[0], ATYP_V6);
    }

    #[test]
    fn credentials_are_checked() {
        assert!(Auth::new("u", "").check().is_ok());
        assert!(Auth::new("u".repeat(255), "p".repeat(255)).check().is_ok());
        for bad in [Auth::new("", "p"), Auth::new("u".repeat(256), "p"), Auth::new("u", "p".repeat(256))] {
            assert!(matches!(bad.check(), Err(Error::Authentication(_))), "{bad:?}");
        }
        assert!(!format!("{:?}", Auth::new("u", "hunter2")).contains("hunter2"));
    }

    /// Each error's text, then its sources' texts.
    fn chain(e: &Error) -> Vec<String> {
        let mut out = vec![e.to_string()];
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            out.push(s.to_string());
            source = s.source();
        }
        out
    }

    #[test]
    fn no_cause_is_told_twice() {
        let timeout = Error::Io(io::Error::new(io::ErrorKind::TimedOut, crate::DeadlineExceeded));
        assert_eq!(chain(&timeout), ["i/o timeout"]);
        assert!(timeout.is_timeout());
        let eof = Error::Io(io::Error::from(io::ErrorKind::UnexpectedEof));
        assert_eq!(chain(&eof).len(), 1);
        for e in [
            Error::TargetAddress("address x: missing port in address".into()),
            Error::Authentication("the proxy rejected the username and password (status 1)".into()),
            Error::Protocol("version 4 in the method reply".into()),
            Error::Reply { code: 1, message: reply_message(1).into() },
        ] {
            assert_eq!(chain(&e).len(), 1, "{e}");
            assert!(e.to_string().starts_with("socks5: "), "{e}");
        }
    }

    #[test]
    fn reply_codes_read_as_rfc_1928() {
        let e = Error::Reply { code: 5, message: reply_message(5).into() };
        assert_eq!(e.to_string(), "socks5: connection refused (reply 5)");
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
        assert_eq!(reply_message(1), "general SOCKS server failure");
        assert_eq!(reply_message(8), "address type not supported");
        assert_eq!(reply_message(9), "unknown error");
    }
}
