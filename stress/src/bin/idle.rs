//! `make stress-idle`: IDLE_CONNS (default 100 000) connections, each
//! served by a green thread blocked in a read with a 60 s deadline, on a
//! pool of one worker per core. The clients live in child processes (this
//! binary again, `--clients N PORT`), so this process holds one descriptor
//! per connection. Reports RSS per connection and OS threads, then checks
//! that every server green thread is still blocked and that closing the
//! clients ends them all.
//!
//! Needs one descriptor here per connection (`ulimit -Hn`); where the limit
//! is too small, the step says so and is skipped (exit 200). Parked green
//! threads need no memory mapping of their own once their stacks are
//! compacted, so `vm.max_map_count` does not bound it.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

/// Connections per client process: well under its descriptor limit.
const PER_CLIENT: usize = 15_000;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--clients") {
        return clients(args[2].parse().expect("count"), args[3].parse().expect("port"));
    }
    let conns: usize = std::env::var("IDLE_CONNS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let fds = testkit::raise_fd_limit(conns as u64 + 1_000) as usize;
    if fds < conns + 200 {
        println!(
            "SKIPPED: {conns} idle connections need {} descriptors (this process may have {fds}: raise `ulimit -Hn`)",
            conns + 200,
        );
        std::process::exit(200);
    }
    let pool = green::Pool::new(0).expect("pool");
    pool.spawn(|| ()).join().expect("warm-up");
    let listener = tcp::ListenConfig::new().backlog(4096).listen("127.0.0.1:0").expect("listen");
    let port = listener.local_addr().expect("addr").port();
    let blocked = Arc::new(AtomicUsize::new(0));
    let ended = Arc::new(AtomicUsize::new(0));
    let (b, e) = (blocked.clone(), ended.clone());
    pool.spawn(move || {
        while let Ok(conn) = listener.accept() {
            let (b, e) = (b.clone(), e.clone());
            green::spawn(move || {
                conn.set_read_deadline(Some(Instant::now() + Duration::from_secs(60))).expect("deadline");
                b.fetch_add(1, SeqCst);
                let n = (&conn).read(&mut [0u8; 64]);
                assert!(matches!(n, Ok(0)), "an idle read ended with {n:?}, not end of stream");
                e.fetch_add(1, SeqCst);
            });
        }
    });
    let rss_before = testkit::rss();
    let start = Instant::now();
    let mut children = Vec::new();
    let mut left = conns;
    while left > 0 {
        let n = left.min(PER_CLIENT);
        left -= n;
        let me = std::env::current_exe().expect("own path");
        let mut child = Command::new(me)
            .args(["--clients", &n.to_string(), &port.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("client process");
        let mut ready = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut ready).expect("client report");
        assert_eq!(ready.trim(), "connected", "a client process failed");
        children.push(child);
    }
    while blocked.load(SeqCst) < conns {
        assert!(start.elapsed() < Duration::from_secs(50), "only {} of {conns} reads blocked", blocked.load(SeqCst));
        std::thread::sleep(Duration::from_millis(10));
    }
    // Once idle past the pool's threshold, their stacks are compacted: what
    // an idle connection costs from then on.
    let until = Instant::now() + green::DEFAULT_COMPACT_AFTER + Duration::from_secs(20);
    while pool.stats().compacted < conns && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
    let per_conn = testkit::rss().saturating_sub(rss_before) / conns;
    let threads = std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count());
    println!(
        "{conns} idle green connections up in {:.1} s: {per_conn} bytes RSS per connection, {threads} OS threads",
        start.elapsed().as_secs_f64()
    );
    assert_eq!(ended.load(SeqCst), 0, "a blocked read returned early");
    // Closing the clients (their stdin closes; they exit) ends every read.
    for mut c in children {
        drop(c.stdin.take());
        c.wait().expect("client exit");
    }
    while ended.load(SeqCst) < conns {
        assert!(
            start.elapsed() < Duration::from_secs(58),
            "only {} of {conns} reads saw end of stream",
            ended.load(SeqCst)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    println!("PASS: every read blocked until its peer closed, none early");
}

/// A client process: `n` connections, held until stdin closes.
fn clients(n: usize, port: u16) {
    testkit::raise_fd_limit(n as u64 + 1_000);
    let conns: Vec<tcp::Conn> =
        (0..n).map(|_| tcp::connect_addr(([127, 0, 0, 1], port).into()).expect("connect")).collect();
    println!("connected");
    std::io::stdout().flush().expect("flush");
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    drop(conns);
}
