//! IKE_AUTH authentication (RFC 7296 §2.15, §3.6–3.8): credentials and the AUTH, CERT and
//! CERTREQ payloads.
//!
//! - **Shared key MIC** (method 2): `prf(prf(PSK, "Key Pad for IKEv2"), signed octets)`.
//! - **Digital Signature** (method 14, RFC 7427): `len ‖ AlgorithmIdentifier ‖ signature` over
//!   the signed octets, with ECDSA P-256/SHA-256 (DER `ECDSA-Sig-Value`) or RSA PKCS#1 v1.5
//!   with SHA-256; RSASSA-PSS with SHA-256 is accepted. Used when the peer announced SHA2-256
//!   in SIGNATURE_HASH_ALGORITHMS (RFC 7427 §4), which we send in IKE_SA_INIT.
//! - **Classic methods**, for peers without RFC 7427: 1 (RSA PKCS#1 v1.5, SHA-1) and 9 (ECDSA
//!   P-256 with SHA-256, `r ‖ s`, RFC 4754).
//!
//! Public keys come from an X.509 chain (CERT encoding 4, end-entity first, then
//! intermediates) checked against the configured trust anchors at the validation time, whose
//! end entity must name the peer's ID (ID_DER_ASN1_DN = subject; FQDN, RFC 822, IPv4, IPv6 in
//! subjectAltName; KEY_ID any), or from a pinned raw public key (RFC 7670, CERT encoding 15).
//! CERTREQ (SHA-1 hashes of the trust anchors' SubjectPublicKeyInfo) goes in the responder's
//! IKE_SA_INIT response and the initiator's IKE_AUTH request; our chain is always sent with a
//! signature AUTH (DECISIONS I20–I23).

use std::sync::Arc;
use std::time::SystemTime;

use kmp_api::crypto::CryptoError;
use kmp_api::crypto::hmac::sha1;
use kmp_api::crypto::sig::{
    KeyKind, SigHash, SigScheme, SigningKey, VerifyingKey, ecdsa_raw_to_der,
};
use kmp_api::crypto::x509::{Certificate, SubjectAltName, VerifyOptions, verify_chain};
use kmp_api::session::{SecretBytes, SessionError};

use crate::crypto::{PrfAlg, psk_auth, signed_octets};
use crate::wire::{
    AuthPayload, CertPayload, CertReqPayload, IdPayload, NotifyPayload, Payload, auth_method,
    cert_encoding, id_type, notify,
};

/// RFC 7427 hash algorithm identifier of SHA2-256 (RFC 7427 §7, IANA "IKEv2 Hash Algorithms").
pub const HASH_SHA2_256: u16 = 2;

/// RFC 7427 Appendix A (ECDSA): ecdsa-with-SHA256.
pub const ALG_ECDSA_SHA256: &[u8] = &[
    0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
];
/// RFC 7427 Appendix A (PKCS#1 1.5 RSA): sha256WithRSAEncryption.
pub const ALG_RSA_PKCS1_SHA256: &[u8] = &[
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00,
];
/// RFC 7427 Appendix A (RSASSA-PSS): SHA-256, MGF1-SHA-256, salt 32 (with the
/// trailerField the appendix lists).
pub const ALG_RSA_PSS_SHA256: &[u8] = &[
    0x30, 0x46, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a, 0x30, 0x39, 0xa0,
    0x0f, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00,
    0xa1, 0x1c, 0x30, 0x1a, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08, 0x30,
    0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0xa2, 0x03,
    0x02, 0x01, 0x20, 0xa3, 0x03, 0x02, 0x01, 0x01,
];
/// The same without the (DER-default) trailerField, as DER encoders emit it.
const ALG_RSA_PSS_SHA256_DER: &[u8] = &[
    0x30, 0x41, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a, 0x30, 0x34, 0xa0,
    0x0f, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00,
    0xa1, 0x1c, 0x30, 0x1a, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08, 0x30,
    0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0xa2, 0x03,
    0x02, 0x01, 0x20,
];

/// Public-key credentials (`auth = "pubkey"`).
#[derive(Clone)]
pub struct PublicKeyAuth {
    /// Our private key: EC P-256 or RSA (2048 bits or more).
    pub key: SigningKey,
    /// Our end-entity certificate then intermediates; empty: we use a raw public key
    /// (CERT encoding 15).
    pub chain: Vec<Certificate>,
    /// The trust anchors the peer's chain must end at.
    pub trust_anchors: Vec<Certificate>,
    /// The peer's pinned raw public key (DER SubjectPublicKeyInfo), RFC 7670.
    pub peer_raw_key: Option<Vec<u8>>,
    /// Always use the classic methods 1 and 9, never RFC 7427's method 14.
    pub classic: bool,
}

