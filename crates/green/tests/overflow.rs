//! A green thread that overflows its stack ends the process with a message
//! naming the overflow, as std's threads do, never a bare SIGSEGV and
//! never corrupted memory. The overflow runs in a child process (this same
//! program, started with `child`); the parent checks how it died.
//!
//! A test of its own with `harness = false`: the child must be a plain
//! program, not a test runner.

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

fn main() {
    if std::env::args().nth(1).as_deref() == Some("child") {
        overflow();
    }
    let me = std::env::current_exe().unwrap();
    let mut proc = testkit::child::Proc::spawn(
        "the overflowing child",
        Command::new(me).arg("child").stdout(Stdio::piped()).stderr(Stdio::piped()),
    );
    let (_, stderr, status) = proc.finish();
    assert!(stderr.contains("green thread has overflowed its stack"), "no overflow message; stderr: {stderr}");
    assert_eq!(status.signal(), Some(libc::SIGABRT), "died by {status:?}; stderr: {stderr}");
    println!("test green_stack_overflow_ends_the_process_with_a_message ... ok");
}

/// Recurse with a frame that really uses its bytes until the guard page.
#[inline(never)]
#[allow(unconditional_recursion)]
fn deeper(n: u64) -> u64 {
    let frame = std::hint::black_box([n as u8; 1024]);
    deeper(n + 1) + u64::from(frame[(n % 1024) as usize])
}

fn overflow() -> ! {
    let pool = green::Pool::builder().workers(1).stack_size(64 * 1024).build().unwrap();
    let _ = pool.spawn(|| deeper(0)).join();
    unreachable!("the overflow ends the process");
}
