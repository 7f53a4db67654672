//! 100 000 green threads spawned and finished leave descriptors, OS threads
//! and resident memory where they were. In a file of its own so no other
//! test's threads or descriptors are counted.
//!
//! Linux only: descriptors, threads and memory are counted in `/proc`.
#![cfg(target_os = "linux")]

use green::Pool;

#[test]
fn a_hundred_thousand_green_threads_leave_nothing_behind() {
    let pool = Pool::new(2).unwrap();
    // Warm up: workers' stack caches, reactors, thread-locals.
    run(&pool, 2_000);
    let (fds, threads, rss) = (testkit::count_fds(), testkit::count_threads(), testkit::rss());
    run(&pool, 100_000);
    let (fds_after, threads_after, rss_after) = (testkit::count_fds(), testkit::count_threads(), testkit::rss());
    assert_eq!(fds_after, fds, "descriptors");
    assert_eq!(threads_after, threads, "threads");
    // Each green thread touched its stack; a leak of even one 4 KiB page per
    // green thread would be 400 MB. Allow allocator noise.
    assert!(rss_after < rss + (16 << 20), "RSS grew from {rss} to {rss_after}");
    pool.shutdown();
}

/// Spawn `n` green threads (in waves, as a server would over time), each
/// sleeping once on the wheel and touching some stack, and join them all.
fn run(pool: &Pool, n: usize) {
    for wave in 0..n / 1000 {
        let handles: Vec<_> = (0..1000)
            .map(|i| {
                pool.spawn(move || {
                    let scratch = std::hint::black_box([i as u8; 2048]);
                    green::sleep(std::time::Duration::from_micros(10));
                    scratch[wave % 2048]
                })
            })
            .collect();
        for (i, h) in handles.into_iter().enumerate() {
            assert_eq!(h.join().unwrap(), i as u8);
        }
    }
}
