//! Payload representations and their bodies (RFC 7296 §3.3–§3.14, RFC 7383 §2.5).

use super::{WireError, be16, payload_type as pt, sat8, sat16, transform, ts_type};

/// Security Association payload.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct SaPayload {
    /// Proposals in order (the wire's Last Substruc fields are derived from the order).
    pub proposals: Vec<Proposal>,
}

/// One proposal substructure.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Proposal {
    /// Proposal Num.
    pub number: u8,
    /// Protocol ID: 1 IKE, 2 AH, 3 ESP (see [`super::protocol`]).
    pub protocol: u8,
    /// SPI (empty in an IKE_SA_INIT proposal; 8 octets when rekeying an IKE SA; 4 for ESP/AH).
    pub spi: Vec<u8>,
    /// Transforms in order.
    pub transforms: Vec<Transform>,
}

/// One transform substructure.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Transform {
    /// Transform Type (see [`super::transform`]).
    pub transform_type: u8,
    /// Transform ID.
    pub id: u16,
    /// The Key Length attribute (type 14, TV form), if present. Emitted first.
    pub key_length: Option<u16>,
    /// Any other attributes, raw: (Attribute Type field including the AF bit 0x8000, value).
    /// With the AF bit set (TV form) the value is the 2-octet Attribute Value; without it
    /// (TLV form) the value has its own length. Emitted after the key length, in order.
    pub other_attributes: Vec<(u16, Vec<u8>)>,
}

/// Key Exchange payload.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct KePayload {
    /// Diffie-Hellman Group Num.
    pub group: u16,
    /// Key Exchange Data (for group 19: x ‖ y, 64 octets).
    pub data: Vec<u8>,
}

/// Identification payload (IDi or IDr).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct IdPayload {
    /// ID Type (see [`super::id_type`]).
    pub id_type: u8,
    /// Identification Data.
    pub data: Vec<u8>,
}

impl IdPayload {
    /// The payload body without the generic header: ID Type ‖ 3 zero octets ‖ data. This is
    /// what RFC 7296 §2.15 puts under prf(SK_pi/SK_pr, ...) as RestOfInitIDPayload with the
    /// type octet in front.
    pub fn body_for_auth(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + self.data.len());
        out.extend_from_slice(&[self.id_type, 0, 0, 0]);
        out.extend_from_slice(&self.data);
        out
    }
}

/// Certificate payload.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct CertPayload {
    /// Cert Encoding (see [`super::cert_encoding`]; 15 is an RFC 7670 raw public key).
    pub encoding: u8,
    /// Certificate Data.
    pub data: Vec<u8>,
}

/// Certificate Request payload.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct CertReqPayload {
    /// Cert Encoding.
    pub encoding: u8,
    /// Certification Authority (concatenated SHA-1 hashes of trusted CA keys, for X.509).
    pub data: Vec<u8>,
}

/// Authentication payload.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct AuthPayload {
    /// Auth Method (see [`super::auth_method`]).
    pub method: u8,
    /// Authentication Data (opaque; for method 14 the RFC 7427 layout is the caller's).
    pub data: Vec<u8>,
}

/// Notify payload.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct NotifyPayload {
    /// Protocol ID (0 when the SPI is empty).
    pub protocol: u8,
    /// SPI (its length is the SPI Size).
    pub spi: Vec<u8>,
    /// Notify Message Type (see [`super::notify`]).
    pub notify_type: u16,
    /// Notification Data.
    pub data: Vec<u8>,
}

/// Delete payload.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct DeletePayload {
    /// Protocol ID (1 IKE with SPI size 0 and no SPIs; 2 AH / 3 ESP with 4-octet SPIs).
    pub protocol: u8,
    /// SPI Size; every entry of `spis` must be this long (parsing guarantees it; a SPI size of
    /// 0 with SPIs present is rejected).
    pub spi_size: u8,
    /// The SPIs (their count is Num of SPIs).
    pub spis: Vec<Vec<u8>>,
}

/// Traffic Selector payload (TSi or TSr).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct TsPayload {
    /// Traffic selectors (their count is Number of TSs, at most 255).
    pub selectors: Vec<TrafficSelector>,
}