impl std::fmt::Debug for PublicKeyAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicKeyAuth")
            .field("key", &"<secret>")
            .field("chain", &self.chain)
            .field("trust_anchors", &self.trust_anchors)
            .field(
                "peer_raw_key",
                &self
                    .peer_raw_key
                    .as_ref()
                    .map(|k| format!("{} octets", k.len())),
            )
            .field("classic", &self.classic)
            .finish()
    }
}

fn cfg_err(msg: String) -> SessionError {
    SessionError::Config(format!("ikev2: {msg}"))
}

/// The text of a crypto error as the library reported it (without the prefix that
/// [`CryptoError::Library`] displays).
fn detail(e: CryptoError) -> String {
    match e {
        CryptoError::Library(s) => s,
        e => e.to_string(),
    }
}

impl PublicKeyAuth {
    /// Checks the key type (P-256 or RSA ≥ 2048) and that the end-entity certificate, if any,
    /// carries the key's public half. `key` is a [`SigningKey`] or anything that converts into
    /// one (an OpenSSL `PKey<Private>`).
    pub fn new(
        key: impl Into<SigningKey>,
        chain: Vec<Certificate>,
        trust_anchors: Vec<Certificate>,
        peer_raw_key: Option<Vec<u8>>,
        classic: bool,
    ) -> Result<PublicKeyAuth, SessionError> {
        let key = key.into();
        match key.kind() {
            KeyKind::EcP256 => {}
            KeyKind::EcOther => {
                return Err(cfg_err("key: only EC keys on P-256 are supported".into()));
            }
            KeyKind::Rsa if key.bits() >= 2048 => {}
            KeyKind::Rsa => return Err(cfg_err("key: RSA keys need at least 2048 bits".into())),
            _ => return Err(cfg_err("key: not an EC P-256 or RSA key".into())),
        }
        if let Some(leaf) = chain.first() {
            let ours = spki(&key)?;
            let info = leaf.info().map_err(|e| cfg_err(format!("cert: {e}")))?;
            if info.spki_der != ours {
                return Err(cfg_err(
                    "cert: the certificate's public key is not the key's".into(),
                ));
            }
        }
        if trust_anchors.is_empty() && peer_raw_key.is_none() {
            return Err(cfg_err(
                "auth = \"pubkey\" needs ca (trust anchors) or peer_raw_key".into(),
            ));
        }
        Ok(PublicKeyAuth {
            key,
            chain,
            trust_anchors,
            peer_raw_key,
            classic,
        })
    }

    fn is_ec(&self) -> bool {
        self.key.kind().is_ec()
    }
}

fn spki(key: &SigningKey) -> Result<Vec<u8>, SessionError> {
    key.public_key_der()
        .map_err(|e| cfg_err(format!("key: {}", detail(e))))
}

/// What the peer said in IKE_SA_INIT about authentication.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerInit {
    /// The peer announced SHA2-256 in SIGNATURE_HASH_ALGORITHMS (RFC 7427 §4).
    pub sha256_signatures: bool,
}

/// Reads the SIGNATURE_HASH_ALGORITHMS notify of an IKE_SA_INIT message.
pub fn read_init(payloads: &[Payload]) -> PeerInit {
    let sha256_signatures = payloads.iter().any(|p| match p {
        Payload::Notify(n) if n.notify_type == notify::SIGNATURE_HASH_ALGORITHMS => n
            .data
            .chunks_exact(2)
            .any(|c| u16::from_be_bytes([c[0], c[1]]) == HASH_SHA2_256),
        _ => false,
    });
    PeerInit { sha256_signatures }
}

/// The SIGNATURE_HASH_ALGORITHMS notify we send in IKE_SA_INIT: SHA2-256 only.
pub fn signature_hash_notify() -> Payload {
    Payload::Notify(NotifyPayload {
        protocol: 0,
        spi: vec![],
        notify_type: notify::SIGNATURE_HASH_ALGORITHMS,
        data: HASH_SHA2_256.to_be_bytes().to_vec(),
    })
}

