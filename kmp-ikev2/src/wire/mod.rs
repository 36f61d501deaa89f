//! The IKEv2 message codec (RFC 7296 §3).
//!
//! ```text
//!  0               1               2               3
//! +---------------+---------------+---------------+---------------+
//! |                   IKE SA Initiator's SPI (8)                  |
//! |                   IKE SA Responder's SPI (8)                  |
//! +---------------+---------------+---------------+---------------+
//! | Next Payload  | MjVer | MnVer | Exchange Type |     Flags     |
//! +---------------+---------------+---------------+---------------+
//! |                          Message ID                           |
//! |                   Length (whole message)                      |
//! +---------------+---------------+---------------+---------------+
//! | Next Payload  |C| RESERVED    |         Payload Length        |   (each payload)
//! ```
//!
//! [`Message::parse`] checks the header (major version 2, Length equal to the datagram), the
//! payload chain (every Payload Length inside the message, nothing after the last payload),
//! the inner structure of every payload this codec decodes (SA proposals and transforms,
//! traffic selectors, Delete SPI counts), that an SK payload is the last one, and the critical
//! bit of payloads it does not decode. It never panics, on any input.
//!
//! Emission is infallible: [`Message::emit`] and [`emit_payloads`] fill every Next Payload,
//! Payload Length and (for messages) the header's Next Payload and Length. A representation
//! that does not fit the wire (a body over 65 535 octets, more than 255 transforms, an SPI over
//! 255 octets, a TV attribute whose value is not 2 octets) is the caller's error: the length
//! fields saturate and TV values are cut or zero-padded to 2 octets, so the output does not
//! parse back. Everything [`Message::parse`] returns emits to a message that parses back to an
//! equal representation. Reserved fields are emitted as zero and ignored when parsing.
//!
//! Semantics (which payloads an exchange needs, nonce sizes, proposal numbering, SPI sizes per
//! protocol) are the session's business, not the codec's.

mod header;
mod message;
mod payload;

pub use header::{ExchangeType, Flags, HEADER_LEN, Header};
pub use message::{Message, SkParts, emit_payloads, emit_with_sk, parse_payloads, sk_parts};
pub use payload::{
    AuthPayload, CertPayload, CertReqPayload, DeletePayload, EncryptedFragmentPayload,
    EncryptedPayload, IdPayload, KePayload, NotifyPayload, Payload, Proposal, SaPayload,
    TrafficSelector, Transform, TsPayload,
};

/// Why an IKEv2 message or payload chain does not parse (or an SK message cannot be built).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// Shorter than a fixed-size field or header that must be there.
    #[error("truncated IKEv2 message")]
    Truncated,
    /// The header's Length differs from the datagram length (header value, datagram length).
    #[error("IKE header length {0} but {1} octets")]
    BadLength(u32, usize),
    /// A Payload Length under 4 or past the end of the enclosing data (payload type, length).
    #[error("payload {0} has invalid length {1}")]
    BadPayloadLength(u8, u16),
    /// The major version is not 2.
    #[error("unsupported IKE major version {0}")]
    BadVersion(u8),
    /// A payload type this codec does not decode, with the critical bit set.
    #[error("unsupported critical payload {0}")]
    UnsupportedCritical(u8),
    /// An SK (or SKF) payload that is followed by more octets.
    #[error("SK payload is not the last payload")]
    SkNotLast,
    /// Octets after the payload whose Next Payload is 0.
    #[error("{0} octets after the last payload")]
    TrailingData(usize),
    /// [`sk_parts`] on a message without an SK payload.
    #[error("no SK payload in the message")]
    NoSk,
    /// The closure given to [`emit_with_sk`] returned a body of another length
    /// (expected, returned).
    #[error("sealed SK body has {1} octets, expected {0}")]
    SealLength(usize, usize),
    /// [`emit_with_sk`]: the SK payload or the message would exceed its length field.
    #[error("message too long for its length fields")]
    TooLong,
    /// A structural error inside a payload; the text names the field.
    #[error("malformed IKEv2 payload: {0}")]
    Malformed(&'static str),
}