/// One traffic selector.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct TrafficSelector {
    /// TS Type: 7 IPv4 range (4-octet addresses), 8 IPv6 range (16-octet addresses). Parsing
    /// rejects other types.
    pub ts_type: u8,
    /// IP Protocol ID (0 = any).
    pub ip_protocol: u8,
    /// Start Port.
    pub start_port: u16,
    /// End Port.
    pub end_port: u16,
    /// Starting Address.
    pub start_address: Vec<u8>,
    /// Ending Address.
    pub end_address: Vec<u8>,
}

/// Encrypted and Authenticated (SK) payload. Always the last payload of a message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct EncryptedPayload {
    /// The SK generic header's Next Payload: type of the first inner payload.
    pub first_inner: u8,
    /// IV ‖ ciphertext ‖ ICV, opaque here.
    pub body: Vec<u8>,
}

/// Encrypted and Authenticated Fragment (SKF) payload (RFC 7383 §2.5). Always the last payload.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct EncryptedFragmentPayload {
    /// Next Payload of the SKF header: the first inner payload type in fragment 1, else 0.
    pub first_inner: u8,
    /// Fragment Number (from 1).
    pub fragment_number: u16,
    /// Total Fragments.
    pub total_fragments: u16,
    /// IV ‖ ciphertext ‖ ICV, opaque here.
    pub body: Vec<u8>,
}

/// One payload.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Payload {
    /// SA (33).
    Sa(SaPayload),
    /// KE (34).
    Ke(KePayload),
    /// IDi (35).
    IdI(IdPayload),
    /// IDr (36).
    IdR(IdPayload),
    /// CERT (37).
    Cert(CertPayload),
    /// CERTREQ (38).
    CertReq(CertReqPayload),
    /// AUTH (39).
    Auth(AuthPayload),
    /// Nonce (40): the Nonce Data.
    Nonce(Vec<u8>),
    /// Notify (41).
    Notify(NotifyPayload),
    /// Delete (42).
    Delete(DeletePayload),
    /// Vendor ID (43): the VID.
    VendorId(Vec<u8>),
    /// TSi (44).
    TsI(TsPayload),
    /// TSr (45).
    TsR(TsPayload),
    /// SK (46).
    Encrypted(EncryptedPayload),
    /// SKF (53, RFC 7383).
    EncryptedFragment(EncryptedFragmentPayload),
    /// Any other type (CP and EAP included), not critical; kept raw. Parsing never returns one
    /// with one of the types above, nor with `critical` set (that is
    /// [`WireError::UnsupportedCritical`]).
    Unknown {
        /// Payload type.
        payload_type: u8,
        /// The C bit as received.
        critical: bool,
        /// The body after the generic payload header.
        body: Vec<u8>,
    },
}

impl Payload {
    /// The payload type octet.
    pub fn payload_type(&self) -> u8 {
        match self {
            Payload::Sa(_) => pt::SA,
            Payload::Ke(_) => pt::KE,
            Payload::IdI(_) => pt::IDI,
            Payload::IdR(_) => pt::IDR,
            Payload::Cert(_) => pt::CERT,
            Payload::CertReq(_) => pt::CERTREQ,
            Payload::Auth(_) => pt::AUTH,
            Payload::Nonce(_) => pt::NONCE,
            Payload::Notify(_) => pt::NOTIFY,
            Payload::Delete(_) => pt::DELETE,
            Payload::VendorId(_) => pt::VENDOR_ID,
            Payload::TsI(_) => pt::TSI,
            Payload::TsR(_) => pt::TSR,
            Payload::Encrypted(_) => pt::SK,
            Payload::EncryptedFragment(_) => pt::SKF,
            Payload::Unknown { payload_type, .. } => *payload_type,
        }
    }

    /// For SK and SKF: the Next Payload value of their own header (the first inner type).
    /// Such a payload ends the chain.
    pub(crate) fn chain_terminator(&self) -> Option<u8> {
        match self {
            Payload::Encrypted(p) => Some(p.first_inner),
            Payload::EncryptedFragment(p) => Some(p.first_inner),
            _ => None,
        }
    }

    /// The C bit to emit.
    pub(crate) fn critical(&self) -> bool {
        matches!(self, Payload::Unknown { critical: true, .. })
    }

