//! The soak of `make stress`: many connections (1 000 by default) echoing
//! through reseau on loopback for a long time (`SOAK_SECONDS`, 600 s by
//! default), client and server both reseau, one thread per connection on
//! each side. Every fourth connection is TLS, the rest plain TCP.
//!
//! Each client sends a message of varying size and reads the echo back,
//! moving its read deadline forward before every read (the server moves
//! its own before every read too: an idle timeout); every 100th round trip
//! it first reads with a deadline 1 ms away and nothing on the way, which
//! must time out and leave the connection usable; and every few thousand
//! round trips it closes and dials again, so descriptors, threads and TLS
//! state churn all along.
//!
//! All connections are set up (each with one round trip) before the
//! traffic starts: with traffic already flowing, a thread-per-connection
//! acceptor on 2 cores falls so far behind (it is one runnable thread among
//! hundreds) that clients waiting for their first echo time out.
//!
//! Every 10 s it prints a sample: resident memory, the heap in use (glibc's
//! `mallinfo2`), open descriptors, threads, connections up and served,
//! round trips per second, reconnects, errors. It fails (exit 1) if any
//! echo is wrong or any call fails unexpectedly; if, after the warm-up,
//! resident memory (10 %, at least 32 MiB), the heap in use (10 %, at
//! least 16 MiB), descriptors or threads (2 % of the connections, at least
//! 8: those caught between close and redial) grow beyond their tolerance
//! over the first sample after the warm-up; or if, once everything has
//! stopped, descriptors and threads are not back where they were before
//! the first connection.
//!
//! Options (each also read from the environment variable in brackets):
//! `--seconds N` [SOAK_SECONDS] 600, `--conns N` [SOAK_CONNS] 1000,
//! `--interval N` [SOAK_INTERVAL] 10, `--warmup N` [SOAK_WARMUP]
//! (a fifth of the run, at most 60), `--tls-every N` [SOAK_TLS_EVERY] 4
//! (0: no TLS), `--reconnect-every N` [SOAK_RECONNECT_EVERY] 2000.

#![allow(clippy::result_large_err)]

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// The deadline every read and write gets: far beyond any round trip.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// The server's idle timeout, moved forward before every read.
const IDLE: Duration = Duration::from_secs(30);
/// Largest message.
const MSG_MAX: usize = 4096;
/// Stack of each connection thread.
const STACK: usize = 256 * 1024;

struct Opts {
    seconds: u64,
    conns: usize,
    interval: u64,
    warmup: u64,
    tls_every: usize,
    reconnect_every: u64,
}

fn opts() -> Opts {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let get = |flag: &str, var: &str| -> Option<u64> {
        let from_args = args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).cloned();
        let v = from_args.or_else(|| std::env::var(var).ok().filter(|v| !v.is_empty()))?;
        Some(v.parse().unwrap_or_else(|e| {
            eprintln!("soak: {flag} / {var}: {v:?}: {e}");
            std::process::exit(2)
        }))
    };
    if let Some(a) = args.iter().find(|a| a.starts_with("--") && !KNOWN.contains(&a.as_str())) {
        eprintln!("soak: unknown option {a}; known: {KNOWN:?}");
        std::process::exit(2);
    }
    let seconds = get("--seconds", "SOAK_SECONDS").unwrap_or(600);
    Opts {
        seconds,
        conns: get("--conns", "SOAK_CONNS").unwrap_or(1000) as usize,
        interval: get("--interval", "SOAK_INTERVAL").unwrap_or(10).max(1),
        warmup: get("--warmup", "SOAK_WARMUP").unwrap_or((seconds / 5).min(60)),
        tls_every: get("--tls-every", "SOAK_TLS_EVERY").unwrap_or(4) as usize,
        reconnect_every: get("--reconnect-every", "SOAK_RECONNECT_EVERY").unwrap_or(2000).max(1),
    }
}

const KNOWN: [&str; 6] = ["--seconds", "--conns", "--interval", "--warmup", "--tls-every", "--reconnect-every"];

/// What every thread adds to.
#[derive(Default)]
struct Stats {
    stop: AtomicBool,
    round_trips: AtomicU64,
    reconnects: AtomicU64,
    timeouts: AtomicU64,
    errors: AtomicU64,
    accepted: AtomicU64,
    connected: AtomicUsize,
    clients_running: AtomicUsize,
    handlers_running: AtomicUsize,
    first_errors: Mutex<Vec<String>>,
    /// Clients whose first round trip is done, waiting for the start.
    ready: AtomicUsize,
    /// Opened by main once every connection is up: the traffic starts.
    gate: (Mutex<bool>, Condvar),
}

