//! The byte encoding of an [`Action`] across the plugin ABI (version 1).
//!
//! One action is one TLV: `tag (1 octet) | length (4 octets, big-endian) | value`. Integers inside
//! values are big-endian; `u64::MAX` as a lifetime means "none". The value layouts:
//!
//! ```text
//! 0x01 Send         pdu octets
//! 0x02 InstallKeys  owner(4) peer(8) count(2) count × link key
//!                   link key = lookup scope(1)[+peer(8) if 0] direction(1) min_level(1)
//!                              lifetime(8) key_len(2) key
//!                   lookup   = mode(1) [index(1)] [source(4 or 8)]   (mode 0: nothing more)
//!                   scope    = 0 pairwise (peer follows), 1 group
//!                   direction= 0 both, 1 transmit, 2 receive
//! 0x03 RemoveKeys   owner(4) peer(8) selector(1): 0 all | 1 link key + lookup
//!                   | 2 sa_id_len(2) sa_id revoke_children(1)
//! 0x04 Finished     0 success: peer(8) session_id_len(2) session_id lifetime(8) keys_installed(4)
//!                   1 failure: code(1) detail(4) message_len(2) message (UTF-8)
//! owner = KMP ID octet + OUI (3 octets, zero unless the ID is 255)
//! ```
//!
//! Failure codes: 1 authentication failed, 2 timeout (detail = attempts), 3 rejected by peer
//! (detail = code), 4 negotiation failed, 5 protocol violation (message), 6 deleted, 7 resource
//! exhausted, 8 internal (message). A link failure crosses as code 8 with its description.
//! Upper-layer SAs do not cross ABI version 1: encoding an `InstallKeys` that carries one fails.

use crate::addr::ExtendedAddress;
use crate::id::{KmpId, Oui};
use crate::primitives::MacStatus;
use crate::security::{KeyIdentifier, KeySource, SecurityLevel};
use crate::session::{
    Action, EstablishedSa, FailureReason, KeyDirection, KeyInstall, KeyRemoval, KeyScope,
    KeySelector, LinkKey, Outcome, SecretBytes,
};
use crate::time::Duration;

/// Tag of [`Action::Send`].
pub const TAG_SEND: u8 = 0x01;
/// Tag of [`Action::InstallKeys`].
pub const TAG_INSTALL_KEYS: u8 = 0x02;
/// Tag of [`Action::RemoveKeys`].
pub const TAG_REMOVE_KEYS: u8 = 0x03;
/// Tag of [`Action::Finished`].
pub const TAG_FINISHED: u8 = 0x04;

/// Length of the TLV header (tag and length).
pub const HEADER_LEN: usize = 5;

