//! Socket control: `SO_REUSEPORT`, the control hook of `ListenConfig` and
//! `Dialer` (Go's `Control`), Go 1.23's keepalive configuration, and the
//! default backlog (the system's maximum, as Go).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, mpsc};
use std::thread;

use tcp::{Dialer, Error, ListenConfig};
use testkit::{PATIENCE, getsockopt_int};

fn rcvbuf(fd: RawFd) -> usize {
    getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUF).unwrap() as usize
}

fn set_rcvbuf(fd: BorrowedFd<'_>, size: libc::c_int) -> io::Result<()> {
    // SAFETY: `size` lives across the call and its size is passed with it.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&raw const size).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// The local port of a socket that may not be bound yet (0 then).
fn local_port(fd: BorrowedFd<'_>) -> u16 {
    let s = std::mem::ManuallyDrop::new(std::net::TcpListener::from(
        // SAFETY: borrowed for this call only: ManuallyDrop never closes it.
        unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd.as_raw_fd()) },
    ));
    s.local_addr().map(|a| a.port()).unwrap_or(0)
}

#[test]
fn reuse_port_lets_two_listeners_share_a_port_and_both_accept() {
    let config = ListenConfig::new().reuse_port(true);
    let a = config.listen("127.0.0.1:0").unwrap();
    let addr = a.local_addr().unwrap();
    let b = config.bind(addr).unwrap();
    assert_eq!(b.local_addr().unwrap(), addr);
    // Without it, the port is taken.
    let e = ListenConfig::new().bind(addr).unwrap_err();
    assert!(matches!(&e.err, Error::Io(io) if io.kind() == io::ErrorKind::AddrInUse), "{e}");

    // The kernel spreads connections by a hash of their addresses: dial
    // until each listener has accepted one (a run of 200 all to one
    // listener has odds of 2^-199).
    let (tx, rx) = mpsc::channel();
    let acceptors: Vec<_> = [(a, 'a'), (b, 'b')]
        .into_iter()
        .map(|(l, name)| {
            let tx = tx.clone();
            let l = Arc::new(l);
            let acceptor = l.clone();
            let h = thread::spawn(move || {
                for c in acceptor.incoming() {
                    let _ = c.unwrap();
                    if tx.send(name).is_err() {
                        break;
                    }
                }
            });
            (l, h)
        })
        .collect();
    let mut seen = [false, false];
    let mut clients = Vec::new();
    for _ in 0..200 {
        clients.push(tcp::connect_addr(addr).unwrap());
        let who = rx.recv_timeout(PATIENCE).expect("a connection nobody accepted");
        seen[usize::from(who == 'b')] = true;
        if seen == [true, true] {
            break;
        }
    }
    assert_eq!(seen, [true, true], "one of the listeners never accepted");
    for (l, h) in acceptors {
        l.close().unwrap();
        h.join().unwrap();
    }
}

#[test]
fn listen_control_runs_before_bind_and_its_rcvbuf_reads_back() {
    let ran_unbound = Arc::new(AtomicBool::new(false));
    let seen = ran_unbound.clone();
    let l = ListenConfig::new()
        .control(move |fd| {
            seen.store(local_port(fd) == 0, SeqCst);
            set_rcvbuf(fd, 96 * 1024)
        })
        .listen("127.0.0.1:0")
        .unwrap();
    assert!(ran_unbound.load(SeqCst), "control ran after bind");
    // The kernel may round up (Linux doubles it), never down.
    assert!(rcvbuf(l.as_raw_fd()) >= 96 * 1024, "SO_RCVBUF is {}", rcvbuf(l.as_raw_fd()));
}

#[test]
fn an_error_from_listen_control_fails_the_listen() {
    let config =
        ListenConfig::new().control(|_| Err(io::Error::new(io::ErrorKind::PermissionDenied, "no, says control")));
    let e = config.listen("127.0.0.1:0").unwrap_err();
    assert_eq!(e.op, "listen");
    assert!(matches!(&e.err, Error::Io(io) if io.kind() == io::ErrorKind::PermissionDenied), "{e:?}");
    assert!(e.to_string().contains("no, says control"), "{e}");
    let e = config.bind("127.0.0.1:0".parse().unwrap()).unwrap_err();
    assert!(e.to_string().contains("no, says control"), "{e}");
}

