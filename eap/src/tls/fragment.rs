//! The EAP-TLS type-data (RFC 5216 §3.1, unchanged by RFC 9190): the Flags octet, the optional
//! TLS Message Length, and the TLS data; fragmentation and reassembly (RFC 5216 §2.1.5).
//!
//! ```text
//!  0 1 2 3 4 5 6 7
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |L M S R R R R R|  TLS Message Length (4 octets, only with L)  ...
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  TLS data ...
//! ```
//!
//! The reserved bits are ignored on receipt and sent as zero.

use super::TlsError;

/// Flag bits of the first type-data octet.
pub mod flags {
    /// L: the four-octet TLS Message Length follows the flags.
    pub const LENGTH_INCLUDED: u8 = 0x80;
    /// M: more fragments of this TLS message follow.
    pub const MORE_FRAGMENTS: u8 = 0x40;
    /// S: EAP-TLS Start (sent by the server only, in its first request).
    pub const START: u8 = 0x20;
}

/// One EAP-TLS message (the type-data of an EAP-Request or EAP-Response of type 13), borrowed
/// from the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment<'a> {
    /// S flag.
    pub start: bool,
    /// M flag.
    pub more_fragments: bool,
    /// The TLS Message Length, present when the L flag is set: the total length of the TLS
    /// message (or set of messages) this fragment belongs to.
    pub message_length: Option<u32>,
    /// The TLS data carried by this fragment.
    pub data: &'a [u8],
}

impl<'a> Fragment<'a> {
    /// The acknowledgement of a fragment: no flags, no data (RFC 5216 §2.1.5).
    pub const ACK: Fragment<'static> = Fragment {
        start: false,
        more_fragments: false,
        message_length: None,
        data: &[],
    };

    /// Parses type-data. Empty input (no Flags octet) and an L flag without four octets after
    /// it are [`TlsError::Malformed`].
    pub fn parse(type_data: &'a [u8]) -> Result<Fragment<'a>, TlsError> {
        let (&f, rest) = type_data
            .split_first()
            .ok_or(TlsError::Malformed("no Flags octet"))?;
        let (message_length, data) = if f & flags::LENGTH_INCLUDED != 0 {
            let (len, data) = rest.split_first_chunk::<4>().ok_or(TlsError::Malformed(
                "L flag without a four-octet TLS Message Length",
            ))?;
            (Some(u32::from_be_bytes(*len)), data)
        } else {
            (None, rest)
        };
        Ok(Fragment {
            start: f & flags::START != 0,
            more_fragments: f & flags::MORE_FRAGMENTS != 0,
            message_length,
            data,
        })
    }

    /// Whether this is an acknowledgement: no L, M or S flag and no data.
    pub fn is_ack(&self) -> bool {
        !self.start && !self.more_fragments && self.message_length.is_none() && self.data.is_empty()
    }

    /// The Flags octet.
    pub fn flags(&self) -> u8 {
        let mut f = 0;
        if self.message_length.is_some() {
            f |= flags::LENGTH_INCLUDED;
        }
        if self.more_fragments {
            f |= flags::MORE_FRAGMENTS;
        }
        if self.start {
            f |= flags::START;
        }
        f
    }

    /// Octets [`emit`](Self::emit) writes.
    pub fn buffer_len(&self) -> usize {
        1 + if self.message_length.is_some() { 4 } else { 0 } + self.data.len()
    }

    /// Appends the type-data to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.reserve(self.buffer_len());
        out.push(self.flags());
        if let Some(len) = self.message_length {
            out.extend_from_slice(&len.to_be_bytes());
        }
        out.extend_from_slice(self.data);
    }

    /// The type-data as a new vector.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.emit(&mut v);
        v
    }

    /// A short name of what this message is, for errors.
    pub fn kind(&self) -> &'static str {
        if self.start {
            "EAP-TLS Start"
        } else if self.is_ack() {
            "acknowledgement"
        } else if self.more_fragments {
            "TLS fragment"
        } else {
            "TLS data"
        }
    }
}

/// Collects the fragments of one TLS message (or set of messages).
///
/// The first fragment of a fragmented message must carry L (RFC 5216 §2.1.5: "MUST be set for
/// the first fragment"); later fragments may repeat it, with the same value. The announced
/// length is checked against `max` before anything is buffered, and the data received must add
/// up to it exactly.
#[derive(Debug)]
pub(crate) struct Reassembly {
    buf: Vec<u8>,
    announced: Option<u32>,
    max: usize,
}