    /// Parses the body of a payload of type `t` (generic header removed). `next` is the
    /// generic header's Next Payload (kept by SK and SKF).
    pub(crate) fn parse_body(
        t: u8,
        critical: bool,
        next: u8,
        b: &[u8],
    ) -> Result<Payload, WireError> {
        Ok(match t {
            pt::SA => Payload::Sa(parse_sa(b)?),
            pt::KE => {
                let group = be16(b, 0)?;
                be16(b, 2)?;
                Payload::Ke(KePayload {
                    group,
                    data: b[4..].to_vec(),
                })
            }
            pt::IDI | pt::IDR => {
                let id = IdPayload {
                    id_type: first4(b)?,
                    data: b[4..].to_vec(),
                };
                if t == pt::IDI {
                    Payload::IdI(id)
                } else {
                    Payload::IdR(id)
                }
            }
            pt::CERT | pt::CERTREQ => {
                let (&encoding, data) = b.split_first().ok_or(WireError::Truncated)?;
                if t == pt::CERT {
                    Payload::Cert(CertPayload {
                        encoding,
                        data: data.to_vec(),
                    })
                } else {
                    Payload::CertReq(CertReqPayload {
                        encoding,
                        data: data.to_vec(),
                    })
                }
            }
            pt::AUTH => Payload::Auth(AuthPayload {
                method: first4(b)?,
                data: b[4..].to_vec(),
            }),
            pt::NONCE => Payload::Nonce(b.to_vec()),
            pt::NOTIFY => {
                let [protocol, spi_size, ..] = *b else {
                    return Err(WireError::Truncated);
                };
                let notify_type = be16(b, 2)?;
                let spi_end = 4 + usize::from(spi_size);
                let spi = b.get(4..spi_end).ok_or(WireError::Truncated)?.to_vec();
                Payload::Notify(NotifyPayload {
                    protocol,
                    spi,
                    notify_type,
                    data: b[spi_end..].to_vec(),
                })
            }
            pt::DELETE => Payload::Delete(parse_delete(b)?),
            pt::VENDOR_ID => Payload::VendorId(b.to_vec()),
            pt::TSI => Payload::TsI(parse_ts(b)?),
            pt::TSR => Payload::TsR(parse_ts(b)?),
            pt::SK => Payload::Encrypted(EncryptedPayload {
                first_inner: next,
                body: b.to_vec(),
            }),
            pt::SKF => {
                let fragment_number = be16(b, 0)?;
                let total_fragments = be16(b, 2)?;
                Payload::EncryptedFragment(EncryptedFragmentPayload {
                    first_inner: next,
                    fragment_number,
                    total_fragments,
                    body: b[4..].to_vec(),
                })
            }
            _ if critical => return Err(WireError::UnsupportedCritical(t)),
            _ => Payload::Unknown {
                payload_type: t,
                critical,
                body: b.to_vec(),
            },
        })
    }

    /// Appends the body (without the generic header).
    pub(crate) fn emit_body(&self, out: &mut Vec<u8>) {
        match self {
            Payload::Sa(sa) => emit_sa(sa, out),
            Payload::Ke(ke) => {
                out.extend_from_slice(&ke.group.to_be_bytes());
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&ke.data);
            }
            Payload::IdI(id) | Payload::IdR(id) => out.extend_from_slice(&id.body_for_auth()),
            Payload::Cert(c) => {
                out.push(c.encoding);
                out.extend_from_slice(&c.data);
            }
            Payload::CertReq(c) => {
                out.push(c.encoding);
                out.extend_from_slice(&c.data);
            }
            Payload::Auth(a) => {
                out.extend_from_slice(&[a.method, 0, 0, 0]);
                out.extend_from_slice(&a.data);
            }
            Payload::Nonce(d) | Payload::VendorId(d) => out.extend_from_slice(d),
            Payload::Notify(n) => {
                out.extend_from_slice(&[n.protocol, sat8(n.spi.len())]);
                out.extend_from_slice(&n.notify_type.to_be_bytes());
                out.extend_from_slice(&n.spi);
                out.extend_from_slice(&n.data);
            }
            Payload::Delete(d) => {
                out.extend_from_slice(&[d.protocol, d.spi_size]);
                out.extend_from_slice(&sat16(d.spis.len()).to_be_bytes());
                for s in &d.spis {
                    out.extend_from_slice(s);
                }
            }
            Payload::TsI(ts) | Payload::TsR(ts) => emit_ts(ts, out),
            Payload::Encrypted(e) => out.extend_from_slice(&e.body),
            Payload::EncryptedFragment(f) => {
                out.extend_from_slice(&f.fragment_number.to_be_bytes());
                out.extend_from_slice(&f.total_fragments.to_be_bytes());
                out.extend_from_slice(&f.body);
            }
            Payload::Unknown { body, .. } => out.extend_from_slice(body),
        }
    }
}

