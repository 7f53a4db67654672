//! `make bench`: reseau against std networking.
fn main() {}
