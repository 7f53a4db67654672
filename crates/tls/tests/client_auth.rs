//! Client certificates: every `ClientAuth` mode against a client with no
//! certificate, a self-signed one, and one from the CA the server trusts,
//! under TLS 1.2 and TLS 1.3, with Go's meanings:
//!
//! | mode                       | asks | requires | verifies |
//! |----------------------------|------|----------|----------|
//! | NoClientCert               | no   | no       | -        |
//! | RequestClientCert          | yes  | no       | no       |
//! | RequireAnyClientCert       | yes  | yes      | no       |
//! | VerifyClientCertIfGiven    | yes  | no       | if sent  |
//! | RequireAndVerifyClientCert | yes  | yes      | yes      |

// Results carry tls::Error, whose public fields make it large.
#![allow(clippy::result_large_err)]

mod support;

use std::io::{Read, Write};

use support::{client_builder, dial, pki, serve_one, server_builder};
use tls::{ClientAuth, Version};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Cert {
    None,
    SelfSigned,
    CaSigned,
}

impl Cert {
    fn der(self) -> Option<Vec<u8>> {
        match self {
            Cert::None => None,
            Cert::SelfSigned => Some(pki().der("selfsigned")),
            Cert::CaSigned => Some(pki().der("client")),
        }
    }
}

/// What each side saw.
#[derive(Debug)]
struct Outcome {
    /// The client certificates the server got, or why its handshake failed.
    server: Result<Vec<Vec<u8>>, tls::Error>,
    /// Whether the client could exchange data (under TLS 1.3 a rejected
    /// client may finish its handshake and learn of it on its first read).
    client: Result<(), String>,
}

fn run(mode: ClientAuth, cert: Cert, version: Version) -> Outcome {
    let pki = pki();
    let server_cfg =
        server_builder().client_auth(mode).client_ca_file(pki.path("ca.pem")).max_version(version).build().unwrap();
    let mut client_cfg = client_builder().max_version(version);
    match cert {
        Cert::None => {}
        Cert::SelfSigned => {
            client_cfg = client_cfg.cert_file(pki.path("selfsigned.pem")).key_file(pki.path("selfsigned.key"));
        }
        Cert::CaSigned => client_cfg = client_cfg.cert_file(pki.path("client.pem")).key_file(pki.path("client.key")),
    }
    let client_cfg = client_cfg.build().unwrap();
    let (addr, server) = serve_one(&server_cfg, move |mut c| -> Result<Vec<Vec<u8>>, tls::Error> {
        c.handshake()?;
        let mut buf = [0u8; 4];
        c.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"ping");
        c.write_all(b"pong").unwrap();
        let st = c.connection_state();
        assert!(st.handshake_complete);
        assert_eq!(st.version, Some(version));
        Ok(st.peer_certificates)
    });
    let client = (|| {
        let mut c = dial(addr, &client_cfg).map_err(|e| format!("handshake: {e}"))?;
        c.write_all(b"ping").map_err(|e| format!("write: {e}"))?;
        let mut buf = [0u8; 4];
        c.read_exact(&mut buf).map_err(|e| format!("read: {e}"))?;
        assert_eq!(&buf, b"pong");
        Ok(())
    })();
    Outcome { server: server.join().unwrap(), client }
}

/// The connection works and the server saw exactly `expected` (leaf DER).
fn assert_accepted(o: &Outcome, expected: Option<Vec<u8>>, what: &str) {
    let certs = match &o.server {
        Ok(certs) => certs,
        Err(e) => panic!("{what}: the server should accept, got {e}"),
    };
    assert!(o.client.is_ok(), "{what}: the client should get through: {:?}", o.client);
    match expected {
        Some(der) => {
            assert!(!certs.is_empty(), "{what}: peer_certificates is empty although a certificate was sent");
            assert_eq!(certs[0], der, "{what}: the server saw the client's certificate");
        }
        None => assert!(certs.is_empty(), "{what}: no certificate expected, got {}", certs.len()),
    }
}

/// The server's handshake fails with a TLS error mentioning `why`, and the
/// client cannot exchange data.
fn assert_rejected(o: &Outcome, why: &[&str], what: &str) {
    match &o.server {
        Err(tls::Error::Tls(e)) => {
            let msg = e.message.to_lowercase();
            assert!(why.iter().any(|w| msg.contains(w)), "{what}: the server's error should mention {why:?}: {e}");
        }
        other => panic!("{what}: the server should reject with Error::Tls, got {other:?}"),
    }
    assert!(o.client.is_err(), "{what}: the client should not get through");
}

const NO_CERT: &[&str] = &["did not return a certificate", "certificate required"];
const UNVERIFIED: &[&str] = &["verify failed", "self-signed", "self signed"];

fn for_each_version(f: impl Fn(Version)) {
    for v in [Version::Tls12, Version::Tls13] {
        f(v);
    }
}

#[test]
fn no_client_cert_never_asks() {
    for_each_version(|v| {
        for cert in [Cert::None, Cert::SelfSigned, Cert::CaSigned] {
            // Not asked for, so not sent, even when the client has one.
            assert_accepted(&run(ClientAuth::NoClientCert, cert, v), None, &format!("{v} {cert:?}"));
        }
    });
}

#[test]
fn request_client_cert_accepts_any_or_none() {
    for_each_version(|v| {
        for cert in [Cert::None, Cert::SelfSigned, Cert::CaSigned] {
            assert_accepted(&run(ClientAuth::RequestClientCert, cert, v), cert.der(), &format!("{v} {cert:?}"));
        }
    });
}

#[test]
fn require_any_client_cert_accepts_any_but_none() {
    for_each_version(|v| {
        let mode = ClientAuth::RequireAnyClientCert;
        assert_rejected(&run(mode, Cert::None, v), NO_CERT, &format!("{v} None"));
        for cert in [Cert::SelfSigned, Cert::CaSigned] {
            assert_accepted(&run(mode, cert, v), cert.der(), &format!("{v} {cert:?}"));
        }
    });
}

#[test]
fn verify_client_cert_if_given_verifies_what_is_sent() {
    for_each_version(|v| {
        let mode = ClientAuth::VerifyClientCertIfGiven;
        assert_accepted(&run(mode, Cert::None, v), None, &format!("{v} None"));
        assert_rejected(&run(mode, Cert::SelfSigned, v), UNVERIFIED, &format!("{v} SelfSigned"));
        assert_accepted(&run(mode, Cert::CaSigned, v), Cert::CaSigned.der(), &format!("{v} CaSigned"));
    });
}

#[test]
fn require_and_verify_client_cert_needs_a_verified_one() {
    for_each_version(|v| {
        let mode = ClientAuth::RequireAndVerifyClientCert;
        assert_rejected(&run(mode, Cert::None, v), NO_CERT, &format!("{v} None"));
        assert_rejected(&run(mode, Cert::SelfSigned, v), UNVERIFIED, &format!("{v} SelfSigned"));
        assert_accepted(&run(mode, Cert::CaSigned, v), Cert::CaSigned.der(), &format!("{v} CaSigned"));
    });
}
