//! A worker's run queue: the green threads ready to run on it, in two
//! parts.
//!
//! Green threads made runnable go to the back of `recent`, a FIFO of at
//! most [`RECENT`] entries; once it is full they go to the back of
//! `backlog`. The worker takes from the front of `recent`, and from the
//! backlog when `recent` is empty, except that every [`FAIRNESS`]th take
//! looks at the backlog first.
//!
//! Why two parts: a green thread runs fastest when what it touches (its
//! stack's top pages, its sockets in the kernel) is still in the core's
//! caches from its last run. With one FIFO and 20 000 busy green threads,
//! each runs once per pass over all of them, and nothing it touches is in
//! cache any more: the echo bench at 9 900 connections paid twice the CPU
//! per message for it. The bounded `recent` part keeps a few hundred of
//! them cycling while their data is warm; the backlog waits, served at
//! least every `FAIRNESS` takes, so nothing starves. This is the shape of
//! tokio's and Go's local queues (256 slots, the global queue looked at
//! every 61 ticks), measured here in `docs/performance.md`.

use std::collections::VecDeque;

/// The most green threads kept in the recent part. Below this many
/// runnable green threads the queue is one FIFO. 512 on this project's
/// machines: 256 made the tail latency at 1 024 connections worse, 1 024
/// lost most of the gain at 10 000 (`docs/performance.md`).
pub(crate) const RECENT: usize = 512;

/// Every this many takes, the backlog goes first.
pub(crate) const FAIRNESS: u32 = 61;

pub(crate) struct RunQueue<T> {
    recent: VecDeque<T>,
    backlog: VecDeque<T>,
    takes: u32,
}

impl<T> Default for RunQueue<T> {
    fn default() -> Self {
        RunQueue::new()
    }
}

impl<T> RunQueue<T> {
    pub(crate) const fn new() -> RunQueue<T> {
        RunQueue { recent: VecDeque::new(), backlog: VecDeque::new(), takes: 0 }
    }

    /// Queue a runnable green thread.
    pub(crate) fn push(&mut self, t: T) {
        if self.recent.len() < RECENT {
            self.recent.push_back(t);
        } else {
            self.backlog.push_back(t);
        }
    }

    /// The next green thread to run.
    pub(crate) fn pop(&mut self) -> Option<T> {
        self.takes = self.takes.wrapping_add(1);
        if self.takes.is_multiple_of(FAIRNESS)
            && let Some(t) = self.backlog.pop_front()
        {
            return Some(t);
        }
        self.recent.pop_front().or_else(|| self.backlog.pop_front())
    }

    /// The green thread `i` places from the front: of the recent part, then
    /// of the backlog (the order takes follow but for the fairness take).
    pub(crate) fn peek(&self, i: usize) -> Option<&T> {
        self.recent.get(i).or_else(|| self.backlog.get(i - self.recent.len()))
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.recent.is_empty() && self.backlog.is_empty()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.recent.len() + self.backlog.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_the_bound_it_is_one_fifo() {
        let mut q = RunQueue::default();
        for i in 0..RECENT {
            q.push(i);
        }
        let out: Vec<usize> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(out, (0..RECENT).collect::<Vec<_>>());
        assert!(q.is_empty());
    }

    #[test]
    fn the_recent_part_runs_first_and_the_backlog_is_served_every_fairness_takes() {
        let mut q = RunQueue::default();
        // A full recent part, then one green thread in the backlog.
        for i in 0..=RECENT {
            q.push(i);
        }
        // Every run green thread makes another one runnable at once, as an
        // echo does: the recent part never empties by itself.
        let mut taken_at = None;
        for take in 1..=FAIRNESS as usize {
            let t = q.pop().expect("runnable");
            if t == RECENT {
                taken_at = Some(take);
                break;
            }
            q.push(t);
        }
        assert_eq!(taken_at, Some(FAIRNESS as usize), "the backlog waits for the fairness take, no longer");
    }

    #[test]
    fn peek_shows_the_takes_to_come_past_the_recent_part() {
        let mut q = RunQueue::default();
        for i in 0..RECENT + 100 {
            q.push(i);
        }
        while !q.is_empty() {
            let fairness_take = (q.takes + 1).is_multiple_of(FAIRNESS) && !q.backlog.is_empty();
            let (next, after) = (q.peek(0).copied(), q.peek(1).copied());
            let taken = q.pop();
            if !fairness_take {
                assert_eq!(taken, next);
                assert_eq!(q.peek(0).copied(), after);
            }
        }
        assert_eq!(q.peek(0), None);
    }

    #[test]
    fn nothing_is_lost_or_taken_twice() {
        let mut q = RunQueue::default();
        let mut next = 0usize;
        let mut seen = Vec::new();
        // A deterministic mix of bursts and takes, well past the bound.
        for round in 0..200usize {
            for _ in 0..(round * 37) % 700 {
                q.push(next);
                next += 1;
            }
            for _ in 0..(round * 53) % 650 {
                match q.pop() {
                    Some(t) => seen.push(t),
                    None => break,
                }
            }
            assert_eq!(q.len() + seen.len(), next);
        }
        seen.extend(std::iter::from_fn(|| q.pop()));
        seen.sort_unstable();
        assert_eq!(seen, (0..next).collect::<Vec<_>>());
    }
}
