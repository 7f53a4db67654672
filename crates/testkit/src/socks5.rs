//! A real SOCKS5 proxy for the tests (`microsocks`, which `make deps`
//! installs), and listeners that a name resolved by that proxy reaches.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::PATIENCE;

/// A `microsocks` process listening on a free loopback port, killed when
/// dropped.
#[derive(Debug)]
pub struct Microsocks {
    /// Where it listens.
    pub addr: SocketAddr,
    child: Child,
}

impl Microsocks {
    /// A proxy that asks for no authentication.
    pub fn start() -> Microsocks {
        Microsocks::spawn(None)
    }

    /// A proxy that demands `username` and `password` (RFC 1929).
    pub fn with_auth(username: &str, password: &str) -> Microsocks {
        Microsocks::spawn(Some((username, password)))
    }

    fn spawn(auth: Option<(&str, &str)>) -> Microsocks {
        // The port is free when picked; should someone take it before the
        // proxy binds it, the proxy exits and another port is tried.
        for _ in 0..20 {
            let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap().local_addr().unwrap().port();
            let mut cmd = Command::new("microsocks");
            cmd.args(["-i", "127.0.0.1", "-p", &port.to_string()]);
            if let Some((user, pass)) = auth {
                cmd.args(["-u", user, "-P", pass]);
            }
            let child = match cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn() {
                Ok(child) => child,
                Err(e) if e.kind() == io::ErrorKind::NotFound => panic!(
                    "`microsocks` is not installed, and the SOCKS5 tests need a real proxy: \
                     run `make deps` (apt package microsocks)"
                ),
                Err(e) => panic!("cannot start microsocks: {e}"),
            };
            let mut proxy = Microsocks { addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)), child };
            if proxy.until_listening() {
                return proxy;
            }
        }
        panic!("microsocks exited at start 20 times: no free loopback port, or it cannot run here");
    }

    /// Wait until the proxy accepts connections: true, or false if it
    /// exited first (its port was taken). Nothing announces readiness, so
    /// this polls, for at most `PATIENCE`.
    fn until_listening(&mut self) -> bool {
        let until = Instant::now() + PATIENCE;
        loop {
            if self.child.try_wait().unwrap().is_some() {
                return false;
            }
            if TcpStream::connect_timeout(&self.addr, Duration::from_secs(1)).is_ok() {
                return true;
            }
            assert!(Instant::now() < until, "microsocks did not listen on {} within {PATIENCE:?}", self.addr);
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Microsocks {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Listeners on `127.0.0.1` and (when the system has it) `::1` sharing one
/// port, so `localhost:port` reaches them whichever address a resolver
/// puts first.
#[derive(Debug)]
pub struct Localhost {
    /// The shared port.
    pub port: u16,
    /// The listeners, IPv4 first.
    pub listeners: Vec<TcpListener>,
}

impl Localhost {
    /// Bind both, retrying while the port is taken on `::1`.
    pub fn bind() -> Localhost {
        let v6 = TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).is_ok();
        for _ in 0..50 {
            let v4 = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
            let port = v4.local_addr().unwrap().port();
            if !v6 {
                return Localhost { port, listeners: vec![v4] };
            }
            if let Ok(l6) = TcpListener::bind((Ipv6Addr::LOCALHOST, port)) {
                return Localhost { port, listeners: vec![v4, l6] };
            }
        }
        panic!("no port free on both 127.0.0.1 and ::1 in 50 tries");
    }

    /// Accept the next connection on whichever listener gets one, waiting
    /// at most `PATIENCE`.
    pub fn accept(&self) -> TcpStream {
        let mut fds: Vec<libc::pollfd> = self
            .listeners
            .iter()
            .map(|l| libc::pollfd { fd: l.as_raw_fd(), events: libc::POLLIN, revents: 0 })
            .collect();
        let ms = PATIENCE.as_millis() as libc::c_int;
        // SAFETY: `fds` is a live array of `fds.len()` pollfd structs.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        assert!(n > 0, "no connection reached localhost:{} within {PATIENCE:?} ({n})", self.port);
        let ready = fds.iter().position(|p| p.revents & libc::POLLIN != 0).expect("a readable listener");
        self.listeners[ready].accept().unwrap().0
    }
}
