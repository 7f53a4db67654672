//! Green-thread stacks: carved from large reserved regions, made accessible
//! only while their green thread runs or has run recently, and compacted
//! when it stays parked.
//!
//! Each stack is a *slot* of a region: one guard page, then the stack. A
//! region is reserved once as inaccessible address space (`PROT_NONE`, no
//! commit charge), which the kernel keeps as a single memory area (VMA).
//! Making a slot's stack accessible splits that area, at a cost of two
//! areas (the stack, and the guard that now stands apart below it); giving
//! it back maps a fresh inaccessible range over it, which drops its pages
//! and merges it into the region again. So the areas a process needs scale
//! with the green threads that are *hot* (running, queued, or parked for
//! less than the pool's compaction threshold), not with all of them, and a
//! million parked green threads fit under Linux's default
//! `vm.max_map_count` of 65 530 (`../shared/reference/green-stacks.md` has
//! the measurements behind this design).
//!
//! *Compaction* parks a stack for a long time: its live frames (from the
//! stack pointer at suspension to the top) are copied to the heap and every
//! page is dropped; on resume the stack is made accessible again and the
//! frames are copied back to the same addresses, so pointers into the stack
//! stay valid. A thread that touches a compacted stack anyway (a scoped
//! thread writing to a local the green thread lent it) faults, and the
//! fault handler restores the stack under it first (see [`fault`]).
//!
//! Everything here is process-wide: stacks of one size share one arena,
//! whatever pool uses them.
//!
//! # Locks
//! `Arena::free` guards an arena's free slots and its regions; `ARENAS`
//! the list of arenas; `REGISTER` the order in which regions enter the
//! fault handler's table. They never nest, except `Arena::free` around
//! `REGISTER` when a region is added. A slot's state word is the lock-free
//! protocol between the worker that owns a slot and the fault handler
//! (`slot.rs`, with its loom model).

mod fault;
mod slot;
mod sys;

pub(crate) use sys::SignalStack;

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering::AcqRel, Ordering::Acquire};
use std::sync::{Mutex, OnceLock};

use corosensei::stack::StackPointer;

use slot::{Claim, SlotState};

/// The largest stack a green thread may reserve: 1 GiB. Larger requests
/// are an error at [`build`](crate::PoolBuilder::build).
pub const MAX_STACK_SIZE: usize = 1 << 30;

/// Bytes below the stack pointer recorded at suspension that are kept
/// with the live frames: the suspension's own frame and the registers the
/// stack switch pushes. Measured on x86_64 (by finding the stack pointer
/// corosensei saved): 7 bytes below the marker in release builds, 31 in
/// debug ones; the rest is room for other targets' larger register saves.
const BELOW_MARKER: usize = 256;

/// At most this many regions are ever reserved (the fault handler's table).
const MAX_REGIONS: usize = 8192;

/// A region's reserved size, at least; a region holds whole slots.
const REGION_BYTES: usize = 1 << 30;

pub(crate) fn page_size() -> usize {
    static PAGE: OnceLock<usize> = OnceLock::new();
    // SAFETY: sysconf has no preconditions.
    *PAGE.get_or_init(|| unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as usize)
}

/// The slot size for a stack of `bytes`: a guard page plus the stack,
/// rounded up to pages; an error for sizes beyond [`MAX_STACK_SIZE`].
pub(crate) fn slot_len(bytes: usize) -> io::Result<usize> {
    if bytes > MAX_STACK_SIZE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("green thread stack of {bytes} bytes: at most {MAX_STACK_SIZE} bytes may be reserved"),
        ));
    }
    let page = page_size();
    let bytes = bytes.max(corosensei::stack::MIN_STACK_SIZE);
    Ok(bytes.div_ceil(page) * page + page)
}

/// One reservation of address space, cut into equal slots.
pub(crate) struct Region {
    base: usize,
    slot_len: usize,
    slots: Box<[SlotState]>,
}

impl Region {
    fn len(&self) -> usize {
        self.slots.len() * self.slot_len
    }

    fn contains(&self, addr: usize) -> bool {
        addr >= self.base && addr - self.base < self.len()
    }

    /// The slot holding `addr` and the offset of `addr` in it.
    fn locate(&self, addr: usize) -> (usize, usize) {
        let off = addr - self.base;
        (off / self.slot_len, off % self.slot_len)
    }

    /// The accessible part of slot `i`: above its guard page.
    fn stack_range(&self, i: usize) -> (usize, usize) {
        let low = self.base + i * self.slot_len + page_size();
        (low, self.base + (i + 1) * self.slot_len)
    }
}