impl Stats {
    fn error(&self, what: String) {
        self.errors.fetch_add(1, Relaxed);
        let mut v = self.first_errors.lock().unwrap();
        if v.len() < 20 {
            v.push(what);
        }
    }
}

/// One sample of the process.
#[derive(Clone, Copy, Debug)]
struct Sample {
    rss_kib: u64,
    /// Bytes the allocator has handed out and not had back (glibc's
    /// mallinfo2: in-use chunks in every arena, plus mmapped chunks).
    heap_kib: u64,
    fds: usize,
    threads: usize,
}

fn sample() -> Sample {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let fds = std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0);
    // SAFETY: mallinfo2 only reads the allocator's statistics (taking each
    // arena's lock in turn) and returns them by value.
    let m = unsafe { libc::mallinfo2() };
    let heap_kib = ((m.uordblks + m.hblkhd) / 1024) as u64;
    Sample { rss_kib: field("VmRSS:"), heap_kib, fds, threads: field("Threads:") as usize }
}

/// A connection of either kind, as the echo loops use it.
enum Stream {
    Tcp(Box<tcp::Conn>),
    Tls(Box<tls::Conn>),
}

impl Stream {
    fn set_read_deadline(&self, d: Option<Instant>) -> io::Result<()> {
        match self {
            Stream::Tcp(c) => c.set_read_deadline(d),
            Stream::Tls(c) => c.set_read_deadline(d),
        }
    }
    fn set_write_deadline(&self, d: Option<Instant>) -> io::Result<()> {
        match self {
            Stream::Tcp(c) => c.set_write_deadline(d),
            Stream::Tls(c) => c.set_write_deadline(d),
        }
    }
    fn close(&self) -> io::Result<()> {
        match self {
            Stream::Tcp(c) => c.close(),
            Stream::Tls(c) => c.close(),
        }
    }
}

impl Read for &Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(c) => (&**c).read(buf),
            Stream::Tls(c) => (&**c).read(buf),
        }
    }
}

impl Write for &Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(c) => (&**c).write(buf),
            Stream::Tls(c) => (&**c).write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn is_deadline(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::TimedOut && e.get_ref().is_some_and(|i| i.is::<tcp::DeadlineExceeded>())
}

// ---------------------------------------------------------------------------
// Server side

fn accept_loop(l: Arc<tcp::Listener>, tls_cfg: Option<tls::Config>, stats: Arc<Stats>) {
    loop {
        let c = match l.accept() {
            Ok(c) => {
                stats.accepted.fetch_add(1, Relaxed);
                c
            }
            // The listener closed at the end wakes this with Closed.
            Err(_) if !l.is_open() => return,
            Err(e) => {
                stats.error(format!("accept: {e}"));
                thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let s = match &tls_cfg {
            Some(cfg) => match tls::server(c, cfg) {
                Ok(t) => Stream::Tls(Box::new(t)),
                Err(e) => {
                    stats.error(format!("tls::server: {e}"));
                    continue;
                }
            },
            None => Stream::Tcp(Box::new(c)),
        };
        let st = stats.clone();
        st.handlers_running.fetch_add(1, Relaxed);
        let spawned = thread::Builder::new().name("serve".into()).stack_size(STACK).spawn(move || {
            handle(s, &st);
            st.handlers_running.fetch_sub(1, Relaxed);
        });
        if let Err(e) = spawned {
            stats.handlers_running.fetch_sub(1, Relaxed);
            stats.error(format!("spawn a handler: {e}"));
        }
    }
}

/// Echo until the client closes; the read deadline moves before every read.
fn handle(s: Stream, stats: &Stats) {
    let mut buf = vec![0u8; MSG_MAX];
    loop {
        let now = Instant::now();
        if let Err(e) = s.set_read_deadline(Some(now + IDLE)).and_then(|_| s.set_write_deadline(Some(now + IO_TIMEOUT)))
        {
            stats.error(format!("server: set deadlines: {e}"));
            break;
        }
        match (&s).read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if let Err(e) = (&s).write_all(&buf[..n]) {
                    stats.error(format!("server: write: {e}"));
                    break;
                }
            }
            Err(e) => {
                stats.error(format!("server: read: {e}"));
                break;
            }
        }
    }
    let _ = s.close();
}

// ---------------------------------------------------------------------------
// Client side

