//! Helpers for the tcp integration tests, on loopback only; each test
//! binary uses a different part. What the iopoll and tls suites need as
//! well (bounded waits, threads parked, descriptor counts, socket knobs)
//! lives in testkit, and the tests take it from there.
//!
//! - [`addrs`]: loopback addresses, and IPv6 loopback present or not.
//! - [`conns`]: connected pairs, and driving a connection into a state
//!   (send buffer full, peer readable, closed while waited on).
//! - [`errors`]: the deadline and `Closed` errors, asserted.
//! - [`peers`]: peers that never answer ([`BlackHole`]) or refuse
//!   ([`Reserved`]).
//! - [`resolver`]: a resolver that counts its calls and can hold them.
//! - [`sockets`]: raw sockets and socket addresses, for what the API does
//!   not offer.

#![allow(dead_code, unused_imports)]

pub mod addrs;
pub mod conns;
pub mod errors;
pub mod peers;
pub mod resolver;
pub mod sockets;

pub use addrs::*;
pub use conns::*;
pub use errors::*;
pub use peers::*;
pub use resolver::*;
