//! Dragonfly messages over MPX (KMP ID 5). Annex E of IEEE 802.15.9 is not public; this framing
//! is the project's (docs/DECISIONS.md, "Dragonfly framing"). The KMP ID octet is added and
//! removed by the MPX layer; a PDU here starts at the message type.
//!
//! ```text
//!  0               1               2               3
//! +---------------+---------------+---------------+---------------+
//! | Message Type  |     Flags     |          Group (LE16)         |
//! +---------------+---------------+---------------+---------------+
//! | Body ...
//!
//! Commit (1):  [token length (1) | token]  if Flags.TOKEN, then scalar | element (x | y)
//! Confirm (2): send-confirm (LE16) | confirm (the group's hash length, or 32)
//! Reject (3):  status (LE16) | supported groups (LE16 each, status 1 only)
//! Token (4):   anti-clogging token (1..=64 octets)
//! GroupKey (5): key index (1) | lifetime in seconds (LE32, 0 = none) | AES-KW(KEK, key) (24)
//! ```
//!
//! Scalar, element and confirm lengths follow from the group (scalar and each coordinate are
//! the group's order/prime length; the confirm is the hash length), so a body of the wrong
//! length for its group is malformed.

use crate::group::GroupId;

/// Octets before the body.
pub const HEADER_LEN: usize = 4;
/// Longest anti-clogging token.
pub const MAX_TOKEN_LEN: usize = 64;
/// Length of a wrapped 128-bit group key (RFC 3394).
pub const WRAPPED_KEY_LEN: usize = 24;

mod field {
    pub(super) const TOKEN_PRESENT: u8 = 0x01;
}

/// Why a PDU does not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// Shorter than its fixed fields.
    #[error("truncated Dragonfly message")]
    Truncated,
    /// A message type this version does not define.
    #[error("unknown Dragonfly message type {0}")]
    UnknownMessageType(u8),
    /// A flag that is not defined for the message type.
    #[error("reserved flags 0x{0:02x}")]
    ReservedFlags(u8),
    /// The group is not 19, 20 or 21 (for messages whose body depends on it).
    #[error("unsupported group {0}")]
    UnsupportedGroup(u16),
    /// The body length does not match the group or message type.
    #[error("body length {0} does not fit the message")]
    BodyLength(usize),
    /// An anti-clogging token of length 0 or over 64.
    #[error("invalid token length {0}")]
    TokenLength(usize),
    /// The output buffer is too short.
    #[error("output buffer too short")]
    BufferTooShort,
}

/// Message Type values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// 1: commit (scalar and element).
    Commit,
    /// 2: confirm.
    Confirm,
    /// 3: reject (with a status).
    Reject,
    /// 4: anti-clogging token request.
    Token,
    /// 5: group key delivery under the new key.
    GroupKey,
}

impl MessageType {
    /// From the octet.
    pub const fn from_u8(v: u8) -> Result<MessageType, WireError> {
        Ok(match v {
            1 => MessageType::Commit,
            2 => MessageType::Confirm,
            3 => MessageType::Reject,
            4 => MessageType::Token,
            5 => MessageType::GroupKey,
            other => return Err(WireError::UnknownMessageType(other)),
        })
    }

    /// The octet.
    pub const fn to_u8(self) -> u8 {
        match self {
            MessageType::Commit => 1,
            MessageType::Confirm => 2,
            MessageType::Reject => 3,
            MessageType::Token => 4,
            MessageType::GroupKey => 5,
        }
    }
}

/// Status codes of a Reject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectStatus {
    /// 1: the group is not supported; the body lists the ones that are.
    UnsupportedGroup,
    /// 2: the confirm did not verify (the password or the keys differ).
    AuthenticationFailed,
    /// 3: the responder has no room for another session.
    Busy,
    /// Any other value.
    Other(u16),
}

impl RejectStatus {
    /// From the 16-bit value.
    pub const fn from_u16(v: u16) -> RejectStatus {
        match v {
            1 => RejectStatus::UnsupportedGroup,
            2 => RejectStatus::AuthenticationFailed,
            3 => RejectStatus::Busy,
            other => RejectStatus::Other(other),
        }
    }

