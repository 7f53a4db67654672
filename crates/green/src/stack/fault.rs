//! The fault handler: what a touch of an inaccessible stack page means.
//!
//! - In a slot's guard page it is a stack overflow of the green thread
//!   running there: the process ends with a message that says so, as std's
//!   threads end ("has overflowed its stack"), never corrupting memory.
//! - In a compacted stack it is another thread reaching into a parked green
//!   thread's frames (a local lent to a scoped thread): the handler copies
//!   the frames back, and the access is retried and succeeds.
//! - Anywhere else it is none of reseau's business: the handler that was
//!   installed before runs (std's own overflow report, or the default
//!   action).
//!
//! The table of regions is append-only and lock-free to read: the handler
//! may run at any instruction of any thread.

use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering::Acquire, Ordering::Release};
use std::sync::{Once, OnceLock};

use super::slot::Claim;
use super::sys::{self, FAULT_SIGNALS};
use super::{MAX_REGIONS, Region, page_size, restore_slot};

static REGIONS: [AtomicPtr<Region>; MAX_REGIONS] = [const { AtomicPtr::new(std::ptr::null_mut()) }; MAX_REGIONS];
static COUNT: AtomicUsize = AtomicUsize::new(0);

/// The handlers that were there before ours, for each of `FAULT_SIGNALS`.
struct Previous([libc::sigaction; 2]);
// SAFETY: plain data (handler addresses, masks and flags), written once
// before any reader can see it and never changed.
unsafe impl Sync for Previous {}
// SAFETY: as for Sync.
unsafe impl Send for Previous {}
static PREVIOUS: OnceLock<Previous> = OnceLock::new();

/// Enter `region` in the table (installing the handler on first use); false
/// when the table is full. The caller serialises calls.
pub(super) fn register(region: &'static Region) -> bool {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(install);
    let n = COUNT.load(Acquire);
    if n == MAX_REGIONS {
        return false;
    }
    REGIONS[n].store((region as *const Region).cast_mut(), Release);
    COUNT.store(n + 1, Release);
    true
}

fn install() {
    // Initialised here, not in the handler.
    let _ = page_size();
    // SAFETY: zeroed sigaction structs are valid "no handler" values; each
    // sigaction call installs our handler and returns the one before it.
    let previous = unsafe {
        let mut ours: libc::sigaction = std::mem::zeroed();
        ours.sa_sigaction = handler as *const () as libc::sighandler_t;
        ours.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        libc::sigemptyset(&mut ours.sa_mask);
        let mut prev = [std::mem::zeroed::<libc::sigaction>(); 2];
        // Recorded before the handler can run, so it always finds them.
        for (i, sig) in FAULT_SIGNALS.iter().enumerate() {
            libc::sigaction(*sig, std::ptr::null(), &mut prev[i]);
        }
        let _ = PREVIOUS.set(Previous(prev));
        for sig in FAULT_SIGNALS {
            libc::sigaction(sig, &ours, std::ptr::null_mut());
        }
        PREVIOUS.get()
    };
    debug_assert!(previous.is_some());
}

/// The region holding `addr`, if any.
fn lookup(addr: usize) -> Option<&'static Region> {
    let n = COUNT.load(Acquire);
    REGIONS[..n].iter().find_map(|r| {
        // SAFETY: entries below COUNT point to leaked, never-freed regions.
        let r = unsafe { &*r.load(Acquire) };
        r.contains(addr).then_some(r)
    })
}

const OVERFLOW: &[u8] = b"\nreseau-green: a green thread has overflowed its stack \
(raise green::PoolBuilder::stack_size)\nfatal runtime error: stack overflow, aborting\n";

extern "C" fn handler(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo_t to an SA_SIGINFO handler.
    let addr = unsafe { sys::fault_addr(info) };
    if let Some(region) = lookup(addr) {
        let (slot, offset) = region.locate(addr);
        if offset < page_size() {
            sys::die(OVERFLOW);
        }
        if settle(region, slot) {
            // The frames are back: retry the access.
            return;
        }
    }
    // SAFETY: `info` and `ctx` are the kernel's, passed on unchanged.
    unsafe { chain(sig, info, ctx) }
}

/// Wait out or perform the restoration of a slot another thread touched.
/// True if the access can be retried.
fn settle(region: &Region, slot: usize) -> bool {
    let st = &region.slots[slot];
    let mut waited = false;
    loop {
        match st.claim() {
            // SAFETY: we won the slot's restoration.
            Claim::Won => return unsafe { restore_slot(region, slot) }.is_ok(),
            Claim::Wait => {
                waited = true;
                std::hint::spin_loop();
            }
            // Hot again after a wait: the access will succeed now. Hot at
            // first look: the fault is not about compaction.
            Claim::Hot => return waited,
            Claim::Free => return false,
        }
    }
}

/// Hand the fault to the handler that was there before ours.
///
/// # Safety
/// The arguments are the kernel's for this signal.
unsafe fn chain(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let Some(prev) = PREVIOUS.get() else { return };
    let i = FAULT_SIGNALS.iter().position(|s| *s == sig).unwrap_or(0);
    let prev = &prev.0[i];
    let h = prev.sa_sigaction;
    if h == libc::SIG_DFL || h == libc::SIG_IGN {
        // Put the default action back; returning re-runs the access, which
        // faults again and ends the process as it would have without us.
        // SAFETY: a zeroed sigaction with SIG_DFL is valid.
        unsafe {
            let mut dfl: libc::sigaction = std::mem::zeroed();
            dfl.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(sig, &dfl, std::ptr::null_mut());
        }
    } else if prev.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: an SA_SIGINFO handler has this signature.
        let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            unsafe { std::mem::transmute::<libc::sighandler_t, _>(h) };
        f(sig, info, ctx);
    } else {
        // SAFETY: a plain handler has this signature.
        let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute::<libc::sighandler_t, _>(h) };
        f(sig);
    }
}