/// Our CERTREQ: SHA-1 hashes of the trust anchors' SubjectPublicKeyInfo (RFC 7296 §3.7) for
/// X.509, or an empty encoding-15 request when we pinned a raw key (RFC 7670 §3). `None` with
/// PSK.
pub fn certreq(auth: Option<&PublicKeyAuth>) -> Option<Payload> {
    let auth = auth?;
    if !auth.trust_anchors.is_empty() {
        let mut data = Vec::with_capacity(20 * auth.trust_anchors.len());
        for ta in &auth.trust_anchors {
            if let Ok(info) = ta.info() {
                data.extend_from_slice(&sha1(&info.spki_der));
            }
        }
        Some(Payload::CertReq(CertReqPayload {
            encoding: cert_encoding::X509_SIGNATURE,
            data,
        }))
    } else {
        Some(Payload::CertReq(CertReqPayload {
            encoding: cert_encoding::RAW_PUBLIC_KEY,
            data: vec![],
        }))
    }
}

/// What goes under an AUTH: the signer's first message, the peer's nonce, the negotiated PRF,
/// the signer's SK_p and its ID payload (RFC 7296 §2.15).
#[derive(Debug, Clone, Copy)]
pub struct SignedData<'a> {
    /// The signer's IKE_SA_INIT message as sent.
    pub message: &'a [u8],
    /// The other side's nonce.
    pub peer_nonce: &'a [u8],
    /// The IKE SA's PRF.
    pub prf: PrfAlg,
    /// The signer's SK_pi or SK_pr.
    pub sk_p: &'a [u8],
    /// The signer's ID payload.
    pub id: &'a IdPayload,
}

impl SignedData<'_> {
    fn octets(&self) -> Result<Vec<u8>, SessionError> {
        Ok(signed_octets(
            self.message,
            self.peer_nonce,
            self.prf,
            self.sk_p,
            &self.id.body_for_auth(),
        )?)
    }

    fn psk_mac(&self, psk: &[u8]) -> Result<SecretBytes, SessionError> {
        Ok(psk_auth(
            self.prf,
            psk,
            self.message,
            self.peer_nonce,
            self.sk_p,
            &self.id.body_for_auth(),
        )?)
    }
}

fn internal(e: impl std::fmt::Display) -> SessionError {
    SessionError::Crypto(kmp_api::crypto::CryptoError::Certificate(format!(
        "ikev2 auth: {e}"
    )))
}

/// Our CERT payloads (if any) then the AUTH payload. Public keys win over a PSK when both are
/// configured; `peer` is what the peer's IKE_SA_INIT announced.
pub fn build(
    psk: Option<&Arc<SecretBytes>>,
    pubkey: Option<&PublicKeyAuth>,
    peer: &PeerInit,
    data: &SignedData<'_>,
) -> Result<Vec<Payload>, SessionError> {
    let Some(auth) = pubkey else {
        let psk = psk.ok_or_else(|| cfg_err("no PSK and no public key configured".into()))?;
        let mac = data.psk_mac(psk.expose())?;
        return Ok(vec![Payload::Auth(AuthPayload {
            method: auth_method::SHARED_KEY_MIC,
            data: mac.expose().to_vec(),
        })]);
    };
    let mut out = Vec::new();
    if auth.chain.is_empty() {
        out.push(Payload::Cert(CertPayload {
            encoding: cert_encoding::RAW_PUBLIC_KEY,
            data: spki(&auth.key)?,
        }));
    }
    for c in &auth.chain {
        out.push(Payload::Cert(CertPayload {
            encoding: cert_encoding::X509_SIGNATURE,
            data: c.der().to_vec(),
        }));
    }
    let octets = data.octets()?;
    let sign = |hash: SigHash| -> Result<Vec<u8>, SessionError> {
        let scheme = if auth.is_ec() {
            SigScheme::Ecdsa(hash)
        } else {
            SigScheme::RsaPkcs1v15(hash)
        };
        auth.key
            .sign(scheme, &octets)
            .map_err(|e| internal(detail(e)))
    };
    let (method, adata) = if auth.classic || !peer.sha256_signatures {
        if auth.is_ec() {
            let raw = auth
                .key
                .sign_ecdsa_raw(SigHash::Sha256, &octets)
                .map_err(|e| internal(detail(e)))?;
            (auth_method::ECDSA_P256_SHA256, raw)
        } else {
            (auth_method::RSA_SIG, sign(SigHash::Sha1)?)
        }
    } else {
        let alg = if auth.is_ec() {
            ALG_ECDSA_SHA256
        } else {
            ALG_RSA_PKCS1_SHA256
        };
        let sig = sign(SigHash::Sha256)?;
        let mut d = Vec::with_capacity(1 + alg.len() + sig.len());
        d.push(u8::try_from(alg.len()).map_err(internal)?);
        d.extend_from_slice(alg);
        d.extend_from_slice(&sig);
        (auth_method::DIGITAL_SIGNATURE, d)
    };
    out.push(Payload::Auth(AuthPayload {
        method,
        data: adata,
    }));
    Ok(out)
}

