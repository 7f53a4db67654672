//! This process's descriptor, thread and memory counts, and its fd limit.

/// How many descriptors this process has open.
pub fn count_fds() -> usize {
    // The directory handle itself shows up in the listing; don't count it.
    std::fs::read_dir("/proc/self/fd").unwrap().count() - 1
}

/// How many threads this process has.
pub fn count_threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

/// Resident memory of this process, in bytes.
pub fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
    pages * page
}

/// Raise the soft open-file limit to `want` (or the hard limit, if lower).
pub fn raise_fd_limit(want: u64) {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `lim` is a valid rlimit to fill in.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    let target = (want as libc::rlim_t).min(lim.rlim_max);
    if lim.rlim_cur < target {
        lim.rlim_cur = target;
        // SAFETY: `lim` is a valid rlimit; raising the soft limit up to the
        // hard one needs no privilege.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
    }
}
