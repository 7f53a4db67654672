//! Scheduling a race between a blocking call and a close, the same way
//! in every suite.

/// How the close lines up with the blocked call in one iteration.
#[derive(Clone, Copy, Debug)]
pub enum Timing {
    /// Close once the other thread sits parked in `ppoll`.
    Parked,
    /// Both leave a barrier together; the closer first spins this long.
    CloseLate(u32),
    /// Both leave a barrier together; the blocking call first spins this long.
    CloseEarly(u32),
}

/// The timing of iteration `i`, spinning up to `max_spin` loops: a fixed
/// pseudo-random sequence, the mix differing per iteration but the same on
/// every run.
pub fn timing(i: usize, max_spin: u32) -> Timing {
    let mut x = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 29;
    let spin = (x % u64::from(max_spin.max(1))) as u32;
    match i % 3 {
        0 => Timing::Parked,
        1 => Timing::CloseLate(spin),
        _ => Timing::CloseEarly(spin),
    }
}

/// Busy-wait `n` spin-loop hints.
pub fn spin(n: u32) {
    for _ in 0..n {
        std::hint::spin_loop();
    }
}
