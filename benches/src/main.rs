//! `make bench`: reseau against std networking, side by side in one run.
//!
//! Each workload runs reseau and its peer alternately (A B A B ...), and
//! reports the median of each and the median of the per-round ratios, so
//! drift in the machine's speed cancels out.
//!
//! Linux only: the workloads pin threads to CPUs (`sched_setaffinity`) and
//! read the machine and the process from `/proc`. Elsewhere the binary
//! builds and says so.

#[cfg(target_os = "linux")]
mod async_io;
#[cfg(target_os = "linux")]
mod chart;
#[cfg(target_os = "linux")]
mod concurrent;
#[cfg(target_os = "linux")]
mod green_io;
#[cfg(target_os = "linux")]
mod harness;
#[cfg(target_os = "linux")]
mod http;
#[cfg(target_os = "linux")]
mod reactor;
#[cfg(target_os = "linux")]
mod stacks;
#[cfg(target_os = "linux")]
mod tcp_io;
#[cfg(target_os = "linux")]
mod tls_io;
#[cfg(target_os = "linux")]
mod traffic;

#[cfg(target_os = "linux")]
use harness::{Bench, Mode};

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("reseau-bench runs on Linux only (CPU pinning, /proc)");
    std::process::exit(2);
}

#[cfg(target_os = "linux")]
fn main() {
    let mut mode = Mode::Quick;
    let mut only: Vec<String> = Vec::new();
    let mut args = std::env::args().skip(1);
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("--idle-child") && argv.len() == 4 {
        green_io::idle_child(&argv[2], argv[3].parse().expect("a connection count"));
        return;
    }
    if argv.get(1).map(String::as_str) == Some("--http-hyper") && argv.len() == 3 {
        http::hyper_server(&argv[2]);
        return;
    }
    if argv.get(1).map(String::as_str) == Some("--stack-depth") {
        stacks::depth();
        return;
    }
    if argv.get(1).map(String::as_str) == Some("--handshake-loop") && (5..=6).contains(&argv.len()) {
        let groups = argv.get(5).map(String::as_str);
        tls_io::handshake_loop(&argv[2], &argv[3], argv[4].parse().expect("a handshake count"), groups);
        return;
    }
    if argv.get(1).map(String::as_str) == Some("--echo-loop") && argv.len() == 6 {
        harness::raise_fd_limit();
        let n = |i: usize| argv[i].parse().expect("a count");
        green_io::echo_loop(&argv[2], n(3), n(4), n(5));
        return;
    }
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--full" => mode = Mode::Full,
            "--quick" => mode = Mode::Quick,
            "--only" => only.extend(args.next()),
            "-h" | "--help" => {
                println!("usage: reseau-bench [--quick|--full] [--only WORKLOAD]...");
                println!("       reseau-bench --handshake-loop ours|theirs|theirs-defaults full|resumed N [GROUPS]");
                println!("       reseau-bench --stack-depth");
                println!("       reseau-bench --echo-loop green|tokio|go CONNS MSGS ROUNDS");
                println!(
                    "workloads: timers park-wake rtt bulk churn echo deadlines green green-rtt green-resume idle tls http \
                     unix-rtt tokio-echo"
                );
                return;
            }
            other => {
                eprintln!("unknown argument {other:?} (try --help)");
                std::process::exit(2);
            }
        }
    }
    harness::raise_fd_limit();
    let mut bench = Bench::new(mode, only);
    bench.header();
    reactor::timers(&mut bench);
    reactor::park_wake(&mut bench);
    tcp_io::rtt(&mut bench);
    tcp_io::bulk(&mut bench);
    tcp_io::churn(&mut bench);
    concurrent::run(&mut bench);
    green_io::run(&mut bench);
    stacks::run(&mut bench);
    tls_io::run(&mut bench);
    http::run(&mut bench);
    async_io::run(&mut bench);
    let failed = bench.finish();
    if failed > 0 {
        eprintln!("{failed} target(s) missed");
    }
}
