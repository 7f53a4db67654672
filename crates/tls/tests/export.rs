//! `Conn::export_keying_material` (RFC 5705, RFC 8446 §7.5), checked
//! against `openssl s_client -keymatexport` on TLS 1.3 and 1.2, and
//! between our own ends with and without a context.

// Results carry tls::Error, whose public fields make it large.
#![allow(clippy::result_large_err)]

mod support;

use support::{client_builder, client_config, dial, s_client, serve_one, server_config};

/// `s_client -keymatexport label -keymatexportlen len` against our server:
/// what s_client printed as the keying material, and what our server
/// exported with the same arguments.
fn against_s_client(version: &str, label: &str, len: usize) -> (String, String) {
    let label_owned = label.to_string();
    let (addr, server) = serve_one(&server_config(), move |c| {
        c.handshake().expect("handshake with s_client");
        let ours = c.export_keying_material(&label_owned, None, len).unwrap();
        ours.iter().map(|b| format!("{b:02X}")).collect::<String>()
    });
    let len_arg = len.to_string();
    let out =
        s_client(addr, &["-servername", "localhost", version, "-keymatexport", label, "-keymatexportlen", &len_arg]);
    let theirs = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("Keying material: "))
        .unwrap_or_else(|| panic!("no keying material from s_client: {out}"))
        .trim()
        .to_string();
    (theirs, server.join().unwrap())
}

#[test]
fn our_server_exports_what_s_client_exports() {
    for version in ["-tls1_3", "-tls1_2"] {
        for (label, len) in [("EXPERIMENTAL-reseau", 32), ("EXPORTER-Channel-Binding", 20), ("x", 1)] {
            let (theirs, ours) = against_s_client(version, label, len);
            assert_eq!(theirs.len(), 2 * len, "{version} {label}: {theirs}");
            assert_eq!(ours, theirs, "{version} {label} {len}");
        }
    }
}

#[test]
fn both_ends_agree_and_the_context_matters() {
    for max in [tls::Version::Tls13, tls::Version::Tls12] {
        let (addr, server) = serve_one(&server_config(), |c| {
            c.handshake().unwrap();
            [None, Some(&b""[..]), Some(&b"context"[..])]
                .map(|ctx| c.export_keying_material("EXPORTER-test", ctx, 48).unwrap())
        });
        let c = dial(addr, &client_builder().max_version(max).build().unwrap()).unwrap();
        let ours = [None, Some(&b""[..]), Some(&b"context"[..])]
            .map(|ctx| c.export_keying_material("EXPORTER-test", ctx, 48).unwrap());
        assert_eq!(ours, server.join().unwrap(), "{max}: both ends derive the same bytes");
        // RFC 8446 7.5: no context is an empty one; RFC 5705 tells them apart.
        assert_eq!(ours[0] == ours[1], max == tls::Version::Tls13, "{max}: no context against an empty one");
        assert_ne!(ours[1], ours[2], "{max}: the context matters");
        assert_ne!(c.export_keying_material("EXPORTER-other", None, 48).unwrap(), ours[0], "{max}: the label matters");
    }
}

#[test]
fn bad_requests_are_clear_errors() {
    let (addr, server) = serve_one(&server_config(), |c| {
        let _ = c.handshake();
    });
    let tcp = tcp::connect_addr(addr).unwrap();
    let c = tls::client(tcp, &client_config()).unwrap();
    let before = c.export_keying_material("EXPORTER-test", None, 32).unwrap_err();
    assert!(before.to_string().contains("handshake has not completed"), "{before}");
    c.handshake().unwrap();
    let reserved = c.export_keying_material("master secret", None, 32).unwrap_err();
    assert!(reserved.to_string().contains("reserved"), "{reserved}");
    let huge = c.export_keying_material("EXPORTER-test", None, usize::MAX).unwrap_err();
    assert!(huge.to_string().contains("allowed"), "{huge}");
    assert_eq!(c.export_keying_material("EXPORTER-test", None, 0).map(|v| v.len()).unwrap_or(0), 0);
    drop(c);
    server.join().unwrap();
}