/// Payload type values (RFC 7296 §3.2, RFC 7383).
pub mod payload_type {
    /// No next payload.
    pub const NONE: u8 = 0;
    /// Security Association.
    pub const SA: u8 = 33;
    /// Key Exchange.
    pub const KE: u8 = 34;
    /// Identification - Initiator.
    pub const IDI: u8 = 35;
    /// Identification - Responder.
    pub const IDR: u8 = 36;
    /// Certificate.
    pub const CERT: u8 = 37;
    /// Certificate Request.
    pub const CERTREQ: u8 = 38;
    /// Authentication.
    pub const AUTH: u8 = 39;
    /// Nonce.
    pub const NONCE: u8 = 40;
    /// Notify.
    pub const NOTIFY: u8 = 41;
    /// Delete.
    pub const DELETE: u8 = 42;
    /// Vendor ID.
    pub const VENDOR_ID: u8 = 43;
    /// Traffic Selector - Initiator.
    pub const TSI: u8 = 44;
    /// Traffic Selector - Responder.
    pub const TSR: u8 = 45;
    /// Encrypted and Authenticated.
    pub const SK: u8 = 46;
    /// Configuration.
    pub const CP: u8 = 47;
    /// Extensible Authentication.
    pub const EAP: u8 = 48;
    /// Encrypted and Authenticated Fragment (RFC 7383).
    pub const SKF: u8 = 53;
}

/// Notify Message Types (RFC 7296 §3.10.1 and the IANA registry).
pub mod notify {
    /// Error: a critical payload type was not recognized.
    pub const UNSUPPORTED_CRITICAL_PAYLOAD: u16 = 1;
    /// Error: unrecognized IKE SPI.
    pub const INVALID_IKE_SPI: u16 = 4;
    /// Error: major version not supported.
    pub const INVALID_MAJOR_VERSION: u16 = 5;
    /// Error: malformed message.
    pub const INVALID_SYNTAX: u16 = 7;
    /// Error: message ID out of window.
    pub const INVALID_MESSAGE_ID: u16 = 9;
    /// Error: unrecognized SPI of an ESP/AH SA.
    pub const INVALID_SPI: u16 = 11;
    /// Error: no acceptable proposal.
    pub const NO_PROPOSAL_CHOSEN: u16 = 14;
    /// Error: wrong DH group in KE (data: the accepted group).
    pub const INVALID_KE_PAYLOAD: u16 = 17;
    /// Error: AUTH did not verify.
    pub const AUTHENTICATION_FAILED: u16 = 24;
    /// Error: a CHILD SA is required but none is acceptable.
    pub const SINGLE_PAIR_REQUIRED: u16 = 34;
    /// Error: no more CHILD SAs are accepted.
    pub const NO_ADDITIONAL_SAS: u16 = 35;
    /// Error: no internal address could be assigned.
    pub const INTERNAL_ADDRESS_FAILURE: u16 = 36;
    /// Error: configuration request failed.
    pub const FAILED_CP_REQUIRED: u16 = 37;
    /// Error: traffic selectors not acceptable.
    pub const TS_UNACCEPTABLE: u16 = 38;
    /// Error: bad SPI in a rekey or delete.
    pub const INVALID_SELECTORS: u16 = 39;
    /// Error: a simultaneous operation is in progress; retry later.
    pub const TEMPORARY_FAILURE: u16 = 43;
    /// Alias of [`TEMPORARY_FAILURE`] under the name used in the project brief.
    pub const TEMPORARILY_FAILURE: u16 = TEMPORARY_FAILURE;
    /// Error: the CHILD SA to rekey does not exist.
    pub const CHILD_SA_NOT_FOUND: u16 = 44;
    /// Status: first IKE SA with this peer; delete older ones.
    pub const INITIAL_CONTACT: u16 = 16384;
    /// Status: data is the initiator's SPI and IP list.
    pub const SET_WINDOW_SIZE: u16 = 16385;
    /// Status: additional traffic selectors are possible.
    pub const ADDITIONAL_TS_POSSIBLE: u16 = 16386;
    /// Status: IPComp supported.
    pub const IPCOMP_SUPPORTED: u16 = 16387;
    /// Status: NAT detection, source IP.
    pub const NAT_DETECTION_SOURCE_IP: u16 = 16388;
    /// Status: NAT detection, destination IP.
    pub const NAT_DETECTION_DESTINATION_IP: u16 = 16389;
    /// Status: anti-DoS cookie.
    pub const COOKIE: u16 = 16390;
    /// Status: transport mode requested.
    pub const USE_TRANSPORT_MODE: u16 = 16391;
    /// Status: HTTP certificate lookup supported.
    pub const HTTP_CERT_LOOKUP_SUPPORTED: u16 = 16392;
    /// Status: the CHILD SA being rekeyed (SPI in the notify).
    pub const REKEY_SA: u16 = 16393;
    /// Status: TFC padding not supported.
    pub const ESP_TFC_PADDING_NOT_SUPPORTED: u16 = 16394;
    /// Status: fragmentation applies to non-first fragments too.
    pub const NON_FIRST_FRAGMENTS_ALSO: u16 = 16395;
    /// Status: childless IKE SA initiation supported (RFC 6023).
    pub const CHILDLESS_IKEV2_SUPPORTED: u16 = 16418;
    /// Status: IKE fragmentation supported (RFC 7383).
    pub const IKEV2_FRAGMENTATION_SUPPORTED: u16 = 16430;
    /// Status: hash algorithms for RFC 7427 signatures (data: list of 2-octet IDs).
    pub const SIGNATURE_HASH_ALGORITHMS: u16 = 16431;
}