/// The stacks of one size.
struct Arena {
    slot_len: usize,
    free: Mutex<Slots>,
}

#[derive(Default)]
struct Slots {
    /// Slots given back, inaccessible.
    free: Vec<(&'static Region, u32)>,
    /// The newest region and its first slot never handed out.
    fresh: Option<(&'static Region, usize)>,
}

fn arena(slot_len: usize) -> &'static Arena {
    static ARENAS: Mutex<Vec<&'static Arena>> = Mutex::new(Vec::new());
    let mut arenas = ARENAS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(a) = arenas.iter().find(|a| a.slot_len == slot_len) {
        return a;
    }
    let a: &'static Arena = Box::leak(Box::new(Arena { slot_len, free: Mutex::new(Slots::default()) }));
    arenas.push(a);
    a
}

impl Arena {
    fn reserve(&'static self) -> io::Result<Stack> {
        let mut slots = self.free.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((region, i)) = slots.free.pop() {
            return Ok(Stack { region, slot: i as usize });
        }
        if let Some((region, next)) = slots.fresh
            && next < region.slots.len()
        {
            slots.fresh = Some((region, next + 1));
            return Ok(Stack { region, slot: next });
        }
        let region = new_region(self.slot_len)?;
        slots.fresh = Some((region, 1));
        Ok(Stack { region, slot: 0 })
    }

    fn give_back(&self, region: &'static Region, slot: usize) {
        self.free.lock().unwrap_or_else(|e| e.into_inner()).free.push((region, slot as u32));
    }
}

/// Reserve a new region and enter it in the fault handler's table.
fn new_region(slot_len: usize) -> io::Result<&'static Region> {
    static REGISTER: Mutex<()> = Mutex::new(());
    let count = (REGION_BYTES / slot_len).clamp(1, u32::MAX as usize);
    let len = count * slot_len;
    let base = sys::reserve(len)?;
    let slots = (0..count).map(|_| SlotState::new()).collect();
    let region: &'static Region = Box::leak(Box::new(Region { base, slot_len, slots }));
    let _order = REGISTER.lock().unwrap_or_else(|e| e.into_inner());
    if !fault::register(region) {
        // SAFETY: the range was reserved just above and nothing uses it.
        unsafe { sys::release(base, len) };
        return Err(io::Error::new(io::ErrorKind::OutOfMemory, "no room left for another green stack region"));
    }
    Ok(region)
}

/// Stacks accessible right now, across the process.
static HOT_STACKS: AtomicUsize = AtomicUsize::new(0);

/// How many stacks may be hot before workers compact parked ones early:
/// three eighths of the kernel's area limit (two areas each: three
/// quarters of the limit), leaving the rest to the program. On a stock
/// Linux that is 24 573 hot stacks: an echo server's 20 000 busy green
/// threads stay hot.
pub(crate) fn hot_budget() -> usize {
    static BUDGET: OnceLock<usize> = OnceLock::new();
    *BUDGET.get_or_init(|| sys::max_map_count() * 3 / 8)
}

/// Whether more stacks are hot than the budget allows.
pub(crate) fn over_budget() -> bool {
    HOT_STACKS.load(Acquire) > hot_budget()
}

/// A green thread's stack: one slot of a region. Reserved at spawn,
/// accessible from the first run ([`Stack::commit`]); dropping it gives the
/// slot back.
pub(crate) struct Stack {
    region: &'static Region,
    slot: usize,
}

// SAFETY: a `Stack` is an address range and the index of its state word;
// every access to its state is atomic, and its memory is touched only by
// the green thread running on it (or restored under the fault protocol).
unsafe impl Send for Stack {}

impl Stack {
    /// Reserve a stack of `slot_len` (from [`slot_len`]): address space
    /// only, no memory and no kernel area yet.
    pub(crate) fn reserve(slot_len: usize) -> io::Result<Stack> {
        arena(slot_len).reserve()
    }