/// Why a peer's AUTH does not verify (every case is AUTHENTICATION_FAILED on the wire).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthFailure {
    /// No AUTH payload.
    #[error("no AUTH payload")]
    Missing,
    /// An authentication method we have no credential for, or do not implement.
    #[error("AUTH method {0} not configured or not supported")]
    Method(u8),
    /// The shared key MIC does not match.
    #[error("shared key MIC mismatch")]
    Mic,
    /// The peer sent no usable certificate or raw key.
    #[error("no certificate or public key from the peer: {0}")]
    NoKey(String),
    /// The peer's chain does not verify against the trust anchors (untrusted, expired, …).
    #[error("certificate chain: {0}")]
    Chain(String),
    /// The peer's ID is not one its certificate names.
    #[error("the peer's ID is not in its certificate")]
    IdMismatch,
    /// A malformed RFC 7427 AUTH or an unknown AlgorithmIdentifier.
    #[error("signature AUTH: {0}")]
    Format(&'static str),
    /// The signature does not verify.
    #[error("signature does not verify")]
    Signature,
}

/// The peer's public key: its pinned raw key, or its verified end-entity certificate's.
fn peer_key(
    auth: &PublicKeyAuth,
    payloads: &[Payload],
    id: &IdPayload,
    now: SystemTime,
) -> Result<VerifyingKey, AuthFailure> {
    if let Some(pinned) = &auth.peer_raw_key {
        for p in payloads {
            if let Payload::Cert(c) = p
                && c.encoding == cert_encoding::RAW_PUBLIC_KEY
                && &c.data != pinned
            {
                return Err(AuthFailure::NoKey("raw key is not the pinned one".into()));
            }
        }
        return VerifyingKey::from_spki_der(pinned).map_err(|e| AuthFailure::NoKey(detail(e)));
    }
    let mut certs = payloads.iter().filter_map(|p| match p {
        Payload::Cert(c) if c.encoding == cert_encoding::X509_SIGNATURE => Some(&c.data),
        _ => None,
    });
    let leaf = certs
        .next()
        .ok_or_else(|| AuthFailure::NoKey("no X.509 CERT payload".into()))?;
    let parse =
        |d: &Vec<u8>| Certificate::from_der(d).map_err(|e| AuthFailure::NoKey(e.to_string()));
    let leaf = parse(leaf)?;
    let intermediates = certs.map(parse).collect::<Result<Vec<_>, _>>()?;
    let secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    verify_chain(
        &auth.trust_anchors,
        &intermediates,
        &leaf,
        &VerifyOptions::at(secs),
    )
    .map_err(|e| AuthFailure::Chain(e.to_string()))?;
    if !id_matches_cert(id, &leaf) {
        return Err(AuthFailure::IdMismatch);
    }
    let info = leaf.info().map_err(|e| AuthFailure::NoKey(e.to_string()))?;
    VerifyingKey::from_spki_der(&info.spki_der).map_err(|e| AuthFailure::NoKey(detail(e)))
}

/// Whether a certificate names an IKE ID (RFC 4945 §3.1, strongSwan's rules): ID_DER_ASN1_DN
/// is the subject (octet for octet); FQDN, RFC 822, IPv4 and IPv6 appear in subjectAltName;
/// KEY_ID matches any certificate (it names no field of one).
pub fn id_matches_cert(id: &IdPayload, cert: &Certificate) -> bool {
    use x509_parser::prelude::FromDer;
    let Ok((_, parsed)) = x509_parser::certificate::X509Certificate::from_der(cert.der()) else {
        return false;
    };
    if id.id_type == id_type::DER_ASN1_DN {
        return parsed.subject().as_raw() == id.data.as_slice();
    }
    if id.id_type == id_type::KEY_ID {
        return true;
    }
    let Ok(info) = cert.info() else {
        return false;
    };
    let text = std::str::from_utf8(&id.data).ok();
    info.subject_alt_names
        .iter()
        .any(|san| match (id.id_type, san) {
            (id_type::FQDN, SubjectAltName::Dns(d)) => {
                text.is_some_and(|t| t.eq_ignore_ascii_case(d))
            }
            (id_type::RFC822_ADDR, SubjectAltName::Email(e)) => {
                text.is_some_and(|t| t.eq_ignore_ascii_case(e))
            }
            (id_type::IPV4_ADDR | id_type::IPV6_ADDR, SubjectAltName::Ip(ip)) => match ip {
                std::net::IpAddr::V4(a) => a.octets()[..] == id.data[..],
                std::net::IpAddr::V6(a) => a.octets()[..] == id.data[..],
            },
            _ => false,
        })
}

