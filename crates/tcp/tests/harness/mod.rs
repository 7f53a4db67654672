//! Helpers for the race, fault and leak tests (each test binary uses a
//! different part): a reusable worker thread, bounded waits, resets, and
//! this process's descriptor, thread and memory counts.
#![allow(dead_code, unused_imports)]

pub use testkit::{Worker, bounded, linger0, settles};
// Counted in `/proc`.
#[cfg(target_os = "linux")]
pub use testkit::{count_threads, rss};
