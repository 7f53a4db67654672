//! The memory and signal calls stacks need, with what differs between
//! Linux, macOS and the BSDs kept here.

use std::io;

/// Ask for address space without a commit charge where the system has such
/// a flag (Linux; elsewhere untouched anonymous memory costs nothing anyway).
#[cfg(any(target_os = "linux", target_os = "android"))]
const NORESERVE: libc::c_int = libc::MAP_NORESERVE;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const NORESERVE: libc::c_int = 0;

/// The signals a touch of an inaccessible page raises: SIGSEGV, and SIGBUS
/// on macOS and some BSDs.
pub(super) const FAULT_SIGNALS: [libc::c_int; 2] = [libc::SIGSEGV, libc::SIGBUS];

fn check(r: libc::c_int) -> io::Result<()> {
    if r == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// Reserve `len` bytes of inaccessible address space.
pub(super) fn reserve(len: usize) -> io::Result<usize> {
    // SAFETY: a new anonymous mapping at an address the kernel picks.
    let p = unsafe {
        libc::mmap(std::ptr::null_mut(), len, libc::PROT_NONE, libc::MAP_PRIVATE | libc::MAP_ANON | NORESERVE, -1, 0)
    };
    if p == libc::MAP_FAILED { Err(io::Error::last_os_error()) } else { Ok(p as usize) }
}

/// Unmap a reservation.
///
/// # Safety
/// Nothing may use the range any more.
pub(super) unsafe fn release(base: usize, len: usize) {
    // SAFETY: the caller's promise.
    unsafe { libc::munmap(base as *mut libc::c_void, len) };
}

/// Make `[low, low + len)` readable and writable.
///
/// # Safety
/// The range must be part of a reservation the caller owns.
pub(super) unsafe fn make_accessible(low: usize, len: usize) -> io::Result<()> {
    // SAFETY: the caller's promise; mprotect is async-signal-safe.
    check(unsafe { libc::mprotect(low as *mut libc::c_void, len, libc::PROT_READ | libc::PROT_WRITE) })
}

/// Make `[low, low + len)` read-only.
///
/// # Safety
/// As for [`make_accessible`].
pub(super) unsafe fn make_read_only(low: usize, len: usize) -> io::Result<()> {
    // SAFETY: the caller's promise.
    check(unsafe { libc::mprotect(low as *mut libc::c_void, len, libc::PROT_READ) })
}

/// Drop the pages of `[low, low + len)` and make it inaccessible: a fresh
/// mapping over it, which the kernel merges with the untouched
/// reservation around it.
///
/// # Safety
/// As for [`make_accessible`]; the range's contents are lost.
pub(super) unsafe fn discard(low: usize, len: usize) -> io::Result<()> {
    // SAFETY: the caller's promise; MAP_FIXED replaces only that range.
    let p = unsafe {
        libc::mmap(
            low as *mut libc::c_void,
            len,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANON | libc::MAP_FIXED | NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// The kernel's limit on memory areas per process.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(super) fn max_map_count() -> usize {
    std::fs::read_to_string("/proc/sys/vm/max_map_count").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(65_530)
}

/// macOS and the BSDs have no such per-process limit; keep a generous one.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(super) fn max_map_count() -> usize {
    1 << 18
}

/// The faulting address of a SIGSEGV or SIGBUS.
///
/// # Safety
/// `info` is the `siginfo_t` the kernel passed to an `SA_SIGINFO` handler.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(super) unsafe fn fault_addr(info: *const libc::siginfo_t) -> usize {
    // SAFETY: the caller's promise; si_addr is set for these signals.
    unsafe { (*info).si_addr() as usize }
}

/// The faulting address of a SIGSEGV or SIGBUS.
///
/// # Safety
/// `info` is the `siginfo_t` the kernel passed to an `SA_SIGINFO` handler.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(super) unsafe fn fault_addr(info: *const libc::siginfo_t) -> usize {
    // SAFETY: the caller's promise; si_addr is set for these signals.
    unsafe { (*info).si_addr as usize }
}

/// Write `msg` to standard error from a signal handler, and abort.
pub(super) fn die(msg: &[u8]) -> ! {
    // SAFETY: write(2) and abort(3) are async-signal-safe; `msg` is valid.
    unsafe {
        libc::write(libc::STDERR_FILENO, msg.as_ptr().cast(), msg.len());
        libc::abort()
    }
}

/// An alternate signal stack for the calling thread, made only if it has
/// none (std gives its threads one when it reports overflows itself, but a
/// thread started from C may have none), so the overflow report never runs
/// on the stack that overflowed. Removed and unmapped when dropped.
#[derive(Debug)]
pub(crate) struct SignalStack {
    mapped: Option<(usize, usize)>,
}

impl SignalStack {
    pub(crate) fn ensure() -> SignalStack {
        const LEN: usize = 64 * 1024;
        // SAFETY: a zeroed stack_t is a valid out-parameter; sigaltstack only
        // reads the current setting here.
        let mut old: libc::stack_t = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        if unsafe { libc::sigaltstack(std::ptr::null(), &mut old) } != 0 || old.ss_flags & libc::SS_DISABLE == 0 {
            return SignalStack { mapped: None };
        }
        // SAFETY: a new private anonymous mapping at an address the kernel picks.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                LEN,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANON,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return SignalStack { mapped: None };
        }
        let new = libc::stack_t { ss_sp: p, ss_flags: 0, ss_size: LEN };
        // SAFETY: `new` describes the mapping just made, which this guard
        // keeps until it removes the setting again.
        if unsafe { libc::sigaltstack(&new, std::ptr::null_mut()) } != 0 {
            // SAFETY: the mapping was made above and is not in use.
            unsafe { libc::munmap(p, LEN) };
            return SignalStack { mapped: None };
        }
        SignalStack { mapped: Some((p as usize, LEN)) }
    }
}

impl Drop for SignalStack {
    fn drop(&mut self) {
        if let Some((p, len)) = self.mapped {
            let off = libc::stack_t { ss_sp: std::ptr::null_mut(), ss_flags: libc::SS_DISABLE, ss_size: 0 };
            // SAFETY: disable the alternate stack this guard set, then unmap
            // it; no handler runs on it once disabled.
            unsafe {
                libc::sigaltstack(&off, std::ptr::null_mut());
                libc::munmap(p as *mut libc::c_void, len);
            }
        }
    }
}
