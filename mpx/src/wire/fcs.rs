//! Frame Check Sequence (IEEE 802.15.4-2015 7.2.10).
//!
//! The 2-octet FCS is CRC-16/KERMIT (polynomial 0x1021 reflected, init 0, no final XOR); the
//! 4-octet FCS of SUN PHYs is the ITU-T CRC-32 (as zlib's `crc32`). Both are sent
//! little-endian and cover everything before them.

use crc::{CRC_32_ISO_HDLC, Crc, Table};

static CRC32: Crc<u32, Table<16>> = Crc::<u32, Table<16>>::new(&CRC_32_ISO_HDLC);

/// The FCS length of a PHY.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FcsLen {
    /// No FCS in the buffer (the radio checked and stripped it).
    None,
    /// 2-octet CRC-16.
    #[default]
    Two,
    /// 4-octet CRC-32.
    Four,
}

impl FcsLen {
    /// Octets the FCS takes.
    pub const fn len(self) -> usize {
        match self {
            FcsLen::None => 0,
            FcsLen::Two => 2,
            FcsLen::Four => 4,
        }
    }

    /// Whether there is no FCS.
    pub const fn is_empty(self) -> bool {
        matches!(self, FcsLen::None)
    }
}

/// Reflected polynomial of CRC-16/KERMIT (0x1021 bit-reversed).
const POLY16: u16 = 0x8408;

/// Slice-by-16 tables: `T[0]` is the classic byte table, `T[k][b]` advances `T[k-1][b]` by one
/// more zero octet. Built at compile time (8 KiB, stays in L1).
static CRC16_TABLES: [[u16; 256]; 16] = crc16_tables();

#[allow(clippy::cast_possible_truncation)] // b < 256
const fn crc16_tables() -> [[u16; 256]; 16] {
    let mut t = [[0u16; 256]; 16];
    let mut b = 0;
    while b < 256 {
        let mut c = b as u16;
        let mut i = 0;
        while i < 8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ POLY16
            } else {
                c >> 1
            };
            i += 1;
        }
        t[0][b] = c;
        b += 1;
    }
    let mut k = 1;
    while k < 16 {
        let mut b = 0;
        while b < 256 {
            let prev = t[k - 1][b];
            t[k][b] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            b += 1;
        }
        k += 1;
    }
    t
}

/// Advances `crc` over one block of `N` ≤ 16 octets with the slice-by-16 tables.
#[inline(always)]
fn crc16_block<const N: usize>(crc: u16, c: &[u8; N]) -> u16 {
    let t = &CRC16_TABLES;
    let lo = crc ^ u16::from_le_bytes([c[0], c[1]]);
    let mut x = t[N - 1][usize::from(lo & 0xff)] ^ t[N - 2][usize::from(lo >> 8)];
    let mut j = 2;
    while j < N {
        x ^= t[N - 1 - j][usize::from(c[j])];
        j += 1;
    }
    x
}

/// CRC-16/KERMIT of `data` (slice-by-16, the tail in 8- and 4-octet blocks: a byte-wise CRC
/// would be a third of a frame parse).
pub fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    let mut rest = data;
    while let Some((block, tail)) = rest.split_first_chunk::<16>() {
        crc = crc16_block(crc, block);
        rest = tail;
    }
    if let Some((block, tail)) = rest.split_first_chunk::<8>() {
        crc = crc16_block(crc, block);
        rest = tail;
    }
    if let Some((block, tail)) = rest.split_first_chunk::<4>() {
        crc = crc16_block(crc, block);
        rest = tail;
    }
    for &b in rest {
        crc = (crc >> 8) ^ CRC16_TABLES[0][usize::from((crc ^ u16::from(b)) & 0xff)];
    }
    crc
}

/// CRC-32 (ITU-T / zlib) of `data`.
pub fn crc32(data: &[u8]) -> u32 {
    CRC32.checksum(data)
}

/// Writes the FCS over `frame[..len - fcs.len()]` into the last `fcs.len()` octets.
/// Does nothing if the buffer is shorter than the FCS.
pub fn fill(frame: &mut [u8], fcs: FcsLen) {
    let Some(body_len) = frame.len().checked_sub(fcs.len()) else {
        return;
    };
    let (body, out) = frame.split_at_mut(body_len);
    match fcs {
        FcsLen::None => {}
        FcsLen::Two => out.copy_from_slice(&crc16(body).to_le_bytes()),
        FcsLen::Four => out.copy_from_slice(&crc32(body).to_le_bytes()),
    }
}

/// Whether the last `fcs.len()` octets of `frame` are the right FCS. `FcsLen::None` is always
/// correct; a buffer shorter than the FCS never is.
pub fn check(frame: &[u8], fcs: FcsLen) -> bool {
    let Some(body_len) = frame.len().checked_sub(fcs.len()) else {
        return false;
    };
    let (body, got) = frame.split_at(body_len);
    match fcs {
        FcsLen::None => true,
        FcsLen::Two => crc16(body).to_le_bytes() == got,
        FcsLen::Four => crc32(body).to_le_bytes() == got,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_values() {
        // Catalogue check values and the unit-test values of spec/mpx-wire-format.md §6.
        assert_eq!(crc16(b"123456789"), 0x2189);
        assert_eq!(crc16(&[0x02, 0x00, 0x56]), 0x820b);
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }

    #[test]
    fn slice_by_16_matches_the_catalogue_implementation() {
        let reference = crc::Crc::<u16>::new(&crc::CRC_16_KERMIT);
        let data: Vec<u8> = (0..300u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13).to_le_bytes()[0])
            .collect();
        for start in 0..9 {
            for end in start..data.len() {
                assert_eq!(
                    crc16(&data[start..end]),
                    reference.checksum(&data[start..end])
                );
            }
        }
    }

    #[test]
    fn fill_and_check() {
        let mut f = [0x02, 0x00, 0x56, 0, 0];
        fill(&mut f, FcsLen::Two);
        assert_eq!(&f[3..], &[0x0b, 0x82]);
        assert!(check(&f, FcsLen::Two));
        f[0] ^= 1;
        assert!(!check(&f, FcsLen::Two));
        assert!(!check(&[1], FcsLen::Four));
        assert!(check(&[], FcsLen::None));
        let mut g = [1, 2, 3, 0, 0, 0, 0];
        fill(&mut g, FcsLen::Four);
        assert!(check(&g, FcsLen::Four));
    }
}