/// Error decoding or encoding an action.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlvError {
    /// The input ended inside a field.
    #[error("truncated action encoding: {0}")]
    Truncated(&'static str),
    /// The top-level tag is not one of the four actions.
    #[error("unknown action tag 0x{0:02x}")]
    UnknownTag(u8),
    /// A field holds a value the encoding does not define.
    #[error("bad value in action encoding: {0}")]
    BadValue(&'static str),
    /// Octets follow the end of the value.
    #[error("{0} octets after the end of the action")]
    TrailingOctets(usize),
    /// The action cannot be encoded in ABI version 1.
    #[error("not encodable in plugin ABI v1: {0}")]
    Unsupported(&'static str),
}

fn owner_octets(id: KmpId) -> [u8; 4] {
    let oui = match id {
        KmpId::VendorSpecific(o) => o.0,
        _ => [0; 3],
    };
    [id.value(), oui[0], oui[1], oui[2]]
}

fn put_len16(out: &mut Vec<u8>, len: usize, what: &'static str) -> Result<(), TlvError> {
    let n = u16::try_from(len).map_err(|_| TlvError::Unsupported(what))?;
    out.extend_from_slice(&n.to_be_bytes());
    Ok(())
}

fn put_lookup(out: &mut Vec<u8>, id: &KeyIdentifier) {
    out.push(id.mode().bits());
    match id {
        KeyIdentifier::Implicit => {}
        KeyIdentifier::Index(i) => out.push(*i),
        KeyIdentifier::SourceIndex(src, i) => {
            out.push(*i);
            out.extend_from_slice(src.as_bytes());
        }
    }
}

fn put_lifetime(out: &mut Vec<u8>, d: Option<Duration>) {
    let v = d.map_or(u64::MAX, Duration::as_micros);
    out.extend_from_slice(&v.to_be_bytes());
}

fn failure_parts(r: &FailureReason) -> (u8, u32, String) {
    match r {
        FailureReason::AuthenticationFailed => (1, 0, String::new()),
        FailureReason::Timeout { attempts } => (2, *attempts, String::new()),
        FailureReason::RejectedByPeer { code } => (3, *code, String::new()),
        FailureReason::NegotiationFailed => (4, 0, String::new()),
        FailureReason::ProtocolViolation(s) => (5, 0, s.clone()),
        FailureReason::Deleted => (6, 0, String::new()),
        FailureReason::ResourceExhausted => (7, 0, String::new()),
        FailureReason::Link(s) => (8, 0, format!("link failure: {s:?}")),
        FailureReason::Internal(s) => (8, 0, s.clone()),
    }
}

/// A MAC status as the `(code, detail)` pair of `handle_link_failure`: 0 success, 1 no ack,
/// 2 channel access failure, 3 frame too long, 4 transaction overflow, 5 transaction expired,
/// 6 invalid parameter, 7 unavailable key, 8 counter error, 9 improper security level, 10 purged,
/// 11 aborted (detail: the peer's maximum size, `u32::MAX` if it gave none), 12 timeout, 13 no
/// resources. The detail is 0 unless stated.
pub fn mac_status_to_abi(s: MacStatus) -> (u32, u32) {
    match s {
        MacStatus::Success => (0, 0),
        MacStatus::NoAck => (1, 0),
        MacStatus::ChannelAccessFailure => (2, 0),
        MacStatus::FrameTooLong => (3, 0),
        MacStatus::TransactionOverflow => (4, 0),
        MacStatus::TransactionExpired => (5, 0),
        MacStatus::InvalidParameter => (6, 0),
        MacStatus::UnavailableKey => (7, 0),
        MacStatus::CounterError => (8, 0),
        MacStatus::ImproperSecurityLevel => (9, 0),
        MacStatus::Purged => (10, 0),
        MacStatus::Aborted { peer_max_size } => (11, peer_max_size.map_or(u32::MAX, u32::from)),
        MacStatus::Timeout => (12, 0),
        MacStatus::NoResources => (13, 0),
    }
}

/// The inverse of [`mac_status_to_abi`]; `None` for an unknown code or detail.
pub fn mac_status_from_abi(code: u32, detail: u32) -> Option<MacStatus> {
    Some(match code {
        0 => MacStatus::Success,
        1 => MacStatus::NoAck,
        2 => MacStatus::ChannelAccessFailure,
        3 => MacStatus::FrameTooLong,
        4 => MacStatus::TransactionOverflow,
        5 => MacStatus::TransactionExpired,
        6 => MacStatus::InvalidParameter,
        7 => MacStatus::UnavailableKey,
        8 => MacStatus::CounterError,
        9 => MacStatus::ImproperSecurityLevel,
        10 => MacStatus::Purged,
        11 => MacStatus::Aborted {
            peer_max_size: match detail {
                u32::MAX => None,
                d => Some(u16::try_from(d).ok()?),
            },
        },
        12 => MacStatus::Timeout,
        13 => MacStatus::NoResources,
        _ => return None,
    })
}

/// Encodes one action as a TLV.
pub fn encode_action(action: &Action) -> Result<Vec<u8>, TlvError> {
    let mut v = Vec::new();
    let tag = match action {
        Action::Send(pdu) => {
            v.extend_from_slice(pdu);
            TAG_SEND
        }
        Action::InstallKeys(k) => {
            if !k.upper_layer_sas.is_empty() {
                return Err(TlvError::Unsupported("upper-layer SAs"));
            }
            v.extend_from_slice(&owner_octets(k.owner));
            v.extend_from_slice(&k.peer.0);
            put_len16(&mut v, k.link_keys.len(), "more than 65535 link keys")?;
            for lk in &k.link_keys {
                put_lookup(&mut v, &lk.lookup);
                match lk.scope {
                    KeyScope::Pairwise(p) => {
                        v.push(0);
                        v.extend_from_slice(&p.0);
                    }
                    KeyScope::Group => v.push(1),
                }
                v.push(match lk.direction {
                    KeyDirection::Both => 0,
                    KeyDirection::Transmit => 1,
                    KeyDirection::Receive => 2,
                });
                v.push(lk.min_security_level.bits());
                put_lifetime(&mut v, lk.lifetime);
                put_len16(&mut v, lk.key.len(), "key longer than 65535 octets")?;
                v.extend_from_slice(lk.key.expose());
            }
            TAG_INSTALL_KEYS
        }
        Action::RemoveKeys(r) => {
            v.extend_from_slice(&owner_octets(r.owner));
            v.extend_from_slice(&r.peer.0);
            match &r.which {
                KeySelector::All => v.push(0),
                KeySelector::LinkKey(id) => {
                    v.push(1);
                    put_lookup(&mut v, id);
                }
                KeySelector::UpperLayerSa {
                    sa_id,
                    revoke_children,
                } => {
                    v.push(2);
                    put_len16(&mut v, sa_id.len(), "SA ID longer than 65535 octets")?;
                    v.extend_from_slice(sa_id);
                    v.push(u8::from(*revoke_children));
                }
            }
            TAG_REMOVE_KEYS
        }
        Action::Finished(Outcome::Success(sa)) => {
            v.push(0);
            v.extend_from_slice(&sa.peer.0);
            put_len16(
                &mut v,
                sa.session_id.len(),
                "session ID longer than 65535 octets",
            )?;
            v.extend_from_slice(&sa.session_id);
            put_lifetime(&mut v, sa.lifetime);
            let n = u32::try_from(sa.keys_installed).unwrap_or(u32::MAX);
            v.extend_from_slice(&n.to_be_bytes());
            TAG_FINISHED
        }
        Action::Finished(Outcome::Failure(r)) => {
            let (code, detail, msg) = failure_parts(r);
            v.push(1);
            v.push(code);
            v.extend_from_slice(&detail.to_be_bytes());
            let msg = truncate_utf8(&msg, usize::from(u16::MAX));
            put_len16(&mut v, msg.len(), "message")?;
            v.extend_from_slice(msg.as_bytes());
            TAG_FINISHED
        }
    };
    let len = u32::try_from(v.len()).map_err(|_| TlvError::Unsupported("value over 4 GiB"))?;
    let mut out = Vec::with_capacity(HEADER_LEN + v.len());
    out.push(tag);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&v);
    Ok(out)
}

fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A cursor over a value that never reads past its end.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], TlvError> {
        if self.buf.len() < n {
            return Err(TlvError::Truncated(what));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], TlvError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, what)?);
        Ok(a)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, TlvError> {
        Ok(self.array::<1>(what)?[0])
    }

    fn u16(&mut self, what: &'static str) -> Result<usize, TlvError> {
        Ok(usize::from(u16::from_be_bytes(self.array(what)?)))
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, TlvError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, TlvError> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }

    fn owner(&mut self) -> Result<KmpId, TlvError> {
        let o = self.array::<4>("owner")?;
        if o[0] == 255 {
            return Ok(KmpId::VendorSpecific(Oui([o[1], o[2], o[3]])));
        }
        KmpId::from_value(o[0]).ok_or(TlvError::BadValue("owner"))
    }

    fn lifetime(&mut self) -> Result<Option<Duration>, TlvError> {
        let v = self.u64("lifetime")?;
        Ok((v != u64::MAX).then(|| Duration::from_micros(v)))
    }

    fn lookup(&mut self) -> Result<KeyIdentifier, TlvError> {
        Ok(match self.u8("key identifier mode")? {
            0 => KeyIdentifier::Implicit,
            1 => KeyIdentifier::Index(self.u8("key index")?),
            2 => {
                let i = self.u8("key index")?;
                KeyIdentifier::SourceIndex(KeySource::Four(self.array("key source")?), i)
            }
            3 => {
                let i = self.u8("key index")?;
                KeyIdentifier::SourceIndex(KeySource::Eight(self.array("key source")?), i)
            }
            _ => return Err(TlvError::BadValue("key identifier mode")),
        })
    }
}

