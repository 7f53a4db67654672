//! Socket options chosen through [`Dialer`](crate::Dialer) and
//! [`ListenConfig`](crate::ListenConfig): [`KeepAliveConfig`], Go 1.23's
//! keepalive knobs, and the control hook (Go's `Control`), a function run
//! on each new socket before it is bound or connected.

use std::fmt;
use std::io;
use std::os::fd::{BorrowedFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use crate::conn::DEFAULT_KEEPALIVE;
use crate::sys;

/// TCP keepalive, as Go 1.23's `net.KeepAliveConfig`: whether probes are
/// sent, after how long idle (`idle`), how often (`interval`) and how many
/// unanswered ones end the connection (`count`). A `None` field leaves
/// the system's default for it.
///
/// The kernel counts whole seconds from 1 to 32 767: durations are rounded
/// up to a whole second and clamped to that range. A count the system
/// refuses (Linux takes 1 to 127) is its `InvalidInput` error. OpenBSD has
/// no per-socket idle time; the system's applies there.
///
/// ```no_run
/// use std::time::Duration;
/// use tcp::KeepAliveConfig;
/// let probes = KeepAliveConfig {
///     enable: true,
///     idle: Some(Duration::from_secs(30)),
///     interval: Some(Duration::from_secs(5)),
///     count: Some(3),
/// };
/// let conn = tcp::Dialer::new().keepalive_config(probes).connect("127.0.0.1:7")?;
/// conn.set_keepalive_config(KeepAliveConfig::default())?; // off
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeepAliveConfig {
    /// Send keepalive probes (`SO_KEEPALIVE`). When `false` the other
    /// fields are ignored.
    pub enable: bool,
    /// Idle time before the first probe (`TCP_KEEPIDLE`; `TCP_KEEPALIVE`
    /// on Apple).
    pub idle: Option<Duration>,
    /// Time between probes (`TCP_KEEPINTVL`).
    pub interval: Option<Duration>,
    /// Unanswered probes before the connection is dropped (`TCP_KEEPCNT`).
    pub count: Option<u32>,
}

impl KeepAliveConfig {
    /// Go's default for dialed and accepted connections: probes after
    /// 15 s idle, every 15 s, the system's count.
    pub(crate) const DEFAULT: KeepAliveConfig = KeepAliveConfig::period(Some(DEFAULT_KEEPALIVE));

    /// The single-period form (`keepalive(period)`): `period` as both the
    /// idle time and the interval, or off for `None`.
    pub(crate) const fn period(period: Option<Duration>) -> KeepAliveConfig {
        match period {
            Some(p) => KeepAliveConfig { enable: true, idle: Some(p), interval: Some(p), count: None },
            None => KeepAliveConfig { enable: false, idle: None, interval: None, count: None },
        }
    }

    /// Set these options on `fd`.
    pub(crate) fn apply(&self, fd: RawFd) -> io::Result<()> {
        sys::set_keepalive_config(fd, self.enable, self.idle, self.interval, self.count)
    }
}

/// A control hook: run on a new socket after it is made and before it is
/// bound or connected.
#[derive(Clone)]
pub(crate) struct Control(Arc<dyn Fn(BorrowedFd<'_>) -> io::Result<()> + Send + Sync>);

impl Control {
    pub(crate) fn new(f: impl Fn(BorrowedFd<'_>) -> io::Result<()> + Send + Sync + 'static) -> Control {
        Control(Arc::new(f))
    }

    pub(crate) fn run(&self, fd: BorrowedFd<'_>) -> io::Result<()> {
        (self.0)(fd)
    }
}

impl fmt::Debug for Control {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Control(..)")
    }
}