impl Reassembly {
    pub(crate) fn new(max: usize) -> Reassembly {
        Reassembly {
            buf: Vec::new(),
            announced: None,
            max,
        }
    }

    /// Whether a message is partly received.
    pub(crate) fn in_progress(&self) -> bool {
        self.announced.is_some() || !self.buf.is_empty()
    }

    /// Adds one fragment (not an acknowledgement, not a Start). `Ok(None)`: acknowledge it and
    /// wait for the next; `Ok(Some(message))`: the message is complete.
    pub(crate) fn push(&mut self, frag: &Fragment<'_>) -> Result<Option<Vec<u8>>, TlsError> {
        if let Some(len) = frag.message_length {
            let len_usize = usize::try_from(len).unwrap_or(usize::MAX);
            if len_usize > self.max {
                return Err(TlsError::MessageTooLong {
                    length: len_usize,
                    max: self.max,
                });
            }
            match self.announced {
                None if !self.in_progress() => self.announced = Some(len),
                Some(a) if a == len => {}
                _ => {
                    return Err(TlsError::LengthMismatch {
                        announced: self.announced,
                        got: len_usize,
                    });
                }
            }
        } else if frag.more_fragments && !self.in_progress() {
            return Err(TlsError::Malformed(
                "first fragment of a fragmented message without L flag",
            ));
        }
        if frag.more_fragments && frag.data.is_empty() {
            return Err(TlsError::Malformed("fragment with M flag but no data"));
        }
        let total = self.buf.len().saturating_add(frag.data.len());
        let limit = match self.announced {
            Some(a) => usize::try_from(a).unwrap_or(usize::MAX),
            None => self.max,
        };
        if total > limit {
            return Err(match self.announced {
                Some(a) => TlsError::LengthMismatch {
                    announced: Some(a),
                    got: total,
                },
                None => TlsError::MessageTooLong {
                    length: total,
                    max: self.max,
                },
            });
        }
        if frag.more_fragments && total == limit && self.announced.is_some() {
            return Err(TlsError::LengthMismatch {
                announced: self.announced,
                got: total,
            });
        }
        self.buf.extend_from_slice(frag.data);
        if frag.more_fragments {
            return Ok(None);
        }
        if let Some(a) = self.announced
            && usize::try_from(a).ok() != Some(total)
        {
            return Err(TlsError::LengthMismatch {
                announced: Some(a),
                got: total,
            });
        }
        self.announced = None;
        Ok(Some(core::mem::take(&mut self.buf)))
    }
}

/// A TLS message (or flight) being sent in fragments of at most `fragment_size` octets of
/// type-data each. The first fragment of a fragmented message carries L (and M); an
/// unfragmented message carries neither.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    data: Vec<u8>,
    sent: usize,
}

impl Outbox {
    /// Replaces the contents with a new message.
    pub(crate) fn load(&mut self, data: Vec<u8>) {
        self.data = data;
        self.sent = 0;
    }

    /// Whether fragments remain to be sent.
    pub(crate) fn pending(&self) -> bool {
        self.sent < self.data.len()
    }

