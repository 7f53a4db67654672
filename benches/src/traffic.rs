//! The two ends of a one-way bulk transfer, shared by the TCP and TLS
//! workloads.

use std::io::{Read, Write};

/// Write size of the bulk workloads.
pub const CHUNK: usize = 256 * 1024;

/// Read until end of stream; returns the byte count.
pub fn sink(mut c: impl Read) -> usize {
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0;
    loop {
        match c.read(&mut buf) {
            Ok(0) => return total,
            Ok(n) => total += n,
            Err(e) => panic!("read: {e}"),
        }
    }
}

/// Write `total` bytes (rounded up to whole chunks) in `CHUNK` writes.
pub fn pump(mut c: impl Write, total: usize) {
    let buf = vec![0xA5u8; CHUNK];
    let mut sent = 0;
    while sent < total {
        c.write_all(&buf).expect("write");
        sent += CHUNK;
    }
}