/// Decodes one action TLV. The input must hold exactly one TLV.
pub fn decode_action(buf: &[u8]) -> Result<Action, TlvError> {
    let mut r = Reader { buf };
    let tag = r.u8("tag")?;
    let len = usize::try_from(r.u32("length")?).map_err(|_| TlvError::BadValue("length"))?;
    let value = r.take(len, "value")?;
    if !r.buf.is_empty() {
        return Err(TlvError::TrailingOctets(r.buf.len()));
    }
    let mut r = Reader { buf: value };
    let action = match tag {
        TAG_SEND => Action::Send(r.take(value.len(), "PDU")?.to_vec()),
        TAG_INSTALL_KEYS => {
            let owner = r.owner()?;
            let peer = ExtendedAddress(r.array("peer")?);
            let count = r.u16("key count")?;
            let mut link_keys = Vec::new();
            for _ in 0..count {
                let lookup = r.lookup()?;
                let scope = match r.u8("scope")? {
                    0 => KeyScope::Pairwise(ExtendedAddress(r.array("scope peer")?)),
                    1 => KeyScope::Group,
                    _ => return Err(TlvError::BadValue("scope")),
                };
                let direction = match r.u8("direction")? {
                    0 => KeyDirection::Both,
                    1 => KeyDirection::Transmit,
                    2 => KeyDirection::Receive,
                    _ => return Err(TlvError::BadValue("direction")),
                };
                let level = r.u8("security level")?;
                if level > 7 {
                    return Err(TlvError::BadValue("security level"));
                }
                let lifetime = r.lifetime()?;
                let key_len = r.u16("key length")?;
                let key = SecretBytes::from_slice(r.take(key_len, "key")?);
                link_keys.push(LinkKey {
                    key,
                    lookup,
                    scope,
                    direction,
                    min_security_level: SecurityLevel::from_bits(level),
                    lifetime,
                });
            }
            Action::InstallKeys(KeyInstall {
                owner,
                peer,
                link_keys,
                upper_layer_sas: Vec::new(),
            })
        }
        TAG_REMOVE_KEYS => {
            let owner = r.owner()?;
            let peer = ExtendedAddress(r.array("peer")?);
            let which = match r.u8("selector")? {
                0 => KeySelector::All,
                1 => KeySelector::LinkKey(r.lookup()?),
                2 => {
                    let n = r.u16("SA ID length")?;
                    let sa_id = r.take(n, "SA ID")?.to_vec();
                    let revoke_children = match r.u8("revoke children")? {
                        0 => false,
                        1 => true,
                        _ => return Err(TlvError::BadValue("revoke children")),
                    };
                    KeySelector::UpperLayerSa {
                        sa_id,
                        revoke_children,
                    }
                }
                _ => return Err(TlvError::BadValue("selector")),
            };
            Action::RemoveKeys(KeyRemoval { owner, peer, which })
        }
        TAG_FINISHED => match r.u8("outcome")? {
            0 => {
                let peer = ExtendedAddress(r.array("peer")?);
                let n = r.u16("session ID length")?;
                let session_id = r.take(n, "session ID")?.to_vec();
                let lifetime = r.lifetime()?;
                let keys = r.u32("keys installed")?;
                Action::Finished(Outcome::Success(EstablishedSa {
                    peer,
                    session_id,
                    lifetime,
                    keys_installed: usize::try_from(keys).unwrap_or(usize::MAX),
                }))
            }
            1 => {
                let code = r.u8("failure code")?;
                let detail = r.u32("failure detail")?;
                let n = r.u16("message length")?;
                let msg = std::str::from_utf8(r.take(n, "message")?)
                    .map_err(|_| TlvError::BadValue("message is not UTF-8"))?
                    .to_owned();
                Action::Finished(Outcome::Failure(match code {
                    1 => FailureReason::AuthenticationFailed,
                    2 => FailureReason::Timeout { attempts: detail },
                    3 => FailureReason::RejectedByPeer { code: detail },
                    4 => FailureReason::NegotiationFailed,
                    5 => FailureReason::ProtocolViolation(msg),
                    6 => FailureReason::Deleted,
                    7 => FailureReason::ResourceExhausted,
                    8 => FailureReason::Internal(msg),
                    _ => return Err(TlvError::BadValue("failure code")),
                }))
            }
            _ => return Err(TlvError::BadValue("outcome")),
        },
        other => return Err(TlvError::UnknownTag(other)),
    };
    if !r.buf.is_empty() {
        return Err(TlvError::TrailingOctets(r.buf.len()));
    }
    Ok(action)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_status_round_trip() {
        let all = [
            MacStatus::Success,
            MacStatus::NoAck,
            MacStatus::ChannelAccessFailure,
            MacStatus::FrameTooLong,
            MacStatus::TransactionOverflow,
            MacStatus::TransactionExpired,
            MacStatus::InvalidParameter,
            MacStatus::UnavailableKey,
            MacStatus::CounterError,
            MacStatus::ImproperSecurityLevel,
            MacStatus::Purged,
            MacStatus::Aborted {
                peer_max_size: None,
            },
            MacStatus::Aborted {
                peer_max_size: Some(127),
            },
            MacStatus::Timeout,
            MacStatus::NoResources,
        ];
        for s in all {
            let (c, d) = mac_status_to_abi(s);
            assert_eq!(mac_status_from_abi(c, d), Some(s));
        }
        assert_eq!(mac_status_from_abi(14, 0), None);
        assert_eq!(mac_status_from_abi(11, 70_000), None);
    }

    const PEER: ExtendedAddress = ExtendedAddress([1, 2, 3, 4, 5, 6, 7, 8]);
    const OWNER: KmpId = KmpId::VendorSpecific(Oui([0x02, 0x15, 0x09]));

    fn samples() -> Vec<Action> {
        let key = |lookup, scope, direction, lifetime| LinkKey {
            key: SecretBytes::from_slice(&[0xab; 16]),
            lookup,
            scope,
            direction,
            min_security_level: SecurityLevel::EncMic64,
            lifetime,
        };
        vec![
            Action::Send(vec![]),
            Action::Send(vec![1, 2, 3]),
            Action::InstallKeys(KeyInstall {
                owner: OWNER,
                peer: PEER,
                link_keys: vec![
                    key(
                        KeyIdentifier::Implicit,
                        KeyScope::Pairwise(PEER),
                        KeyDirection::Both,
                        None,
                    ),
                    key(
                        KeyIdentifier::Index(7),
                        KeyScope::Group,
                        KeyDirection::Receive,
                        Some(Duration::from_secs(3600)),
                    ),
                    key(
                        KeyIdentifier::SourceIndex(KeySource::Four([9; 4]), 1),
                        KeyScope::Group,
                        KeyDirection::Transmit,
                        None,
                    ),
                    key(
                        KeyIdentifier::SourceIndex(KeySource::Eight([8; 8]), 2),
                        KeyScope::Group,
                        KeyDirection::Both,
                        Some(Duration::ZERO),
                    ),
                ],
                upper_layer_sas: vec![],
            }),
            Action::RemoveKeys(KeyRemoval {
                owner: KmpId::Dragonfly,
                peer: PEER,
                which: KeySelector::All,
            }),
            Action::RemoveKeys(KeyRemoval {
                owner: OWNER,
                peer: PEER,
                which: KeySelector::LinkKey(KeyIdentifier::Index(3)),
            }),
            Action::RemoveKeys(KeyRemoval {
                owner: OWNER,
                peer: PEER,
                which: KeySelector::UpperLayerSa {
                    sa_id: vec![5, 5],
                    revoke_children: true,
                },
            }),
            Action::Finished(Outcome::Success(EstablishedSa {
                peer: PEER,
                session_id: vec![0xee; 8],
                lifetime: Some(Duration::from_millis(1500)),
                keys_installed: 1,
            })),
            Action::Finished(Outcome::Failure(FailureReason::AuthenticationFailed)),
            Action::Finished(Outcome::Failure(FailureReason::Timeout { attempts: 3 })),
            Action::Finished(Outcome::Failure(FailureReason::RejectedByPeer { code: 77 })),
            Action::Finished(Outcome::Failure(FailureReason::NegotiationFailed)),
            Action::Finished(Outcome::Failure(FailureReason::ProtocolViolation(
                "bad ü".into(),
            ))),
            Action::Finished(Outcome::Failure(FailureReason::Deleted)),
            Action::Finished(Outcome::Failure(FailureReason::ResourceExhausted)),
            Action::Finished(Outcome::Failure(FailureReason::Internal("x".into()))),
        ]
    }

    #[test]
    fn round_trip() {
        for a in samples() {
            let e = encode_action(&a).unwrap();
            assert_eq!(decode_action(&e).unwrap(), a, "{e:02x?}");
        }
    }

    #[test]
    fn known_encoding() {
        let e = encode_action(&Action::Send(vec![0xaa, 0xbb])).unwrap();
        assert_eq!(e, [0x01, 0, 0, 0, 2, 0xaa, 0xbb]);
        let e = encode_action(&Action::RemoveKeys(KeyRemoval {
            owner: OWNER,
            peer: PEER,
            which: KeySelector::All,
        }))
        .unwrap();
        assert_eq!(
            e,
            [
                3, 0, 0, 0, 13, 0xff, 0x02, 0x15, 0x09, 1, 2, 3, 4, 5, 6, 7, 8, 0
            ]
        );
    }

    #[test]
    fn link_failure_crosses_as_internal() {
        let a = Action::Finished(Outcome::Failure(FailureReason::Link(MacStatus::NoAck)));
        let d = decode_action(&encode_action(&a).unwrap()).unwrap();
        assert!(matches!(
            d,
            Action::Finished(Outcome::Failure(FailureReason::Internal(m))) if m.contains("NoAck")
        ));
    }

    #[test]
    fn upper_layer_sas_are_not_encodable() {
        let a = Action::InstallKeys(KeyInstall {
            owner: OWNER,
            peer: PEER,
            link_keys: vec![],
            upper_layer_sas: vec![crate::session::UpperLayerSa {
                sa_id: vec![1],
                kind: "x".into(),
                keys: vec![],
                lifetime: None,
                parent: None,
            }],
        });
        assert!(matches!(encode_action(&a), Err(TlvError::Unsupported(_))));
    }

    #[test]
    fn every_truncation_is_a_typed_error() {
        for a in samples() {
            let e = encode_action(&a).unwrap();
            for n in 0..e.len() {
                assert!(
                    matches!(decode_action(&e[..n]), Err(TlvError::Truncated(_))),
                    "{a:?} cut at {n}"
                );
            }
            // A shorter length field cuts a field (a PDU has no inner structure).
            if e.len() > HEADER_LEN && e[0] != TAG_SEND {
                let mut short = e.clone();
                short[4] -= 1;
                short.pop();
                assert!(decode_action(&short).is_err(), "{a:?}");
            }
        }
    }

    #[test]
    fn malformed_encodings() {
        assert_eq!(
            decode_action(&[0x09, 0, 0, 0, 0]),
            Err(TlvError::UnknownTag(9))
        );
        assert_eq!(
            decode_action(&[0x00, 0, 0, 0, 0]),
            Err(TlvError::UnknownTag(0))
        );
        assert_eq!(
            decode_action(&[0x01, 0, 0, 0, 1, 7, 7]),
            Err(TlvError::TrailingOctets(1))
        );
        assert_eq!(
            decode_action(&[0x01, 0xff, 0xff, 0xff, 0xff, 1]),
            Err(TlvError::Truncated("value"))
        );
        // Finished with an unknown outcome and an unknown failure code.
        assert_eq!(
            decode_action(&[0x04, 0, 0, 0, 1, 2]),
            Err(TlvError::BadValue("outcome"))
        );
        assert_eq!(
            decode_action(&[0x04, 0, 0, 0, 8, 1, 99, 0, 0, 0, 0, 0, 0]),
            Err(TlvError::BadValue("failure code"))
        );
        // RemoveKeys with a bad selector; a reserved-owner octet of 255 is vendor-specific.
        let mut rk = vec![0x03, 0, 0, 0, 13, 5, 0, 0, 0];
        rk.extend_from_slice(&PEER.0);
        rk.push(9);
        assert_eq!(decode_action(&rk), Err(TlvError::BadValue("selector")));
        // InstallKeys: bad key identifier mode, bad scope, bad direction, bad level.
        let install = |key: &[u8]| {
            let mut v = vec![0xff, 2, 0x15, 9];
            v.extend_from_slice(&PEER.0);
            v.extend_from_slice(&[0, 1]);
            v.extend_from_slice(key);
            let mut e = vec![0x02];
            e.extend_from_slice(&u32::try_from(v.len()).unwrap().to_be_bytes());
            e.extend_from_slice(&v);
            decode_action(&e)
        };
        let lt = u64::MAX.to_be_bytes();
        let mut good = vec![0, 1, 0, 6];
        good.extend_from_slice(&lt);
        good.extend_from_slice(&[0, 1, 0xaa]);
        assert!(install(&good).is_ok());
        let mut bad = good.clone();
        bad[0] = 4;
        assert_eq!(
            install(&bad),
            Err(TlvError::BadValue("key identifier mode"))
        );
        let mut bad = good.clone();
        bad[1] = 2;
        assert_eq!(install(&bad), Err(TlvError::BadValue("scope")));
        let mut bad = good.clone();
        bad[2] = 3;
        assert_eq!(install(&bad), Err(TlvError::BadValue("direction")));
        let mut bad = good.clone();
        bad[3] = 8;
        assert_eq!(install(&bad), Err(TlvError::BadValue("security level")));
        // A message that is not UTF-8.
        assert_eq!(
            decode_action(&[0x04, 0, 0, 0, 9, 1, 5, 0, 0, 0, 0, 0, 1, 0xff]),
            Err(TlvError::BadValue("message is not UTF-8"))
        );
    }
}
