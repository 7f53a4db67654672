//! Deterministic test data.

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
