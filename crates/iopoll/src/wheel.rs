//! A hierarchical timing wheel.
//!
//! Six levels of 64 slots; a slot on level `l` spans `64^l` ticks, so the
//! wheel covers `64^6` ticks (about 2.2 years at 1 ms) and anything further
//! is parked in the last level and re-filed when its slot comes round.
//! Entries live in one slab and are threaded through intrusive doubly linked
//! lists, so arming, cancelling and moving a timer are O(1) and allocate
//! nothing once the slab has grown. Expiry cascades an entry down one level
//! at a time, at most once per level over its whole life.
//!
//! The wheel is a plain data structure: the runtime owns the lock and the
//! clock, and calls [`Wheel::advance`] with the current tick.

const LEVELS: usize = 6;
const SLOT_BITS: u32 = 6;
const SLOTS: u64 = 1 << SLOT_BITS;
/// Ticks the wheel can hold without re-filing.
const SPAN: u64 = 1 << (SLOT_BITS * LEVELS as u32);
const NIL: u32 = u32::MAX;

/// Names one armed entry. Stale keys (the entry fired or was cancelled) are
/// recognised by their generation and never touch a newer entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Key {
    index: u32,
    generation: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Free,
    /// Already due when armed: fires on the next advance.
    Due,
    Slot {
        level: u8,
        slot: u8,
    },
}

#[derive(Debug)]
struct Entry<T> {
    generation: u32,
    place: Place,
    when: u64,
    prev: u32,
    next: u32,
    value: Option<T>,
}

#[derive(Debug, Clone, Copy)]
struct List {
    head: u32,
}

impl List {
    const EMPTY: List = List { head: NIL };
}

#[derive(Debug)]
struct Level {
    occupied: u64,
    slots: [List; SLOTS as usize],
}

/// A timing wheel holding values of type `T` (the runtime stores callbacks).
#[derive(Debug)]
pub(crate) struct Wheel<T> {
    /// Every tick before this one has been processed.
    elapsed: u64,
    entries: Vec<Entry<T>>,
    free: u32,
    levels: [Level; LEVELS],
    due: List,
    len: usize,
}

impl<T> Default for Wheel<T> {
    fn default() -> Self {
        Self::new(0)
    }
}

impl<T> Wheel<T> {
    /// An empty wheel whose clock starts at tick `now`.
    pub(crate) fn new(now: u64) -> Self {
        Wheel {
            elapsed: now,
            entries: Vec::new(),
            free: NIL,
            levels: std::array::from_fn(|_| Level { occupied: 0, slots: [List::EMPTY; SLOTS as usize] }),
            due: List::EMPTY,
            len: 0,
        }
    }

    /// Number of armed entries.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Arm `value` to fire once the wheel reaches tick `when`.
    pub(crate) fn insert(&mut self, when: u64, value: T) -> Key {
        let index = if self.free != NIL {
            let index = self.free;
            let entry = &mut self.entries[index as usize];
            self.free = entry.next;
            entry.when = when;
            entry.value = Some(value);
            index
        } else {
            let index = u32::try_from(self.entries.len()).expect("timing wheel holds at most u32::MAX - 1 timers");
            assert!(index != NIL, "timing wheel holds at most u32::MAX - 1 timers");
            self.entries.push(Entry {
                generation: 0,
                place: Place::Free,
                when,
                prev: NIL,
                next: NIL,
                value: Some(value),
            });
            index
        };
        self.len += 1;
        self.file(index);
        Key { index, generation: self.entries[index as usize].generation }
    }

    /// Disarm the entry; `None` if it already fired or was cancelled.
    pub(crate) fn remove(&mut self, key: Key) -> Option<T> {
        if !self.is_armed(key) {
            return None;
        }
        self.unlink(key.index);
        Some(self.release(key.index))
    }

    /// Move an armed entry to tick `when`; false if it already fired or was
    /// cancelled.
    pub(crate) fn reset(&mut self, key: Key, when: u64) -> bool {
        if !self.is_armed(key) {
            return false;
        }
        self.unlink(key.index);
        self.entries[key.index as usize].when = when;
        self.file(key.index);
        true
    }

    /// Whether `key` names an entry that is still armed.
    pub(crate) fn is_armed(&self, key: Key) -> bool {
        self.entries.get(key.index as usize).is_some_and(|e| e.generation == key.generation && e.place != Place::Free)
    }

    /// The tick at which the wheel next has work: exact on the lowest level,
    /// the start of the slot (never later than any entry in it) above that.
    pub(crate) fn next_expiration(&self) -> Option<u64> {
        if self.due.head != NIL {
            return Some(self.elapsed);
        }
        self.next_slot().map(|(_, _, at)| at)
    }

