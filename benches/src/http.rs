//! HTTP under wrk: three servers, each in its own process, serving the same
//! 13-byte body to the same outside load generator.
//!
//! - reseau: `examples/http_server.rs`, the example as shipped (green
//!   threads, one per connection), built in release by cargo from here;
//! - hyper 1 on tokio's multi-threaded runtime: [`hyper_server`], this
//!   binary started again as `reseau-bench --http-hyper ADDR`;
//! - Go's `net/http`: `benches/go/http.go`, in the Go contender's binary.
//!
//! Each bounds a silent connection at 60 s, sets `TCP_NODELAY`, and answers
//! with `Content-Type`, `Content-Length` and `Date`. For each connection
//! count, the three start afresh; then each round runs `wrk -t2 -c N
//! --latency` against each in turn (rotating who goes first), and reads
//! wrk's requests per second and p99 latency, and the server's CPU time
//! (user + system, from `/proc/PID/stat`) across the run, per request.
//!
//! wrk and the servers share the machine's cores: the figures are those of
//! a loaded box, the same for every contender.

use std::convert::Infallible;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use testkit::child::{Lines, Proc};

use crate::harness::{Bench, Better, Mode, Row, median};

/// The connection counts: below, around and well above the cores' worth of
/// busy connections. 9 000 fit the machines' 20 000-descriptor hard limit
/// (wrk and the server each hold one descriptor per connection).
const CONNS: [usize; 3] = [64, 1_000, 9_000];

/// A server under test, killed and reaped when dropped.
struct Server {
    name: &'static str,
    proc: Proc,
    /// Keeps reading its output, so it never blocks on a full pipe.
    _lines: Lines,
    url: String,
}

impl Server {
    /// Start `cmd` (whose last argument is `127.0.0.1:0`) and wait for its
    /// `listening on ADDR` line.
    fn start(name: &'static str, mut cmd: Command) -> Server {
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut proc = Proc::spawn(name, &mut cmd);
        let lines = Lines::follow(&mut proc);
        let line = lines.wait_for(&format!("{name}'s address"), |l| l.starts_with("listening on "));
        let addr = line["listening on ".len()..].trim();
        Server { name, url: format!("http://{addr}/"), proc, _lines: lines }
    }

    /// CPU time the process has used so far (user + system, all threads).
    fn cpu(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.proc.child.id())).expect("server's stat");
        // Fields after the command name (which may hold spaces): state is
        // the first, utime the 12th, stime the 13th.
        let fields: Vec<&str> = stat[stat.rfind(')').expect("stat's command") + 1..].split_whitespace().collect();
        let ticks: u64 = fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
        // SAFETY: sysconf only reads a configuration value.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        Duration::from_secs_f64(ticks as f64 / hz.max(1) as f64)
    }
}

/// What one wrk run measured.
#[derive(Clone, Copy)]
struct Load {
    req_per_sec: f64,
    p99_us: f64,
    /// Server CPU per request, in µs.
    cpu_us: f64,
}

/// Run wrk against `server` with `conns` connections for `secs` seconds.
fn load(server: &Server, conns: usize, secs: u64) -> Load {
    let before = server.cpu();
    let out = Command::new("wrk")
        .args(["-t2", "-c", &conns.to_string(), "-d", &format!("{secs}s"), "--timeout", "5s", "--latency"])
        .arg(&server.url)
        .output()
        .expect("run wrk");
    let cpu = server.cpu() - before;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "wrk against {} failed:\n{text}{}",
        server.name,
        String::from_utf8_lossy(&out.stderr)
    );
    let report = Report::parse(&text).unwrap_or_else(|| panic!("cannot read wrk's report:\n{text}"));
    if report.errors > 0 {
        eprintln!("\n{} at {conns} connections: {} socket errors or non-2xx answers", server.name, report.errors);
    }
    Load {
        req_per_sec: report.req_per_sec,
        p99_us: report.p99_us,
        cpu_us: cpu.as_secs_f64() * 1e6 / report.requests.max(1) as f64,
    }
}

