//! `Certificate`: a readable view of a DER certificate (subject, issuer,
//! expiry, names), parsed by OpenSSL, and the `Debug` of
//! [`ConnectionState`] that uses it instead of printing raw bytes.

use std::fmt;
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::ffi::cert_from_der;
use crate::state::ConnectionState;

/// What a certificate says about whom it names: enough to log or check a
/// peer without an X.509 parser of your own.
///
/// ```no_run
/// # let conn: tls::Conn = unimplemented!();
/// for cert in conn.connection_state().peer_certificate_summary() {
///     println!("{} (issued by {}), DNS {:?}", cert.subject, cert.issuer, cert.dns_names);
/// }
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Certificate {
    /// The subject, RFC 2253 style: `CN=localhost,O=Example`.
    pub subject: String,
    /// The issuer, likewise.
    pub issuer: String,
    /// The end of its validity.
    pub not_after: SystemTime,
    /// The DNS names of its subjectAltName extension.
    pub dns_names: Vec<String>,
    /// The IP addresses of its subjectAltName extension.
    pub ip_addresses: Vec<IpAddr>,
}

impl Certificate {
    /// Parse a DER certificate (as in [`ConnectionState::peer_certificates`]);
    /// `None` if it does not parse.
    pub fn from_der(der: &[u8]) -> Option<Certificate> {
        let cert = cert_from_der(der)?;
        let (dns_names, ip_addresses) = cert.alt_names();
        Some(Certificate {
            subject: cert.subject(),
            issuer: cert.issuer(),
            not_after: cert.not_after()?,
            dns_names,
            ip_addresses,
        })
    }
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("subject", &self.subject)
            .field("issuer", &self.issuer)
            .field("not_after", &format_args!("{}", Utc(self.not_after)))
            .field("dns_names", &self.dns_names)
            .field("ip_addresses", &self.ip_addresses)
            .finish()
    }
}

impl ConnectionState {
    /// The peer's certificates, leaf first, parsed into [`Certificate`]s
    /// (one that does not parse is left out).
    pub fn peer_certificate_summary(&self) -> Vec<Certificate> {
        self.peer_certificates.iter().filter_map(|der| Certificate::from_der(der)).collect()
    }
}

/// The peer's certificates are summarised, not printed as bytes.
impl fmt::Debug for ConnectionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Peer<'a>(&'a [Vec<u8>]);
        impl fmt::Debug for Peer<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut list = f.debug_list();
                for der in self.0 {
                    match Certificate::from_der(der) {
                        Some(c) => list.entry(&c),
                        None => list.entry(&format_args!("<{} bytes, not a certificate>", der.len())),
                    };
                }
                list.finish()
            }
        }
        f.debug_struct("ConnectionState")
            .field("handshake_complete", &self.handshake_complete)
            .field("version", &self.version)
            .field("alpn_protocol", &self.alpn_protocol)
            .field("cipher_suite", &self.cipher_suite)
            .field("group", &self.group)
            .field("server_name", &self.server_name)
            .field("peer_certificates", &Peer(&self.peer_certificates))
            .field("session_resumed", &self.session_resumed)
            .field("ocsp_response", &self.ocsp_response.as_ref().map(|r| format!("<{} bytes>", r.len())))
            .finish()
    }
}

/// A time as `2026-12-29T16:26:30Z`.
struct Utc(SystemTime);

impl fmt::Display for Utc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = match self.0.duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_secs() as i64,
            Err(e) => -(e.duration().as_secs() as i64),
        };
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        // Days to a civil date (Howard Hinnant's algorithm).
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        write!(f, "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn utc_dates() {
        let at = |s: u64| Utc(UNIX_EPOCH + Duration::from_secs(s)).to_string();
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(1_580_515_200), "2020-02-01T00:00:00Z");
        assert_eq!(at(4_102_444_799), "2099-12-31T23:59:59Z");
        assert!(Certificate::from_der(b"not DER").is_none());
    }
}