    /// The next fragment's type-data. Call only while [`pending`](Self::pending) or right after
    /// [`load`](Self::load) (an empty message gives one empty fragment).
    pub(crate) fn next_fragment(&mut self, fragment_size: usize) -> Vec<u8> {
        let total = self.data.len();
        let first = self.sent == 0;
        let fragmented = first && total > fragment_size.saturating_sub(1);
        let header = if fragmented { 5 } else { 1 };
        let room = fragment_size.saturating_sub(header).max(1);
        let end = total.min(self.sent.saturating_add(room));
        let message_length = if fragmented {
            // `total` is bounded by the TLS engine's output (a flight), far below 4 GiB; a
            // larger one would be cut by the peer's reassembly limit anyway.
            Some(u32::try_from(total).unwrap_or(u32::MAX))
        } else {
            None
        };
        let frag = Fragment {
            start: false,
            more_fragments: end < total,
            message_length,
            data: self.data.get(self.sent..end).unwrap_or_default(),
        };
        let out = frag.to_vec();
        self.sent = end;
        if !self.pending() {
            self.data.clear();
            self.sent = 0;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_emit() {
        let bytes = [0xc0, 0x00, 0x00, 0x01, 0x00, 0x16, 0x03];
        let f = Fragment::parse(&bytes).unwrap();
        assert!(f.more_fragments && !f.start);
        assert_eq!(f.message_length, Some(256));
        assert_eq!(f.data, &[0x16, 0x03]);
        assert_eq!(f.to_vec(), bytes);
        assert_eq!(f.buffer_len(), bytes.len());

        let start = Fragment::parse(&[0x21]).unwrap();
        assert!(start.start && start.data.is_empty());
        assert_eq!(start.flags(), 0x20, "reserved bits are not echoed");
        assert!(Fragment::parse(&[0x00]).unwrap().is_ack());
        assert_eq!(Fragment::ACK.to_vec(), [0x00]);
    }

    #[test]
    fn parse_rejects_short() {
        assert!(matches!(Fragment::parse(&[]), Err(TlsError::Malformed(_))));
        assert!(matches!(
            Fragment::parse(&[0x80, 0, 0, 1]),
            Err(TlsError::Malformed(_))
        ));
    }

    #[test]
    fn fragment_then_reassemble() {
        let msg: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let mut out = Outbox::default();
        out.load(msg.clone());
        let mut re = Reassembly::new(65536);
        let mut count = 0;
        let got = loop {
            let td = out.next_fragment(100);
            assert!(td.len() <= 100);
            count += 1;
            let f = Fragment::parse(&td).unwrap();
            assert_eq!(f.message_length.is_some(), count == 1);
            if let Some(m) = re.push(&f).unwrap() {
                break m;
            }
        };
        assert!(!out.pending());
        assert_eq!(got, msg);
        // 95 octets in the first fragment, 99 in each later one.
        assert_eq!(count, 1 + (1000 - 95usize).div_ceil(99));
    }

    #[test]
    fn unfragmented_has_no_length() {
        let mut out = Outbox::default();
        out.load(vec![1, 2, 3]);
        assert_eq!(out.next_fragment(100), [0x00, 1, 2, 3]);
        assert!(!out.pending());
    }

    #[test]
    fn reassembly_rejects_bad_lengths() {
        let frag = |more, len, data: &'static [u8]| Fragment {
            start: false,
            more_fragments: more,
            message_length: len,
            data,
        };
        // Above the limit, before buffering.
        let mut re = Reassembly::new(100);
        assert!(matches!(
            re.push(&frag(true, Some(101), &[1])),
            Err(TlsError::MessageTooLong {
                length: 101,
                max: 100
            })
        ));
        // M without L on the first fragment.
        let mut re = Reassembly::new(100);
        assert!(matches!(
            re.push(&frag(true, None, &[1])),
            Err(TlsError::Malformed(_))
        ));
        // L changes between fragments.
        let mut re = Reassembly::new(100);
        assert_eq!(re.push(&frag(true, Some(4), &[1, 2])).unwrap(), None);
        assert!(matches!(
            re.push(&frag(false, Some(5), &[3, 4])),
            Err(TlsError::LengthMismatch { .. })
        ));
        // More data than announced.
        let mut re = Reassembly::new(100);
        assert_eq!(re.push(&frag(true, Some(3), &[1, 2])).unwrap(), None);
        assert!(matches!(
            re.push(&frag(false, None, &[3, 4])),
            Err(TlsError::LengthMismatch { .. })
        ));
        // Less data than announced in the last fragment.
        let mut re = Reassembly::new(100);
        assert_eq!(re.push(&frag(true, Some(5), &[1, 2])).unwrap(), None);
        assert!(matches!(
            re.push(&frag(false, None, &[3])),
            Err(TlsError::LengthMismatch { .. })
        ));
        // M set although everything announced has arrived.
        let mut re = Reassembly::new(100);
        assert!(matches!(
            re.push(&frag(true, Some(2), &[1, 2])),
            Err(TlsError::LengthMismatch { .. })
        ));
        // Unfragmented with a wrong L.
        let mut re = Reassembly::new(100);
        assert!(matches!(
            re.push(&frag(false, Some(3), &[1, 2])),
            Err(TlsError::LengthMismatch { .. })
        ));
        // Unfragmented with the right L, then again without.
        let mut re = Reassembly::new(100);
        assert_eq!(
            re.push(&frag(false, Some(2), &[1, 2])).unwrap(),
            Some(vec![1, 2])
        );
        assert_eq!(re.push(&frag(false, None, &[3])).unwrap(), Some(vec![3]));
        // Without L, the limit still applies to the sum.
        let mut re = Reassembly::new(2);
        assert!(matches!(
            re.push(&frag(false, None, &[1, 2, 3])),
            Err(TlsError::MessageTooLong { .. })
        ));
    }
}
