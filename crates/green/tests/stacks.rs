//! Stacks: more green threads park than the kernel's area limit would
//! allow one mapping each; a compacted stack comes back byte for byte at
//! the same addresses, whoever touches it first.

mod support;

use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use green::Pool;
use iopoll::sync::OneShot;
use support::join;

/// From a green thread of `pool` (one worker, compacting at once): park
/// until the worker has compacted the stacks parked so far (it compacts in
/// rounds that leave its queue empty, which a green thread that only
/// yielded would never let happen), and return how many are compacted; 0
/// if none is `within` that long.
fn compacted_after_parking(pool: &Pool, within: std::time::Duration) -> usize {
    let give_up = std::time::Instant::now() + within;
    while pool.stats().compacted == 0 && std::time::Instant::now() < give_up {
        green::sleep(std::time::Duration::from_millis(1));
    }
    pool.stats().compacted
}

/// A small deterministic generator (xorshift) for the property tests.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Kernel memory areas of this process.
#[cfg(target_os = "linux")]
fn areas() -> usize {
    std::fs::read_to_string("/proc/self/maps").unwrap().lines().count()
}

#[cfg(target_os = "linux")]
#[test]
fn more_green_threads_park_than_half_the_map_count_and_all_run() {
    use iopoll::sync::{Condvar, Mutex};
    let max: usize = std::fs::read_to_string("/proc/sys/vm/max_map_count").unwrap().trim().parse().unwrap();
    // Two areas per parked green thread would need more than the limit.
    let n = max / 2 + 2_000;
    let pool = Pool::new(2).unwrap();
    let gate = Arc::new((Mutex::new((0usize, false)), Condvar::new()));
    let mut handles = Vec::with_capacity(n);
    for i in 0..n {
        let gate = gate.clone();
        let h = pool.try_spawn(move || {
            let (m, cv) = &*gate;
            let mut g = m.lock();
            g.0 += 1;
            if g.0 == n {
                cv.notify_all();
            }
            while !g.1 {
                cv.wait(&mut g);
            }
            i
        });
        handles.push(h.expect("a stack for every green thread"));
    }
    let (m, cv) = &*gate;
    {
        let mut g = m.lock();
        let deadline = testkit::soon() + testkit::PATIENCE;
        while g.0 < n {
            assert!(!cv.wait_until(&mut g, Some(deadline)), "only {} of {n} green threads ran", g.0);
        }
        // Every one is parked now; the process stays well under the limit.
        let now = areas();
        assert!(now < max * 7 / 8, "{now} areas with {n} parked green threads (limit {max})");
        // The rest of the process still gets what it maps: a thread's stack
        // and signal stack.
        std::thread::spawn(|| 1).join().unwrap();
        g.1 = true;
        cv.notify_all();
    }
    for (i, h) in handles.into_iter().enumerate() {
        assert_eq!(h.join().unwrap(), i);
    }
    pool.shutdown();
}

/// Fill a frame of `bytes` with a pattern, recurse `depth` times, then
/// park at the bottom until `release` is filled, with `lent` (a buffer of
/// the outermost frame) borrowed all the way down; after the resume, check
/// every frame and write through the borrow.
#[inline(never)]
fn descend(depth: u32, bytes: usize, seed: u8, lent: &mut [u8; 256], release: &OneShot<()>) -> u64 {
    let mut frame = [0u8; 512];
    let used = &mut frame[..bytes.min(512)];
    for (i, b) in used.iter_mut().enumerate() {
        *b = seed.wrapping_add(depth as u8).wrapping_mul(31).wrapping_add(i as u8);
    }
    let below = if depth == 0 {
        release.take(None).unwrap();
        lent.iter_mut().for_each(|b| *b = b.wrapping_add(1));
        0
    } else {
        descend(depth - 1, bytes, seed, lent, release)
    };
    for (i, b) in std::hint::black_box(&frame[..bytes.min(512)]).iter().enumerate() {
        let want = seed.wrapping_add(depth as u8).wrapping_mul(31).wrapping_add(i as u8);
        assert_eq!(*b, want, "frame at depth {depth}, byte {i}, changed across compaction");
    }
    below + 1
}

