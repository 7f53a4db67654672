//! `make bench`: reseau against std networking, side by side in one run.
//!
//! Each workload runs reseau and its peer alternately (A B A B ...), and
//! reports the median of each and the median of the per-round ratios, so
//! drift in the machine's speed cancels out.

mod chart;
mod concurrent;
mod green_io;
mod harness;
mod reactor;
mod tcp_io;
mod tls_io;
mod traffic;

use harness::{Bench, Mode};

fn main() {
    let mut mode = Mode::Quick;
    let mut only: Vec<String> = Vec::new();
    let mut args = std::env::args().skip(1);
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("--idle-child") && argv.len() == 4 {
        green_io::idle_child(&argv[2], argv[3].parse().expect("a connection count"));
        return;
    }
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--full" => mode = Mode::Full,
            "--quick" => mode = Mode::Quick,
            "--only" => only.extend(args.next()),
            "-h" | "--help" => {
                println!("usage: reseau-bench [--quick|--full] [--only WORKLOAD]...");
                println!("workloads: timers park-wake rtt bulk churn echo deadlines green green-rtt idle tls");
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
    tls_io::run(&mut bench);
    let failed = bench.finish();
    if failed > 0 {
        eprintln!("{failed} target(s) missed");
    }
}