    /// The 16-bit value.
    pub const fn to_u16(self) -> u16 {
        match self {
            RejectStatus::UnsupportedGroup => 1,
            RejectStatus::AuthenticationFailed => 2,
            RejectStatus::Busy => 3,
            RejectStatus::Other(v) => v,
        }
    }
}

/// Lengths of the group-dependent fields.
const fn lengths(group: GroupId) -> (usize, usize, usize) {
    // (scalar, element = 2 * prime, confirm = hash) for P-256/SHA-256, P-384/SHA-384,
    // P-521/SHA-512.
    match group {
        GroupId::P256 => (32, 64, 32),
        GroupId::P384 => (48, 96, 48),
        GroupId::P521 => (66, 132, 64),
    }
}

/// A confirm is the length of the group's hash, or 32 octets: the `ieee80211` profile with
/// hunting-and-pecking uses SHA-256 for every group, as SAE does.
const fn confirm_len_ok(group: GroupId, len: usize) -> bool {
    len == lengths(group).2 || len == 32
}

/// A zero-copy view of a Dragonfly PDU.
#[derive(Debug, Clone, Copy)]
pub struct Message<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Message<T> {
    /// Checks the header and that the body has the length its type and group require; after
    /// this no accessor panics.
    pub fn new_checked(buffer: T) -> Result<Message<T>, WireError> {
        let m = Message { buffer };
        m.check()?;
        Ok(m)
    }

    fn check(&self) -> Result<(), WireError> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let t = MessageType::from_u8(b[0])?;
        let flags = b[1];
        let allowed = if t == MessageType::Commit {
            field::TOKEN_PRESENT
        } else {
            0
        };
        if flags & !allowed != 0 {
            return Err(WireError::ReservedFlags(flags));
        }
        let body = &b[HEADER_LEN..];
        let group = || {
            let g = self.group_number();
            GroupId::from_number(g).ok_or(WireError::UnsupportedGroup(g))
        };
        match t {
            MessageType::Commit => {
                let (s, e, _) = lengths(group()?);
                let token = self.token_field_len()?;
                if body.len() != token + s + e {
                    return Err(WireError::BodyLength(body.len()));
                }
            }
            MessageType::Confirm => {
                if !confirm_len_ok(group()?, body.len().saturating_sub(2)) || body.len() < 2 {
                    return Err(WireError::BodyLength(body.len()));
                }
            }
            MessageType::Reject => {
                if body.len() < 2 || !body.len().is_multiple_of(2) {
                    return Err(WireError::BodyLength(body.len()));
                }
            }
            MessageType::Token => {
                if body.is_empty() || body.len() > MAX_TOKEN_LEN {
                    return Err(WireError::TokenLength(body.len()));
                }
            }
            MessageType::GroupKey => {
                if body.len() != 1 + 4 + WRAPPED_KEY_LEN {
                    return Err(WireError::BodyLength(body.len()));
                }
            }
        }
        Ok(())
    }

    /// Octets of the optional token field of a commit (length octet included).
    fn token_field_len(&self) -> Result<usize, WireError> {
        let b = self.buffer.as_ref();
        if b[1] & field::TOKEN_PRESENT == 0 {
            return Ok(0);
        }
        let n = usize::from(*b.get(HEADER_LEN).ok_or(WireError::Truncated)?);
        if n == 0 || n > MAX_TOKEN_LEN {
            return Err(WireError::TokenLength(n));
        }
        Ok(1 + n)
    }

    /// The message type.
    pub fn message_type(&self) -> MessageType {
        // check() validated it.
        MessageType::from_u8(self.buffer.as_ref()[0]).unwrap_or(MessageType::Reject)
    }

    /// The group number field.
    pub fn group_number(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_le_bytes([b[2], b[3]])
    }

    /// The body.
    pub fn body(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

/// High-level representation of a Dragonfly PDU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageRepr<'a> {
    /// Commit.
    Commit {
        /// The group the scalar and element belong to.
        group: GroupId,
        /// An anti-clogging token echoed from the responder.
        token: Option<&'a [u8]>,
        /// The scalar, big-endian, the group's order length.
        scalar: &'a [u8],
        /// The element x || y.
        element: &'a [u8],
    },
    /// Confirm.
    Confirm {
        /// The group.
        group: GroupId,
        /// The send-confirm counter.
        send_confirm: u16,
        /// The confirm value.
        confirm: &'a [u8],
    },
    /// Reject.
    Reject {
        /// The group the rejected message named.
        group: u16,
        /// Why.
        status: RejectStatus,
        /// For `UnsupportedGroup`: the groups the sender supports, as LE16 values.
        supported: &'a [u8],
    },
    /// Anti-clogging token: send the commit again with it.
    Token {
        /// The group of the commit that was refused.
        group: u16,
        /// The token.
        token: &'a [u8],
    },
    /// Group key delivery.
    GroupKey {
        /// The group of the exchange.
        group: u16,
        /// Key index for key identifier mode 1.
        key_index: u8,
        /// Lifetime in seconds, 0 for none.
        lifetime_secs: u32,
        /// The key wrapped with AES-KW under the KEK.
        wrapped: &'a [u8],
    },
}

