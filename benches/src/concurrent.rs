//! Many connections at once: N client/server pairs echoing 64-byte
//! messages, one thread per connection on each side (reseau and std), or
//! one task per connection (tokio's multi-threaded runtime). Also the
//! deadline-heavy variant, where every read first pushes the connection's
//! read deadline forward (reseau) or sets a read timeout (std).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use crate::harness::{Bench, Better, Mode, Row, median};

pub(crate) const MSG: usize = 64;
const STACK: usize = 128 * 1024;

/// What one run measured.
#[derive(Clone, Copy)]
pub(crate) struct Figures {
    pub(crate) msgs_per_sec: f64,
    pub(crate) p99_us: f64,
    /// Process CPU time (user + system) per 1 000 messages while echoing;
    /// NaN where it was not measured.
    pub(crate) cpu_ms_per_1k: f64,
}

/// This process's CPU time so far (all threads, user + system).
pub(crate) fn cpu_time() -> Duration {
    // SAFETY: rusage is plain old data; getrusage fills it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid rusage to write into.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn p99(mut lat: Vec<u32>) -> f64 {
    if lat.is_empty() {
        return f64::NAN;
    }
    lat.sort_unstable();
    f64::from(lat[(lat.len() * 99 / 100).min(lat.len() - 1)])
}

/// One client's timed echoes: each latency, and when the first began and
/// the last ended.
pub(crate) struct Talk {
    pub(crate) lat: Vec<u32>,
    pub(crate) began: Instant,
    pub(crate) ended: Instant,
}

impl Talk {
    pub(crate) fn time(msgs: usize, mut echo: impl FnMut()) -> Talk {
        let mut lat = Vec::with_capacity(msgs);
        let began = Instant::now();
        for _ in 0..msgs {
            let t = Instant::now();
            echo();
            lat.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32);
        }
        Talk { lat, began, ended: Instant::now() }
    }
}

impl Figures {
    /// The clock runs from the first client's first echo to the last
    /// client's last one. It is read by the clients themselves: a
    /// coordinating thread, woken with a thousand others at the start line,
    /// may not run again until long after the echoing has begun.
    pub(crate) fn of(talks: impl IntoIterator<Item = Talk>) -> Figures {
        let mut lat = Vec::new();
        let mut span: Option<(Instant, Instant)> = None;
        for t in talks {
            lat.extend(t.lat);
            span = Some(span.map_or((t.began, t.ended), |(b, e)| (b.min(t.began), e.max(t.ended))));
        }
        let secs = span.map_or(f64::NAN, |(b, e)| (e - b).as_secs_f64());
        Figures { msgs_per_sec: lat.len() as f64 / secs, p99_us: p99(lat), cpu_ms_per_1k: f64::NAN }
    }

    /// The same, with the CPU time spent echoing.
    pub(crate) fn with_cpu(mut self, msgs: usize, cpu: Duration) -> Figures {
        self.cpu_ms_per_1k = cpu.as_secs_f64() * 1e3 / (msgs as f64 / 1e3);
        self
    }
}

/// Client side, one connection: one echo to warm up (it also proves the
/// server has taken the connection, whose final handshake ACK the kernel
/// may have dropped on a full accept queue), then wait at `start`, then
/// `msgs` echoes, each timed.
fn client_loop(mut c: impl Read + Write, start: &Barrier, msgs: usize, deadline: impl Fn()) -> Talk {
    let mut buf = [7u8; MSG];
    c.write_all(&buf).expect("write");
    c.read_exact(&mut buf).expect("read");
    start.wait();
    Talk::time(msgs, || {
        c.write_all(&buf).expect("write");
        deadline();
        c.read_exact(&mut buf).expect("read");
    })
}

pub(crate) fn server_loop(mut c: impl Read + Write, deadline: impl Fn()) {
    let mut buf = [0u8; MSG];
    loop {
        deadline();
        if c.read_exact(&mut buf).is_err() || c.write_all(&buf).is_err() {
            return;
        }
    }
}

fn spawn<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> thread::JoinHandle<T> {
    thread::Builder::new().stack_size(STACK).spawn(f).expect("spawn")
}