/// The first octet of a body that starts with a type octet and 3 reserved octets.
fn first4(b: &[u8]) -> Result<u8, WireError> {
    match *b {
        [t, _, _, _, ..] => Ok(t),
        _ => Err(WireError::Truncated),
    }
}

const LAST: u8 = 0;
const MORE_PROPOSALS: u8 = 2;
const MORE_TRANSFORMS: u8 = 3;
const PROPOSAL_HDR: usize = 8;
const TRANSFORM_HDR: usize = 8;

fn parse_sa(mut b: &[u8]) -> Result<SaPayload, WireError> {
    let mut proposals = Vec::new();
    if b.is_empty() {
        return Err(WireError::Malformed("SA payload without proposals"));
    }
    while !b.is_empty() {
        let [last, _, _, _, number, protocol, spi_size, n_transforms, ..] = *b else {
            return Err(WireError::Truncated);
        };
        let len = usize::from(be16(b, 2)?);
        if len < PROPOSAL_HDR || len > b.len() {
            return Err(WireError::Malformed("proposal length"));
        }
        let (p, rest) = b.split_at(len);
        match (last, rest.is_empty()) {
            (LAST, true) | (MORE_PROPOSALS, false) => {}
            _ => return Err(WireError::Malformed("proposal Last Substruc")),
        }
        let spi_end = PROPOSAL_HDR + usize::from(spi_size);
        let spi = p
            .get(PROPOSAL_HDR..spi_end)
            .ok_or(WireError::Malformed("proposal SPI size"))?;
        let transforms = parse_transforms(&p[spi_end..])?;
        if transforms.len() != usize::from(n_transforms) {
            return Err(WireError::Malformed("proposal transform count"));
        }
        proposals.push(Proposal {
            number,
            protocol,
            spi: spi.to_vec(),
            transforms,
        });
        b = rest;
    }
    Ok(SaPayload { proposals })
}

fn parse_transforms(mut b: &[u8]) -> Result<Vec<Transform>, WireError> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let [last, _, _, _, transform_type, _, _, _, ..] = *b else {
            return Err(WireError::Malformed("transform truncated"));
        };
        let len = usize::from(be16(b, 2)?);
        if len < TRANSFORM_HDR || len > b.len() {
            return Err(WireError::Malformed("transform length"));
        }
        let (t, rest) = b.split_at(len);
        match (last, rest.is_empty()) {
            (LAST, true) | (MORE_TRANSFORMS, false) => {}
            _ => return Err(WireError::Malformed("transform Last Substruc")),
        }
        let id = be16(t, 6)?;
        let mut key_length = None;
        let mut other_attributes = Vec::new();
        let mut a = &t[TRANSFORM_HDR..];
        while !a.is_empty() {
            let ty =
                be16(a, 0).map_err(|_| WireError::Malformed("transform attribute truncated"))?;
            let word =
                be16(a, 2).map_err(|_| WireError::Malformed("transform attribute truncated"))?;
            let tv = ty & transform::ATTR_FORMAT_TV != 0;
            let attr_type = ty & !transform::ATTR_FORMAT_TV;
            if attr_type == transform::ATTR_KEY_LENGTH && !tv {
                return Err(WireError::Malformed("key length attribute not in TV form"));
            }
            let (value, next) = if tv {
                (&a[2..4], &a[4..])
            } else {
                let end = 4 + usize::from(word);
                let v = a
                    .get(4..end)
                    .ok_or(WireError::Malformed("transform attribute length"))?;
                (v, &a[end..])
            };
            if attr_type == transform::ATTR_KEY_LENGTH {
                if key_length.replace(word).is_some() {
                    return Err(WireError::Malformed("duplicate key length attribute"));
                }
            } else {
                other_attributes.push((ty, value.to_vec()));
            }
            a = next;
        }
        out.push(Transform {
            transform_type,
            id,
            key_length,
            other_attributes,
        });
        b = rest;
    }
    Ok(out)
}

