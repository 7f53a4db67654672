//! This process's descriptor, thread and memory counts, its fd limit, and
//! its scratch directories. The counts read `/proc`: they (and the tests
//! using them) are Linux only.

use std::path::{Path, PathBuf};

/// How many descriptors this process has open.
#[cfg(target_os = "linux")]
pub fn count_fds() -> usize {
    // The directory handle itself shows up in the listing; don't count it.
    std::fs::read_dir("/proc/self/fd").unwrap().count() - 1
}

/// How many threads this process has.
#[cfg(target_os = "linux")]
pub fn count_threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

/// Resident memory of this process, in bytes.
#[cfg(target_os = "linux")]
pub fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
    pages * page
}

/// Raise the open-file limit to `want`: the soft limit, and the hard one
/// too where the process may (as root). Returns the soft limit reached.
// `rlim_t` is u64 here but not on every OS: the conversions are kept.
#[allow(clippy::useless_conversion)]
pub fn raise_fd_limit(want: u64) -> u64 {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `lim` is a valid rlimit to fill in.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    let requested = want;
    let want = libc::rlim_t::try_from(want).unwrap_or(libc::rlim_t::MAX);
    if lim.rlim_max < want {
        let higher = libc::rlimit { rlim_cur: want, rlim_max: want };
        // SAFETY: a valid rlimit; raising the hard limit fails harmlessly
        // (EPERM) without the privilege.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &higher) } == 0 {
            return requested;
        }
    }
    let target = want.min(lim.rlim_max);
    if lim.rlim_cur < target {
        lim.rlim_cur = target;
        // SAFETY: `lim` is a valid rlimit; raising the soft limit up to the
        // hard one needs no privilege.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
    }
    u64::try_from(lim.rlim_cur.max(target)).unwrap_or(0)
}

#[cfg(target_os = "linux")]
fn getrlimit() -> libc::rlimit {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `lim` is a valid rlimit to fill in.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    lim
}

#[cfg(target_os = "linux")]
fn setrlimit(lim: &libc::rlimit) {
    // SAFETY: `lim` is a valid rlimit; lowering the soft limit, or raising
    // it back up to the hard limit, needs no privilege.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, lim) }, 0, "{}", std::io::Error::last_os_error());
}

/// The process out of descriptors: the limit lowered to just above the
/// highest open one and every hole below it filled, so the next descriptor
/// anyone asks for fails with EMFILE. Dropping it gives them back.
///
/// It changes the whole process: use it only in a test binary of its own
/// with a single test.
#[cfg(target_os = "linux")]
#[derive(Debug)]
pub struct Exhausted {
    saved: libc::rlimit,
    fillers: Vec<std::os::fd::OwnedFd>,
}

#[cfg(target_os = "linux")]
impl Exhausted {
    /// Use up every descriptor.
    pub fn new() -> Exhausted {
        use std::os::fd::FromRawFd;
        let saved = getrlimit();
        let highest = std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<libc::rlim_t>().ok())
            .max()
            .unwrap();
        setrlimit(&libc::rlimit { rlim_cur: highest + 1, rlim_max: saved.rlim_max });
        let mut ex = Exhausted { saved, fillers: Vec::new() };
        loop {
            // SAFETY: duplicates descriptor 2 (stderr) into the lowest free
            // number; the new descriptor is owned below.
            let fd = unsafe { libc::fcntl(2, libc::F_DUPFD_CLOEXEC, 0) };
            if fd < 0 {
                let e = std::io::Error::last_os_error();
                assert!(matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)), "dup: {e}");
                return ex;
            }
            // SAFETY: `fd` is new and owned by nobody else.
            ex.fillers.push(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) });
        }
    }
}

#[cfg(target_os = "linux")]
impl Default for Exhausted {
    fn default() -> Exhausted {
        Exhausted::new()
    }
}

#[cfg(target_os = "linux")]
impl Drop for Exhausted {
    fn drop(&mut self) {
        self.fillers.clear();
        setrlimit(&self.saved);
    }
}

/// A fresh, empty directory `PREFIX-PID` of this process's own under the
/// system temporary directory. Those a process that is gone left behind
/// are removed (where `/proc` tells which processes live).
pub fn scratch_dir(prefix: &str) -> PathBuf {
    let root = std::env::temp_dir();
    if Path::new("/proc/self").exists() {
        let stale = std::fs::read_dir(&root).into_iter().flatten().flatten().filter(|entry| {
            let name = entry.file_name();
            let pid = name.to_str().and_then(|n| n.strip_prefix(prefix)).and_then(|n| n.strip_prefix('-'));
            pid.is_some_and(|pid| pid.bytes().all(|b| b.is_ascii_digit()) && !Path::new("/proc").join(pid).exists())
        });
        for entry in stale {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    let dir = root.join(format!("{prefix}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot make {}: {e}", dir.display()));
    dir
}