/// Run `conns` clients (threads) against `serve`. The clock starts once
/// every connection is up and has echoed once, as it does for the tokio
/// contender: this measures echoing, not connection setup.
fn run_threads<S: Send + 'static, C: Send + 'static>(
    conns: usize,
    accept: impl Fn() -> S + Send + 'static,
    serve: impl Fn(S) + Send + Sync + Copy + 'static,
    dial: impl Fn() -> C + Send + Sync + Copy + 'static,
    talk: impl Fn(C, &Barrier) -> Talk + Send + Sync + Copy + 'static,
) -> Figures {
    let acceptor = spawn(move || {
        let mut servers = Vec::with_capacity(conns);
        for _ in 0..conns {
            let c = accept();
            servers.push(spawn(move || serve(c)));
        }
        servers
    });
    let start_line = Arc::new(Barrier::new(conns + 1));
    let clients: Vec<_> = (0..conns)
        .map(|_| {
            let b = start_line.clone();
            spawn(move || talk(dial(), &b))
        })
        .collect();
    start_line.wait();
    let talks: Vec<Talk> = clients.into_iter().map(|c| c.join().expect("client")).collect();
    for s in acceptor.join().expect("acceptor") {
        s.join().expect("server");
    }
    Figures::of(talks)
}

fn reseau_echo(conns: usize, msgs: usize, deadlines: bool) -> Figures {
    let l = Arc::new(tcp::ListenConfig::new().backlog(4096).listen("127.0.0.1:0").expect("listen"));
    let addr = l.local_addr().expect("addr");
    let push = move |c: &tcp::Conn| {
        if deadlines {
            c.set_read_deadline(Some(Instant::now() + Duration::from_secs(30))).expect("deadline");
        }
    };
    let l2 = l.clone();
    run_threads(
        conns,
        move || l2.accept().expect("accept"),
        move |c: tcp::Conn| server_loop(&c, || push(&c)),
        move || tcp::connect_addr(addr).expect("connect"),
        move |c: tcp::Conn, start: &Barrier| client_loop(&c, start, msgs, || push(&c)),
    )
}

fn std_echo(conns: usize, msgs: usize, timeouts: bool) -> Figures {
    let l = Arc::new(TcpListener::bind("127.0.0.1:0").expect("bind"));
    let addr = l.local_addr().expect("addr");
    let push = move |c: &TcpStream| {
        if timeouts {
            c.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
        }
    };
    let l2 = l.clone();
    run_threads(
        conns,
        move || {
            let (s, _) = l2.accept().expect("accept");
            s.set_nodelay(true).expect("nodelay");
            s
        },
        move |c: TcpStream| server_loop(&c, || push(&c)),
        move || {
            let c = TcpStream::connect(addr).expect("connect");
            c.set_nodelay(true).expect("nodelay");
            c
        },
        move |c: TcpStream, start: &Barrier| client_loop(&c, start, msgs, || push(&c)),
    )
}

pub(crate) fn tokio_echo(rt: &tokio::runtime::Runtime, conns: usize, msgs: usize) -> Figures {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    rt.block_on(async move {
        // A backlog for every client at once: tokio's default (1 024) can
        // overflow while the clients connect together, and the kernel's
        // overflow handling has reset a connection here.
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.bind("127.0.0.1:0".parse().expect("address")).expect("bind");
        let l = socket.listen(4096).expect("listen");
        let addr = l.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            let mut tasks = Vec::with_capacity(conns);
            for _ in 0..conns {
                let (mut s, _) = l.accept().await.expect("accept");
                s.set_nodelay(true).expect("nodelay");
                tasks.push(tokio::spawn(async move {
                    let mut buf = [0u8; MSG];
                    while s.read_exact(&mut buf).await.is_ok() {
                        if s.write_all(&buf).await.is_err() {
                            break;
                        }
                    }
                }));
            }
            for t in tasks {
                t.await.expect("server task");
            }
        });
        let start_line = Arc::new(tokio::sync::Barrier::new(conns + 1));
        let mut clients = Vec::with_capacity(conns);
        for _ in 0..conns {
            let b = start_line.clone();
            clients.push(tokio::spawn(async move {
                let mut buf = [7u8; MSG];
                let ready = async {
                    let mut redials = 0;
                    loop {
                        let attempt = async {
                            let mut s = tokio::net::TcpStream::connect(addr).await?;
                            s.set_nodelay(true)?;
                            s.write_all(&buf).await?;
                            s.read_exact(&mut buf).await?;
                            Ok::<_, std::io::Error>(s)
                        };
                        match attempt.await {
                            Ok(s) => break Ok(s),
                            // Thousands of clients connecting at once overflow
                            // the listener's queues, and the kernel has reset a
                            // connection the server never saw (it accepts a
                            // fixed count, so this one is not among them): dial
                            // again, as any client would.
                            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset && redials < 3 => {
                                redials += 1;
                            }
                            Err(e) => break Err(e),
                        }
                    }
                }
                .await;
                // At the start line even if that failed, so that a failure
                // is reported below rather than leaving the others waiting.
                b.wait().await;
                let mut s = ready.expect("connect and first echo");
                // Talk::time takes a closure; an async body cannot await in
                // one, so the same bookkeeping is spelled out here.
                let mut lat = Vec::with_capacity(msgs);
                let began = Instant::now();
                for _ in 0..msgs {
                    let t = Instant::now();
                    s.write_all(&buf).await.expect("write");
                    s.read_exact(&mut buf).await.expect("read");
                    lat.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32);
                }
                Talk { lat, began, ended: Instant::now() }
            }));
        }
        start_line.wait().await;
        let cpu = cpu_time();
        let mut talks = Vec::with_capacity(conns);
        for c in clients {
            talks.push(c.await.expect("client task"));
        }
        let cpu = cpu_time() - cpu;
        server.await.expect("server");
        Figures::of(talks).with_cpu(conns * msgs, cpu)
    })
}