fn verify_sig(
    key: &VerifyingKey,
    scheme: SigScheme,
    octets: &[u8],
    sig: &[u8],
) -> Result<(), AuthFailure> {
    key.verify(scheme, octets, sig)
        .map_err(|_| AuthFailure::Signature)
}

/// Verifies the peer's AUTH (and its CERTs): a shared key MIC against the PSK, a signature
/// against the pinned raw key or the peer's certificate chain checked at `now`, whose end
/// entity must name `data.id`.
pub fn verify(
    psk: Option<&Arc<SecretBytes>>,
    pubkey: Option<&PublicKeyAuth>,
    payloads: &[Payload],
    data: &SignedData<'_>,
    now: SystemTime,
) -> Result<(), AuthFailure> {
    let auth = payloads
        .iter()
        .find_map(|p| match p {
            Payload::Auth(a) => Some(a),
            _ => None,
        })
        .ok_or(AuthFailure::Missing)?;
    if auth.method == auth_method::SHARED_KEY_MIC {
        let psk = psk.ok_or(AuthFailure::Method(auth.method))?;
        let mac = data
            .psk_mac(psk.expose())
            .map_err(|_| AuthFailure::Format("PRF"))?;
        return if kmp_api::crypto::ct_eq(mac.expose(), &auth.data) {
            Ok(())
        } else {
            Err(AuthFailure::Mic)
        };
    }
    let pk = pubkey.ok_or(AuthFailure::Method(auth.method))?;
    let octets = data.octets().map_err(|_| AuthFailure::Format("PRF"))?;
    let key = peer_key(pk, payloads, data.id, now)?;
    match auth.method {
        auth_method::DIGITAL_SIGNATURE => {
            let (&len, rest) = auth
                .data
                .split_first()
                .ok_or(AuthFailure::Format("empty"))?;
            let len = usize::from(len);
            if rest.len() <= len {
                return Err(AuthFailure::Format("short"));
            }
            let (alg, sig) = rest.split_at(len);
            let kind = key.kind();
            let scheme = if alg == ALG_ECDSA_SHA256 {
                SigScheme::Ecdsa(SigHash::Sha256)
            } else if alg == ALG_RSA_PKCS1_SHA256 {
                SigScheme::RsaPkcs1v15(SigHash::Sha256)
            } else if alg == ALG_RSA_PSS_SHA256 || alg == ALG_RSA_PSS_SHA256_DER {
                SigScheme::RsaPss {
                    hash: SigHash::Sha256,
                    salt_len: 32,
                }
            } else {
                return Err(AuthFailure::Format("unsupported AlgorithmIdentifier"));
            };
            let fits = match scheme {
                SigScheme::Ecdsa(_) => kind.is_ec(),
                _ => kind == KeyKind::Rsa,
            };
            if !fits {
                return Err(AuthFailure::Format("algorithm does not fit the key"));
            }
            verify_sig(&key, scheme, &octets, sig)
        }
        auth_method::ECDSA_P256_SHA256 => {
            if !key.kind().is_ec() || auth.data.len() != 64 {
                return Err(AuthFailure::Format("method 9 needs a P-256 key and r ‖ s"));
            }
            let der = ecdsa_raw_to_der(&auth.data).map_err(|_| AuthFailure::Format("r ‖ s"))?;
            verify_sig(&key, SigScheme::Ecdsa(SigHash::Sha256), &octets, &der)
        }
        auth_method::RSA_SIG => {
            if key.kind() != KeyKind::Rsa {
                return Err(AuthFailure::Format("method 1 needs an RSA key"));
            }
            verify_sig(
                &key,
                SigScheme::RsaPkcs1v15(SigHash::Sha1),
                &octets,
                &auth.data,
            )
        }
        m => Err(AuthFailure::Method(m)),
    }
}
