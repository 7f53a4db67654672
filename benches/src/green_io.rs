//! Green threads against tokio tasks and Go goroutines: echo at 64, 1 024
//! and about 10 000 connections, one-connection round trips, and what an
//! idle connection costs (resident memory, OS threads).
//!
//! Go comes from `benches/go/echo.go`, built with the `go` found on the
//! PATH (Debian's golang-go); without it the Go rows say they were skipped.
//!
//! About 10 000: both ends of every connection live in one process, two
//! descriptors each, and this project's machines cap descriptors at 20 000
//! (a hard limit not even root may raise there). 9 900 connections fit
//! beside the process's own descriptors; every contender runs 9 900.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

use iopoll::sync::{Condvar, Mutex};

use crate::concurrent::{self, Figures, MSG, Talk, cpu_time};
use crate::harness::{Bench, Better, Mode, Row, median};

/// "About 10 000" connections: see the module documentation.
pub const MANY: usize = 9_900;

/// A start line for green threads: everyone arrives, then the coordinator
/// (an OS thread) opens it.
#[derive(Default)]
struct Gate {
    state: Mutex<(usize, bool)>,
    changed: Condvar,
}

impl Gate {
    fn arrive_and_wait(&self) {
        let mut s = self.state.lock();
        s.0 += 1;
        self.changed.notify_all();
        while !s.1 {
            self.changed.wait(&mut s);
        }
    }

    fn wait_for(&self, n: usize) {
        let mut s = self.state.lock();
        while s.0 < n {
            self.changed.wait(&mut s);
        }
    }

    fn open(&self) {
        self.state.lock().1 = true;
        self.changed.notify_all();
    }
}

fn green_echo(pool: &green::Pool, conns: usize, msgs: usize) -> Figures {
    let l = Arc::new(tcp::ListenConfig::new().backlog(4096).listen("127.0.0.1:0").expect("listen"));
    let addr = l.local_addr().expect("addr");
    let l2 = l.clone();
    let server = pool.spawn(move || {
        let handlers: Vec<_> = (0..conns)
            .map(|_| {
                let c = l2.accept().expect("accept");
                green::spawn(move || concurrent::server_loop(&c, || {}))
            })
            .collect();
        for h in handlers {
            h.join().expect("server");
        }
    });
    let gate = Arc::new(Gate::default());
    let clients: Vec<_> = (0..conns)
        .map(|_| {
            let gate = gate.clone();
            pool.spawn(move || {
                let mut c = tcp::connect_addr(addr).expect("connect");
                let mut buf = [7u8; MSG];
                c.write_all(&buf).expect("write");
                c.read_exact(&mut buf).expect("read");
                gate.arrive_and_wait();
                Talk::time(msgs, || {
                    c.write_all(&buf).expect("write");
                    c.read_exact(&mut buf).expect("read");
                })
            })
        })
        .collect();
    gate.wait_for(conns);
    let cpu = cpu_time();
    gate.open();
    let talks: Vec<Talk> = clients.into_iter().map(|c| c.join().expect("client")).collect();
    let cpu = cpu_time() - cpu;
    server.join().expect("server");
    Figures::of(talks).with_cpu(conns * msgs, cpu)
}

/// `--echo-loop green|tokio|go CONNS MSGS ROUNDS`: one contender's echo
/// alone, round after round, each round's figures on a line: a steady
/// load for `perf`, and a quick comparison in separate processes.
pub fn echo_loop(kind: &str, conns: usize, msgs: usize, rounds: usize) {
    let pool = (kind == "green").then(|| green::Pool::new(0).expect("green pool"));
    let rt = (kind == "tokio")
        .then(|| tokio::runtime::Builder::new_multi_thread().enable_io().build().expect("tokio runtime"));
    for _ in 0..rounds {
        let f = match kind {
            "green" => green_echo(pool.as_ref().expect("pool"), conns, msgs),
            "tokio" => concurrent::tokio_echo(rt.as_ref().expect("runtime"), conns, msgs),
            "go" => go_echo(conns, msgs),
            other => panic!("green, tokio or go, not {other:?}"),
        };
        println!(
            "{kind} {conns}: {:.0} msg/s, p99 {:.0} µs, {:.1} ms CPU per 1k msgs",
            f.msgs_per_sec, f.p99_us, f.cpu_ms_per_1k
        );
    }
}