    fn state(&self) -> &'static SlotState {
        &self.region.slots[self.slot]
    }

    /// The usable part of the slot, above its guard page.
    pub(crate) fn range(&self) -> (usize, usize) {
        self.region.stack_range(self.slot)
    }

    /// Whether the stack is accessible now.
    pub(crate) fn is_hot(&self) -> bool {
        self.state().is_hot()
    }

    /// Make a reserved stack accessible, before its green thread first runs.
    pub(crate) fn commit(&self) -> io::Result<()> {
        let (low, high) = self.range();
        // SAFETY: the range is this slot's stack, owned by `self`; nothing
        // runs on it yet.
        unsafe { sys::make_accessible(low, high - low)? };
        self.state().committed();
        HOT_STACKS.fetch_add(1, AcqRel);
        Ok(())
    }

    /// Copy the live frames (from `sp`, the stack pointer recorded at the
    /// last suspension, to the top) to the heap and drop every page: the
    /// stack then costs no memory and no kernel area. Only the owning
    /// worker calls this, on a parked green thread's stack. Returns the
    /// bytes kept; on failure the stack stays as it was.
    pub(crate) fn compact(&self, sp: usize) -> io::Result<usize> {
        let (low, high) = self.range();
        let from = sp.saturating_sub(BELOW_MARKER).max(low);
        let st = self.state();
        st.begin_compact();
        // From here another thread's write faults and waits in the handler
        // until the frames are copied out; reads go on.
        // SAFETY: the slot's stack range, owned by `self`.
        if let Err(e) = unsafe { sys::make_read_only(low, high - low) } {
            st.abort_compact();
            return Err(e);
        }
        // SAFETY: [from, high) is inside the stack, readable, and no one can
        // write to it while it is read-only.
        let saved: Box<[u8]> = unsafe { std::slice::from_raw_parts(from as *const u8, high - from) }.into();
        // SAFETY: as above; the frames are on the heap now.
        if let Err(e) = unsafe { sys::discard(low, high - low) } {
            // SAFETY: undo the read-only step; the pages are intact.
            let _ = unsafe { sys::make_accessible(low, high - low) };
            st.abort_compact();
            return Err(e);
        }
        let len = st.finish_compact(saved);
        HOT_STACKS.fetch_sub(1, AcqRel);
        Ok(len)
    }

    /// Make the stack accessible again with its frames where they were,
    /// before its green thread resumes; frees the heap copy. Only the
    /// owning worker calls this.
    pub(crate) fn restore(&self) -> io::Result<()> {
        loop {
            match self.state().claim() {
                Claim::Won => {
                    // SAFETY: we won the slot's restoration.
                    unsafe { restore_slot(self.region, self.slot)? };
                    break;
                }
                // Another thread's fault restores it: wait for it to finish.
                Claim::Wait => std::hint::spin_loop(),
                Claim::Hot | Claim::Free => break,
            }
        }
        // The heap copy is ours again: the slot is hot.
        drop(self.state().take_saved());
        Ok(())
    }
}

/// Copy a compacted slot's frames back, and mark it hot.
///
/// # Safety
/// The caller moved the slot from `COMPACTED` to `RESTORING` itself. Safe
/// to call from a signal handler: two syscalls and a copy.
unsafe fn restore_slot(region: &Region, slot: usize) -> io::Result<()> {
    let st = &region.slots[slot];
    let (low, high) = region.stack_range(slot);
    // SAFETY: the slot's own range; no one runs on it while it is restoring.
    if let Err(e) = unsafe { sys::make_accessible(low, high - low) } {
        st.abandon_restore();
        return Err(e);
    }
    let (p, len) = st.saved();
    // SAFETY: `p` holds `len` saved bytes from the top of this stack, and
    // [high - len, high) is accessible again.
    unsafe { std::ptr::copy_nonoverlapping(p, (high - len) as *mut u8, len) };
    HOT_STACKS.fetch_add(1, AcqRel);
    st.finish_restore();
    Ok(())
}

/// Give back the slots of hot stacks nothing runs on any more (spares of
/// finished green threads), dropping their pages: one call for each run of
/// adjacent slots, since every call that drops pages interrupts the other
/// cores running this process to flush their TLBs. Stacks that are not hot
/// go back one by one, as a drop would.
pub(crate) fn release(mut stacks: Vec<Stack>) {
    stacks.sort_unstable_by_key(|s| (s.region.base, s.slot));
    let mut rest = stacks.into_iter().peekable();
    while let Some(first) = rest.next() {
        if !first.is_hot() {
            drop(first);
            continue;
        }
        let mut run = vec![first];
        while let Some(next) = rest.peek() {
            let last = run.last().expect("a run is never empty");
            if !(std::ptr::eq(next.region, last.region) && next.slot == last.slot + 1 && next.is_hot()) {
                break;
            }
            run.push(rest.next().expect("peeked"));
        }
        let low = run[0].range().0;
        let high = run.last().expect("a run is never empty").range().1;
        // SAFETY: the slots' stacks and the guard pages between them, all
        // owned by `run`; nothing runs on them any more, and the guard pages
        // stay inaccessible.
        if unsafe { sys::discard(low, high - low) }.is_err() {
            // Each on its own, then; a slot that fails stays out of use.
            drop(run);
            continue;
        }
        HOT_STACKS.fetch_sub(run.len(), AcqRel);
        for stack in run {
            stack.state().freed();
            // Freed now: its drop only gives the slot back.
            drop(stack);
        }
    }
}

