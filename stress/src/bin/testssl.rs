//! `make stress-testssl`: testssl.sh (Debian's package) against a reseau
//! TLS server with the default configuration (and a handshake timeout, as
//! docs/reliability.md recommends). Passes when no protocol, cipher or
//! vulnerability check is flagged; prints testssl.sh's findings either way.
//!
//! One finding is expected and reported without failing: testssl.sh's
//! experimental LUCKY13 check marks any CBC suite "potentially vulnerable".
//! reseau keeps the two ECDHE CBC-SHA1 suites for old clients, as Go does;
//! the OpenSSL it runs on checks CBC padding and MAC in constant time.
//!
//! TESTSSL_CHECKS overrides the checks run (default: `-p -s -f -E -U`,
//! protocols, cipher categories, forward secrecy, ciphers per protocol,
//! vulnerabilities); TESTSSL_TIMEOUT bounds the run (seconds, default 1200).

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

fn main() {
    if Command::new("testssl").arg("--version").stdout(Stdio::null()).status().is_err() {
        println!("SKIPPED: testssl.sh is not installed (apt-get install testssl.sh)");
        std::process::exit(200);
    }
    let certs = testkit::certs::pki();
    let config = tls::Config::builder()
        .cert_file(certs.path("server.pem"))
        .key_file(certs.path("server.key"))
        .handshake_timeout(Duration::from_secs(5))
        .build()
        .expect("server config");
    let listener = tls::listen("127.0.0.1:0", &config).expect("listen");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            std::thread::spawn(move || {
                let _ = conn.set_timeout(Some(Duration::from_secs(10)));
                let mut buf = [0; 4096];
                while let Ok(n @ 1..) = conn.read(&mut buf) {
                    if conn.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    let checks = std::env::var("TESTSSL_CHECKS").unwrap_or_else(|_| "-p -s -f -E -U".into());
    let timeout = std::env::var("TESTSSL_TIMEOUT").unwrap_or_else(|_| "1200".into());
    let out = Command::new("timeout")
        .arg(&timeout)
        .arg("testssl")
        .args(["--quiet", "--color", "0", "--warnings", "off", "--sneaky", "--ip", "one"])
        .args(checks.split_whitespace())
        .arg(addr.to_string())
        .output()
        .expect("run testssl.sh");
    let text = String::from_utf8_lossy(&out.stdout);
    print!("{text}");
    // testssl.sh marks what it finds wanting with these words.
    let flagged: Vec<&str> = text
        .lines()
        .filter(|l| ["VULNERABLE", "NOT ok", "offered (NOT ok)", "-- NOT ok"].iter().any(|w| l.contains(w)))
        .filter(|l| !l.contains("not vulnerable"))
        .collect();
    let (expected, flagged): (Vec<&str>, Vec<&str>) =
        flagged.into_iter().partition(|l| l.contains("LUCKY13") && l.contains("experimental"));
    println!("\n=== testssl.sh summary against reseau's default TLS server ({addr})");
    for l in &expected {
        println!("expected (ECDHE CBC-SHA1 kept for old clients, as Go does): {}", l.trim());
    }
    if !out.status.success() && flagged.is_empty() {
        println!("testssl.sh exited with {} and flagged nothing: see its output above", out.status);
        std::process::exit(1);
    }
    if flagged.is_empty() {
        println!("PASS: no protocol, cipher or vulnerability flagged");
    } else {
        println!("FAIL: {} finding(s):", flagged.len());
        for l in &flagged {
            println!("  {}", l.trim());
        }
        std::process::exit(1);
    }
    let _ = std::io::stdout().flush();
}
