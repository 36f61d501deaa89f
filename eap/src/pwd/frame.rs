//! EAP-pwd framing (RFC 5931 §3): the header octet `L | M | PWD-Exch`, the Total-Length of a
//! fragmented message, fragmentation of what we send and reassembly of what we receive, and the
//! PWD-ID payload.
//!
//! Fragmentation (RFC 5931 §3.1): a message longer than the fragment size goes out in pieces;
//! the first carries L and the 2-octet Total-Length, every piece but the last carries M. The
//! receiver acknowledges each piece with M by an empty message of the same PWD-Exch (the header
//! octet alone), and the sender answers that with the next piece.
//!
//! Total-Length: RFC 5931 §3.1 calls it "the total length of the EAP-pwd message"; we send the
//! length of the reassembled payload (what FreeRADIUS expects), while hostapd and wpa_supplicant
//! send 3 more (they count the header octet and the Total-Length field) and treat the field as
//! a buffer size only. So a received message may be Total-Length or Total-Length − 3 octets
//! long.
//!
//! Reassembly rules (as for EAP-TLS, docs/DECISIONS.md E7): at most [`MAX_MESSAGE_LEN`] octets,
//! checked against Total-Length before anything is buffered; M without L on a first fragment,
//! L on a later one, a change of PWD-Exch, an empty piece, more data than Total-Length, a
//! message ending at another length than above, and M after the last octet are errors, and an
//! error leaves the state as it was.

use crate::method::MethodError;

/// The L bit: Total-Length follows the header octet.
pub const FLAG_L: u8 = 0x80;
/// The M bit: more fragments follow.
pub const FLAG_M: u8 = 0x40;
/// The PWD-Exch bits of the header octet.
const EXCH_MASK: u8 = 0x3f;

/// The largest message reassembled (PWD-ID with a long identity is the longest EAP-pwd message;
/// Commit is 96 octets and Confirm 32 for group 19).
pub const MAX_MESSAGE_LEN: usize = 4096;
/// Default largest type-data of one packet we send (header octets included), as EAP-TLS's.
pub const DEFAULT_FRAGMENT_SIZE: usize = 1000;
/// The smallest fragment size (smaller values are raised to it): a PWD-Confirm (header and 32
/// octets) always fits in one packet, so each side's last message is never fragmented and the
/// method ends with it.
pub const MIN_FRAGMENT_SIZE: usize = 33;

/// The three EAP-pwd exchanges (RFC 5931 §3.2, IANA "EAP-pwd PWD-Exch").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Exch {
    /// 1: PWD-ID, ciphersuite negotiation and identities.
    Id = 1,
    /// 2: PWD-Commit, scalar and element.
    Commit = 2,
    /// 3: PWD-Confirm.
    Confirm = 3,
}

impl Exch {
    fn from_header(h: u8) -> Option<Exch> {
        match h & EXCH_MASK {
            1 => Some(Exch::Id),
            2 => Some(Exch::Commit),
            3 => Some(Exch::Confirm),
            _ => None,
        }
    }

    fn bits(self) -> u8 {
        self as u8
    }
}

/// What an incoming packet amounts to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Received {
    /// A whole message: unfragmented, or completed by this last fragment.
    Message(Exch, Vec<u8>),
    /// Answer with this type-data (an acknowledgement of a fragment, or our next fragment after
    /// the peer acknowledged the previous one); the exchange is otherwise unchanged.
    Reply(Vec<u8>),
}

struct Rx {
    exch: Exch,
    total: usize,
    buf: Vec<u8>,
}

struct Tx {
    exch: Exch,
    data: Vec<u8>,
    pos: usize,
}

/// Fragmentation and reassembly state of one side.
pub(crate) struct Framer {
    fragment_size: usize,
    rx: Option<Rx>,
    tx: Option<Tx>,
}

/// What hostapd and wpa_supplicant add to Total-Length: the header octet and the field itself.
const TOTAL_LENGTH_SLACK: usize = 3;

/// Whether a reassembled message of `len` octets matches Total-Length `total` in either reading.
fn complete(len: usize, total: usize) -> bool {
    len == total || len + TOTAL_LENGTH_SLACK == total
}

fn invalid(what: &'static str) -> MethodError {
    MethodError::Invalid(what)
}