    /// Advance the clock to tick `now` and hand every entry whose tick has
    /// come to `fire`. Entries not yet due are cascaded to lower levels.
    pub(crate) fn advance(&mut self, now: u64, mut fire: impl FnMut(T)) {
        while self.due.head != NIL {
            let index = self.due.head;
            self.unlink(index);
            fire(self.release(index));
        }
        while let Some((level, slot, at)) = self.next_slot() {
            if at > now {
                break;
            }
            self.elapsed = self.elapsed.max(at);
            let lvl = &mut self.levels[level];
            let mut index = std::mem::replace(&mut lvl.slots[slot], List::EMPTY).head;
            lvl.occupied &= !(1 << slot);
            while index != NIL {
                let next = self.entries[index as usize].next;
                if self.entries[index as usize].when <= now {
                    fire(self.release(index));
                } else {
                    self.file(index);
                }
                index = next;
            }
        }
        self.elapsed = self.elapsed.max(now);
    }

    /// The earliest occupied slot: (level, slot, tick at which it starts).
    fn next_slot(&self) -> Option<(usize, usize, u64)> {
        for (level, lvl) in self.levels.iter().enumerate() {
            if lvl.occupied == 0 {
                continue;
            }
            let shift = SLOT_BITS * level as u32;
            let slot_span = 1u64 << shift;
            let level_span = slot_span << SLOT_BITS;
            let here = (self.elapsed >> shift) % SLOTS;
            let ahead = u64::from(lvl.occupied.rotate_right(here as u32).trailing_zeros());
            let slot = (here + ahead) % SLOTS;
            let level_start = self.elapsed & !(level_span - 1);
            let mut at = level_start + slot * slot_span;
            if at <= self.elapsed && level > 0 || at < self.elapsed {
                // Behind the hand: that slot belongs to the next rotation.
                at += level_span;
            }
            return Some((level, slot as usize, at));
        }
        None
    }

    /// Put an unlinked entry into the list its tick belongs to.
    fn file(&mut self, index: u32) {
        let when = self.entries[index as usize].when;
        if when <= self.elapsed {
            self.entries[index as usize].place = Place::Due;
            let due = self.due;
            self.due = self.push(due, index);
            return;
        }
        // Entries too far out are filed at the wheel's horizon and re-filed
        // when that slot comes round; `advance` re-checks `when` before firing.
        let when = when.min(self.elapsed + SPAN - 1);
        let level = level_for(self.elapsed, when);
        let slot = ((when >> (SLOT_BITS * level as u32)) % SLOTS) as usize;
        self.entries[index as usize].place = Place::Slot { level: level as u8, slot: slot as u8 };
        let list = self.levels[level].slots[slot];
        self.levels[level].slots[slot] = self.push(list, index);
        self.levels[level].occupied |= 1 << slot;
    }

    fn push(&mut self, list: List, index: u32) -> List {
        let entry = &mut self.entries[index as usize];
        entry.prev = NIL;
        entry.next = list.head;
        if list.head != NIL {
            self.entries[list.head as usize].prev = index;
        }
        List { head: index }
    }

    /// Take an entry out of whatever list holds it.
    fn unlink(&mut self, index: u32) {
        let Entry { prev, next, place, .. } = self.entries[index as usize];
        if next != NIL {
            self.entries[next as usize].prev = prev;
        }
        if prev != NIL {
            self.entries[prev as usize].next = next;
            return;
        }
        match place {
            Place::Due => self.due.head = next,
            Place::Slot { level, slot } => {
                let lvl = &mut self.levels[level as usize];
                lvl.slots[slot as usize].head = next;
                if next == NIL {
                    lvl.occupied &= !(1 << slot);
                }
            }
            Place::Free => unreachable!("unlinking a free wheel entry"),
        }
    }

    /// Return an unlinked entry to the free list, yielding its value.
    fn release(&mut self, index: u32) -> T {
        let free = self.free;
        let entry = &mut self.entries[index as usize];
        entry.place = Place::Free;
        entry.generation = entry.generation.wrapping_add(1);
        entry.next = free;
        self.free = index;
        self.len -= 1;
        entry.value.take().expect("armed wheel entry holds a value")
    }
}

