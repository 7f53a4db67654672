//! HTTP/1.1 with hyper on a tokio runtime, over reseau's TLS: `tls::Conn`
//! is tokio's `AsyncRead + AsyncWrite` (the `tokio` feature), so hyper
//! serves it through `hyper_util::rt::TokioIo` like any tokio stream.
//! Accepts and handshakes are reseau's `poll_*` methods, awaited with
//! `poll_fn`; each connection keeps reseau's deadlines (an idle bound
//! here); the wakers come from reseau's reactor, not tokio's.
//!
//! `GET /` answers a line about the connection; `POST /echo` echoes the
//! body. Without `--cert`/`--key` it makes certificates on the spot and
//! prints the CA to give curl.
//!
//! ```sh
//! cargo run -p reseau --features tokio --example hyper_server -- --connections 1
//! curl --cacert <the CA it prints> https://localhost:<port>/
//! ```
//!
//! Options: `--addr 127.0.0.1:0`, `--cert PEM --key PEM`, `--connections N`
//! (exit 0 after serving N connections; default: serve until killed).

#[path = "support/certs.rs"]
mod certs;

use std::convert::Infallible;
use std::future::poll_fn;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use reseau::tls;

/// How long a connection may stay silent (reseau's deadline, which works
/// under tokio's polls as under blocking calls).
const IDLE: Duration = Duration::from_secs(30);

type Error = Box<dyn std::error::Error + Send + Sync>;

struct Options {
    addr: String,
    cert: Option<(PathBuf, PathBuf)>,
    connections: Option<usize>,
}

fn options() -> Result<Options, Error> {
    let mut o = Options { addr: "127.0.0.1:0".into(), cert: None, connections: None };
    let (mut cert, mut key) = (None, None);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--addr" => o.addr = value()?,
            "--cert" => cert = Some(PathBuf::from(value()?)),
            "--key" => key = Some(PathBuf::from(value()?)),
            "--connections" => o.connections = Some(value()?.parse()?),
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    match (cert, key) {
        (Some(c), Some(k)) => o.cert = Some((c, k)),
        (None, None) => {}
        _ => return Err("--cert and --key go together".into()),
    }
    Ok(o)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let o = options()?;
    // Made certificates live (in a temporary directory) until the end.
    let mut made = None;
    let (cert, key) = match o.cert {
        Some(pair) => pair,
        None => {
            let certs = made.insert(certs::generate()?);
            println!("CA (for curl --cacert): {}", certs.path("ca.pem").display());
            (certs.path("server.pem"), certs.path("server.key"))
        }
    };
    let config = tls::Config::builder().cert_file(cert).key_file(key).alpn_protocols(["http/1.1"]).build()?;
    let listener = tls::listen(&o.addr, &config)?;
    let addr = listener.local_addr()?;
    println!("serving https://{addr}/ (hyper on tokio, over reseau::tls)");

    let mut served = tokio::task::JoinSet::new();
    let mut accepted = 0;
    while o.connections.is_none_or(|n| accepted < n) {
        // Lazy: the handshake runs in the connection's own task.
        let conn = poll_fn(|cx| listener.poll_accept(cx)).await?;
        accepted += 1;
        served.spawn(serve(conn));
    }
    let mut failed = 0;
    while let Some(done) = served.join_next().await {
        if let Err(e) = done? {
            eprintln!("connection failed: {e}");
            failed += 1;
        }
    }
    println!("served {accepted} connection(s), {failed} failed");
    if failed > 0 {
        return Err(format!("{failed} connection(s) failed").into());
    }
    Ok(())
}

/// One connection: the handshake, then hyper until the client is done.
async fn serve(conn: tls::Conn) -> Result<(), Error> {
    conn.set_deadline(Some(Instant::now() + IDLE))?;
    poll_fn(|cx| conn.poll_handshake(cx)).await?;
    let peer = conn.remote_addr()?;
    let state = conn.connection_state();
    let version = state.version.map_or("?".into(), |v| v.to_string());
    println!("{peer}: {version}, ALPN {:?}", state.alpn_protocol);
    let service = service_fn(move |req| respond(req, version.clone()));
    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(conn), service).await?;
    println!("{peer}: done");
    Ok(())
}

async fn respond(req: Request<Incoming>, version: String) -> Result<Response<Full<Bytes>>, Infallible> {
    let reply = |status, body: Bytes| {
        let mut r = Response::new(Full::new(body));
        *r.status_mut() = status;
        Ok(r)
    };
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/") => reply(StatusCode::OK, format!("hello from reseau, {version}\n").into()),
        (&Method::POST, "/echo") => match req.into_body().collect().await {
            Ok(body) => reply(StatusCode::OK, body.to_bytes()),
            Err(e) => reply(StatusCode::BAD_REQUEST, format!("{e}\n").into()),
        },
        _ => reply(StatusCode::NOT_FOUND, "not found\n".into()),
    }
}
