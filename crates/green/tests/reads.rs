//! A green thread's read after a short read (which emptied the socket)
//! waits for the next readable edge without trying the socket first. These
//! check it never misses data or an end of stream that came meanwhile, in
//! whatever order: while the reader waited elsewhere, while it waited on
//! the socket, and after a deadline ended the wait.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use green::Pool;
use iopoll::sync::OneShot;
use support::{join, pair};

#[test]
fn data_that_came_while_the_reader_waited_elsewhere_is_read_at_once() {
    let pool = Pool::new(1).unwrap();
    let (mut writer, reader) = pair();
    let go = Arc::new(OneShot::new());
    let g = go.clone();
    let first = Arc::new(OneShot::new());
    let f = first.clone();
    let h = pool.spawn(move || {
        let mut r = reader;
        let mut buf = [0u8; 64];
        assert_eq!(r.read(&mut buf).unwrap(), 5, "a short read");
        f.put(());
        // Wait somewhere else while the next bytes arrive.
        g.take(None).unwrap();
        let n = r.read(&mut buf).unwrap();
        buf[..n].to_vec()
    });
    writer.write_all(b"first").unwrap();
    first.take(Some(testkit::soon())).expect("the first read");
    // Whether the reader's worker sees this edge while the reader waits on
    // the slot or only once it reads, the read gets the bytes.
    writer.write_all(b"second").unwrap();
    go.put(());
    assert_eq!(join(h), b"second");
    pool.shutdown();
}

#[test]
fn a_read_after_a_short_read_waits_for_data_and_for_end_of_stream() {
    let pool = Pool::new(1).unwrap();
    let (mut writer, reader) = pair();
    let h = pool.spawn(move || {
        let mut r = reader;
        let mut buf = [0u8; 64];
        let mut got = Vec::new();
        loop {
            match r.read(&mut buf).unwrap() {
                0 => return got,
                n => got.extend_from_slice(&buf[..n]),
            }
        }
    });
    for chunk in [&b"a"[..], b"bc", b"def"] {
        writer.write_all(chunk).unwrap();
    }
    writer.close().unwrap();
    assert_eq!(join(h), b"abcdef");
    pool.shutdown();
}

#[test]
fn after_a_deadline_ends_the_wait_the_next_read_still_gets_the_data() {
    let pool = Pool::new(1).unwrap();
    let (mut writer, reader) = pair();
    let timed_out = Arc::new(OneShot::new());
    let t = timed_out.clone();
    let more = Arc::new(OneShot::new());
    let m = more.clone();
    let h = pool.spawn(move || {
        let mut r = reader;
        let mut buf = [0u8; 64];
        assert_eq!(r.read(&mut buf).unwrap(), 3, "a short read");
        r.set_read_deadline(Some(Instant::now() + Duration::from_millis(20))).unwrap();
        let e = r.read(&mut buf).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::TimedOut);
        t.put(());
        // The bytes come while this green thread waits elsewhere, with its
        // deadline still passed; then the deadline is lifted.
        m.take(None).unwrap();
        r.set_read_deadline(None).unwrap();
        let n = r.read(&mut buf).unwrap();
        buf[..n].to_vec()
    });
    writer.write_all(b"one").unwrap();
    timed_out.take(Some(testkit::soon())).expect("the read timed out");
    writer.write_all(b"two").unwrap();
    more.put(());
    assert_eq!(join(h), b"two");
    pool.shutdown();
}