/// The level whose slots are fine enough to separate `when` from `elapsed`:
/// the highest 6-bit digit in which they differ.
fn level_for(elapsed: u64, when: u64) -> usize {
    let masked = ((elapsed ^ when) | (SLOTS - 1)).min(SPAN - 1);
    let significant = 63 - masked.leading_zeros();
    (significant / SLOT_BITS) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(wheel: &mut Wheel<u64>, now: u64) -> Vec<u64> {
        let mut out = Vec::new();
        wheel.advance(now, |v| out.push(v));
        out.sort_unstable();
        out
    }

    #[test]
    fn fires_each_entry_at_its_tick_never_before() {
        let whens: Vec<u64> = vec![1, 2, 63, 64, 65, 100, 4095, 4096, 4097, 262_143, 262_144, 300_000, 16_777_300];
        let mut wheel = Wheel::new(0);
        for &w in &whens {
            wheel.insert(w, w);
        }
        // Step through time one tick at a time near each boundary, and in
        // big jumps elsewhere, checking nothing fires early or late.
        let mut fired = Vec::new();
        let mut now = 0;
        while wheel.len() > 0 {
            let next = wheel.next_expiration().unwrap();
            assert!(next >= now, "next expiration {next} went back before {now}");
            // Stop just short of it: nothing may fire.
            if next > now + 1 {
                assert!(drain(&mut wheel, next - 1).iter().all(|&w| w < next));
            }
            now = next;
            for w in drain(&mut wheel, now) {
                assert!(w <= now, "fired {w} early at {now}");
                fired.push((w, now));
            }
        }
        for (w, at) in &fired {
            assert_eq!(w, at, "entry {w} fired late at {at}");
        }
        assert_eq!(fired.len(), whens.len());
    }

    #[test]
    fn cancel_and_reset() {
        let mut wheel = Wheel::new(10);
        let a = wheel.insert(20, 1u64);
        let b = wheel.insert(5000, 2);
        assert_eq!(wheel.remove(a), Some(1));
        assert_eq!(wheel.remove(a), None, "double cancel");
        assert!(wheel.reset(b, 30));
        assert_eq!(drain(&mut wheel, 29), Vec::<u64>::new());
        assert_eq!(drain(&mut wheel, 30), vec![2]);
        assert!(!wheel.reset(b, 40), "reset after firing");
        assert_eq!(wheel.len(), 0);
    }

    #[test]
    fn stale_keys_do_not_touch_reused_entries() {
        let mut wheel = Wheel::new(0);
        let a = wheel.insert(5, 1u64);
        assert_eq!(drain(&mut wheel, 5), vec![1]);
        let b = wheel.insert(7, 2);
        assert_eq!(a.index, b.index, "slab slot reused");
        assert_eq!(wheel.remove(a), None);
        assert!(!wheel.reset(a, 100));
        assert_eq!(drain(&mut wheel, 7), vec![2]);
    }

    #[test]
    fn past_and_far_future_entries() {
        let mut wheel = Wheel::new(1000);
        wheel.insert(3, 1u64);
        let far = 1000 + SPAN * 3 + 17;
        wheel.insert(far, 2);
        assert_eq!(wheel.next_expiration(), Some(1000));
        assert_eq!(drain(&mut wheel, 1000), vec![1]);
        assert_eq!(drain(&mut wheel, far - 1), Vec::<u64>::new());
        assert_eq!(drain(&mut wheel, far), vec![2]);
    }

    #[test]
    fn large_jumps_fire_everything_due() {
        let mut wheel = Wheel::new(0);
        for i in 0..10_000u64 {
            wheel.insert(i * 37 + 1, i);
        }
        let fired = drain(&mut wheel, 200_000);
        assert_eq!(fired.len(), 5406); // i*37+1 <= 200_000
        assert!(fired.iter().all(|&i| i * 37 < 200_000));
        assert_eq!(drain(&mut wheel, u64::from(u32::MAX)).len(), 10_000 - 5406);
    }

    #[test]
    fn randomised_against_a_sorted_model() {
        // xorshift: deterministic, no dev-dependency needed.
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut rand = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut wheel = Wheel::new(0);
        let mut model: Vec<(u64, Key, u64)> = Vec::new();
        let mut now = 0u64;
        for id in 0..20_000u64 {
            match rand() % 4 {
                0 | 1 => {
                    let when = now + rand() % [10, 5_000, 400_000, 30_000_000][(rand() % 4) as usize];
                    let key = wheel.insert(when, id);
                    model.push((when, key, id));
                }
                2 if !model.is_empty() => {
                    let i = (rand() as usize) % model.len();
                    let (_, key, v) = model.swap_remove(i);
                    assert_eq!(wheel.remove(key), Some(v));
                }
                _ if !model.is_empty() => {
                    let i = (rand() as usize) % model.len();
                    let when = now + rand() % 100_000;
                    assert!(wheel.reset(model[i].1, when));
                    model[i].0 = when;
                }
                _ => {}
            }
            if id % 7 == 0 {
                now += rand() % 3_000;
                let fired = drain(&mut wheel, now);
                let mut expect: Vec<u64> = model.iter().filter(|e| e.0 <= now).map(|e| e.2).collect();
                expect.sort_unstable();
                model.retain(|e| e.0 > now);
                assert_eq!(fired, expect, "at tick {now}");
                let earliest = model.iter().map(|e| e.0).min();
                if let (Some(e), Some(n)) = (earliest, wheel.next_expiration()) {
                    assert!(n <= e, "next_expiration {n} later than earliest entry {e}");
                }
            }
        }
    }
}
