//! Payload chains, whole messages and the SK payload's AAD (RFC 7296 §3.2, RFC 5282 §5.1).

use super::{HEADER_LEN, Header, Payload, WireError, be16, payload_type as pt, sat16};

const GENERIC_HDR: usize = 4;
const CRITICAL: u8 = 0x80;

/// A whole IKE message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Message {
    /// The header. [`Message::emit`] ignores its `next_payload` and `length` and computes them.
    pub header: Header,
    /// The payloads in order; an SK payload, if any, is the last.
    pub payloads: Vec<Payload>,
}

impl Message {
    /// Parses a datagram (without the 4-octet non-ESP marker of port 4500).
    ///
    /// Errors: [`WireError::Truncated`] under 28 octets, [`WireError::BadVersion`] unless the
    /// major version is 2, [`WireError::BadLength`] unless the header's Length equals
    /// `buf.len()`, then whatever [`parse_payloads`] reports.
    pub fn parse(buf: &[u8]) -> Result<Message, WireError> {
        let header = Header::parse(buf)?;
        if header.major_version != 2 {
            return Err(WireError::BadVersion(header.major_version));
        }
        if usize::try_from(header.length).ok() != Some(buf.len()) {
            return Err(WireError::BadLength(header.length, buf.len()));
        }
        let payloads = parse_payloads(header.next_payload, &buf[HEADER_LEN..])?;
        Ok(Message { header, payloads })
    }

    /// The message as octets, with the header's Next Payload and Length computed (the other
    /// header fields as given). Infallible; see the module docs for representations that do not
    /// fit the wire.
    pub fn emit(&self) -> Vec<u8> {
        let (first, body) = emit_payloads(&self.payloads);
        let mut header = self.header;
        header.next_payload = first;
        header.length = u32::try_from(HEADER_LEN + body.len()).unwrap_or(u32::MAX);
        let mut out = Vec::with_capacity(HEADER_LEN + body.len());
        out.extend_from_slice(&header.to_bytes());
        out.extend_from_slice(&body);
        out
    }
}

/// Walks a payload chain starting with type `first` over `buf`, calling `f(type, critical,
/// next, offset of the generic header, body)` for each payload. Stops after an SK or SKF
/// payload, which must end `buf`.
fn walk<'a>(
    first: u8,
    buf: &'a [u8],
    mut f: impl FnMut(u8, bool, u8, usize, &'a [u8]) -> Result<(), WireError>,
) -> Result<(), WireError> {
    let mut t = first;
    let mut at = 0;
    while t != pt::NONE {
        let rest = &buf[at..];
        let [next, flags, ..] = *rest else {
            return Err(WireError::Truncated);
        };
        let len = be16(rest, 2)?;
        let ulen = usize::from(len);
        if ulen < GENERIC_HDR || ulen > rest.len() {
            return Err(WireError::BadPayloadLength(t, len));
        }
        f(t, flags & CRITICAL != 0, next, at, &rest[GENERIC_HDR..ulen])?;
        at += ulen;
        if t == pt::SK || t == pt::SKF {
            return if at == buf.len() {
                Ok(())
            } else {
                Err(WireError::SkNotLast)
            };
        }
        t = next;
    }
    if at == buf.len() {
        Ok(())
    } else {
        Err(WireError::TrailingData(buf.len() - at))
    }
}

/// Parses a payload chain: the payloads after the IKE header (with `first` the header's Next
/// Payload), or the decrypted content of an SK payload (with `first` its first-inner type).
/// `buf` must hold exactly the chain: octets after the payload whose Next Payload is 0 are
/// [`WireError::TrailingData`]; octets after an SK/SKF payload are [`WireError::SkNotLast`].
pub fn parse_payloads(first: u8, buf: &[u8]) -> Result<Vec<Payload>, WireError> {
    let mut out = Vec::new();
    walk(first, buf, |t, critical, next, _, body| {
        out.push(Payload::parse_body(t, critical, next, body)?);
        Ok(())
    })?;
    Ok(out)
}

/// Emits a payload chain: (type of the first payload or 0, the octets). The last payload's Next
/// Payload is 0, except for SK/SKF whose Next Payload is their `first_inner`.
pub fn emit_payloads(payloads: &[Payload]) -> (u8, Vec<u8>) {
    let mut out = Vec::new();
    emit_chain(payloads, pt::NONE, &mut out);
    (
        payloads.first().map_or(pt::NONE, Payload::payload_type),
        out,
    )
}

/// Emits `payloads` with `after` as the last one's Next Payload (unless it is SK/SKF).
fn emit_chain(payloads: &[Payload], after: u8, out: &mut Vec<u8>) {
    for (i, p) in payloads.iter().enumerate() {
        let next = p
            .chain_terminator()
            .unwrap_or_else(|| payloads.get(i + 1).map_or(after, Payload::payload_type));
        let start = out.len();
        out.extend_from_slice(&[next, if p.critical() { CRITICAL } else { 0 }, 0, 0]);
        p.emit_body(out);
        let len = sat16(out.len() - start).to_be_bytes();
        out[start + 2..start + 4].copy_from_slice(&len);
    }
}