impl Framer {
    /// `fragment_size` is clamped to at least [`MIN_FRAGMENT_SIZE`].
    pub(crate) fn new(fragment_size: usize) -> Framer {
        Framer {
            fragment_size: fragment_size.max(MIN_FRAGMENT_SIZE),
            rx: None,
            tx: None,
        }
    }

    /// Whether a fragmented message of ours is still going out.
    #[cfg(test)]
    pub(crate) fn sending(&self) -> bool {
        self.tx.is_some()
    }

    /// Interprets the type-data of one incoming packet. On `Err` nothing changed.
    pub(crate) fn receive(&mut self, data: &[u8]) -> Result<Received, MethodError> {
        let (&h, rest) = data
            .split_first()
            .ok_or(invalid("EAP-pwd without header"))?;
        let exch = Exch::from_header(h).ok_or(invalid("unknown PWD-Exch"))?;
        let (l, m) = (h & FLAG_L != 0, h & FLAG_M != 0);

        if let Some(tx) = &mut self.tx {
            // We are sending a fragmented message: only its acknowledgement is acceptable.
            if h != tx.exch.bits() || !rest.is_empty() {
                return Err(invalid("expected an EAP-pwd fragment acknowledgement"));
            }
            let room = self.fragment_size - 1;
            let end = tx.data.len().min(tx.pos + room);
            let last = end == tx.data.len();
            let mut out = Vec::with_capacity(1 + end - tx.pos);
            out.push(tx.exch.bits() | if last { 0 } else { FLAG_M });
            out.extend_from_slice(&tx.data[tx.pos..end]);
            tx.pos = end;
            if last {
                self.tx = None;
            }
            return Ok(Received::Reply(out));
        }

        match &mut self.rx {
            None => {
                if !l {
                    if m {
                        return Err(invalid("EAP-pwd first fragment without L"));
                    }
                    if rest.len() > MAX_MESSAGE_LEN {
                        return Err(invalid("EAP-pwd message too long"));
                    }
                    return Ok(Received::Message(exch, rest.to_vec()));
                }
                let (len, payload) = rest
                    .split_first_chunk::<2>()
                    .ok_or(invalid("EAP-pwd L without Total-Length"))?;
                let total = usize::from(u16::from_be_bytes(*len));
                if total == 0 || total > MAX_MESSAGE_LEN + TOTAL_LENGTH_SLACK {
                    return Err(invalid("EAP-pwd Total-Length out of range"));
                }
                if payload.len() > total {
                    return Err(invalid("EAP-pwd fragment longer than Total-Length"));
                }
                if !m {
                    if !complete(payload.len(), total) {
                        return Err(invalid("EAP-pwd message shorter than Total-Length"));
                    }
                    return Ok(Received::Message(exch, payload.to_vec()));
                }
                if payload.is_empty() || payload.len() == total {
                    return Err(invalid("EAP-pwd M with no data to follow"));
                }
                let mut buf = Vec::with_capacity(total);
                buf.extend_from_slice(payload);
                self.rx = Some(Rx { exch, total, buf });
                Ok(Received::Reply(vec![exch.bits()]))
            }
            Some(rx) => {
                if l {
                    return Err(invalid("EAP-pwd L on a later fragment"));
                }
                if exch != rx.exch {
                    return Err(invalid("EAP-pwd PWD-Exch changed between fragments"));
                }
                if rest.is_empty() {
                    return Err(invalid("EAP-pwd empty fragment"));
                }
                let new_len = rx.buf.len() + rest.len();
                if new_len > rx.total {
                    return Err(invalid("EAP-pwd fragments exceed Total-Length"));
                }
                if m {
                    if new_len == rx.total {
                        return Err(invalid("EAP-pwd M after the last octet"));
                    }
                    rx.buf.extend_from_slice(rest);
                    return Ok(Received::Reply(vec![exch.bits()]));
                }
                if !complete(new_len, rx.total) {
                    return Err(invalid("EAP-pwd message shorter than Total-Length"));
                }
                rx.buf.extend_from_slice(rest);
                let buf = std::mem::take(&mut rx.buf);
                self.rx = None;
                Ok(Received::Message(exch, buf))
            }
        }
    }