#[test]
fn dial_control_runs_before_connect_and_its_errors_fail_the_dial() {
    let l = tcp::listen("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let c = Dialer::new()
        .control(|fd| {
            assert_eq!(local_port(fd), 0, "control ran after bind or connect");
            set_rcvbuf(fd, 80 * 1024)
        })
        .connect_addr(addr)
        .unwrap();
    assert!(c.recv_buffer_size().unwrap() >= 80 * 1024);

    let e = Dialer::new().control(|_| Err(io::Error::other("control says no"))).connect(&addr.to_string()).unwrap_err();
    assert_eq!(e.op, "dial");
    assert!(matches!(&e.err, Error::Io(_)), "{e:?}");
    assert!(e.to_string().contains("control says no"), "{e}");
    // Nothing reached the listener.
    l.set_deadline(Some(std::time::Instant::now())).unwrap();
    assert!(l.accept().is_err());
}

#[cfg(target_os = "linux")]
fn keepalive_of(fd: RawFd) -> (bool, i32, i32, i32) {
    let get = |level, name| getsockopt_int(fd, level, name).unwrap();
    (
        get(libc::SOL_SOCKET, libc::SO_KEEPALIVE) != 0,
        get(libc::IPPROTO_TCP, libc::TCP_KEEPIDLE),
        get(libc::IPPROTO_TCP, libc::TCP_KEEPINTVL),
        get(libc::IPPROTO_TCP, libc::TCP_KEEPCNT),
    )
}

#[cfg(target_os = "linux")]
#[test]
fn keepalive_config_reads_back_on_conn_dialer_and_accepted_connections() {
    use std::time::Duration;
    use tcp::KeepAliveConfig;
    let s = Duration::from_secs;
    let config = KeepAliveConfig { enable: true, idle: Some(s(33)), interval: Some(s(7)), count: Some(4) };
    let l = ListenConfig::new().keepalive_config(config).listen("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();

    // Go's default: 15 s idle and interval, the system's count.
    let plain = tcp::connect_addr(addr).unwrap();
    let (on, idle, intvl, _) = keepalive_of(plain.as_raw_fd());
    assert_eq!((on, idle, intvl), (true, 15, 15));

    let dialed = Dialer::new().keepalive_config(config).connect_addr(addr).unwrap();
    assert_eq!(keepalive_of(dialed.as_raw_fd()), (true, 33, 7, 4));
    // Rounded up to whole seconds; None leaves what was there.
    dialed
        .set_keepalive_config(KeepAliveConfig {
            enable: true,
            idle: Some(Duration::from_millis(1500)),
            interval: None,
            count: Some(9),
        })
        .unwrap();
    assert_eq!(keepalive_of(dialed.as_raw_fd()), (true, 2, 7, 9));
    dialed.set_keepalive_config(KeepAliveConfig::default()).unwrap();
    assert!(!keepalive_of(dialed.as_raw_fd()).0, "the default config turns keepalive off");
    // A count the kernel refuses is its error, not a panic.
    let e = dialed.set_keepalive_config(KeepAliveConfig { enable: true, count: Some(100_000), ..config }).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e:?}");

    l.set_deadline(Some(testkit::soon())).unwrap();
    let accepted = l.accept().unwrap();
    assert_eq!(keepalive_of(accepted.as_raw_fd()), (true, 33, 7, 4), "accepted connections take the config");
}

#[cfg(target_os = "linux")]
#[test]
fn listeners_default_to_the_system_maximum_backlog() {
    let somaxconn: usize = std::fs::read_to_string("/proc/sys/net/core/somaxconn").unwrap().trim().parse().unwrap();
    assert!(format!("{:?}", ListenConfig::new()).contains(&format!("backlog: {somaxconn}")));
    // More connections than the old 128 queue up unaccepted, each
    // connecting at once (a full queue would drop the handshake).
    let want = somaxconn.min(400);
    testkit::raise_fd_limit(2 * want as u64 + 256);
    for l in [tcp::listen("127.0.0.1:0").unwrap(), tcp::Listener::bind("127.0.0.1:0".parse().unwrap()).unwrap()] {
        let addr = l.local_addr().unwrap();
        let dialer = Dialer::new().timeout(PATIENCE);
        let clients: Vec<_> = (0..want).map(|_| dialer.connect_addr(addr).unwrap()).collect();
        l.set_deadline(Some(testkit::soon())).unwrap();
        for _ in 0..want {
            l.accept().unwrap();
        }
        drop(clients);
    }
}