/// Run each contender once per round, rotating who goes first, and record
/// the throughput (against each peer) and p99 latency rows.
pub(crate) fn contest(
    b: &mut Bench,
    name: &str,
    contenders: &mut [(&'static str, &mut dyn FnMut() -> Figures)],
    targets: &[f64],
) {
    let rounds = b.rounds();
    let k = contenders.len();
    let mut runs: Vec<Vec<Figures>> = vec![Vec::new(); k];
    for round in 0..rounds {
        b.progress(&format!("{name} (round {}/{rounds})", round + 1));
        for i in 0..k {
            let j = (i + round) % k;
            let f = (contenders[j].1)();
            runs[j].push(f);
        }
    }
    let tput = |i: usize| runs[i].iter().map(|f| f.msgs_per_sec).collect::<Vec<_>>();
    let ours = tput(0);
    let ours_p99: Vec<f64> = runs[0].iter().map(|f| f.p99_us).collect();
    for (p, target) in (1..k).zip(targets) {
        let theirs = tput(p);
        let mut ratios: Vec<f64> = ours.iter().zip(&theirs).map(|(a, b)| a / b).collect();
        b.record(Row {
            workload: format!("{name}, msgs/s vs {}", contenders[p].0),
            unit: "msg/s",
            reseau: median(&mut ours.clone()),
            peer_name: contenders[p].0,
            peer: Some(median(&mut theirs.clone())),
            ratio: Some(median(&mut ratios)),
            target: Some((*target, Better::Higher)),
        });
        let ours_cpu: Vec<f64> = runs[0].iter().map(|f| f.cpu_ms_per_1k).collect();
        let theirs_cpu: Vec<f64> = runs[p].iter().map(|f| f.cpu_ms_per_1k).collect();
        if ours_cpu.iter().chain(&theirs_cpu).all(|c| c.is_finite()) {
            let mut ratios: Vec<f64> = ours_cpu.iter().zip(&theirs_cpu).map(|(a, b)| a / b).collect();
            b.record(Row {
                workload: format!("{name}, CPU ms/1k msgs vs {}", contenders[p].0),
                unit: "ms",
                reseau: median(&mut ours_cpu.clone()),
                peer_name: contenders[p].0,
                peer: Some(median(&mut theirs_cpu.clone())),
                ratio: Some(median(&mut ratios)),
                target: None,
            });
        }
        let theirs_p99: Vec<f64> = runs[p].iter().map(|f| f.p99_us).collect();
        let mut ratios: Vec<f64> = ours_p99.iter().zip(&theirs_p99).map(|(a, b)| a / b).collect();
        b.record(Row {
            workload: format!("{name}, p99 latency vs {}", contenders[p].0),
            unit: "us",
            reseau: median(&mut ours_p99.clone()),
            peer_name: contenders[p].0,
            peer: Some(median(&mut theirs_p99.clone())),
            ratio: Some(median(&mut ratios)),
            target: None,
        });
    }
}

pub fn run(b: &mut Bench) {
    let full = b.mode == Mode::Full;
    if b.wants("echo") {
        let tokio_rt = tokio::runtime::Builder::new_multi_thread().enable_io().build().expect("tokio runtime");
        for (conns, msgs) in [(64usize, if full { 2000 } else { 500 }), (1024, if full { 300 } else { 100 })] {
            let mut ours = || reseau_echo(conns, msgs, false);
            let mut std_ = || std_echo(conns, msgs, false);
            let mut tok = || tokio_echo(&tokio_rt, conns, msgs);
            contest(
                b,
                &format!("echo {conns} conns"),
                &mut [("reseau", &mut ours), ("std threads", &mut std_), ("tokio tasks", &mut tok)],
                &[1.0, 1.0],
            );
        }
    }
    if b.wants("deadlines") {
        let msgs = if full { 300 } else { 100 };
        let mut ours = || reseau_echo(1024, msgs, true);
        let mut std_ = || std_echo(1024, msgs, true);
        contest(
            b,
            "deadline per read, 1024 conns",
            &mut [("reseau", &mut ours), ("std set_read_timeout", &mut std_)],
            &[1.0],
        );
    }
}