/// Where the SK payload sits in a raw message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SkParts<'a> {
    /// The associated data of RFC 5282 §5.1: from the start of the IKE header to the end of the
    /// SK payload's generic header.
    pub aad: &'a [u8],
    /// The SK payload body: IV ‖ ciphertext ‖ ICV.
    pub body: &'a [u8],
    /// The SK generic header's Next Payload: type of the first inner payload.
    pub first_inner: u8,
}

/// Locates the SK payload of a raw message (checks the header length and version like
/// [`Message::parse`] and walks the chain; the payloads before SK are not decoded).
/// [`WireError::NoSk`] if the chain ends without one (an SKF payload also ends the chain and
/// gives `NoSk`).
pub fn sk_parts(raw: &[u8]) -> Result<SkParts<'_>, WireError> {
    let header = Header::parse(raw)?;
    if header.major_version != 2 {
        return Err(WireError::BadVersion(header.major_version));
    }
    if usize::try_from(header.length).ok() != Some(raw.len()) {
        return Err(WireError::BadLength(header.length, raw.len()));
    }
    let chain = &raw[HEADER_LEN..];
    let mut found = None;
    walk(header.next_payload, chain, |t, _, next, at, body| {
        if t == pt::SK {
            found = Some((HEADER_LEN + at + GENERIC_HDR, body, next));
        }
        Ok(())
    })?;
    let (aad_end, body, first_inner) = found.ok_or(WireError::NoSk)?;
    Ok(SkParts {
        aad: &raw[..aad_end],
        body,
        first_inner,
    })
}

/// Builds a message whose last payload is SK: `header` (its `next_payload` and `length`
/// computed), the unencrypted `outer` payloads (normally none; N(COOKIE)-style payloads before
/// SK are allowed), then an SK payload with `first_inner` and a body of `body_len` octets.
///
/// The header length is final before `seal` runs: `seal` gets the AAD (header through the SK
/// generic header) and must return IV ‖ ciphertext ‖ ICV of exactly `body_len` octets.
/// Errors: whatever `seal` returns; [`WireError::SealLength`] (converted into `E`) if its body
/// has another length; [`WireError::TooLong`] (converted) if the SK payload would exceed
/// 65 535 octets or the message 2³² − 1.
pub fn emit_with_sk<E, F>(
    header: &Header,
    outer: &[Payload],
    first_inner: u8,
    body_len: usize,
    seal: F,
) -> Result<Vec<u8>, E>
where
    E: From<WireError>,
    F: FnOnce(&[u8]) -> Result<Vec<u8>, E>,
{
    let mut chain = Vec::new();
    emit_chain(outer, pt::SK, &mut chain);
    let sk_len = u16::try_from(GENERIC_HDR + body_len).map_err(|_| WireError::TooLong)?;
    let total = u32::try_from(HEADER_LEN + chain.len() + usize::from(sk_len))
        .map_err(|_| WireError::TooLong)?;
    let mut h = *header;
    h.next_payload = outer.first().map_or(pt::SK, Payload::payload_type);
    h.length = total;
    let mut out = Vec::with_capacity(HEADER_LEN + chain.len() + usize::from(sk_len));
    out.extend_from_slice(&h.to_bytes());
    out.extend_from_slice(&chain);
    out.extend_from_slice(&[first_inner, 0]);
    out.extend_from_slice(&sk_len.to_be_bytes());
    let body = seal(&out)?;
    if body.len() != body_len {
        return Err(WireError::SealLength(body_len, body.len()).into());
    }
    out.extend_from_slice(&body);
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::wire::{ExchangeType, Flags, KePayload, NotifyPayload};

    fn msg() -> Message {
        Message {
            header: Header {
                spi_i: [9; 8],
                spi_r: [0; 8],
                next_payload: 0,
                major_version: 2,
                minor_version: 0,
                exchange: ExchangeType::Informational,
                flags: Flags {
                    initiator: false,
                    version: false,
                    response: true,
                },
                message_id: 3,
                length: 0,
            },
            payloads: vec![
                Payload::Ke(KePayload {
                    group: 19,
                    data: vec![1; 64],
                }),
                Payload::Notify(NotifyPayload {
                    protocol: 0,
                    spi: vec![],
                    notify_type: 16390,
                    data: vec![7; 8],
                }),
            ],
        }
    }

    #[test]
    fn wire_emit_parse_round_trip() {
        let m = msg();
        let b = m.emit();
        assert_eq!(b.len(), 28 + 72 + 16);
        assert_eq!(b[16], pt::KE);
        assert_eq!(b[28], pt::NOTIFY);
        let p = Message::parse(&b).unwrap();
        assert_eq!(p.payloads, m.payloads);
        assert_eq!(p.header.length, 116);
        assert_eq!(p.emit(), b);
    }

    #[test]
    fn wire_every_prefix_is_rejected() {
        let b = msg().emit();
        for n in 0..b.len() {
            assert!(Message::parse(&b[..n]).is_err());
            assert!(parse_payloads(pt::KE, &b[HEADER_LEN.min(n)..n]).is_err());
        }
    }

    #[test]
    fn wire_empty_chain() {
        assert_eq!(parse_payloads(pt::NONE, &[]), Ok(vec![]));
        assert_eq!(
            parse_payloads(pt::NONE, &[0]),
            Err(WireError::TrailingData(1))
        );
        assert_eq!(emit_payloads(&[]), (pt::NONE, vec![]));
    }
}