fn emit_sa(sa: &SaPayload, out: &mut Vec<u8>) {
    for (i, p) in sa.proposals.iter().enumerate() {
        let start = out.len();
        let last = if i + 1 == sa.proposals.len() {
            LAST
        } else {
            MORE_PROPOSALS
        };
        out.extend_from_slice(&[last, 0, 0, 0, p.number, p.protocol]);
        out.extend_from_slice(&[sat8(p.spi.len()), sat8(p.transforms.len())]);
        out.extend_from_slice(&p.spi);
        for (j, t) in p.transforms.iter().enumerate() {
            let tstart = out.len();
            let tlast = if j + 1 == p.transforms.len() {
                LAST
            } else {
                MORE_TRANSFORMS
            };
            out.extend_from_slice(&[tlast, 0, 0, 0, t.transform_type, 0]);
            out.extend_from_slice(&t.id.to_be_bytes());
            if let Some(k) = t.key_length {
                out.extend_from_slice(
                    &(transform::ATTR_FORMAT_TV | transform::ATTR_KEY_LENGTH).to_be_bytes(),
                );
                out.extend_from_slice(&k.to_be_bytes());
            }
            for (ty, v) in &t.other_attributes {
                out.extend_from_slice(&ty.to_be_bytes());
                if ty & transform::ATTR_FORMAT_TV != 0 {
                    let mut w = [0u8; 2];
                    for (d, s) in w.iter_mut().zip(v) {
                        *d = *s;
                    }
                    out.extend_from_slice(&w);
                } else {
                    out.extend_from_slice(&sat16(v.len()).to_be_bytes());
                    out.extend_from_slice(v);
                }
            }
            let tlen = sat16(out.len() - tstart).to_be_bytes();
            out[tstart + 2..tstart + 4].copy_from_slice(&tlen);
        }
        let plen = sat16(out.len() - start).to_be_bytes();
        out[start + 2..start + 4].copy_from_slice(&plen);
    }
}

fn parse_delete(b: &[u8]) -> Result<DeletePayload, WireError> {
    let [protocol, spi_size, ..] = *b else {
        return Err(WireError::Truncated);
    };
    let n = usize::from(be16(b, 2)?);
    let rest = &b[4..];
    let spis = if spi_size == 0 {
        if n != 0 || !rest.is_empty() {
            return Err(WireError::Malformed("delete SPIs with SPI size 0"));
        }
        Vec::new()
    } else {
        if rest.len() != n * usize::from(spi_size) {
            return Err(WireError::Malformed("delete SPI count"));
        }
        rest.chunks_exact(usize::from(spi_size))
            .map(<[u8]>::to_vec)
            .collect()
    };
    Ok(DeletePayload {
        protocol,
        spi_size,
        spis,
    })
}

fn addr_len(ts_type: u8) -> Result<usize, WireError> {
    match ts_type {
        ts_type::IPV4_ADDR_RANGE => Ok(4),
        ts_type::IPV6_ADDR_RANGE => Ok(16),
        _ => Err(WireError::Malformed("traffic selector type")),
    }
}

fn parse_ts(b: &[u8]) -> Result<TsPayload, WireError> {
    let [count, _, _, _, ..] = *b else {
        return Err(WireError::Truncated);
    };
    let mut a = &b[4..];
    let mut selectors = Vec::new();
    while !a.is_empty() {
        let [ts_type, ip_protocol, ..] = *a else {
            return Err(WireError::Malformed("traffic selector truncated"));
        };
        let al = addr_len(ts_type)?;
        let len = usize::from(
            be16(a, 2).map_err(|_| WireError::Malformed("traffic selector truncated"))?,
        );
        if len != 8 + 2 * al || a.len() < len {
            return Err(WireError::Malformed("traffic selector length"));
        }
        selectors.push(TrafficSelector {
            ts_type,
            ip_protocol,
            start_port: be16(a, 4)?,
            end_port: be16(a, 6)?,
            start_address: a[8..8 + al].to_vec(),
            end_address: a[8 + al..len].to_vec(),
        });
        a = &a[len..];
    }
    if selectors.len() != usize::from(count) {
        return Err(WireError::Malformed("traffic selector count"));
    }
    Ok(TsPayload { selectors })
}

fn emit_ts(ts: &TsPayload, out: &mut Vec<u8>) {
    out.extend_from_slice(&[sat8(ts.selectors.len()), 0, 0, 0]);
    for s in &ts.selectors {
        let len = 8 + s.start_address.len() + s.end_address.len();
        out.extend_from_slice(&[s.ts_type, s.ip_protocol]);
        out.extend_from_slice(&sat16(len).to_be_bytes());
        out.extend_from_slice(&s.start_port.to_be_bytes());
        out.extend_from_slice(&s.end_port.to_be_bytes());
        out.extend_from_slice(&s.start_address);
        out.extend_from_slice(&s.end_address);
    }
}