#[test]
fn compacted_stacks_come_back_byte_for_byte_at_random_depths() {
    let pool = Arc::new(Pool::builder().workers(1).compact_after(std::time::Duration::ZERO).build().unwrap());
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for case in 0..60 {
        let depth = rng.below(40) as u32;
        let bytes = 1 + rng.below(512) as usize;
        let seed = rng.below(256) as u8;
        let release = Arc::new(OneShot::new());
        let r = release.clone();
        let deep = pool.spawn(move || {
            let mut lent = [seed; 256];
            let levels = descend(depth, bytes, seed, &mut lent, &r);
            assert!(lent.iter().all(|b| *b == seed.wrapping_add(1)), "a borrowed buffer lost its write");
            levels
        });
        // One worker, first come first served: this runs once the deep one
        // has parked.
        let p = pool.clone();
        let check = pool.spawn(move || {
            let compacted = compacted_after_parking(&p, std::time::Duration::from_secs(5));
            release.put(());
            compacted
        });
        assert_eq!(join(check), 1, "case {case}: the parked stack was not compacted");
        assert_eq!(join(deep), u64::from(depth) + 1, "case {case}");
        assert_eq!(pool.stats().compacted, 0);
    }
    Arc::into_inner(pool).unwrap().shutdown();
}

#[test]
fn a_green_read_parked_across_compaction_gets_its_bytes() {
    let pool = Arc::new(Pool::builder().workers(1).compact_after(std::time::Duration::ZERO).build().unwrap());
    let l = tcp::listen("127.0.0.1:0").unwrap();
    let mut client = tcp::connect_addr(l.local_addr().unwrap()).unwrap();
    let server = l.accept().unwrap();
    let reader = pool.spawn(move || {
        let mut conn = server;
        let mut buf = [0u8; 5];
        conn.read_exact(&mut buf).unwrap();
        buf
    });
    let p = pool.clone();
    let compacted = join(pool.spawn(move || compacted_after_parking(&p, std::time::Duration::from_secs(5))));
    assert_eq!(compacted, 1);
    client.write_all(b"hello").unwrap();
    assert_eq!(&join(reader), b"hello");
    Arc::into_inner(pool).unwrap().shutdown();
}

#[test]
fn another_thread_writing_to_a_compacted_stack_restores_it_first() {
    let pool = Arc::new(Pool::builder().workers(1).compact_after(std::time::Duration::ZERO).build().unwrap());
    let go = Arc::new(OneShot::new());
    let g = go.clone();
    let owner = pool.spawn(move || {
        let mut local = [1u8; 4096];
        let done = OneShot::new();
        std::thread::scope(|s| {
            s.spawn(|| {
                // Waits (an OS thread) until the green thread's stack is
                // compacted, then writes to its frame through a safe borrow.
                g.take(None).unwrap();
                local.iter_mut().for_each(|b| *b = 7);
                done.put(());
            });
            // Parks this green thread (a reseau wait) inside the scope.
            done.take(None).unwrap();
        });
        local.iter().all(|b| *b == 7)
    });
    let p = pool.clone();
    let compacted = join(pool.spawn(move || compacted_after_parking(&p, std::time::Duration::from_secs(5))));
    assert_eq!(compacted, 1, "the owner's stack was compacted before the write");
    go.put(());
    assert!(join(owner), "the scoped thread's writes reached the green thread's frame");
    Arc::into_inner(pool).unwrap().shutdown();
}

#[test]
fn many_green_threads_compact_and_resume_repeatedly() {
    let pool = Pool::builder().workers(2).compact_after(std::time::Duration::ZERO).build().unwrap();
    let total = Arc::new(AtomicUsize::new(0));
    let hs: Vec<_> = (0..200)
        .map(|i| {
            let total = total.clone();
            pool.spawn(move || {
                let mut mine = [i as u8; 300];
                for round in 0..20u32 {
                    green::sleep(std::time::Duration::from_micros(u64::from(round % 3) * 100));
                    assert!(mine.iter().all(|b| *b == (i as u8).wrapping_add(round as u8)));
                    mine.iter_mut().for_each(|b| *b = b.wrapping_add(1));
                }
                total.fetch_add(1, SeqCst);
            })
        })
        .collect();
    for h in hs {
        join(h);
    }
    assert_eq!(total.load(SeqCst), 200);
    pool.shutdown();
}

#[test]
fn a_threshold_too_far_to_reach_never_compacts_and_never_overflows() {
    let pool = Arc::new(Pool::builder().workers(1).compact_after(std::time::Duration::MAX).build().unwrap());
    let release = Arc::new(OneShot::new());
    let r = release.clone();
    let parked = pool.spawn(move || r.take(None).unwrap());
    // Many parks in a row (a ping-pong: each side parks in every recv),
    // far more than the worker keeps track of at once.
    let (ping_tx, ping_rx) = iopoll::sync::channel::<u32>(0);
    let (pong_tx, pong_rx) = iopoll::sync::channel::<u32>(0);
    let echo = pool.spawn(move || {
        while let Ok(n) = ping_rx.recv() {
            pong_tx.send(n).unwrap();
        }
    });
    let busy = pool.spawn(move || {
        for n in 0..3_000 {
            ping_tx.send(n).unwrap();
            assert_eq!(pong_rx.recv().unwrap(), n);
        }
    });
    join(busy);
    join(echo);
    let p = pool.clone();
    assert_eq!(join(pool.spawn(move || compacted_after_parking(&p, std::time::Duration::from_millis(100)))), 0);
    release.put(9);
    assert_eq!(join(parked), 9);
    Arc::into_inner(pool).unwrap().shutdown();
}