    /// The type-data of the (first fragment of the) message `exch` with `payload`. A payload
    /// longer than 65535 octets cannot be described by Total-Length.
    pub(crate) fn send(&mut self, exch: Exch, payload: Vec<u8>) -> Result<Vec<u8>, MethodError> {
        if payload.len() < self.fragment_size {
            let mut out = Vec::with_capacity(1 + payload.len());
            out.push(exch.bits());
            out.extend_from_slice(&payload);
            return Ok(out);
        }
        let total =
            u16::try_from(payload.len()).map_err(|_| invalid("EAP-pwd message too long"))?;
        let first = self.fragment_size - 3;
        let mut out = Vec::with_capacity(self.fragment_size);
        out.push(exch.bits() | FLAG_L | FLAG_M);
        out.extend_from_slice(&total.to_be_bytes());
        out.extend_from_slice(&payload[..first]);
        self.tx = Some(Tx {
            exch,
            data: payload,
            pos: first,
        });
        Ok(out)
    }
}

/// Length of the fixed part of PWD-ID: Group Description (2), Random Function (1), PRF (1),
/// Token (4), Prep (1).
pub const ID_FIXED_LEN: usize = 9;

/// The PWD-ID payload (RFC 5931 §3.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdPayload {
    /// Group Description (IANA "IKEv2 Transform Type 4"; 19 = P-256).
    pub group: u16,
    /// Random Function (1: HMAC-SHA256 with a key of zeros, RFC 5931 §2.7).
    pub random_function: u8,
    /// PRF (1: HMAC-SHA256).
    pub prf: u8,
    /// The server's token, echoed by the peer.
    pub token: [u8; 4],
    /// Password preparation (0: none).
    pub prep: u8,
    /// The sender's identity.
    pub identity: Vec<u8>,
}

impl IdPayload {
    /// Parses the payload (at least [`ID_FIXED_LEN`] octets).
    pub fn parse(b: &[u8]) -> Result<IdPayload, MethodError> {
        if b.len() < ID_FIXED_LEN {
            return Err(invalid("PWD-ID too short"));
        }
        Ok(IdPayload {
            group: u16::from_be_bytes([b[0], b[1]]),
            random_function: b[2],
            prf: b[3],
            token: [b[4], b[5], b[6], b[7]],
            prep: b[8],
            identity: b[ID_FIXED_LEN..].to_vec(),
        })
    }

    /// The payload octets.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(ID_FIXED_LEN + self.identity.len());
        v.extend_from_slice(&self.group.to_be_bytes());
        v.push(self.random_function);
        v.push(self.prf);
        v.extend_from_slice(&self.token);
        v.push(self.prep);
        v.extend_from_slice(&self.identity);
        v
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    /// Sends `payload` through a sender and a receiver with `size`, counting packets.
    fn roundtrip(size: usize, payload: &[u8]) -> usize {
        let mut tx = Framer::new(size);
        let mut rx = Framer::new(size);
        let mut pkt = tx.send(Exch::Commit, payload.to_vec()).unwrap();
        let mut packets = 1;
        loop {
            assert!(pkt.len() <= size.max(MIN_FRAGMENT_SIZE));
            assert!(packets < 1000);
            match rx.receive(&pkt).unwrap() {
                Received::Message(e, m) => {
                    assert_eq!(e, Exch::Commit);
                    assert_eq!(m, payload);
                    assert!(!tx.sending());
                    return packets;
                }
                Received::Reply(ack) => {
                    assert_eq!(ack, vec![Exch::Commit.bits()]);
                    match tx.receive(&ack).unwrap() {
                        Received::Reply(next) => pkt = next,
                        Received::Message(..) => panic!("an ACK is not a message"),
                    }
                    packets += 1;
                }
            }
        }
    }

    #[test]
    fn fragmentation_roundtrips() {
        let payload: Vec<u8> = (0..=255u8).cycle().take(300).collect();
        assert_eq!(roundtrip(1000, &payload), 1);
        assert_eq!(roundtrip(301, &payload), 1);
        // 300 octets in 100-octet packets: 97 in the first, then 99 each.
        assert_eq!(roundtrip(100, &payload), 4);
        assert_eq!(roundtrip(33, &payload), 1 + (270usize).div_ceil(32));
        // Smaller sizes are raised to the minimum.
        assert_eq!(
            roundtrip(8, &payload),
            roundtrip(MIN_FRAGMENT_SIZE, &payload)
        );
    }

