//! Test data: deterministic bytes to send, and reading lines back.

use std::io::Read;

/// Deterministic pseudo-random bytes: byte `i` of stream `seed` depends
/// only on `(seed, i)`, so writer and reader agree whatever the chunking.
pub fn stream_bytes(seed: u64, offset: u64, out: &mut [u8]) {
    let mut i = 0usize;
    let mut pos = offset;
    while i < out.len() {
        let block = splitmix64(seed ^ (pos / 8).wrapping_mul(0x9E37_79B9_7F4A_7C15)).to_le_bytes();
        let start = (pos % 8) as usize;
        let n = (8 - start).min(out.len() - i);
        out[i..i + n].copy_from_slice(&block[start..start + n]);
        i += n;
        pos += n as u64;
    }
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Read up to and including the first `\n` (or to end of stream), a byte
/// at a time so nothing past the line is consumed.
pub fn read_line(mut r: impl Read) -> std::io::Result<String> {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while r.read(&mut b)? == 1 {
        line.push(b[0]);
        if b[0] == b'\n' {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}
