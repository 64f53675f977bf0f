//! Kafka's variable-length integers: protobuf-style base-128 groups, low bits
//! first, with zig-zag encoding so small negative numbers stay short.
//!
//! A varint of an `i32` takes at most 5 bytes, of an `i64` at most 10.

/// Longest encoding of a 64-bit varint: ceil(64 / 7) = 10 groups of 7 bits.
pub const VARLONG_BYTES_MAX: usize = 10;
/// Longest encoding of a 32-bit varint: ceil(32 / 7) = 5 groups of 7 bits.
pub const VARINT_BYTES_MAX: usize = 5;

/// Appends the zig-zag varint encoding of `value`.
pub fn put_varlong(out: &mut Vec<u8>, value: i64) {
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    while zigzag >= 0x80 {
        out.push((zigzag as u8) | 0x80);
        zigzag >>= 7;
    }
    out.push(zigzag as u8);
}

/// Appends the zig-zag varint encoding of a 32-bit `value`.
pub fn put_varint(out: &mut Vec<u8>, value: i32) {
    put_varlong(out, i64::from(value));
}

/// Reads a zig-zag varint from the front of `bytes`.
/// Returns the value and the number of bytes it took, or `None` when the
/// bytes end first or the encoding is longer than `bytes_max`.
pub fn get_varlong(bytes: &[u8], bytes_max: usize) -> Option<(i64, usize)> {
    let mut zigzag: u64 = 0;
    for (index, byte) in bytes.iter().take(bytes_max).enumerate() {
        zigzag |= u64::from(byte & 0x7f) << (7 * index);
        if byte & 0x80 == 0 {
            let value = ((zigzag >> 1) as i64) ^ -((zigzag & 1) as i64);
            return Some((value, index + 1));
        }
    }
    None
}

/// Reads a 32-bit zig-zag varint from the front of `bytes`.
pub fn get_varint(bytes: &[u8]) -> Option<(i32, usize)> {
    let (value, used) = get_varlong(bytes, VARINT_BYTES_MAX)?;
    i32::try_from(value).ok().map(|value| (value, used))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn small_values_are_one_byte() {
        for (value, byte) in [(0i64, 0u8), (-1, 1), (1, 2), (-2, 3), (63, 126), (-64, 127)] {
            let mut out = Vec::new();
            put_varlong(&mut out, value);
            assert_eq!(out, vec![byte]);
        }
    }

    #[test]
    fn truncated_varint_needs_more_bytes() {
        assert_eq!(get_varlong(&[0x80, 0x80], VARLONG_BYTES_MAX), None);
        assert_eq!(get_varlong(&[], VARLONG_BYTES_MAX), None);
    }

    proptest! {
        #[test]
        fn varlong_round_trips(value in any::<i64>()) {
            let mut out = Vec::new();
            put_varlong(&mut out, value);
            prop_assert!(out.len() <= VARLONG_BYTES_MAX);
            prop_assert_eq!(get_varlong(&out, VARLONG_BYTES_MAX), Some((value, out.len())));
        }

        #[test]
        fn varint_round_trips(value in any::<i32>()) {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            prop_assert!(out.len() <= VARINT_BYTES_MAX);
            prop_assert_eq!(get_varint(&out), Some((value, out.len())));
        }
    }
}