/// `n` green threads of `pool` running at once (each on a stack of its
/// own); `meanwhile` runs while they are, then they are let go and joined.
fn park_together(pool: &Pool, n: usize, meanwhile: impl FnOnce()) {
    let started = Arc::new(AtomicUsize::new(0));
    let gates: Vec<Arc<OneShot<()>>> = (0..n).map(|_| Arc::new(OneShot::new())).collect();
    let parked: Vec<_> = gates
        .iter()
        .map(|g| {
            let (g, started) = (g.clone(), started.clone());
            pool.spawn(move || {
                started.fetch_add(1, SeqCst);
                g.take(None).unwrap()
            })
        })
        .collect();
    assert_eq!(testkit::settles(n, || started.load(SeqCst)), n);
    meanwhile();
    for g in &gates {
        g.put(());
    }
    parked.into_iter().for_each(join);
}

#[test]
fn finished_green_threads_leave_hot_stacks_that_new_ones_take() {
    let pool = Pool::builder().workers(1).compact_after(std::time::Duration::MAX).build().unwrap();
    park_together(&pool, 50, || ());
    // The worker files a stack as spare just after its green thread returns.
    assert_eq!(testkit::settles(50, || pool.stats().spare_stacks), 50);
    // Thirty running at once take thirty of them, and leave them again.
    park_together(&pool, 30, || {
        assert_eq!(pool.stats().spare_stacks, 20, "new green threads run on spare stacks");
    });
    assert_eq!(testkit::settles(50, || pool.stats().spare_stacks), 50);
    pool.shutdown();
}

#[test]
fn spare_stacks_unused_for_the_threshold_are_given_back_and_their_slots_serve_again() {
    let pool =
        Arc::new(Pool::builder().workers(1).compact_after(std::time::Duration::from_millis(20)).build().unwrap());
    park_together(&pool, 64, || ());
    // Given back in the first round that leaves the worker idle once the
    // threshold has passed; a parked green thread keeps it turning.
    let p = pool.clone();
    let left = join(pool.spawn(move || {
        let give_up = std::time::Instant::now() + testkit::PATIENCE;
        while p.stats().spare_stacks > 0 && std::time::Instant::now() < give_up {
            green::sleep(std::time::Duration::from_millis(1));
        }
        p.stats().spare_stacks
    }));
    assert_eq!(left, 0, "spare stacks outlived the threshold");
    // The slots given back (in runs of adjacent ones) carry new green
    // threads.
    let sums: Vec<_> = (0..64)
        .map(|i: u64| {
            pool.spawn(move || {
                let frame = std::hint::black_box([i as u8; 2048]);
                frame.iter().map(|b| u64::from(*b)).sum::<u64>()
            })
        })
        .collect();
    for (i, h) in sums.into_iter().enumerate() {
        assert_eq!(join(h), i as u64 * 2048);
    }
    Arc::into_inner(pool).unwrap().shutdown();
}

#[test]
fn a_busy_worker_compacts_only_once_its_queue_empties() {
    let pool = Arc::new(Pool::builder().workers(1).compact_after(std::time::Duration::ZERO).build().unwrap());
    // Always runnable, from before the other one parks: every round of the
    // worker is a full batch, so the parked stack stays hot (compaction
    // costs the busy cores a TLB flush)...
    let p = pool.clone();
    let parks = Arc::new(AtomicUsize::new(0));
    let seen = parks.clone();
    let busy = pool.spawn(move || {
        while seen.load(SeqCst) == 0 {
            green::yield_now();
        }
        let mut most = 0;
        for _ in 0..5_000 {
            most = most.max(p.stats().compacted);
            green::yield_now();
        }
        most
    });
    let release = Arc::new(OneShot::new());
    let r = release.clone();
    let parked = pool.spawn(move || {
        parks.fetch_add(1, SeqCst);
        r.take(None).unwrap()
    });
    assert_eq!(join(busy), 0, "compacted while the worker was busy");
    // ...until a round leaves the queue empty.
    let p = pool.clone();
    assert_eq!(join(pool.spawn(move || compacted_after_parking(&p, std::time::Duration::from_secs(5)))), 1);
    release.put(3);
    assert_eq!(join(parked), 3);
    Arc::into_inner(pool).unwrap().shutdown();
}