fn dial(addr: SocketAddr, tls_cfg: Option<&tls::Config>) -> Result<Stream, String> {
    let c = tcp::Dialer::new().timeout(IO_TIMEOUT).connect_addr(addr).map_err(|e| format!("dial: {e}"))?;
    match tls_cfg {
        None => Ok(Stream::Tcp(Box::new(c))),
        Some(cfg) => {
            let t = tls::client(c, cfg).map_err(|e| format!("tls::client: {e}"))?;
            t.handshake().map_err(|e| format!("handshake: {e}"))?;
            Ok(Stream::Tls(Box::new(t)))
        }
    }
}

/// The message of round trip `seq` on connection `id`: its size and bytes
/// vary with both.
fn message(id: usize, seq: u64, out: &mut Vec<u8>) {
    let mut x = (id as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ seq.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 31;
    let len = 1 + (x as usize % MSG_MAX);
    out.clear();
    out.extend((0..len).map(|i| (x as usize).wrapping_add(i * 131) as u8));
}

fn client(id: usize, addr: SocketAddr, tls_cfg: Option<tls::Config>, reconnect_every: u64, stats: &Stats) {
    let mut msg = Vec::with_capacity(MSG_MAX);
    let mut back = vec![0u8; MSG_MAX];
    let mut seq = 0u64;
    // Stagger the reconnects so they do not all fall at once.
    let mut until_reconnect = reconnect_every / 2 + (id as u64 * 7919) % reconnect_every;
    'connections: while !stats.stop.load(Relaxed) {
        let s = match dial(addr, tls_cfg.as_ref()) {
            Ok(s) => s,
            Err(e) => {
                stats.error(format!("client {id}: {e}"));
                thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        stats.connected.fetch_add(1, Relaxed);
        while !stats.stop.load(Relaxed) {
            seq += 1;
            if seq % 100 == 0 {
                // Nothing is on the way: a read 1 ms from its deadline must
                // time out, and the connection must stay usable.
                let _ = s.set_read_deadline(Some(Instant::now() + Duration::from_millis(1)));
                match (&s).read(&mut back) {
                    Err(e) if is_deadline(&e) => {
                        stats.timeouts.fetch_add(1, Relaxed);
                    }
                    other => {
                        stats.error(format!("client {id}: a read with nothing due returned {other:?}"));
                        break;
                    }
                }
            }
            message(id, seq, &mut msg);
            let now = Instant::now();
            if let Err(e) = s.set_write_deadline(Some(now + IO_TIMEOUT)) {
                stats.error(format!("client {id}: set_write_deadline: {e}"));
                break;
            }
            if let Err(e) = (&s).write_all(&msg) {
                stats.error(format!("client {id}: write: {e}"));
                break;
            }
            let mut got = 0;
            while got < msg.len() {
                // The read deadline moves forward on every read.
                if let Err(e) = s.set_read_deadline(Some(Instant::now() + IO_TIMEOUT)) {
                    stats.error(format!("client {id}: set_read_deadline: {e}"));
                    break 'connections;
                }
                match (&s).read(&mut back[got..msg.len()]) {
                    Ok(0) => {
                        stats.error(format!("client {id}: end of stream after {got} of {} bytes", msg.len()));
                        break;
                    }
                    Ok(n) => got += n,
                    Err(e) => {
                        stats.error(format!("client {id}: read: {e}"));
                        break;
                    }
                }
            }
            if got < msg.len() {
                break;
            }
            if back[..got] != msg[..] {
                stats.error(format!("client {id}: round trip {seq}: the echo differs"));
                break;
            }
            stats.round_trips.fetch_add(1, Relaxed);
            if seq == 1 {
                // Ramp-up: every connection is up and served before the
                // traffic starts, so no client waits behind an acceptor
                // starved by the others' traffic.
                stats.ready.fetch_add(1, Relaxed);
                let (open, cv) = &stats.gate;
                let mut open = open.lock().unwrap();
                while !*open {
                    open = cv.wait(open).unwrap();
                }
            }
            until_reconnect -= 1;
            if until_reconnect == 0 {
                until_reconnect = reconnect_every;
                stats.reconnects.fetch_add(1, Relaxed);
                break;
            }
        }
        stats.connected.fetch_sub(1, Relaxed);
        let _ = s.close();
    }
}

// ---------------------------------------------------------------------------

fn main() {
    let o = opts();
    let stats = Arc::new(Stats::default());
    // The tests' PKI, made with the openssl command line.
    let certs = testkit::certs::pki();
    let server_cfg = tls::Config::builder()
        .cert_file(certs.path("server.pem"))
        .key_file(certs.path("server.key"))
        .handshake_timeout(IO_TIMEOUT)
        .build()
        .expect("server config");
    let client_cfg = tls::Config::builder()
        .ca_file(certs.path("ca.pem"))
        .server_name("localhost")
        .handshake_timeout(IO_TIMEOUT)
        .build()
        .expect("client config");
    let bind = |what: &str| {
        let l = tcp::ListenConfig::new().backlog(4096).listen("127.0.0.1:0").unwrap_or_else(|e| {
            eprintln!("soak: listen ({what}): {e}");
            std::process::exit(2)
        });
        Arc::new(l)
    };
    let tcp_l = bind("tcp");
    let tls_l = bind("tls");
    let tcp_addr = tcp_l.local_addr().unwrap();
    let tls_addr = tls_l.local_addr().unwrap();
    let before = sample();
    let tls_conns = if o.tls_every == 0 { 0 } else { o.conns.div_ceil(o.tls_every) };
    println!(
        "soak: {} connections ({} TLS, {} TCP) on loopback for {} s, samples every {} s, warm-up {} s, \
         reconnect every {} round trips; {}",
        o.conns,
        tls_conns,
        o.conns - tls_conns,
        o.seconds,
        o.interval,
        o.warmup,
        o.reconnect_every,
        tls::openssl_version()
    );
    println!("before: rss {} KiB, {} fds, {} threads", before.rss_kib, before.fds, before.threads);

    let mut acceptors = Vec::new();
    for (name, l, cfg) in [("accept-tcp", tcp_l.clone(), None), ("accept-tls", tls_l.clone(), Some(server_cfg))] {
        let st = stats.clone();
        let spawned = thread::Builder::new().name(name.into()).spawn(move || accept_loop(l, cfg, st));
        acceptors.push(spawned.expect("spawn an acceptor"));
    }
    let ramp = Instant::now();
    for id in 0..o.conns {
        let is_tls = o.tls_every != 0 && id % o.tls_every == 0;
        let (addr, cfg) = if is_tls { (tls_addr, Some(client_cfg.clone())) } else { (tcp_addr, None) };
        let st = stats.clone();
        let every = o.reconnect_every;
        st.clients_running.fetch_add(1, Relaxed);
        let spawned = thread::Builder::new().name("client".into()).stack_size(STACK).spawn(move || {
            client(id, addr, cfg, every, &st);
            st.clients_running.fetch_sub(1, Relaxed);
        });
        if let Err(e) = spawned {
            stats.clients_running.fetch_sub(1, Relaxed);
            stats.error(format!("spawn client {id}: {e}"));
        }
    }
    // Ramp-up: every client has connected and made one round trip.
    let ramp_by = ramp + Duration::from_secs(120);
    while stats.ready.load(Relaxed) < o.conns && Instant::now() < ramp_by && stats.errors.load(Relaxed) == 0 {
        thread::sleep(Duration::from_millis(20));
    }
    let ready = stats.ready.load(Relaxed);
    println!("ramp-up: {ready} of {} connections up and served in {:.1} s", o.conns, ramp.elapsed().as_secs_f64());
    let started = Instant::now();
    {
        let (open, cv) = &stats.gate;
        *open.lock().unwrap() = true;
        cv.notify_all();
    }
    if ready < o.conns {
        stats.error(format!("ramp-up: only {ready} of {} connections came up", o.conns));
    }

    println!();
    println!(
        "| t (s) | RSS (MiB) | heap in use (MiB) | fds | threads | connected | served | round trips/s | reconnects | \
         timeouts (expected) | errors |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let end = started + Duration::from_secs(o.seconds);
    let mut next = started + Duration::from_secs(o.interval);
    let mut last_rt = 0;
    let mut last_at = started;
    let mut samples: Vec<(u64, Sample)> = Vec::new();
    while next <= end {
        thread::sleep(next.saturating_duration_since(Instant::now()));
        let s = sample();
        let now = Instant::now();
        let rt = stats.round_trips.load(Relaxed);
        let t = now.duration_since(started).as_secs();
        println!(
            "| {t} | {:.1} | {:.1} | {} | {} | {} | {} | {:.0} | {} | {} | {} |",
            s.rss_kib as f64 / 1024.0,
            s.heap_kib as f64 / 1024.0,
            s.fds,
            s.threads,
            stats.connected.load(Relaxed),
            stats.handlers_running.load(Relaxed),
            (rt - last_rt) as f64 / now.duration_since(last_at).as_secs_f64(),
            stats.reconnects.load(Relaxed),
            stats.timeouts.load(Relaxed),
            stats.errors.load(Relaxed),
        );
        last_rt = rt;
        last_at = now;
        samples.push((t, s));
        next += Duration::from_secs(o.interval);
    }

    // Stop: every client finishes its round trip and closes; every handler
    // then reads the end of its stream; the listeners close last.
    stats.stop.store(true, Relaxed);
    let stop_by = Instant::now() + Duration::from_secs(60);
    while (stats.clients_running.load(Relaxed) > 0 || stats.handlers_running.load(Relaxed) > 0)
        && Instant::now() < stop_by
    {
        thread::sleep(Duration::from_millis(50));
    }
    let stuck = (stats.clients_running.load(Relaxed), stats.handlers_running.load(Relaxed));
    let _ = tcp_l.close();
    let _ = tls_l.close();
    if stuck == (0, 0) {
        for a in acceptors {
            let _ = a.join();
        }
    }
    drop((tcp_l, tls_l));
    // Exited threads may take a moment to leave /proc.
    let mut after = sample();
    let settle_by = Instant::now() + Duration::from_secs(10);
    while (after.fds + 2 > before.fds || after.threads > before.threads) && Instant::now() < settle_by {
        thread::sleep(Duration::from_millis(100));
        after = sample();
    }

    // Verdict.
    let mut failures = Vec::new();
    let errors = stats.errors.load(Relaxed);
    if errors > 0 {
        failures.push(format!("{errors} errors; the first: {:#?}", stats.first_errors.lock().unwrap()));
    }
    if stuck != (0, 0) {
        failures.push(format!("{} clients and {} handlers still running 60 s after the stop", stuck.0, stuck.1));
    }
    let rts = stats.round_trips.load(Relaxed);
    if rts == 0 {
        failures.push("no round trip completed".into());
    }
    let base = samples.iter().find(|(t, _)| *t >= o.warmup).or(samples.last()).map(|&(t, s)| (t, s));
    if let Some((t0, b)) = base {
        // Tolerances: memory, allocator caches and the like; descriptors
        // and threads, the connections caught between close and redial
        // (each holds up to two of each while it reconnects).
        let rss_tol = (b.rss_kib / 10).max(32 * 1024);
        let heap_tol = (b.heap_kib / 10).max(16 * 1024);
        let churn = (o.conns / 50).max(8);
        let peak = |f: fn(&Sample) -> u64| samples.iter().filter(|(t, _)| *t >= t0).map(|(_, s)| f(s)).max().unwrap();
        let (rss, heap) = (peak(|s| s.rss_kib), peak(|s| s.heap_kib));
        let (fds, threads) = (peak(|s| s.fds as u64), peak(|s| s.threads as u64));
        let mib = |kib: u64| kib as f64 / 1024.0;
        println!(
            "\nafter the warm-up (from t = {t0} s), first sample -> peak (tolerance):\n  \
             RSS {:.1} -> {:.1} MiB (+{:.0}), heap in use {:.1} -> {:.1} MiB (+{:.0}), \
             fds {} -> {fds} (+{churn}), threads {} -> {threads} (+{churn})",
            mib(b.rss_kib),
            mib(rss),
            mib(rss_tol),
            mib(b.heap_kib),
            mib(heap),
            mib(heap_tol),
            b.fds,
            b.threads
        );
        if rss > b.rss_kib + rss_tol {
            failures.push(format!("resident memory grew from {} to {rss} KiB after the warm-up", b.rss_kib));
        }
        if heap > b.heap_kib + heap_tol {
            failures.push(format!("heap in use grew from {} to {heap} KiB after the warm-up", b.heap_kib));
        }
        if fds > (b.fds + churn) as u64 {
            failures.push(format!("descriptors grew from {} to {fds} after the warm-up", b.fds));
        }
        if threads > (b.threads + churn) as u64 {
            failures.push(format!("threads grew from {} to {threads} after the warm-up", b.threads));
        }
    } else {
        failures.push("no sample taken: the run is shorter than one interval".into());
    }
    println!(
        "after the stop: rss {} KiB, {} fds (before: {}, of which 2 listeners now closed), {} threads (before: {})",
        after.rss_kib, after.fds, before.fds, after.threads, before.threads
    );
    if after.fds + 2 > before.fds {
        failures.push(format!("{} descriptors left after the stop, {} expected", after.fds, before.fds - 2));
    }
    if after.threads > before.threads {
        failures.push(format!("{} threads left after the stop, {} expected", after.threads, before.threads));
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "totals: {rts} round trips ({:.0}/s), {} reconnects, {} expected timeouts, {errors} errors",
        rts as f64 / secs,
        stats.reconnects.load(Relaxed),
        stats.timeouts.load(Relaxed)
    );
    if failures.is_empty() {
        println!("soak: PASS");
    } else {
        for f in &failures {
            println!("soak: FAIL: {f}");
        }
        std::process::exit(1);
    }
}