/// Transform types and IDs (RFC 7296 §3.3.2 and the IANA registry).
pub mod transform {
    /// Transform type 1: encryption algorithm.
    pub const TYPE_ENCR: u8 = 1;
    /// Transform type 2: pseudorandom function.
    pub const TYPE_PRF: u8 = 2;
    /// Transform type 3: integrity algorithm.
    pub const TYPE_INTEG: u8 = 3;
    /// Transform type 4: Diffie-Hellman group / key exchange method.
    pub const TYPE_DH: u8 = 4;
    /// Transform type 5: extended sequence numbers.
    pub const TYPE_ESN: u8 = 5;

    /// ENCR_AES_CBC.
    pub const ENCR_AES_CBC: u16 = 12;
    /// ENCR_AES_CTR.
    pub const ENCR_AES_CTR: u16 = 13;
    /// ENCR_AES_CCM_8 (8-octet ICV).
    pub const ENCR_AES_CCM_8: u16 = 14;
    /// ENCR_AES_CCM_12.
    pub const ENCR_AES_CCM_12: u16 = 15;
    /// ENCR_AES_CCM_16.
    pub const ENCR_AES_CCM_16: u16 = 16;
    /// ENCR_AES_GCM_8.
    pub const ENCR_AES_GCM_8: u16 = 18;
    /// ENCR_AES_GCM_12.
    pub const ENCR_AES_GCM_12: u16 = 19;
    /// ENCR_AES_GCM_16.
    pub const ENCR_AES_GCM_16: u16 = 20;
    /// ENCR_CHACHA20_POLY1305.
    pub const ENCR_CHACHA20_POLY1305: u16 = 28;

    /// PRF_HMAC_SHA1.
    pub const PRF_HMAC_SHA1: u16 = 2;
    /// PRF_AES128_XCBC.
    pub const PRF_AES128_XCBC: u16 = 4;
    /// PRF_HMAC_SHA2_256.
    pub const PRF_HMAC_SHA2_256: u16 = 5;
    /// PRF_HMAC_SHA2_384.
    pub const PRF_HMAC_SHA2_384: u16 = 6;
    /// PRF_HMAC_SHA2_512.
    pub const PRF_HMAC_SHA2_512: u16 = 7;
    /// PRF_AES128_CMAC.
    pub const PRF_AES128_CMAC: u16 = 8;

    /// AUTH_NONE (with AEAD ciphers).
    pub const INTEG_NONE: u16 = 0;
    /// AUTH_HMAC_SHA1_96.
    pub const INTEG_HMAC_SHA1_96: u16 = 2;
    /// AUTH_AES_XCBC_96.
    pub const INTEG_AES_XCBC_96: u16 = 5;
    /// AUTH_AES_CMAC_96.
    pub const INTEG_AES_CMAC_96: u16 = 8;
    /// AUTH_HMAC_SHA2_256_128.
    pub const INTEG_HMAC_SHA2_256_128: u16 = 12;

    /// 2048-bit MODP group.
    pub const DH_MODP2048: u16 = 14;
    /// 256-bit random ECP group (NIST P-256).
    pub const DH_ECP256: u16 = 19;
    /// 384-bit random ECP group (NIST P-384).
    pub const DH_ECP384: u16 = 20;
    /// Curve25519.
    pub const DH_CURVE25519: u16 = 31;

