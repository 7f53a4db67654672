//! The system roots a verifying client falls back on without `ca_file`:
//! `SSL_CERT_FILE` / `SSL_CERT_DIR` are honoured, and one that does not
//! exist (or holds no certificate) is a `ConfigError` before any byte is
//! sent, not a handshake failure later. The environment is per process, so
//! each case runs this test binary again as a child with its own.

// Results carry tls::Error, whose public fields make it large.
#![allow(clippy::result_large_err)]

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use support::{PATIENCE, dial, pki, serve_one};

const ADDR: &str = "RESEAU_SYSTEM_ROOTS_ADDR";

/// The child's part: dial the parent's server with a verifying client that
/// has no `ca_file`, and print what happened.
fn dial_with_system_roots(addr: SocketAddr) {
    let cfg = tls::Config::builder().server_name("localhost").handshake_timeout(PATIENCE).build().unwrap();
    match dial(addr, &cfg) {
        Ok(c) => println!("RESULT: ok {:?}", c.connection_state().version),
        Err(tls::Error::Config(e)) => {
            // Refused before dialing: let the waiting server go.
            drop(tcp::connect_addr(addr));
            println!("RESULT: config: {e}");
        }
        Err(e) => println!("RESULT: other: {e}"),
    }
}

/// Run test `name` again as a child with these variables (the other one
/// removed) against a server of ours, and return its `RESULT:` line; in
/// the child, do the dialing and return `None`.
fn in_child(name: &str, vars: &[(&str, &Path)]) -> Option<String> {
    if let Some(addr) = std::env::var_os(ADDR) {
        dial_with_system_roots(addr.to_str().unwrap().parse().unwrap());
        return None;
    }
    let (addr, server) = serve_one(&support::server_config(), |c| {
        let _ = c.handshake();
    });
    let me = std::env::current_exe().unwrap();
    let mut cmd = Command::new(me);
    cmd.args(["--exact", name, "--nocapture", "--test-threads", "1"])
        .env(ADDR, addr.to_string())
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR");
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    server.join().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "child failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let at = stdout.find("RESULT: ").unwrap_or_else(|| panic!("no result:\n{stdout}"));
    Some(stdout[at + "RESULT: ".len()..].lines().next().unwrap_or_default().to_string())
}

#[test]
fn ssl_cert_file_is_honoured() {
    let Some(got) = in_child("ssl_cert_file_is_honoured", &[("SSL_CERT_FILE", &pki().path("ca.pem"))]) else { return };
    assert_eq!(got, "ok Some(Tls13)");
}

#[test]
fn ssl_cert_file_that_does_not_exist_is_a_config_error() {
    let missing = pki().path("no-such-bundle.pem");
    let Some(got) = in_child("ssl_cert_file_that_does_not_exist_is_a_config_error", &[("SSL_CERT_FILE", &missing)])
    else {
        return;
    };
    assert_eq!(got, format!("config: tls config error: SSL_CERT_FILE {} does not exist", missing.display()));
}

#[test]
fn ssl_cert_file_without_certificates_is_a_config_error() {
    let empty = pki().scratch("empty-bundle.pem");
    std::fs::write(&empty, "# nothing here\n").unwrap();
    let vars = [("SSL_CERT_FILE", empty.as_path())];
    let Some(got) = in_child("ssl_cert_file_without_certificates_is_a_config_error", &vars) else { return };
    assert!(got.starts_with("config: ") && got.contains("holds no PEM certificate"), "{got}");
}

#[test]
fn ssl_cert_dir_that_does_not_exist_is_a_config_error() {
    let vars = [("SSL_CERT_DIR", pki().path("no-such-dir"))];
    let vars: Vec<(&str, &Path)> = vars.iter().map(|(k, v)| (*k, v.as_path())).collect();
    let Some(got) = in_child("ssl_cert_dir_that_does_not_exist_is_a_config_error", &vars) else { return };
    assert!(got.starts_with("config: ") && got.contains("SSL_CERT_DIR") && got.contains("not a directory"), "{got}");
}

#[test]
fn a_bundle_of_other_cas_fails_the_handshake_not_the_config() {
    // A bundle that exists but does not hold our CA: a verification failure.
    let ca2 = pki().path("ca2.pem");
    let vars = [("SSL_CERT_FILE", ca2.as_path())];
    let Some(got) = in_child("a_bundle_of_other_cas_fails_the_handshake_not_the_config", &vars) else { return };
    assert!(got.starts_with("other: ") && got.contains("verif"), "{got}");
}
