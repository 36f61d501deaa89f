//! A pcap tap for IEEE 802.15.4 frames, and a key log Wireshark can decrypt them with.
//!
//! [`PcapWriter`] writes classic pcap (not pcapng) with link type
//! `LINKTYPE_IEEE802_15_4_WITHFCS` (195): each record is the MAC frame (MPDU) including its
//! 2-octet FCS, with microsecond timestamps taken from the driver's [`Instant`]. It works over
//! any [`std::io::Write`], so any driver (simulated or real) can tap its traffic.
//!
//! [`KeyLogWriter`] writes lines for Wireshark's `ieee802154_keys` UAT table:
//!
//! ```text
//! "00112233445566778899aabbccddeeff","1","No hash"
//! ```
//!
//! (key as 32 hex digits, key index in decimal, no key hashing). The key log holds secret keys
//! in clear: it is a **debugging aid**, written only when the user asked for it, never by
//! default. To decrypt a capture, either pass the entries on the command line:
//!
//! ```text
//! tshark -r capture.pcap \
//!   -o 'uat:ieee802154_keys:"00112233445566778899aabbccddeeff","1","No hash"'
//! ```
//!
//! or copy the key log to a profile as its UAT file and select that profile:
//!
//! ```text
//! mkdir -p ~/.config/wireshark/profiles/kmp && cp keys.log ~/.config/wireshark/profiles/kmp/ieee802154_keys
//! tshark -C kmp -r capture.pcap
//! ```

use std::io::Write;

use kmp_api::Instant;

/// `LINKTYPE_IEEE802_15_4_WITHFCS`: IEEE 802.15.4 MPDU with a trailing FCS.
pub const LINKTYPE_IEEE802_15_4_WITHFCS: u32 = 195;

/// Classic pcap magic number for microsecond timestamps.
const PCAP_MAGIC_MICROS: u32 = 0xa1b2_c3d4;
/// pcap format version 2.4.
const PCAP_VERSION: (u16, u16) = (2, 4);
/// Largest record we write; far above aMaxPhyPacketSize (127) so odd drivers still fit.
const SNAPLEN: u32 = 65_535;

/// Why a record could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PcapError {
    /// The underlying writer failed.
    #[error("pcap write failed: {0}")]
    Io(#[from] std::io::Error),
    /// The timestamp does not fit the 32-bit seconds field of classic pcap.
    #[error("timestamp {0:?} beyond the classic pcap range")]
    TimestampOutOfRange(Instant),
    /// The frame is longer than the snapshot length.
    #[error("frame of {0} octets exceeds the pcap snapshot length")]
    FrameTooLong(usize),
}

/// Writes IEEE 802.15.4 frames (with FCS) as a classic pcap stream.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: W,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the pcap global header to `out` and returns the writer.
    pub fn new(mut out: W) -> Result<Self, PcapError> {
        let mut h = Vec::with_capacity(24);
        h.extend_from_slice(&PCAP_MAGIC_MICROS.to_le_bytes());
        h.extend_from_slice(&PCAP_VERSION.0.to_le_bytes());
        h.extend_from_slice(&PCAP_VERSION.1.to_le_bytes());
        h.extend_from_slice(&0i32.to_le_bytes()); // thiszone: timestamps are UTC / virtual
        h.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
        h.extend_from_slice(&SNAPLEN.to_le_bytes());
        h.extend_from_slice(&LINKTYPE_IEEE802_15_4_WITHFCS.to_le_bytes());
        out.write_all(&h)?;
        Ok(PcapWriter { out })
    }

    /// Appends one record: `frame` is the whole MPDU including its 2-octet FCS, `at` the time
    /// its last octet was on air (or when the driver saw it).
    pub fn write_frame(&mut self, at: Instant, frame: &[u8]) -> Result<(), PcapError> {
        let micros = at.as_micros();
        let secs =
            u32::try_from(micros / 1_000_000).map_err(|_| PcapError::TimestampOutOfRange(at))?;
        let usecs =
            u32::try_from(micros % 1_000_000).map_err(|_| PcapError::TimestampOutOfRange(at))?;
        let len = u32::try_from(frame.len())
            .ok()
            .filter(|l| *l <= SNAPLEN)
            .ok_or(PcapError::FrameTooLong(frame.len()))?;
        let mut r = Vec::with_capacity(16 + frame.len());
        r.extend_from_slice(&secs.to_le_bytes());
        r.extend_from_slice(&usecs.to_le_bytes());
        r.extend_from_slice(&len.to_le_bytes()); // incl_len
        r.extend_from_slice(&len.to_le_bytes()); // orig_len
        r.extend_from_slice(frame);
        self.out.write_all(&r)?;
        Ok(())
    }

    /// Flushes the underlying writer.
    pub fn flush(&mut self) -> Result<(), PcapError> {
        self.out.flush()?;
        Ok(())
    }

    /// Returns the underlying writer.
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// Writes keys as lines of Wireshark's `ieee802154_keys` UAT (see the module docs).
///
/// A debugging aid: the output holds secret keys in clear. Create one only when the user asked
/// for a key log.
#[derive(Debug)]
pub struct KeyLogWriter<W: Write> {
    out: W,
}