impl Drop for Stack {
    /// Give the slot back, inaccessible and without pages.
    fn drop(&mut self) {
        // A compacted stack of a green thread that never resumed: bring it
        // back first, so the slot is in a known state.
        if self.restore().is_err() {
            // It stays out of use: never hand out a slot in an unknown state.
            return;
        }
        let st = self.state();
        if st.is_hot() {
            let (low, high) = self.range();
            // SAFETY: the slot's own range, which nothing runs on any more.
            if unsafe { sys::discard(low, high - low) }.is_err() {
                return;
            }
            HOT_STACKS.fetch_sub(1, AcqRel);
            st.freed();
        }
        debug_assert!(st.is_free());
        arena(self.region.slot_len).give_back(self.region, self.slot);
    }
}

impl Stack {
    /// The bounds a coroutine runs within.
    ///
    /// # Safety
    /// The coroutine made on them must end, or be forgotten together with
    /// this `Stack`, before this `Stack` drops.
    pub(crate) unsafe fn frames(&self) -> Frames {
        let (low, high) = self.range();
        Frames { low: low - page_size(), high }
    }
}

/// A coroutine's view of a [`Stack`] it does not own: its bounds.
pub(crate) struct Frames {
    low: usize,
    high: usize,
}

// SAFETY: `high` is the top of a slot, `low` its bottom including the guard
// page, which stays inaccessible while the stack is in use; both are
// page-aligned, so aligned to `STACK_ALIGNMENT`, and the stack between them
// is at least `MIN_STACK_SIZE` (see `slot_len`). `Stack::frames`' caller
// keeps the slot alive for as long as the coroutine.
unsafe impl corosensei::stack::Stack for Frames {
    fn base(&self) -> StackPointer {
        StackPointer::new(self.high).expect("a stack above address 0")
    }

    fn limit(&self) -> StackPointer {
        StackPointer::new(self.low).expect("a stack above address 0")
    }
}

impl fmt::Debug for Stack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (low, high) = self.range();
        f.debug_struct("Stack")
            .field("low", &format_args!("{low:#x}"))
            .field("high", &format_args!("{high:#x}"))
            .finish()
    }
}

/// Ask the core to start loading the top of a hot suspended stack (`sp`,
/// its stack pointer at the suspension) into cache: the registers the
/// switch saved just below `sp`, and the frames its resumption returns
/// through above it (about 800 bytes for a socket wait).
#[inline]
pub(crate) fn prefetch(sp: usize) {
    prefetch_lines(sp.wrapping_sub(128) as *const u8, 16);
}

/// Ask the core to start loading `lines` cache lines from `at`. A hint
/// only: it never faults, whatever `at` is.
#[inline]
pub(crate) fn prefetch_lines(at: *const u8, lines: usize) {
    #[cfg(target_arch = "x86_64")]
    for line in 0..lines {
        let at = at.wrapping_add(line * 64).cast::<i8>();
        // SAFETY: SSE is part of every x86_64 target; a prefetch reads
        // nothing the program sees and never faults, on any address.
        unsafe { std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(at) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (at, lines);
}

/// The stack pointer of the green thread suspending now: the address of a
/// local in a frame of its own, just above the suspension's frames.
#[inline(never)]
pub(crate) fn marker() -> usize {
    let here = 0u8;
    std::hint::black_box(&here) as *const u8 as usize
}

/// How deep the running green thread's stack has ever been: the distance
/// from the top to the lowest byte that is not zero. Stacks start as fresh
/// zero pages; one taken over from a finished green thread may read deeper
/// than its new owner went.
pub(crate) fn high_water((low, high): (usize, usize)) -> usize {
    let words = (high - low) / 8;
    // SAFETY: the running green thread's own stack, hot and readable from
    // `low` to `high` while it runs (we run on it).
    let stack = unsafe { std::slice::from_raw_parts(low as *const u64, words) };
    let untouched = stack.iter().take_while(|w| **w == 0).count();
    high - low - untouched * 8
}