impl<'a> MessageRepr<'a> {
    /// Parses a checked view.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(m: &Message<&'a T>) -> MessageRepr<'a> {
        let b: &'a [u8] = m.buffer.as_ref();
        let body = &b[HEADER_LEN..];
        let g = m.group_number();
        // new_checked validated the group for the messages whose body depends on it.
        let group = GroupId::from_number(g).unwrap_or(GroupId::P256);
        match m.message_type() {
            MessageType::Commit => {
                let (s, _, _) = lengths(group);
                let (token, rest) = if b[1] & field::TOKEN_PRESENT != 0 {
                    let n = usize::from(body[0]);
                    (Some(&body[1..1 + n]), &body[1 + n..])
                } else {
                    (None, body)
                };
                MessageRepr::Commit {
                    group,
                    token,
                    scalar: &rest[..s],
                    element: &rest[s..],
                }
            }
            MessageType::Confirm => MessageRepr::Confirm {
                group,
                send_confirm: u16::from_le_bytes([body[0], body[1]]),
                confirm: &body[2..],
            },
            MessageType::Reject => MessageRepr::Reject {
                group: g,
                status: RejectStatus::from_u16(u16::from_le_bytes([body[0], body[1]])),
                supported: &body[2..],
            },
            MessageType::Token => MessageRepr::Token {
                group: g,
                token: body,
            },
            MessageType::GroupKey => MessageRepr::GroupKey {
                group: g,
                key_index: body[0],
                lifetime_secs: u32::from_le_bytes([body[1], body[2], body[3], body[4]]),
                wrapped: &body[5..],
            },
        }
    }

    /// Checks and parses in one step.
    pub fn parse_bytes(pdu: &'a [u8]) -> Result<MessageRepr<'a>, WireError> {
        Ok(Self::parse(&Message::new_checked(pdu)?))
    }

    fn header(&self) -> (MessageType, u8, u16) {
        match self {
            MessageRepr::Commit { group, token, .. } => (
                MessageType::Commit,
                if token.is_some() {
                    field::TOKEN_PRESENT
                } else {
                    0
                },
                group.number(),
            ),
            MessageRepr::Confirm { group, .. } => (MessageType::Confirm, 0, group.number()),
            MessageRepr::Reject { group, .. } => (MessageType::Reject, 0, *group),
            MessageRepr::Token { group, .. } => (MessageType::Token, 0, *group),
            MessageRepr::GroupKey { group, .. } => (MessageType::GroupKey, 0, *group),
        }
    }

    /// Octets on the wire.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
            + match self {
                MessageRepr::Commit {
                    token,
                    scalar,
                    element,
                    ..
                } => token.map_or(0, |t| 1 + t.len()) + scalar.len() + element.len(),
                MessageRepr::Confirm { confirm, .. } => 2 + confirm.len(),
                MessageRepr::Reject { supported, .. } => 2 + supported.len(),
                MessageRepr::Token { token, .. } => token.len(),
                MessageRepr::GroupKey { wrapped, .. } => 5 + wrapped.len(),
            }
    }

    /// Writes the PDU into `buf[..self.buffer_len()]`. Fields of the wrong length for their
    /// group are refused, so what is emitted always parses.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        let n = self.buffer_len();
        let out = buf.get_mut(..n).ok_or(WireError::BufferTooShort)?;
        let (t, flags, group) = self.header();
        out[0] = t.to_u8();
        out[1] = flags;
        out[2..4].copy_from_slice(&group.to_le_bytes());
        let body = &mut out[HEADER_LEN..];
        match *self {
            MessageRepr::Commit {
                group,
                token,
                scalar,
                element,
            } => {
                let (s, e, _) = lengths(group);
                if scalar.len() != s || element.len() != e {
                    return Err(WireError::BodyLength(scalar.len() + element.len()));
                }
                let mut at = 0;
                if let Some(t) = token {
                    let len = u8::try_from(t.len())
                        .ok()
                        .filter(|&l| l > 0 && usize::from(l) <= MAX_TOKEN_LEN)
                        .ok_or(WireError::TokenLength(t.len()))?;
                    body[0] = len;
                    body[1..1 + t.len()].copy_from_slice(t);
                    at = 1 + t.len();
                }
                body[at..at + s].copy_from_slice(scalar);
                body[at + s..].copy_from_slice(element);
            }
            MessageRepr::Confirm {
                group,
                send_confirm,
                confirm,
            } => {
                if !confirm_len_ok(group, confirm.len()) {
                    return Err(WireError::BodyLength(confirm.len()));
                }
                body[..2].copy_from_slice(&send_confirm.to_le_bytes());
                body[2..].copy_from_slice(confirm);
            }
            MessageRepr::Reject {
                status, supported, ..
            } => {
                if !supported.len().is_multiple_of(2) {
                    return Err(WireError::BodyLength(supported.len()));
                }
                body[..2].copy_from_slice(&status.to_u16().to_le_bytes());
                body[2..].copy_from_slice(supported);
            }
            MessageRepr::Token { token, .. } => {
                if token.is_empty() || token.len() > MAX_TOKEN_LEN {
                    return Err(WireError::TokenLength(token.len()));
                }
                body.copy_from_slice(token);
            }
            MessageRepr::GroupKey {
                key_index,
                lifetime_secs,
                wrapped,
                ..
            } => {
                if wrapped.len() != WRAPPED_KEY_LEN {
                    return Err(WireError::BodyLength(wrapped.len()));
                }
                body[0] = key_index;
                body[1..5].copy_from_slice(&lifetime_secs.to_le_bytes());
                body[5..].copy_from_slice(wrapped);
            }
        }
        Ok(n)
    }

    /// Emits into a new vector.
    pub fn to_vec(&self) -> Result<Vec<u8>, WireError> {
        let mut v = vec![0u8; self.buffer_len()];
        self.emit(&mut v)?;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_bytes_and_round_trip() {
        let scalar = [0x11u8; 32];
        let element = [0x22u8; 64];
        let c = MessageRepr::Commit {
            group: GroupId::P256,
            token: None,
            scalar: &scalar,
            element: &element,
        };
        let v = c.to_vec().unwrap();
        assert_eq!(&v[..4], &[0x01, 0x00, 0x13, 0x00]);
        assert_eq!(v.len(), 4 + 96);
        assert_eq!(MessageRepr::parse_bytes(&v).unwrap(), c);
        let token = [7u8; 16];
        let c = MessageRepr::Commit {
            group: GroupId::P256,
            token: Some(&token),
            scalar: &scalar,
            element: &element,
        };
        let v = c.to_vec().unwrap();
        assert_eq!(&v[..5], &[0x01, 0x01, 0x13, 0x00, 16]);
        assert_eq!(MessageRepr::parse_bytes(&v).unwrap(), c);
    }

    #[test]
    fn other_messages_round_trip() {
        let confirm = [0x33u8; 48];
        let wrapped = [0x44u8; 24];
        let supported = [0x13, 0x00, 0x14, 0x00];
        let msgs = [
            MessageRepr::Confirm {
                group: GroupId::P384,
                send_confirm: 1,
                confirm: &confirm,
            },
            MessageRepr::Reject {
                group: 30,
                status: RejectStatus::UnsupportedGroup,
                supported: &supported,
            },
            MessageRepr::Reject {
                group: 19,
                status: RejectStatus::Other(77),
                supported: &[],
            },
            MessageRepr::Token {
                group: 19,
                token: &[1, 2, 3],
            },
            MessageRepr::GroupKey {
                group: 19,
                key_index: 2,
                lifetime_secs: 86_400,
                wrapped: &wrapped,
            },
        ];
        for m in msgs {
            let v = m.to_vec().unwrap();
            assert_eq!(v.len(), m.buffer_len());
            assert_eq!(MessageRepr::parse_bytes(&v).unwrap(), m);
            // Every truncation of a fixed-length message fails cleanly; variable-length ones
            // (reject list, token) fail below their minimum.
            let fixed = matches!(
                m,
                MessageRepr::Confirm { .. } | MessageRepr::GroupKey { .. }
            );
            for n in 0..v.len() {
                let r = MessageRepr::parse_bytes(&v[..n]);
                let min = match m {
                    MessageRepr::Token { .. } => HEADER_LEN + 1,
                    _ => HEADER_LEN + 2,
                };
                // A 32-octet confirm is valid for every group (SHA-256 with hunting-and-pecking).
                let also_valid =
                    matches!(m, MessageRepr::Confirm { .. }) && n == HEADER_LEN + 2 + 32;
                if (fixed && !also_valid) || n < min {
                    assert!(r.is_err(), "{m:?} truncated to {n}");
                }
            }
        }
    }

    #[test]
    fn malformed() {
        assert_eq!(MessageRepr::parse_bytes(&[]), Err(WireError::Truncated));
        assert_eq!(
            MessageRepr::parse_bytes(&[9, 0, 0x13, 0]),
            Err(WireError::UnknownMessageType(9))
        );
        assert_eq!(
            MessageRepr::parse_bytes(&[2, 1, 0x13, 0]),
            Err(WireError::ReservedFlags(1))
        );
        let mut commit = vec![1, 0, 0x18, 0];
        commit.extend([0u8; 96]);
        assert_eq!(
            MessageRepr::parse_bytes(&commit),
            Err(WireError::UnsupportedGroup(24))
        );
        commit[2] = 0x13;
        commit.push(0);
        assert_eq!(
            MessageRepr::parse_bytes(&commit),
            Err(WireError::BodyLength(97))
        );
        assert_eq!(
            MessageRepr::parse_bytes(&[1, 1, 0x13, 0, 0]),
            Err(WireError::TokenLength(0))
        );
        assert_eq!(
            MessageRepr::parse_bytes(&[1, 1, 0x13, 0, 65]),
            Err(WireError::TokenLength(65))
        );
        assert_eq!(
            MessageRepr::parse_bytes(&[4, 0, 0x13, 0]),
            Err(WireError::TokenLength(0))
        );
        assert_eq!(
            MessageRepr::parse_bytes(&[3, 0, 0x13, 0, 1]),
            Err(WireError::BodyLength(1))
        );
        // Emitting impossible values fails.
        let bad = MessageRepr::Commit {
            group: GroupId::P256,
            token: None,
            scalar: &[1; 31],
            element: &[2; 64],
        };
        assert!(bad.to_vec().is_err());
        let bad = MessageRepr::Token {
            group: 19,
            token: &[0; 65],
        };
        assert!(bad.to_vec().is_err());
        let ok = MessageRepr::Token {
            group: 19,
            token: &[0; 4],
        };
        assert_eq!(ok.emit(&mut [0u8; 7]), Err(WireError::BufferTooShort));
    }
}