impl<W: Write> KeyLogWriter<W> {
    /// A key log over `out`.
    pub fn new(out: W) -> Self {
        KeyLogWriter { out }
    }

    /// Appends `"<32 hex>","<key index>","No hash"` and flushes, so the line survives a crash.
    pub fn write_key(&mut self, key: &[u8; 16], key_index: u8) -> std::io::Result<()> {
        let line = key_log_line(key, key_index);
        self.out.write_all(line.as_bytes())?;
        self.out.flush()
    }

    /// Returns the underlying writer.
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// One UAT line, with its trailing newline.
fn key_log_line(key: &[u8; 16], key_index: u8) -> String {
    use std::fmt::Write as _;
    let mut hex = String::with_capacity(32);
    for b in key {
        // Writing to a String cannot fail.
        let _ = write!(hex, "{b:02x}");
    }
    format!("\"{hex}\",\"{key_index}\",\"No hash\"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// spec/mpx-wire-format.md §6 Ex 1: a data frame with AR set and a valid CRC-16/KERMIT FCS.
    const EX1: &str = "21ee05cdab01000000000000020200000000000002003f08980001000103010000caa4";

    /// Parses a classic little-endian microsecond pcap: (linktype, [(micros, frame)]).
    fn parse_pcap(b: &[u8]) -> (u32, Vec<(u64, Vec<u8>)>) {
        let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
        assert_eq!(u32_at(0), PCAP_MAGIC_MICROS);
        assert_eq!(u16::from_le_bytes([b[4], b[5]]), 2);
        assert_eq!(u16::from_le_bytes([b[6], b[7]]), 4);
        let linktype = u32_at(20);
        let mut off = 24;
        let mut recs = Vec::new();
        while off < b.len() {
            let secs = u64::from(u32_at(off));
            let usecs = u64::from(u32_at(off + 4));
            let incl = u32_at(off + 8) as usize;
            assert_eq!(u32_at(off + 12) as usize, incl);
            off += 16;
            recs.push((secs * 1_000_000 + usecs, b[off..off + incl].to_vec()));
            off += incl;
        }
        assert_eq!(off, b.len());
        (linktype, recs)
    }

    fn two_frames() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        let f1 = hex::decode(EX1).unwrap();
        // An Imm-Ack for sequence number 5, with its FCS (CRC-16/KERMIT of 02 00 05, sent low octet first).
        let f2 = hex::decode("02000515e2").unwrap();
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        w.write_frame(Instant::from_micros(1_234_567), &f1).unwrap();
        w.write_frame(Instant::from_micros(3_000_001), &f2).unwrap();
        (w.into_inner(), f1, f2)
    }

    #[test]
    fn pcap_round_trip() {
        let (bytes, f1, f2) = two_frames();
        let (lt, recs) = parse_pcap(&bytes);
        assert_eq!(lt, 195);
        assert_eq!(recs, vec![(1_234_567, f1), (3_000_001, f2)]);
    }

    #[test]
    fn timestamp_out_of_range() {
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        let t = Instant::from_micros((u64::from(u32::MAX) + 1) * 1_000_000);
        assert!(matches!(
            w.write_frame(t, &[0; 5]),
            Err(PcapError::TimestampOutOfRange(_))
        ));
    }

    #[test]
    fn key_log_format() {
        let key: [u8; 16] = hex::decode("00112233445566778899aabbccddeeff")
            .unwrap()
            .try_into()
            .unwrap();
        let mut k = KeyLogWriter::new(Vec::new());
        k.write_key(&key, 1).unwrap();
        assert_eq!(
            String::from_utf8(k.into_inner()).unwrap(),
            "\"00112233445566778899aabbccddeeff\",\"1\",\"No hash\"\n"
        );
    }

    /// Wireshark as an independent oracle: both frames decode with a good FCS.
    #[test]
    fn tshark_reads_capture() {
        let Ok(out) = std::process::Command::new("tshark").arg("-v").output() else {
            eprintln!("tshark not installed; skipping");
            return;
        };
        assert!(out.status.success());
        let (bytes, _, _) = two_frames();
        let dir = std::env::temp_dir().join(format!("radio-drivers-pcap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("two.pcap");
        std::fs::write(&path, &bytes).unwrap();
        let out = std::process::Command::new("tshark")
            .arg("-r")
            .arg(&path)
            .args(["-T", "fields", "-e", "frame.number", "-e", "wpan.fcs_ok"])
            .output()
            .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        for l in lines {
            let fcs_ok = l.split('\t').nth(1).unwrap_or("");
            assert_eq!(fcs_ok, "1", "fcs not ok: {l:?}");
        }
    }

    /// tshark loads our key log as its `ieee802154_keys` table from a profile (a malformed line
    /// makes it print "Error loading table").
    #[test]
    fn tshark_accepts_key_log_as_profile_table() {
        if std::process::Command::new("tshark")
            .arg("-v")
            .output()
            .is_err()
        {
            eprintln!("tshark not installed; skipping");
            return;
        }
        let home =
            std::env::temp_dir().join(format!("radio-drivers-keylog-{}", std::process::id()));
        let profile = home.join(".config/wireshark/profiles/kmp");
        std::fs::create_dir_all(&profile).unwrap();
        let mut k =
            KeyLogWriter::new(std::fs::File::create(profile.join("ieee802154_keys")).unwrap());
        k.write_key(&[0x11; 16], 1).unwrap();
        k.write_key(&[0xab; 16], 7).unwrap();
        drop(k);
        let (bytes, _, _) = two_frames();
        let cap = home.join("two.pcap");
        std::fs::write(&cap, &bytes).unwrap();
        let out = std::process::Command::new("tshark")
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .args(["-C", "kmp", "-r"])
            .arg(&cap)
            .output()
            .unwrap();
        let _ = std::fs::remove_dir_all(&home);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(!stderr.contains("Error loading table"), "{stderr}");
        assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 2);
    }
}

/// The pcap tap and key log as runtime hooks: [`PcapTap`] is an
/// [`mpx::runtime::FrameTap`] (give it to an MPX actor, or to the simulated network's
/// sniffer), [`KeyLogTap`] an [`mpx::runtime::KeyLogSink`] (give it to a PIB actor).
#[cfg(any(feature = "driver-sim", feature = "driver-udp"))]
mod taps {
    use std::collections::HashSet;
    use std::io::Write;
    use std::sync::Mutex;

    use kmp_api::Instant;
    use kmp_api::security::KeyIdentifier;
    use kmp_api::session::KeyScope;

    use super::{KeyLogWriter, PcapWriter};

    /// A [`PcapWriter`] shared by every frame source. Write errors are logged once and the
    /// capture stops; the network does not.
    #[derive(Debug)]
    pub struct PcapTap<W: Write + Send> {
        inner: Mutex<(Option<PcapWriter<W>>, u64)>,
    }

    impl<W: Write + Send> PcapTap<W> {
        /// A tap writing to `writer`.
        pub fn new(writer: PcapWriter<W>) -> Self {
            PcapTap {
                inner: Mutex::new((Some(writer), 0)),
            }
        }

        /// Frames written so far.
        pub fn frames(&self) -> u64 {
            self.inner.lock().map_or(0, |g| g.1)
        }

        /// Flushes the output.
        pub fn flush(&self) -> Result<(), super::PcapError> {
            match self.inner.lock() {
                Ok(mut g) => match g.0.as_mut() {
                    Some(w) => w.flush(),
                    None => Ok(()),
                },
                Err(_) => Ok(()),
            }
        }
    }

    impl<W: Write + Send + 'static> mpx::runtime::FrameTap for PcapTap<W> {
        fn frame(&self, at: Instant, frame: &[u8]) {
            let Ok(mut g) = self.inner.lock() else {
                return;
            };
            let Some(w) = g.0.as_mut() else {
                return;
            };
            if let Err(e) = w.write_frame(at, frame) {
                tracing::error!(error = %e, "pcap tap: write failed, capture stopped");
                g.0 = None;
                return;
            }
            g.1 += 1;
        }
    }

    /// The writer and the (key, index) pairs already logged.
    type KeyLogState<W> = (KeyLogWriter<W>, HashSet<([u8; 16], u8)>);

    /// A [`KeyLogWriter`] fed by the PIB: one line per distinct key. Keys found by index
    /// (key identifier modes 1–3) are logged with their index; pairwise keys (mode 0) with
    /// index 0, which tshark tries for implicitly identified keys.
    #[derive(Debug)]
    pub struct KeyLogTap<W: Write + Send> {
        inner: Mutex<KeyLogState<W>>,
    }

    impl<W: Write + Send> KeyLogTap<W> {
        /// A key log writing to `writer`.
        pub fn new(writer: KeyLogWriter<W>) -> Self {
            KeyLogTap {
                inner: Mutex::new((writer, HashSet::new())),
            }
        }
    }

    impl<W: Write + Send + 'static> mpx::runtime::KeyLogSink for KeyLogTap<W> {
        fn key_installed(&self, key: &[u8], lookup: KeyIdentifier, _scope: KeyScope) {
            let Ok(k) = <[u8; 16]>::try_from(key) else {
                return;
            };
            let index = match lookup {
                KeyIdentifier::Implicit => 0,
                KeyIdentifier::Index(i) => i,
                KeyIdentifier::SourceIndex(_, i) => i,
            };
            let Ok(mut g) = self.inner.lock() else {
                return;
            };
            if g.1.insert((k, index))
                && let Err(e) = g.0.write_key(&k, index)
            {
                tracing::error!(error = %e, "key log: write failed");
            }
        }
    }
}

#[cfg(any(feature = "driver-sim", feature = "driver-udp"))]
pub use taps::{KeyLogTap, PcapTap};
