//! `spawn_blocking` never runs its closure on the green thread's worker,
//! even when no OS thread can be started: the caller's green thread waits
//! for one, and the worker goes on running its other green threads.
//!
//! The child process (this program, started with `child`) caps its address
//! space so no thread stack can be mapped, calls `spawn_blocking` from one
//! green thread, checks that another green thread of the same worker still
//! runs, lifts the cap, and checks where the closure ran. A program of its
//! own (`harness = false`): the cap must not reach a test runner's threads.
//! Linux only: it reads `/proc/self/statm` for the size to cap at.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::time::Duration;

fn main() {
    if !cfg!(target_os = "linux") {
        println!("test spawn_blocking_waits_for_a_thread ... ok (Linux only: skipped by cfg)");
        return;
    }
    if std::env::args().nth(1).as_deref() == Some("child") {
        child();
        return;
    }
    let me = std::env::current_exe().unwrap();
    let mut proc = testkit::child::Proc::spawn(
        "the capped child",
        std::process::Command::new(me)
            .arg("child")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped()),
    );
    let (stdout, stderr, status) = proc.finish();
    assert!(status.success(), "child failed: {status:?}\nstdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.contains("ran on reseau-blocking"), "stdout: {stdout}\nstderr: {stderr}");
    println!("test spawn_blocking_waits_for_a_thread_and_never_runs_on_the_worker ... ok");
}

fn set_address_space_limit(bytes: libc::rlim_t) {
    let lim = libc::rlimit { rlim_cur: bytes, rlim_max: libc::RLIM_INFINITY };
    // SAFETY: setrlimit reads one rlimit we own.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &lim) }, 0);
}

fn child() {
    let pool = green::Pool::builder().workers(1).name("worker").build().unwrap();
    // Warm up everything the green threads below need (stacks, timers).
    pool.spawn(|| green::sleep(Duration::from_millis(1))).join().unwrap();
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().next().unwrap().parse().unwrap();
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
    // Room for the heap to grow a little, not for a thread's stack (8 MiB).
    set_address_space_limit((pages * page + (1 << 20)) as libc::rlim_t);
    assert!(std::thread::Builder::new().spawn(|| ()).is_err(), "the cap lets threads start");

    let others_ran = Arc::new(AtomicBool::new(false));
    let seen = others_ran.clone();
    let blocked = pool.spawn(move || {
        green::spawn_blocking(move || {
            let here = std::thread::current().name().unwrap_or("?").to_string();
            (here, seen.load(SeqCst))
        })
    });
    let flag = others_ran.clone();
    // The same worker keeps running other green threads meanwhile.
    let other = pool.spawn(move || {
        for _ in 0..5 {
            green::sleep(Duration::from_millis(2));
        }
        flag.store(true, SeqCst);
    });
    other.join().unwrap();
    set_address_space_limit(libc::RLIM_INFINITY);
    let (thread, after_others) = blocked.join().unwrap();
    assert_ne!(thread, "worker-0", "the closure ran on the worker");
    assert!(after_others, "the closure ran before the worker's other green thread finished");
    println!("ran on {thread}");
}