/// The figures of wrk's report this workload uses.
struct Report {
    requests: u64,
    req_per_sec: f64,
    p99_us: f64,
    errors: u64,
}

impl Report {
    /// From wrk's lines `  99%    1.23ms`, `  123 requests in 3.00s, ...`,
    /// `Requests/sec:  41.00`, `  Socket errors: connect 0, read 1, ...` and
    /// `  Non-2xx or 3xx responses: 2`.
    fn parse(text: &str) -> Option<Report> {
        let mut r = Report { requests: 0, req_per_sec: f64::NAN, p99_us: f64::NAN, errors: 0 };
        for line in text.lines().map(str::trim) {
            if let Some(v) = line.strip_prefix("99%") {
                r.p99_us = micros(v.trim())?;
            } else if let Some((n, _)) = line.split_once(" requests in ") {
                r.requests = n.parse().ok()?;
            } else if let Some(v) = line.strip_prefix("Requests/sec:") {
                r.req_per_sec = v.trim().parse().ok()?;
            } else if let Some(v) = line.strip_prefix("Socket errors:") {
                r.errors +=
                    v.split(',').filter_map(|kv| kv.split_whitespace().nth(1)?.parse::<u64>().ok()).sum::<u64>();
            } else if let Some(v) = line.strip_prefix("Non-2xx or 3xx responses:") {
                r.errors += v.trim().parse::<u64>().ok()?;
            }
        }
        (r.requests > 0 && r.req_per_sec.is_finite() && r.p99_us.is_finite()).then_some(r)
    }
}

/// A wrk duration (`870.00us`, `1.23ms`, `2.01s`, `1.02m`) in µs.
fn micros(v: &str) -> Option<f64> {
    let split = v.find(|c: char| c.is_ascii_alphabetic())?;
    let n: f64 = v[..split].parse().ok()?;
    let scale = match &v[split..] {
        "us" => 1.0,
        "ms" => 1e3,
        "s" => 1e6,
        "m" => 60e6,
        _ => return None,
    };
    Some(n * scale)
}

/// The reseau server: examples/http_server.rs built in release, by cargo
/// (which only relinks when something changed). `None` if it cannot build.
fn reseau_binary() -> Option<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new(cargo)
        .args(["build", "--release", "-p", "reseau", "--example", "http_server"])
        .current_dir(&root)
        .env("CARGO_TARGET_DIR", crate::harness::target_dir())
        .output();
    match out {
        Ok(o) if o.status.success() => Some(crate::harness::target_dir().join("release/examples/http_server")),
        Ok(o) => {
            eprintln!("\ncannot build the http_server example:\n{}", String::from_utf8_lossy(&o.stderr));
            None
        }
        Err(e) => {
            eprintln!("\ncannot run cargo to build the http_server example: {e}");
            None
        }
    }
}

/// `--http-hyper ADDR`: hyper 1's HTTP/1 server on a tokio multi-threaded
/// runtime (a worker per core), one task per connection, answering every
/// request with the 13-byte body. Prints `listening on ADDR`, then serves
/// until killed.
pub fn hyper_server(addr: &str) {
    use http_body_util::Full;
    use hyper::body::{Bytes, Incoming};
    use hyper::{Request, Response};
    use hyper_util::rt::{TokioIo, TokioTimer};

    async fn hello(_: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
        let body = Full::new(Bytes::from_static(b"Hello, World!"));
        Ok(Response::builder().header("content-type", "text/plain").body(body).expect("a response"))
    }

    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    rt.block_on(async {
        // The backlog the others use (somaxconn): tokio's `bind` takes 1 024.
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.bind(addr.parse().expect("an address")).expect("bind");
        let listener = socket.listen(4096).expect("listen");
        println!("listening on {}", listener.local_addr().expect("address"));
        loop {
            let stream = match listener.accept().await {
                Ok((s, _)) => s,
                Err(e) => {
                    eprintln!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(60))
                    .serve_connection(TokioIo::new(stream), hyper::service::service_fn(hello))
                    .await;
            });
        }
    });
}

