//! An HTTPS GET: `cargo run --example fetch -- https://host[:port]/path`.
//!
//! Options: `--ca FILE` trusts that CA instead of the system roots;
//! `--insecure` skips verification (testing only); `--timeout SECS` bounds
//! resolution, connect, handshake and the whole response (default 10).
//! Prints the status line and headers to stderr and the body to stdout.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use reseau::{tcp, tls};

struct Url {
    host: String,
    port: u16,
    path: String,
}

fn parse(url: &str) -> Result<Url, String> {
    let rest = url.strip_prefix("https://").ok_or("only https:// URLs are supported")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match tcp::split_host_port(authority) {
        Ok((h, p)) => (h.to_string(), p.parse().map_err(|_| format!("bad port {p:?}"))?),
        Err(_) => (authority.trim_start_matches('[').trim_end_matches(']').to_string(), 443),
    };
    if host.is_empty() {
        return Err("the URL has no host".into());
    }
    Ok(Url { host, port, path: path.to_string() })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut url = None;
    let mut builder = tls::Config::builder().alpn_protocols(["http/1.1"]);
    let mut timeout = Duration::from_secs(10);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--ca" => builder = builder.ca_file(args.next().ok_or("--ca needs a file")?),
            "--insecure" => builder = builder.verify_peer(false),
            "--timeout" => timeout = Duration::from_secs_f64(args.next().ok_or("--timeout needs seconds")?.parse()?),
            _ if url.is_none() => url = Some(a),
            _ => return Err(format!("unexpected argument {a:?}").into()),
        }
    }
    let url = parse(&url.ok_or("usage: fetch [--ca FILE] [--insecure] [--timeout SECS] https://host[:port]/path")?)?;
    let config = builder.build()?;

    let deadline = Instant::now() + timeout;
    let dialer = tls::Dialer::new(tcp::Dialer::new().deadline(deadline), config);
    let mut conn = dialer.connect(&tcp::join_host_port(&url.host, url.port))?;
    conn.set_deadline(Some(deadline))?; // the same budget covers the response
    let st = conn.connection_state();
    eprintln!(
        "* {} {} to {}",
        st.version.map_or("?".into(), |v| v.to_string()),
        st.cipher_suite.unwrap_or_default(),
        conn.remote_addr()?
    );

    let host_header = if url.port == 443 { url.host.clone() } else { tcp::join_host_port(&url.host, url.port) };
    write!(
        conn,
        "GET {} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: reseau-fetch\r\nConnection: close\r\n\r\n",
        url.path
    )?;
    let mut response = Vec::new();
    match conn.read_to_end(&mut response) {
        Ok(_) => {}
        // Many servers close without close_notify after "Connection: close".
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !response.is_empty() => {}
        Err(e) => return Err(e.into()),
    }
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").ok_or("no HTTP header in the response")?;
    eprintln!("{}", String::from_utf8_lossy(&response[..split]));
    std::io::stdout().write_all(&response[split + 4..])?;
    Ok(())
}
