//! Windows file names are UTF-16 code units that need not be valid UTF-16 (an unpaired
//! surrogate is a legal name). These pure functions keep such names exactly, and are tested on
//! `&[u16]` on every system; `std::os::windows::ffi` (`encode_wide`, `from_wide`) feeds them on
//! Windows.
//!
//! - [`key_from_wide`] / [`wide_from_key`]: the library store's path key. Valid Unicode is
//!   stored as its UTF-8 bytes (what earlier versions stored, so their libraries still match);
//!   anything else as [`WIDE_TAG`] followed by the code units, little-endian. No UTF-8 text
//!   starts with `0xFF`, so the two never collide.
//! - [`wtf8_from_wide`]: the bytes exports write in hex for a name that isn't valid Unicode:
//!   UTF-8, with each unpaired surrogate as its own three-byte sequence (WTF-8). Python reads
//!   them back with `bytes.fromhex(h).decode("utf-8", "surrogatepass")`.

/// The first byte of a key holding UTF-16 code units (a byte no UTF-8 text starts with).
pub const WIDE_TAG: u8 = 0xFF;

/// The store's key for a Windows path's code units (see the [module docs](self)).
pub fn key_from_wide(units: &[u16]) -> Vec<u8> {
    match String::from_utf16(units) {
        Ok(text) => text.into_bytes(),
        Err(_) => {
            let mut key = Vec::with_capacity(1 + 2 * units.len());
            key.push(WIDE_TAG);
            for unit in units {
                key.extend_from_slice(&unit.to_le_bytes());
            }
            key
        }
    }
}

/// The code units a [`key_from_wide`] key was made from. A key that is neither (an odd
/// length after the tag, invalid UTF-8) is read as UTF-8 with U+FFFD for what isn't.
pub fn wide_from_key(key: &[u8]) -> Vec<u16> {
    match key.split_first() {
        Some((&WIDE_TAG, units)) if units.len() % 2 == 0 => units
            .chunks_exact(2)
            .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
            .collect(),
        _ => String::from_utf8_lossy(key).encode_utf16().collect(),
    }
}

/// The WTF-8 bytes of `units`: UTF-8 for every character, the three-byte form of each
/// unpaired surrogate.
pub fn wtf8_from_wide(units: &[u16]) -> Vec<u8> {
    let mut out = Vec::with_capacity(units.len());
    for decoded in char::decode_utf16(units.iter().copied()) {
        match decoded {
            Ok(c) => {
                let mut buf = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
            Err(lone) => {
                let u = lone.unpaired_surrogate();
                out.extend_from_slice(&[
                    0xE0 | (u >> 12) as u8,
                    0x80 | ((u >> 6) & 0x3F) as u8,
                    0x80 | (u & 0x3F) as u8,
                ]);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wide(text: &str) -> Vec<u16> {
        text.encode_utf16().collect()
    }

    #[test]
    fn unicode_paths_keep_the_keys_earlier_versions_stored() {
        for path in [r"C:\Users\Me\a.jpg", r"\\nas\photos\東京 😀.jpg", ""] {
            let key = key_from_wide(&wide(path));
            assert_eq!(key, path.as_bytes(), "{path}");
            assert_eq!(wide_from_key(&key), wide(path));
        }
    }

    #[test]
    fn unpaired_surrogates_round_trip_and_never_collide() {
        let mut lone_high = wide(r"C:\photos\a");
        lone_high.push(0xD800);
        lone_high.extend(wide(".jpg"));
        let mut lone_low = wide(r"C:\photos\a");
        lone_low.push(0xDC00);
        lone_low.extend(wide(".jpg"));
        // Reversed pair: each half is unpaired.
        let reversed: Vec<u16> = vec![0x0061, 0xDE00, 0xD83D];
        let keys: Vec<Vec<u8>> = [&lone_high, &lone_low, &reversed]
            .iter()
            .map(|units| key_from_wide(units))
            .collect();
        for (units, key) in [&lone_high, &lone_low, &reversed].iter().zip(&keys) {
            assert_eq!(key[0], WIDE_TAG);
            assert_eq!(&wide_from_key(key), *units);
        }
        // What the lossy key of earlier versions made of both: the same text, a collision.
        let lossy = |u: &[u16]| String::from_utf16_lossy(u).into_bytes();
        assert_eq!(lossy(&lone_high), lossy(&lone_low));
        assert_ne!(keys[0], keys[1]);
        assert_ne!(keys[0], lossy(&lone_high));
        assert_eq!(keys[2], [WIDE_TAG, 0x61, 0, 0x00, 0xDE, 0x3D, 0xD8]);
    }

    #[test]
    fn odd_keys_read_as_text() {
        assert_eq!(wide_from_key(&[WIDE_TAG, 0x61]), wide("\u{FFFD}a"));
        assert_eq!(wide_from_key(b"caf\xc3\xa9"), wide("café"));
    }

    #[test]
    fn wtf8_is_utf8_plus_three_bytes_per_lone_surrogate() {
        assert_eq!(wtf8_from_wide(&wide("café 😀")), "café 😀".as_bytes());
        let mut units = wide("a");
        units.push(0xD800);
        units.extend(wide("b"));
        units.push(0xDFFF);
        assert_eq!(
            wtf8_from_wide(&units),
            [b'a', 0xED, 0xA0, 0x80, b'b', 0xED, 0xBF, 0xBF]
        );
    }
}