/// The Go contender's binary, built once per run; `None` without `go`.
pub(crate) fn go_binary() -> Option<PathBuf> {
    static BIN: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("go");
        let out = crate::harness::target_dir().join("bench").join("go-echo");
        let built = Command::new("go").arg("build").arg("-o").arg(&out).arg(".").current_dir(&src).status();
        match built {
            Ok(s) if s.success() => Some(out),
            Ok(s) => {
                eprintln!("\ngo build failed ({s}): Go rows skipped");
                None
            }
            Err(_) => None,
        }
    })
    .clone()
}

fn go_figures(args: &[String]) -> Vec<f64> {
    let bin = go_binary().expect("go binary");
    let out = Command::new(bin).args(args).output().expect("run the Go contender");
    assert!(out.status.success(), "Go contender failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).split_whitespace().map(|w| w.parse().expect("a number")).collect()
}

fn go_echo(conns: usize, msgs: usize) -> Figures {
    let f = go_figures(&["echo".into(), conns.to_string(), msgs.to_string()]);
    Figures { msgs_per_sec: f[0], p99_us: f[1], cpu_ms_per_1k: f[2] }
}

/// One connection, 1-byte ping-pong: mean round trip and CPU per round
/// trip, both in µs.
fn green_rtt(pool: &green::Pool, n: usize) -> (f64, f64) {
    let l = tcp::listen("127.0.0.1:0").expect("listen");
    let addr = l.local_addr().expect("addr");
    let server = pool.spawn(move || {
        let mut c = l.accept().expect("accept");
        let mut b = [0u8; 1];
        while let Ok(1) = c.read(&mut b) {
            c.write_all(&b).expect("write");
        }
    });
    let client = pool.spawn(move || {
        let mut c = tcp::connect_addr(addr).expect("connect");
        let mut b = [1u8; 1];
        for _ in 0..100 {
            c.write_all(&b).expect("write");
            c.read_exact(&mut b).expect("read");
        }
        let (t, cpu) = (Instant::now(), cpu_time());
        for _ in 0..n {
            c.write_all(&b).expect("write");
            c.read_exact(&mut b).expect("read");
        }
        (t.elapsed(), cpu_time() - cpu)
    });
    let (wall, cpu) = client.join().expect("client");
    server.join().expect("server");
    (wall.as_secs_f64() * 1e6 / n as f64, cpu.as_secs_f64() * 1e6 / n as f64)
}

fn tokio_rtt(rt: &tokio::runtime::Runtime, n: usize) -> (f64, f64) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    rt.block_on(async move {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.expect("accept");
            s.set_nodelay(true).expect("nodelay");
            let mut b = [0u8; 1];
            while let Ok(1) = s.read(&mut b).await {
                s.write_all(&b).await.expect("write");
            }
        });
        let client = tokio::spawn(async move {
            let mut c = tokio::net::TcpStream::connect(addr).await.expect("connect");
            c.set_nodelay(true).expect("nodelay");
            let mut b = [1u8; 1];
            for _ in 0..100 {
                c.write_all(&b).await.expect("write");
                c.read_exact(&mut b).await.expect("read");
            }
            let (t, cpu) = (Instant::now(), cpu_time());
            for _ in 0..n {
                c.write_all(&b).await.expect("write");
                c.read_exact(&mut b).await.expect("read");
            }
            (t.elapsed(), cpu_time() - cpu)
        });
        let (wall, cpu) = client.await.expect("client");
        server.await.expect("server");
        (wall.as_secs_f64() * 1e6 / n as f64, cpu.as_secs_f64() * 1e6 / n as f64)
    })
}