    #[test]
    fn reassembly_rejects_bad_sequences_without_changing_state() {
        let mut rx = Framer::new(1000);
        // M without L on a first fragment.
        assert!(rx.receive(&[0x42, 1, 2]).is_err());
        // Total-Length beyond the limit, zero, or shorter than the data.
        assert!(rx.receive(&[0xc2, 0x10, 0x04, 1]).is_err());
        assert!(rx.receive(&[0xc2, 0, 0, 1]).is_err());
        assert!(rx.receive(&[0xc2, 0, 1, 1, 2]).is_err());
        // L without M must carry everything (Total-Length in either reading).
        assert!(rx.receive(&[0x82, 0, 3, 1, 2]).is_err());
        assert!(rx.receive(&[0x82, 0, 4, 1, 2]).is_err());
        assert_eq!(
            rx.receive(&[0x82, 0, 5, 1, 2]).unwrap(),
            Received::Message(Exch::Commit, vec![1, 2])
        );
        assert_eq!(
            rx.receive(&[0x82, 0, 2, 1, 2]).unwrap(),
            Received::Message(Exch::Commit, vec![1, 2])
        );
        // M with everything already there.
        assert!(rx.receive(&[0xc2, 0, 2, 1, 2]).is_err());
        // Unknown exchange, empty input.
        assert!(rx.receive(&[0x04, 1]).is_err());
        assert!(rx.receive(&[]).is_err());
        // A proper first fragment, then bad continuations, then the right one.
        assert_eq!(
            rx.receive(&[0xc2, 0, 4, 1, 2]).unwrap(),
            Received::Reply(vec![2])
        );
        assert!(rx.receive(&[0x83, 3, 4]).is_err(), "changed exchange");
        assert!(rx.receive(&[0x03, 3, 4]).is_err(), "changed exchange");
        assert!(rx.receive(&[0x82, 0, 4, 3, 4]).is_err(), "L again");
        assert!(rx.receive(&[0x02]).is_err(), "empty fragment");
        assert!(rx.receive(&[0x02, 3, 4, 5]).is_err(), "too much");
        assert!(rx.receive(&[0x42, 3, 4]).is_err(), "M after the last octet");
        assert!(rx.receive(&[0x02, 3]).is_err(), "too little");
        assert_eq!(
            rx.receive(&[0x02, 3, 4]).unwrap(),
            Received::Message(Exch::Commit, vec![1, 2, 3, 4])
        );
        // hostapd's reading: Total-Length 7 for 4 octets of payload.
        assert_eq!(
            rx.receive(&[0xc3, 0, 7, 1, 2]).unwrap(),
            Received::Reply(vec![3])
        );
        assert!(rx.receive(&[0x03, 3]).is_err(), "5 or 6 octets is neither");
        assert_eq!(
            rx.receive(&[0x03, 3, 4]).unwrap(),
            Received::Message(Exch::Confirm, vec![1, 2, 3, 4])
        );
    }

    #[test]
    fn sender_accepts_only_the_matching_ack() {
        let mut tx = Framer::new(33);
        let first = tx.send(Exch::Id, vec![7; 40]).unwrap();
        assert_eq!(first.len(), 33);
        assert_eq!(&first[..3], &[0xc1, 0, 40]);
        assert!(tx.receive(&[0x02]).is_err());
        assert!(tx.receive(&[0x01, 0]).is_err());
        assert!(tx.receive(&[0x41]).is_err());
        assert!(tx.sending());
        let second = tx.receive(&[0x01]).unwrap();
        let mut want = vec![0x01];
        want.extend_from_slice(&[7; 10]);
        assert_eq!(second, Received::Reply(want));
        assert!(!tx.sending());
    }

    #[test]
    fn id_payload_roundtrip() {
        let id = IdPayload {
            group: 19,
            random_function: 1,
            prf: 1,
            token: [1, 2, 3, 4],
            prep: 0,
            identity: b"server".to_vec(),
        };
        let b = id.to_bytes();
        assert_eq!(&b[..9], &[0, 19, 1, 1, 1, 2, 3, 4, 0]);
        assert_eq!(IdPayload::parse(&b).unwrap(), id);
        assert!(IdPayload::parse(&b[..8]).is_err());
    }
}
