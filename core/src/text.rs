//! Cutting text without splitting a character.

/// The largest index at most `index` that is a character boundary of `s` (its length when
/// `index` is past the end). The standard library's `str::floor_char_boundary` is newer than
/// the toolchain this workspace supports.
pub fn floor_char_boundary(s: &str, index: usize) -> usize {
    let mut i = index.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The longest prefix of `data` that does not end inside a UTF-8 sequence (a reader that
/// shows text stops there and asks again from the next offset).
pub fn utf8_prefix(data: &[u8]) -> &[u8] {
    // The last sequence starts at the last byte that is not a continuation byte.
    for back in 1..=data.len().min(4) {
        let lead = data[data.len() - back];
        if lead & 0xC0 == 0x80 {
            continue;
        }
        let len = match lead {
            0xC2..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF4 => 4,
            _ => 1,
        };
        return if len > back {
            &data[..data.len() - back]
        } else {
            data
        };
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_fall_on_character_boundaries() {
        let s = "aé€";
        assert_eq!(floor_char_boundary(s, 2), 1, "inside é");
        assert_eq!(floor_char_boundary(s, 3), 3);
        assert_eq!(floor_char_boundary(s, 5), 3, "inside €");
        assert_eq!(floor_char_boundary(s, 99), s.len());
    }

    #[test]
    fn a_split_character_waits_for_its_last_bytes() {
        let s = "héllo €".as_bytes();
        assert_eq!(utf8_prefix(s), s);
        assert_eq!(utf8_prefix(&s[..s.len() - 1]), "héllo ".as_bytes());
        assert_eq!(utf8_prefix(&s[..2]), b"h");
        let mut bad = b"\xff ok \xe2\x82".to_vec();
        assert_eq!(utf8_prefix(&bad), b"\xff ok ");
        bad.push(0xac);
        assert_eq!(utf8_prefix(&bad), bad.as_slice());
    }
}