/// Measured in a fresh child process (`reseau-bench --idle-child KIND N`)
/// so that nothing earlier rows allocated blurs the figure.
fn idle(kind: &str, conns: usize) -> (f64, f64) {
    let f = if kind == "go" {
        go_figures(&["idle".into(), conns.to_string()])
    } else {
        let me = std::env::current_exe().expect("own path");
        let out = Command::new(me).args(["--idle-child", kind, &conns.to_string()]).output().expect("idle child");
        assert!(out.status.success(), "idle child failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).split_whitespace().map(|w| w.parse().expect("a number")).collect()
    };
    (f[0], f[1])
}

/// `--idle-child green|tokio N`: hold N connections whose server ends wait
/// in a read with a 60 s deadline, then print the resident memory gained
/// per connection and the process's OS threads.
pub fn idle_child(kind: &str, conns: usize) {
    crate::harness::raise_fd_limit();
    let blocked = Arc::new(AtomicUsize::new(0));
    let mut green_pool: Option<&'static green::Pool> = None;
    let (before, clients) = match kind {
        "green" => {
            let pool: &'static green::Pool = Box::leak(Box::new(green::Pool::new(0).expect("pool")));
            green_pool = Some(pool);
            pool.spawn(|| ()).join().expect("warm-up");
            let l = tcp::ListenConfig::new().backlog(4096).listen("127.0.0.1:0").expect("listen");
            let addr = l.local_addr().expect("addr");
            let b = blocked.clone();
            pool.spawn(move || {
                while let Ok(c) = l.accept() {
                    let b = b.clone();
                    green::spawn(move || {
                        c.set_read_deadline(Some(Instant::now() + Duration::from_secs(60))).expect("deadline");
                        b.fetch_add(1, SeqCst);
                        let _ = (&c).read(&mut [0; MSG]);
                    });
                }
            });
            let before = testkit::rss();
            let clients: Vec<tcp::Conn> = (0..conns).map(|_| tcp::connect_addr(addr).expect("connect")).collect();
            (before, Clients::Reseau(clients))
        }
        "tokio" => {
            use tokio::io::AsyncReadExt;
            let rt = Box::leak(Box::new(tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("rt")));
            let l = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
            let addr = l.local_addr().expect("addr");
            let b = blocked.clone();
            rt.spawn(async move {
                while let Ok((mut s, _)) = l.accept().await {
                    let b = b.clone();
                    tokio::spawn(async move {
                        b.fetch_add(1, SeqCst);
                        let mut buf = [0u8; MSG];
                        let _ = tokio::time::timeout(Duration::from_secs(60), s.read(&mut buf)).await;
                    });
                }
            });
            let before = testkit::rss();
            let clients: Vec<std::net::TcpStream> =
                (0..conns).map(|_| std::net::TcpStream::connect(addr).expect("connect")).collect();
            (before, Clients::Std(clients))
        }
        other => panic!("unknown idle kind {other}"),
    };
    while blocked.load(SeqCst) < conns {
        std::thread::sleep(Duration::from_millis(1));
    }
    // As the Go contender does: let every reader reach its read.
    std::thread::sleep(Duration::from_millis(200));
    // Green threads idle past the pool's threshold have compacted stacks:
    // what an idle connection costs from then on.
    if let Some(pool) = green_pool {
        let until = Instant::now() + green::DEFAULT_COMPACT_AFTER + Duration::from_secs(10);
        while pool.stats().compacted < conns && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let per_conn = (testkit::rss().saturating_sub(before)) / conns;
    let threads = testkit::count_threads();
    println!("{per_conn} {threads}");
    drop(clients);
    std::process::exit(0);
}

enum Clients {
    Reseau(#[allow(dead_code)] Vec<tcp::Conn>),
    Std(#[allow(dead_code)] Vec<std::net::TcpStream>),
}

pub fn run(b: &mut Bench) {
    let full = b.mode == Mode::Full;
    if !["green", "green-rtt", "idle"].iter().any(|w| b.wants(w)) {
        return;
    }
    let pool = green::Pool::new(0).expect("green pool");
    let tokio_rt = tokio::runtime::Builder::new_multi_thread().enable_io().build().expect("tokio runtime");
    let go = go_binary().is_some();
    if !go {
        eprintln!("\ngo not found (apt-get install golang-go): the Go rows are skipped");
    }
    if b.wants("green") {
        echo(b, &pool, &tokio_rt, go, full);
    }
    if b.wants("green-rtt") {
        rtt(b, &pool, &tokio_rt, full);
    }
    if b.wants("idle") {
        idle_rows(b, go);
    }
}

fn echo(b: &mut Bench, pool: &green::Pool, tokio_rt: &tokio::runtime::Runtime, go: bool, full: bool) {
    let sizes = [
        (64usize, if full { 2000 } else { 500 }),
        (1024, if full { 300 } else { 100 }),
        (MANY, if full { 50 } else { 20 }),
    ];
    for (conns, msgs) in sizes {
        let mut ours = || green_echo(pool, conns, msgs);
        let mut tok = || concurrent::tokio_echo(tokio_rt, conns, msgs);
        let mut gor = || go_echo(conns, msgs);
        let name = format!("green echo {conns}");
        if go {
            concurrent::contest(
                b,
                &name,
                &mut [("green threads", &mut ours), ("tokio tasks", &mut tok), ("Go goroutines", &mut gor)],
                &[1.0, 1.0],
            );
        } else {
            concurrent::contest(b, &name, &mut [("green threads", &mut ours), ("tokio tasks", &mut tok)], &[1.0]);
        }
    }
}

/// One connection's round trip: the latency of a green wait.
fn rtt(b: &mut Bench, pool: &green::Pool, tokio_rt: &tokio::runtime::Runtime, full: bool) {
    let n = if full { 50_000 } else { 20_000 };
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for round in 0..b.rounds() {
        b.progress(&format!("green 1-conn RTT (round {}/{})", round + 1, b.rounds()));
        if round % 2 == 0 {
            ours.push(green_rtt(pool, n));
            theirs.push(tokio_rtt(tokio_rt, n));
        } else {
            theirs.push(tokio_rtt(tokio_rt, n));
            ours.push(green_rtt(pool, n));
        }
    }
    for (what, pick, target) in [("RTT", 0, Some((1.0, Better::Lower))), ("CPU per round trip", 1, None)] {
        let get = |v: &[(f64, f64)]| v.iter().map(|p| if pick == 0 { p.0 } else { p.1 }).collect::<Vec<_>>();
        let (a, t) = (get(&ours), get(&theirs));
        let mut ratios: Vec<f64> = a.iter().zip(&t).map(|(x, y)| x / y).collect();
        b.record(Row {
            workload: format!("green 1-conn {what}"),
            unit: "us",
            reseau: median(&mut a.clone()),
            peer_name: "tokio tasks",
            peer: Some(median(&mut t.clone())),
            ratio: Some(median(&mut ratios)),
            target,
        });
    }
}

/// Idle connections: memory and threads, once each (they hardly vary).
fn idle_rows(b: &mut Bench, go: bool) {
    b.progress("idle connections");
    let green = idle("green", MANY);
    let peers: Vec<(&'static str, (f64, f64))> = if go {
        vec![("tokio tasks", idle("tokio", MANY)), ("Go goroutines", idle("go", MANY))]
    } else {
        vec![("tokio tasks", idle("tokio", MANY))]
    };
    for (peer, figures) in peers {
        let target = (peer == "Go goroutines").then_some((1.0, Better::Lower));
        b.record(Row {
            workload: format!("idle {MANY}, RSS per conn"),
            unit: "bytes",
            reseau: green.0,
            peer_name: peer,
            peer: Some(figures.0),
            ratio: Some(green.0 / figures.0),
            target,
        });
        b.record(Row {
            workload: format!("idle {MANY}, OS threads"),
            unit: "threads",
            reseau: green.1,
            peer_name: peer,
            peer: Some(figures.1),
            ratio: Some(green.1 / figures.1),
            target: None,
        });
    }
}
