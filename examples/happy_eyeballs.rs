//! Happy eyeballs, step by step.
//!
//! With no argument it builds the situation on loopback: a name that
//! resolves to `[::1]` (a black hole: a listener whose accept queue is full,
//! so SYNs are dropped and the connect hangs) and `127.0.0.1` (listening),
//! and shows the IPv4 attempt starting after the fallback delay and winning.
//! With `HOST:PORT` it dials that and reports what it resolved and which
//! address won.
//!
//! ```sh
//! cargo run --example happy_eyeballs
//! cargo run --example happy_eyeballs -- localhost:8080 --delay-ms 100
//! ```

use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reseau::tcp::{self, resolve::StaticResolver};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut target = None;
    let mut delay = Duration::from_millis(200);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--delay-ms" => delay = Duration::from_millis(args.next().ok_or("--delay-ms needs a number")?.parse()?),
            _ => target = Some(a),
        }
    }
    match target {
        Some(t) => dial(&t, delay, None),
        None => local_demonstration(delay),
    }
}

fn dial(
    target: &str,
    delay: Duration,
    resolver: Option<Arc<dyn tcp::resolve::Resolver>>,
) -> Result<(), Box<dyn std::error::Error>> {
    let r = resolver.clone().unwrap_or_else(tcp::resolve::default_resolver);
    let addrs = tcp::resolve::resolve_tcp_addrs("tcp", target, &*r, Default::default(), None)?;
    println!("{target} resolves to {addrs:?}");
    let primary_v4 = addrs[0].is_ipv4();
    let (p, f): (Vec<SocketAddr>, Vec<SocketAddr>) = addrs.iter().partition(|a| a.is_ipv4() == primary_v4);
    println!("primaries (tried first, in turn): {p:?}");
    println!("fallbacks (start after {delay:?}, or at once if every primary fails): {f:?}");
    let mut dialer = tcp::Dialer::new().fallback_delay(delay).timeout(Duration::from_secs(10));
    if let Some(r) = resolver {
        dialer = dialer.resolver(r);
    }
    let start = Instant::now();
    let conn = dialer.connect(target)?;
    println!("connected to {} after {:.1} ms", conn.remote_addr()?, start.elapsed().as_secs_f64() * 1e3);
    Ok(())
}

fn local_demonstration(delay: Duration) -> Result<(), Box<dyn std::error::Error>> {
    // The live IPv4 listener picks the port; the black hole takes the same
    // port on ::1.
    let live = tcp::listen("127.0.0.1:0")?;
    let port = live.local_addr()?.port();
    let hole_addr = SocketAddr::from(([0, 0, 0, 0, 0, 0, 0, 1], port));
    let hole = tcp::ListenConfig::new().backlog(0).network(tcp::Network::Tcp6).bind(hole_addr)?;
    let mut queued = Vec::new();
    while let Ok(s) = TcpStream::connect_timeout(&hole_addr, Duration::from_millis(100)) {
        queued.push(s); // fill the accept queue; the next connect hangs
        if queued.len() > 16 {
            return Err("could not fill the black hole's accept queue".into());
        }
    }
    println!("[::1]:{port} is a black hole (accept queue full), 127.0.0.1:{port} is listening");
    let resolver = StaticResolver::new().host("dual.example", ["::1".parse()?, "127.0.0.1".parse()?]);
    dial(&format!("dual.example:{port}"), delay, Some(Arc::new(resolver)))?;
    drop((hole, queued, live));
    Ok(())
}