/// The `http` workload.
pub fn run(b: &mut Bench) {
    if !b.wants("http") {
        return;
    }
    if Command::new("wrk").arg("--version").output().is_err() {
        eprintln!("\nwrk not found (apt-get install wrk): the http rows are skipped");
        return;
    }
    let Some(reseau) = reseau_binary() else { return };
    let go = crate::green_io::go_binary();
    if go.is_none() {
        eprintln!("\ngo not found (apt-get install golang-go): the Go http rows are skipped");
    }
    let (rounds, secs) = if b.mode == Mode::Full { (5, 10) } else { (3, 3) };
    for conns in CONNS {
        b.progress(&format!("http {conns} conns: starting the servers"));
        let mut servers = vec![Server::start("reseau http_server", {
            let mut c = Command::new(&reseau);
            c.arg("127.0.0.1:0");
            c
        })];
        servers.push(Server::start("hyper/tokio", {
            let mut c = Command::new(std::env::current_exe().expect("own path"));
            c.args(["--http-hyper", "127.0.0.1:0"]);
            c
        }));
        if let Some(go) = &go {
            let mut c = Command::new(go);
            c.args(["http", "127.0.0.1:0"]);
            servers.push(Server::start("Go net/http", c));
        }
        let k = servers.len();
        let mut runs: Vec<Vec<Load>> = vec![Vec::new(); k];
        for round in 0..rounds {
            b.progress(&format!("http {conns} conns (round {}/{rounds})", round + 1));
            for i in 0..k {
                let j = (i + round) % k;
                runs[j].push(load(&servers[j], conns, secs));
            }
        }
        drop(servers);
        record(b, conns, &runs, &["hyper/tokio", "Go net/http"]);
    }
}

/// The rows: req/s, CPU per request and p99 of reseau (`runs[0]`) against
/// each peer, as medians and the median of the per-round ratios.
fn record(b: &mut Bench, conns: usize, runs: &[Vec<Load>], peers: &[&'static str]) {
    /// A row's name, unit, figure and target.
    type Figure = (&'static str, &'static str, fn(&Load) -> f64, Option<(f64, Better)>);
    let figures: [Figure; 3] = [
        ("req/s", "req/s", |l| l.req_per_sec, Some((1.0, Better::Higher))),
        ("server CPU per request", "us", |l| l.cpu_us, Some((1.0, Better::Lower))),
        ("p99 latency", "us", |l| l.p99_us, None),
    ];
    for (p, peer) in peers.iter().enumerate().take(runs.len() - 1) {
        let theirs_runs = &runs[p + 1];
        for (what, unit, pick, target) in figures {
            let ours: Vec<f64> = runs[0].iter().map(pick).collect();
            let theirs: Vec<f64> = theirs_runs.iter().map(pick).collect();
            let mut ratios: Vec<f64> = ours.iter().zip(&theirs).map(|(a, b)| a / b).collect();
            b.record(Row {
                workload: format!("http {conns} conns, {what} vs {peer}"),
                unit,
                reseau: median(&mut ours.clone()),
                peer_name: peer,
                peer: Some(median(&mut theirs.clone())),
                ratio: Some(median(&mut ratios)),
                target,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wrk_reports() {
        let text = "Running 3s test @ http://127.0.0.1:1/\n  2 threads and 64 connections\n  Latency Distribution\n     50%  \
                    600.00us\n     99%    2.50ms\n  123456 requests in 3.00s, 15.00MB read\n  Socket errors: connect 0, \
                    read 2, write 0, timeout 1\nRequests/sec:  41152.00\nTransfer/sec:      5.00MB\n";
        let r = Report::parse(text).expect("a report");
        assert_eq!((r.requests, r.req_per_sec, r.p99_us, r.errors), (123_456, 41_152.0, 2_500.0, 3));
        assert_eq!(micros("870.00us"), Some(870.0));
        assert_eq!(micros("1.02m"), Some(61.2e6));
        assert!(Report::parse("wrk: connection refused").is_none());
    }
}