    /// No extended sequence numbers.
    pub const ESN_NONE: u16 = 0;
    /// Extended sequence numbers.
    pub const ESN_ENABLED: u16 = 1;

    /// Transform attribute type Key Length (always TV form).
    pub const ATTR_KEY_LENGTH: u16 = 14;
    /// Attribute Format bit: set for TV (2-octet value), clear for TLV.
    pub const ATTR_FORMAT_TV: u16 = 0x8000;
}

/// Security protocol IDs (Proposal, Notify, Delete).
pub mod protocol {
    /// IKE SA.
    pub const IKE: u8 = 1;
    /// AH.
    pub const AH: u8 = 2;
    /// ESP.
    pub const ESP: u8 = 3;
}

/// Exchange type values.
pub mod exchange {
    /// IKE_SA_INIT.
    pub const IKE_SA_INIT: u8 = 34;
    /// IKE_AUTH.
    pub const IKE_AUTH: u8 = 35;
    /// CREATE_CHILD_SA.
    pub const CREATE_CHILD_SA: u8 = 36;
    /// INFORMATIONAL.
    pub const INFORMATIONAL: u8 = 37;
}

/// Authentication methods (AUTH payload).
pub mod auth_method {
    /// RSA digital signature (PKCS#1 v1.5 with SHA-1).
    pub const RSA_SIG: u8 = 1;
    /// Shared Key Message Integrity Code.
    pub const SHARED_KEY_MIC: u8 = 2;
    /// DSS digital signature.
    pub const DSS_SIG: u8 = 3;
    /// ECDSA with SHA-256 on the P-256 curve (RFC 4754).
    pub const ECDSA_P256_SHA256: u8 = 9;
    /// ECDSA with SHA-384 on the P-384 curve.
    pub const ECDSA_P384_SHA384: u8 = 10;
    /// ECDSA with SHA-512 on the P-521 curve.
    pub const ECDSA_P521_SHA512: u8 = 11;
    /// Generic digital signature (RFC 7427): data = AlgorithmIdentifier length ‖ ASN.1 ‖ signature.
    pub const DIGITAL_SIGNATURE: u8 = 14;
}

/// Identification types (IDi / IDr).
pub mod id_type {
    /// One IPv4 address (4 octets).
    pub const IPV4_ADDR: u8 = 1;
    /// Fully qualified domain name.
    pub const FQDN: u8 = 2;
    /// RFC 822 e-mail address.
    pub const RFC822_ADDR: u8 = 3;
    /// One IPv6 address (16 octets).
    pub const IPV6_ADDR: u8 = 5;
    /// DER-encoded X.500 distinguished name.
    pub const DER_ASN1_DN: u8 = 9;
    /// DER-encoded X.500 general name.
    pub const DER_ASN1_GN: u8 = 10;
    /// Opaque octets.
    pub const KEY_ID: u8 = 11;
}

/// Certificate encodings (CERT / CERTREQ).
pub mod cert_encoding {
    /// X.509 certificate - signature (DER).
    pub const X509_SIGNATURE: u8 = 4;
    /// Hash and URL of an X.509 certificate.
    pub const HASH_URL_X509: u8 = 12;
    /// Raw public key (RFC 7670): a DER SubjectPublicKeyInfo.
    pub const RAW_PUBLIC_KEY: u8 = 15;
}

/// Traffic selector types.
pub mod ts_type {
    /// TS_IPV4_ADDR_RANGE: 4-octet addresses, selector length 16.
    pub const IPV4_ADDR_RANGE: u8 = 7;
    /// TS_IPV6_ADDR_RANGE: 16-octet addresses, selector length 40.
    pub const IPV6_ADDR_RANGE: u8 = 8;
}

/// Big-endian field readers over a slice with bounds checks.
pub(crate) fn be16(b: &[u8], at: usize) -> Result<u16, WireError> {
    match b.get(at..at + 2) {
        Some(&[x, y]) => Ok(u16::from_be_bytes([x, y])),
        _ => Err(WireError::Truncated),
    }
}

/// Length as u16, saturating (see the module docs on representations that do not fit).
pub(crate) fn sat16(n: usize) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}

/// Length as u8, saturating.
pub(crate) fn sat8(n: usize) -> u8 {
    u8::try_from(n).unwrap_or(u8::MAX)
}
