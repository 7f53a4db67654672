//! `iopoll::park`'s plug-in contract, exercised by a minimal green-thread
//! scheduler of this test's own: coroutines on one OS thread, run in turn,
//! with the scheduler sleeping in its embedded reactor when none is ready.

use std::cell::{Cell, RefCell};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::task::{Wake, Waker};
use std::time::{Duration, Instant};

use corosensei::{Coroutine, CoroutineResult, Yielder};
use iopoll::park::{self, Scheduler};
use iopoll::{PollFd, Runtime};

/// A green thread's wake flag: set by its `Waker`, cleared when it runs.
struct Flag {
    set: AtomicBool,
    rt: Runtime,
}

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.set.store(true, SeqCst);
        self.rt.wake();
    }
}

struct Mini {
    rt: Runtime,
    turns: AtomicUsize,
}

/// A running coroutine's wake flag and yielder.
type Running = (Arc<Flag>, *const Yielder<(), ()>);

thread_local! {
    static RUNNING: RefCell<Option<Running>> = const { RefCell::new(None) };
    static SUSPENSIONS: Cell<usize> = const { Cell::new(0) };
}

impl Scheduler for Mini {
    fn waker(&self) -> Waker {
        Waker::from(RUNNING.with(|r| r.borrow().as_ref().expect("in a green thread").0.clone()))
    }

    fn suspend(&self) {
        let yielder = RUNNING.with(|r| r.borrow().as_ref().expect("in a green thread").1);
        SUSPENSIONS.with(|s| s.set(s.get() + 1));
        // SAFETY: the yielder lives on the running coroutine's stack, and we
        // are on that stack now.
        unsafe { (*yielder).suspend(()) };
    }

    fn runtime(&self) -> &Runtime {
        &self.rt
    }
}

type Green = Coroutine<(), (), ()>;

/// Run `bodies` as green threads on this OS thread until all are done.
fn run_all(mini: &Arc<Mini>, bodies: Vec<Box<dyn FnOnce()>>) {
    let sched: Arc<dyn Scheduler> = mini.clone();
    let mut green: Vec<(Arc<Flag>, Green, *const Yielder<(), ()>)> = bodies
        .into_iter()
        .map(|body| {
            let flag = Arc::new(Flag { set: AtomicBool::new(true), rt: mini.rt.clone() });
            let co = Coroutine::new(move |y: &Yielder<(), ()>, ()| {
                RUNNING.with(|r| r.borrow_mut().as_mut().unwrap().1 = y);
                body()
            });
            (flag, co, std::ptr::null())
        })
        .collect();
    let deadline = Instant::now() + testkit::PATIENCE;
    while !green.is_empty() {
        assert!(Instant::now() < deadline, "the green threads hang");
        let mut ran = false;
        green.retain_mut(|(flag, co, yielder)| {
            if !flag.set.swap(false, SeqCst) {
                return true;
            }
            ran = true;
            RUNNING.with(|r| *r.borrow_mut() = Some((flag.clone(), *yielder)));
            let entered = park::enter(sched.clone());
            let result = co.resume(());
            drop(entered);
            *yielder = RUNNING.with(|r| r.borrow_mut().take()).unwrap().1;
            matches!(result, CoroutineResult::Yield(()))
        });
        if !ran {
            mini.turns.fetch_add(1, SeqCst);
            mini.rt.turn(Some(testkit::PATIENCE)).unwrap();
        }
    }
}

#[test]
fn a_plugged_in_scheduler_runs_blocking_waits_as_green_threads() {
    let mini = Arc::new(Mini { rt: Runtime::new().unwrap(), turns: AtomicUsize::new(0) });
    let (a, mut b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    // The descriptor belongs to the global runtime; the green waits are
    // watched by the scheduler's own.
    let pfd = PollFd::new(&Runtime::global(), a.as_raw_fd()).unwrap();
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let lock = Arc::new(iopoll::sync::Mutex::new(0));
    let thread = std::thread::current().id();

    let (o1, l1) = (order.clone(), lock.clone());
    let reader = Box::new(move || {
        assert!(park::in_green_thread());
        // Holds the lock across a wait: the writer must still get to run.
        let mut held = l1.lock();
        o1.lock().unwrap().push("reader waits");
        let mut a = &a;
        let mut buf = [0; 5];
        loop {
            pfd.prepare_read().unwrap();
            match a.read(&mut buf) {
                Ok(n) => {
                    assert_eq!(&buf[..n], b"hello");
                    break;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => pfd.wait_readable().unwrap(),
                Err(e) => panic!("{e}"),
            }
        }
        *held += 1;
        o1.lock().unwrap().push("reader read");
        assert_eq!(std::thread::current().id(), thread);
    }) as Box<dyn FnOnce()>;
    let (o2, l2) = (order.clone(), lock.clone());
    let writer = Box::new(move || {
        // A sleep, on the scheduler's wheel.
        let until = Instant::now() + Duration::from_millis(20);
        while Instant::now() < until {
            park::park(Some(until)).unwrap();
        }
        o2.lock().unwrap().push("writer writes");
        b.write_all(b"hello").unwrap();
        // Queues behind the reader, which holds the lock until it has read.
        *l2.lock() += 1;
        o2.lock().unwrap().push("writer locked");
    }) as Box<dyn FnOnce()>;

    run_all(&mini, vec![reader, writer]);
    assert_eq!(*order.lock().unwrap(), ["reader waits", "writer writes", "reader read", "writer locked"]);
    assert_eq!(*lock.lock(), 2);
    assert!(SUSPENSIONS.with(Cell::get) >= 2, "the waits suspended");
    assert!(mini.turns.load(SeqCst) >= 1, "readiness came through the scheduler's reactor");
    assert!(!park::in_green_thread());
}
