//! A rustls [`CryptoProvider`] whose primitives are OpenSSL's, all reached through
//! `kmp_api::crypto`: SHA-2 and HMAC (over `openssl::sha`), AES-GCM, P-256 ECDH and ECDSA (on
//! `EC_KEY`), X25519 and P-384 ECDH (`kx`), RSA, P-384 ECDSA and Ed25519 (`sig`), and the
//! process's random source.
//!
//! Why not OpenSSL's own TLS (DECISIONS E12): OpenSSL 3.0 spends most of an EAP-TLS handshake
//! outside the cryptography, in its decoder and provider machinery (BENCHMARKS.md, "eap");
//! rustls runs the protocol, this module keeps every cryptographic operation in OpenSSL.
//!
//! Offered: TLS 1.3 `TLS_AES_128_GCM_SHA256` and `TLS_AES_256_GCM_SHA384`; TLS 1.2
//! `ECDHE-{ECDSA,RSA}-AES{128,256}-GCM-SHA{256,384}`; key exchange with P-256 (preferred:
//! what Wi-SUN devices implement in hardware), X25519 and P-384; signatures ECDSA P-256/P-384,
//! RSA PKCS#1 v1.5 and PSS (2048 to 8192 bits), Ed25519.

use std::sync::{Arc, OnceLock};

use kmp_api::crypto::CryptoError;
use kmp_api::crypto::ecc::{P256KeyPair, P256PublicKey};
use kmp_api::crypto::gcm::{gcm_open, gcm_seal};
use kmp_api::crypto::hmac::{Sha2, hmac_sha256_parts, hmac_sha384_parts, sha256, sha384};
use kmp_api::crypto::kx::{P384KeyPair, X25519KeyPair};
use kmp_api::crypto::sig::{
    KeyKind, SigHash, SigScheme, SigningKey as KeyPair, VerifyingKey, ecdsa_der_to_raw,
};
use kmp_api::rng::RngHandle;
use rustls::crypto::cipher::{
    AeadKey, InboundOpaqueMessage, InboundPlainMessage, Iv, KeyBlockShape, MessageDecrypter,
    MessageEncrypter, NONCE_LEN, Nonce, OutboundOpaqueMessage, OutboundPlainMessage,
    PrefixedPayload, Tls12AeadAlgorithm, Tls13AeadAlgorithm, UnsupportedOperationError,
    make_tls12_aad, make_tls13_aad,
};
use rustls::crypto::tls12::PrfUsingHmac;
use rustls::crypto::tls13::HkdfUsingHmac;
use rustls::crypto::{
    ActiveKeyExchange, CipherSuiteCommon, CryptoProvider, GetRandomFailed, KeyExchangeAlgorithm,
    KeyProvider, SecureRandom, SharedSecret, SupportedKxGroup, WebPkiSupportedAlgorithms, hash,
    hmac,
};
use rustls::pki_types::{
    AlgorithmIdentifier, InvalidSignature, PrivateKeyDer, SignatureVerificationAlgorithm, alg_id,
};
use rustls::sign::{Signer, SigningKey};
use rustls::{
    CipherSuite, ConnectionTrafficSecrets, ContentType, Error, NamedGroup, ProtocolVersion,
    SignatureAlgorithm, SignatureScheme, SupportedCipherSuite, Tls12CipherSuite, Tls13CipherSuite,
};
use zeroize::Zeroizing;

/// The provider (built once per process).
pub(crate) fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    Arc::clone(PROVIDER.get_or_init(|| {
        Arc::new(CryptoProvider {
            cipher_suites: vec![
                TLS13_AES_128_GCM_SHA256,
                TLS13_AES_256_GCM_SHA384,
                TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
                TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
                TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
                TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            ],
            kx_groups: vec![&SECP256R1, &X25519, &SECP384R1],
            signature_verification_algorithms: SUPPORTED_ALGORITHMS,
            secure_random: &Random,
            key_provider: &Keys,
        })
    }))
}

// ---------------------------------------------------------------------------------------------
// Hashes and HMAC

#[derive(Clone, Copy, Debug)]
enum Sha {
    Sha256,
    Sha384,
}

fn sha2(alg: Sha) -> Sha2 {
    match alg {
        Sha::Sha256 => Sha2::sha256(),
        Sha::Sha384 => Sha2::sha384(),
    }
}

fn output(h: Sha2) -> hash::Output {
    let len = h.len();
    hash::Output::new(&h.finish()[..len])
}

struct ShaHash(Sha);

static SHA256: ShaHash = ShaHash(Sha::Sha256);
static SHA384: ShaHash = ShaHash(Sha::Sha384);

impl hash::Hash for ShaHash {
    fn start(&self) -> Box<dyn hash::Context> {
        Box::new(ShaContext(sha2(self.0)))
    }

    fn hash(&self, data: &[u8]) -> hash::Output {
        let mut s = sha2(self.0);
        s.update(data);
        output(s)
    }

    fn output_len(&self) -> usize {
        match self.0 {
            Sha::Sha256 => 32,
            Sha::Sha384 => 48,
        }
    }

    fn algorithm(&self) -> hash::HashAlgorithm {
        match self.0 {
            Sha::Sha256 => hash::HashAlgorithm::SHA256,
            Sha::Sha384 => hash::HashAlgorithm::SHA384,
        }
    }
}

struct ShaContext(Sha2);

impl hash::Context for ShaContext {
    fn fork_finish(&self) -> hash::Output {
        output(self.0.clone())
    }

    fn fork(&self) -> Box<dyn hash::Context> {
        Box::new(ShaContext(self.0.clone()))
    }

    fn finish(self: Box<Self>) -> hash::Output {
        output(self.0)
    }

    fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }
}

struct ShaHmac(Sha);

static HMAC_SHA256: ShaHmac = ShaHmac(Sha::Sha256);
static HMAC_SHA384: ShaHmac = ShaHmac(Sha::Sha384);

impl hmac::Hmac for ShaHmac {
    fn with_key(&self, key: &[u8]) -> Box<dyn hmac::Key> {
        Box::new(HmacKey {
            alg: self.0,
            key: Zeroizing::new(key.to_vec()),
        })
    }

    fn hash_output_len(&self) -> usize {
        match self.0 {
            Sha::Sha256 => 32,
            Sha::Sha384 => 48,
        }
    }
}

/// An HMAC key: `kmp_api::crypto::hmac` (RFC 2104 over `openssl::sha`) per tag.
struct HmacKey {
    alg: Sha,
    key: Zeroizing<Vec<u8>>,
}

impl hmac::Key for HmacKey {
    fn sign_concat(&self, first: &[u8], middle: &[&[u8]], last: &[u8]) -> hmac::Tag {
        let mut parts: Vec<&[u8]> = Vec::with_capacity(middle.len() + 2);
        parts.push(first);
        parts.extend_from_slice(middle);
        parts.push(last);
        // Both functions fail only on an output length mismatch, impossible here.
        match self.alg {
            Sha::Sha256 => match hmac_sha256_parts(&self.key, &parts) {
                Ok(t) => hmac::Tag::new(&t),
                Err(_) => hmac::Tag::new(&[]),
            },
            Sha::Sha384 => match hmac_sha384_parts(&self.key, &parts) {
                Ok(t) => hmac::Tag::new(&t),
                Err(_) => hmac::Tag::new(&[]),
            },
        }
    }

    fn tag_len(&self) -> usize {
        match self.alg {
            Sha::Sha256 => 32,
            Sha::Sha384 => 48,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Cipher suites

const GCM_TAG_LEN: usize = 16;
const GCM_EXPLICIT_NONCE_LEN: usize = 8;
/// The largest TLS plaintext record (RFC 8446 §5.1).
const MAX_FRAGMENT_LEN: usize = 16_384;

/// A TLS 1.3 AES-GCM suite: name, hash, HMAC (under HKDF), key length.
macro_rules! tls13_gcm_suite {
    ($name:ident, $hash:expr, $hmac:expr, $key_len:expr) => {
        static $name: SupportedCipherSuite = SupportedCipherSuite::Tls13(&Tls13CipherSuite {
            common: CipherSuiteCommon {
                suite: CipherSuite::$name,
                hash_provider: &$hash,
                confidentiality_limit: 1 << 24,
            },
            hkdf_provider: &HkdfUsingHmac(&$hmac),
            aead_alg: &Gcm13($key_len),
            quic: None,
        });
    };
}

tls13_gcm_suite!(TLS13_AES_128_GCM_SHA256, SHA256, HMAC_SHA256, 16);
tls13_gcm_suite!(TLS13_AES_256_GCM_SHA384, SHA384, HMAC_SHA384, 32);

static TLS12_ECDSA_SCHEMES: &[SignatureScheme] = &[
    SignatureScheme::ED25519,
    SignatureScheme::ECDSA_NISTP384_SHA384,
    SignatureScheme::ECDSA_NISTP256_SHA256,
];

static TLS12_RSA_SCHEMES: &[SignatureScheme] = &[
    SignatureScheme::RSA_PSS_SHA512,
    SignatureScheme::RSA_PSS_SHA384,
    SignatureScheme::RSA_PSS_SHA256,
    SignatureScheme::RSA_PKCS1_SHA512,
    SignatureScheme::RSA_PKCS1_SHA384,
    SignatureScheme::RSA_PKCS1_SHA256,
];

/// A TLS 1.2 ECDHE suite with AES-GCM: name, signature schemes, hash, HMAC, key length.
macro_rules! tls12_gcm_suite {
    ($name:ident, $schemes:expr, $hash:expr, $hmac:expr, $key_len:expr) => {
        static $name: SupportedCipherSuite = SupportedCipherSuite::Tls12(&Tls12CipherSuite {
            common: CipherSuiteCommon {
                suite: CipherSuite::$name,
                hash_provider: &$hash,
                confidentiality_limit: 1 << 24,
            },
            kx: KeyExchangeAlgorithm::ECDHE,
            sign: $schemes,
            aead_alg: &Gcm12($key_len),
            prf_provider: &PrfUsingHmac(&$hmac),
        });
    };
}

tls12_gcm_suite!(
    TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    TLS12_ECDSA_SCHEMES,
    SHA256,
    HMAC_SHA256,
    16
);
tls12_gcm_suite!(
    TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    TLS12_ECDSA_SCHEMES,
    SHA384,
    HMAC_SHA384,
    32
);
tls12_gcm_suite!(
    TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    TLS12_RSA_SCHEMES,
    SHA256,
    HMAC_SHA256,
    16
);
tls12_gcm_suite!(
    TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    TLS12_RSA_SCHEMES,
    SHA384,
    HMAC_SHA384,
    32
);

fn traffic_secrets(key: AeadKey, iv: Iv) -> ConnectionTrafficSecrets {
    if key.as_ref().len() == 32 {
        ConnectionTrafficSecrets::Aes256Gcm { key, iv }
    } else {
        ConnectionTrafficSecrets::Aes128Gcm { key, iv }
    }
}

/// AES-GCM for TLS 1.3 (RFC 8446 §5.2), the key length in octets.
struct Gcm13(usize);

impl Tls13AeadAlgorithm for Gcm13 {
    fn encrypter(&self, key: AeadKey, iv: Iv) -> Box<dyn MessageEncrypter> {
        Box::new(Gcm13Crypter { key, iv })
    }

    fn decrypter(&self, key: AeadKey, iv: Iv) -> Box<dyn MessageDecrypter> {
        Box::new(Gcm13Crypter { key, iv })
    }

    fn key_len(&self) -> usize {
        self.0
    }

    fn extract_keys(
        &self,
        key: AeadKey,
        iv: Iv,
    ) -> Result<ConnectionTrafficSecrets, UnsupportedOperationError> {
        Ok(traffic_secrets(key, iv))
    }
}

struct Gcm13Crypter {
    key: AeadKey,
    iv: Iv,
}

impl MessageEncrypter for Gcm13Crypter {
    fn encrypt(
        &mut self,
        msg: OutboundPlainMessage<'_>,
        seq: u64,
    ) -> Result<OutboundOpaqueMessage, Error> {
        let total_len = self.encrypted_payload_len(msg.payload.len());
        let mut plain = Zeroizing::new(Vec::with_capacity(msg.payload.len() + 1));
        msg.payload.copy_to_vec(&mut plain);
        plain.extend_from_slice(&msg.typ.to_array());
        let nonce = Nonce::new(&self.iv, seq).0;
        let sealed = gcm_seal(
            self.key.as_ref(),
            &nonce,
            &make_tls13_aad(total_len),
            &plain,
            GCM_TAG_LEN,
        )
        .map_err(|_| Error::EncryptError)?;
        let mut payload = PrefixedPayload::with_capacity(total_len);
        payload.extend_from_slice(&sealed);
        Ok(OutboundOpaqueMessage::new(
            ContentType::ApplicationData,
            ProtocolVersion::TLSv1_2,
            payload,
        ))
    }

    fn encrypted_payload_len(&self, payload_len: usize) -> usize {
        payload_len + 1 + GCM_TAG_LEN
    }
}

impl MessageDecrypter for Gcm13Crypter {
    fn decrypt<'a>(
        &mut self,
        mut msg: InboundOpaqueMessage<'a>,
        seq: u64,
    ) -> Result<InboundPlainMessage<'a>, Error> {
        let payload = &mut msg.payload;
        if payload.len() < GCM_TAG_LEN {
            return Err(Error::DecryptError);
        }
        let nonce = Nonce::new(&self.iv, seq).0;
        let plain = Zeroizing::new(
            gcm_open(
                self.key.as_ref(),
                &nonce,
                &make_tls13_aad(payload.len()),
                payload,
                GCM_TAG_LEN,
            )
            .map_err(|_| Error::DecryptError)?,
        );
        payload[..plain.len()].copy_from_slice(&plain);
        payload.truncate(plain.len());
        msg.into_tls13_unpadded_message()
    }
}

/// AES-GCM for TLS 1.2 (RFC 5288): 4-octet salt from the key block, 8-octet explicit nonce
/// in each record (here the salted IV ⊕ sequence number, as RFC 8446 does, so it never
/// repeats), the key length in octets.
struct Gcm12(usize);

fn gcm12_iv(salt: &[u8], explicit: &[u8]) -> Iv {
    let mut iv = [0u8; NONCE_LEN];
    let s = salt.len().min(4);
    iv[..s].copy_from_slice(&salt[..s]);
    let e = explicit.len().min(8);
    iv[4..4 + e].copy_from_slice(&explicit[..e]);
    Iv::new(iv)
}

impl Tls12AeadAlgorithm for Gcm12 {
    fn encrypter(&self, key: AeadKey, iv: &[u8], extra: &[u8]) -> Box<dyn MessageEncrypter> {
        Box::new(Gcm12Encrypter {
            key,
            iv: gcm12_iv(iv, extra),
        })
    }

    fn decrypter(&self, key: AeadKey, iv: &[u8]) -> Box<dyn MessageDecrypter> {
        let mut salt = [0u8; 4];
        let s = iv.len().min(4);
        salt[..s].copy_from_slice(&iv[..s]);
        Box::new(Gcm12Decrypter { key, salt })
    }

    fn key_block_shape(&self) -> KeyBlockShape {
        KeyBlockShape {
            enc_key_len: self.0,
            fixed_iv_len: 4,
            explicit_nonce_len: GCM_EXPLICIT_NONCE_LEN,
        }
    }

    fn extract_keys(
        &self,
        key: AeadKey,
        iv: &[u8],
        explicit: &[u8],
    ) -> Result<ConnectionTrafficSecrets, UnsupportedOperationError> {
        Ok(traffic_secrets(key, gcm12_iv(iv, explicit)))
    }
}

struct Gcm12Encrypter {
    key: AeadKey,
    iv: Iv,
}

impl MessageEncrypter for Gcm12Encrypter {
    fn encrypt(
        &mut self,
        msg: OutboundPlainMessage<'_>,
        seq: u64,
    ) -> Result<OutboundOpaqueMessage, Error> {
        let total_len = self.encrypted_payload_len(msg.payload.len());
        let nonce = Nonce::new(&self.iv, seq).0;
        let aad = make_tls12_aad(seq, msg.typ, msg.version, msg.payload.len());
        let plain = Zeroizing::new(msg.payload.to_vec());
        let sealed = gcm_seal(self.key.as_ref(), &nonce, &aad, &plain, GCM_TAG_LEN)
            .map_err(|_| Error::EncryptError)?;
        let mut payload = PrefixedPayload::with_capacity(total_len);
        payload.extend_from_slice(&nonce[4..]);
        payload.extend_from_slice(&sealed);
        Ok(OutboundOpaqueMessage::new(msg.typ, msg.version, payload))
    }

    fn encrypted_payload_len(&self, payload_len: usize) -> usize {
        payload_len + GCM_EXPLICIT_NONCE_LEN + GCM_TAG_LEN
    }
}

struct Gcm12Decrypter {
    key: AeadKey,
    salt: [u8; 4],
}

impl MessageDecrypter for Gcm12Decrypter {
    fn decrypt<'a>(
        &mut self,
        mut msg: InboundOpaqueMessage<'a>,
        seq: u64,
    ) -> Result<InboundPlainMessage<'a>, Error> {
        let len = msg.payload.len();
        if len < GCM_EXPLICIT_NONCE_LEN + GCM_TAG_LEN {
            return Err(Error::DecryptError);
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce[..4].copy_from_slice(&self.salt);
        nonce[4..].copy_from_slice(&msg.payload[..GCM_EXPLICIT_NONCE_LEN]);
        let aad = make_tls12_aad(
            seq,
            msg.typ,
            msg.version,
            len - GCM_EXPLICIT_NONCE_LEN - GCM_TAG_LEN,
        );
        let plain = Zeroizing::new(
            gcm_open(
                self.key.as_ref(),
                &nonce,
                &aad,
                &msg.payload[GCM_EXPLICIT_NONCE_LEN..],
                GCM_TAG_LEN,
            )
            .map_err(|_| Error::DecryptError)?,
        );
        if plain.len() > MAX_FRAGMENT_LEN {
            return Err(Error::PeerSentOversizedRecord);
        }
        let payload = &mut msg.payload;
        payload[..plain.len()].copy_from_slice(&plain);
        payload.truncate(plain.len());
        Ok(msg.into_plain_message())
    }
}

// ---------------------------------------------------------------------------------------------
// Key exchange

/// An ephemeral key of one group, as `kmp_api::crypto` has it.
trait Ephemeral: Send + Sync {
    /// The public value as TLS sends it.
    fn public(&self) -> &[u8];
    /// The shared secret with the peer's public value (refused: another length or form, off
    /// the curve, a small-order or infinity result).
    fn agree(&self, peer: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError>;
}

/// P-256 with its public value uncompressed.
struct P256Ephemeral(P256KeyPair, [u8; 65]);

impl Ephemeral for P256Ephemeral {
    fn public(&self) -> &[u8] {
        &self.1
    }

    fn agree(&self, peer: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let z = self
            .0
            .diffie_hellman(&P256PublicKey::from_uncompressed(peer)?)?;
        Ok(Zeroizing::new(z.expose().to_vec()))
    }
}

impl Ephemeral for P384KeyPair {
    fn public(&self) -> &[u8] {
        self.public_key()
    }

    fn agree(&self, peer: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        Ok(Zeroizing::new(self.diffie_hellman(peer)?.expose().to_vec()))
    }
}

impl Ephemeral for X25519KeyPair {
    fn public(&self) -> &[u8] {
        self.public_key()
    }

    fn agree(&self, peer: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        Ok(Zeroizing::new(self.diffie_hellman(peer)?.expose().to_vec()))
    }
}

/// A key exchange group: its name and how to make an ephemeral key from the process's random
/// source.
struct Group {
    name: NamedGroup,
    generate: fn(&RngHandle) -> Result<Box<dyn Ephemeral>, CryptoError>,
}

impl core::fmt::Debug for Group {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Group({:?})", self.name)
    }
}

/// P-256 through `kmp_api::crypto::ecc` (OpenSSL's constant-time P-256 on `EC_KEY`).
static SECP256R1: Group = Group {
    name: NamedGroup::secp256r1,
    generate: |rng| {
        let pair = P256KeyPair::generate(rng)?;
        let public = pair.public_key().to_uncompressed();
        Ok(Box::new(P256Ephemeral(pair, public)))
    },
};

/// P-384 through `kmp_api::crypto::kx` (offered last; TLS 1.2 servers also need it listed to
/// use a P-384 certificate, RFC 8422 §5.1.1).
static SECP384R1: Group = Group {
    name: NamedGroup::secp384r1,
    generate: |rng| Ok(Box::new(P384KeyPair::generate(rng)?)),
};

/// X25519 (RFC 7748) through `kmp_api::crypto::kx`.
static X25519: Group = Group {
    name: NamedGroup::X25519,
    generate: |rng| Ok(Box::new(X25519KeyPair::generate(rng)?)),
};

impl SupportedKxGroup for Group {
    fn start(&self) -> Result<Box<dyn ActiveKeyExchange>, Error> {
        let key = (self.generate)(&RngHandle::os())
            .map_err(|e| Error::General(format!("{:?} key generation: {e}", self.name)))?;
        Ok(Box::new(Exchange {
            key,
            group: self.name,
        }))
    }

    fn name(&self) -> NamedGroup {
        self.name
    }
}

struct Exchange {
    key: Box<dyn Ephemeral>,
    group: NamedGroup,
}

impl ActiveKeyExchange for Exchange {
    fn complete(self: Box<Self>, peer_pub_key: &[u8]) -> Result<SharedSecret, Error> {
        let z = self
            .key
            .agree(peer_pub_key)
            .map_err(|_| Error::from(rustls::PeerMisbehaved::InvalidKeyShare))?;
        Ok(SharedSecret::from(&z[..]))
    }

    fn pub_key(&self) -> &[u8] {
        self.key.public()
    }

    fn group(&self) -> NamedGroup {
        self.group
    }
}

// ---------------------------------------------------------------------------------------------
// Randomness and private keys

#[derive(Debug)]
struct Random;

impl SecureRandom for Random {
    fn fill(&self, buf: &mut [u8]) -> Result<(), GetRandomFailed> {
        RngHandle::os().fill(buf).map_err(|_| GetRandomFailed)
    }
}

#[derive(Debug)]
struct Keys;

impl KeyProvider for Keys {
    fn load_private_key(
        &self,
        key_der: PrivateKeyDer<'static>,
    ) -> Result<Arc<dyn SigningKey>, Error> {
        let key = KeyPair::from_der(key_der.secret_der())
            .map_err(|e| Error::General(format!("private key: {e}")))?;
        Ok(Arc::new(OurSigningKey::new(key)?))
    }
}

/// Our private key as rustls signs with it, through `kmp_api::crypto`.
#[derive(Debug, Clone)]
pub(crate) enum OurSigningKey {
    /// P-256: ECDSA on `EC_KEY` (`ecc::P256KeyPair`, no EVP lookups per signature).
    P256(Arc<P256KeyPair>),
    /// Another key `sig::SigningKey` signs with, and the schemes it offers in order of
    /// preference: P-384 ECDSA, RSA (PSS, then PKCS#1 v1.5), Ed25519.
    Other(Arc<KeyPair>, &'static [SignatureScheme]),
}

static P384_SCHEMES: &[SignatureScheme] = &[SignatureScheme::ECDSA_NISTP384_SHA384];
static RSA_SCHEMES: &[SignatureScheme] = &[
    SignatureScheme::RSA_PSS_SHA256,
    SignatureScheme::RSA_PSS_SHA384,
    SignatureScheme::RSA_PSS_SHA512,
    SignatureScheme::RSA_PKCS1_SHA256,
    SignatureScheme::RSA_PKCS1_SHA384,
    SignatureScheme::RSA_PKCS1_SHA512,
];
static ED25519_SCHEMES: &[SignatureScheme] = &[SignatureScheme::ED25519];

impl OurSigningKey {
    pub(crate) fn new(key: KeyPair) -> Result<OurSigningKey, Error> {
        if let Some(p256) = key.to_p256() {
            return Ok(OurSigningKey::P256(Arc::new(p256)));
        }
        let schemes = match key.kind() {
            KeyKind::EcOther if key.bits() == 384 => P384_SCHEMES,
            KeyKind::Rsa if key.bits() >= 2048 => RSA_SCHEMES,
            KeyKind::Rsa => {
                return Err(Error::General(
                    "RSA keys must have at least 2048 bits".into(),
                ));
            }
            KeyKind::Ed25519 => ED25519_SCHEMES,
            _ => {
                return Err(Error::General(
                    "the private key must be ECDSA (P-256, P-384), RSA or Ed25519".into(),
                ));
            }
        };
        Ok(OurSigningKey::Other(Arc::new(key), schemes))
    }
}

impl SigningKey for OurSigningKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        let ours: &[SignatureScheme] = match self {
            OurSigningKey::P256(_) => &[SignatureScheme::ECDSA_NISTP256_SHA256],
            OurSigningKey::Other(_, schemes) => schemes,
        };
        let scheme = ours.iter().copied().find(|s| offered.contains(s))?;
        Some(Box::new(OurSigner {
            key: self.clone(),
            scheme,
        }))
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        match self {
            OurSigningKey::P256(_) => SignatureAlgorithm::ECDSA,
            OurSigningKey::Other(k, _) => match k.kind() {
                KeyKind::Rsa => SignatureAlgorithm::RSA,
                KeyKind::Ed25519 => SignatureAlgorithm::ED25519,
                _ => SignatureAlgorithm::ECDSA,
            },
        }
    }
}

#[derive(Debug)]
struct OurSigner {
    key: OurSigningKey,
    scheme: SignatureScheme,
}

/// The `kmp_api::crypto::sig` scheme of a TLS signature scheme (RSA-PSS salt = hash length,
/// RFC 8446 §4.2.3).
fn sig_scheme(scheme: SignatureScheme) -> Option<SigScheme> {
    use SignatureScheme as S;
    Some(match scheme {
        S::ECDSA_NISTP256_SHA256 => SigScheme::Ecdsa(SigHash::Sha256),
        S::ECDSA_NISTP384_SHA384 => SigScheme::Ecdsa(SigHash::Sha384),
        S::RSA_PKCS1_SHA256 => SigScheme::RsaPkcs1v15(SigHash::Sha256),
        S::RSA_PKCS1_SHA384 => SigScheme::RsaPkcs1v15(SigHash::Sha384),
        S::RSA_PKCS1_SHA512 => SigScheme::RsaPkcs1v15(SigHash::Sha512),
        S::RSA_PSS_SHA256 => SigScheme::RsaPss {
            hash: SigHash::Sha256,
            salt_len: 32,
        },
        S::RSA_PSS_SHA384 => SigScheme::RsaPss {
            hash: SigHash::Sha384,
            salt_len: 48,
        },
        S::RSA_PSS_SHA512 => SigScheme::RsaPss {
            hash: SigHash::Sha512,
            salt_len: 64,
        },
        S::ED25519 => SigScheme::Ed25519,
        _ => return None,
    })
}

impl Signer for OurSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        let fail = |e: CryptoError| Error::General(format!("signing: {e}"));
        match &self.key {
            OurSigningKey::P256(key) => key.sign_der(message).map_err(fail),
            OurSigningKey::Other(key, _) => {
                let scheme = sig_scheme(self.scheme)
                    .ok_or_else(|| Error::General("signature scheme not offered".into()))?;
                key.sign(scheme, message).map_err(fail)
            }
        }
    }

    fn scheme(&self) -> SignatureScheme {
        self.scheme
    }
}

// ---------------------------------------------------------------------------------------------
// Signature verification (certificates and handshake signatures)

/// A webpki signature check through `kmp_api::crypto`: P-256 ECDSA on `ecc::P256PublicKey`
/// (the common case: Wi-SUN certificates), anything else through a `sig::VerifyingKey` made
/// from the SubjectPublicKeyInfo parts.
#[derive(Debug)]
struct Verify {
    /// The scheme checked (its hash, padding, curve).
    scheme: SigScheme,
    /// P-256 ECDSA: the fast path.
    p256: bool,
    public_key_alg_id: AlgorithmIdentifier,
    signature_alg_id: AlgorithmIdentifier,
}

impl SignatureVerificationAlgorithm for Verify {
    fn verify_signature(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), InvalidSignature> {
        if self.p256 {
            let key = P256PublicKey::from_sec1(public_key).map_err(|_| InvalidSignature)?;
            let raw = ecdsa_der_to_raw(signature, 32).map_err(|_| InvalidSignature)?;
            // ECDSA uses the leftmost 256 bits of a longer hash (FIPS 186-4 §6.4).
            let mut digest = [0u8; 32];
            match self.scheme {
                SigScheme::Ecdsa(SigHash::Sha384) => digest.copy_from_slice(&sha384(message)[..32]),
                _ => digest = sha256(message),
            }
            return key
                .verify_digest(&digest, &raw)
                .map_err(|_| InvalidSignature);
        }
        let key = VerifyingKey::from_spki_parts(self.public_key_alg_id.as_ref(), public_key)
            .map_err(|_| InvalidSignature)?;
        if key.kind() == KeyKind::Rsa && !(2048..=8192).contains(&key.bits()) {
            return Err(InvalidSignature);
        }
        key.verify(self.scheme, message, signature)
            .map_err(|_| InvalidSignature)
    }

    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        self.public_key_alg_id
    }

    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        self.signature_alg_id
    }
}

const fn ecdsa(
    p256: bool,
    hash: SigHash,
    key: AlgorithmIdentifier,
    sig: AlgorithmIdentifier,
) -> Verify {
    Verify {
        scheme: SigScheme::Ecdsa(hash),
        p256,
        public_key_alg_id: key,
        signature_alg_id: sig,
    }
}

const fn rsa(scheme: SigScheme, sig: AlgorithmIdentifier) -> Verify {
    Verify {
        scheme,
        p256: false,
        public_key_alg_id: alg_id::RSA_ENCRYPTION,
        signature_alg_id: sig,
    }
}

static ECDSA_P256_SHA256: Verify = ecdsa(
    true,
    SigHash::Sha256,
    alg_id::ECDSA_P256,
    alg_id::ECDSA_SHA256,
);
static ECDSA_P256_SHA384: Verify = ecdsa(
    true,
    SigHash::Sha384,
    alg_id::ECDSA_P256,
    alg_id::ECDSA_SHA384,
);
static ECDSA_P384_SHA256: Verify = ecdsa(
    false,
    SigHash::Sha256,
    alg_id::ECDSA_P384,
    alg_id::ECDSA_SHA256,
);
static ECDSA_P384_SHA384: Verify = ecdsa(
    false,
    SigHash::Sha384,
    alg_id::ECDSA_P384,
    alg_id::ECDSA_SHA384,
);
static RSA_PKCS1_SHA256: Verify = rsa(
    SigScheme::RsaPkcs1v15(SigHash::Sha256),
    alg_id::RSA_PKCS1_SHA256,
);
static RSA_PKCS1_SHA384: Verify = rsa(
    SigScheme::RsaPkcs1v15(SigHash::Sha384),
    alg_id::RSA_PKCS1_SHA384,
);
static RSA_PKCS1_SHA512: Verify = rsa(
    SigScheme::RsaPkcs1v15(SigHash::Sha512),
    alg_id::RSA_PKCS1_SHA512,
);
static RSA_PSS_SHA256: Verify = rsa(
    SigScheme::RsaPss {
        hash: SigHash::Sha256,
        salt_len: 32,
    },
    alg_id::RSA_PSS_SHA256,
);
static RSA_PSS_SHA384: Verify = rsa(
    SigScheme::RsaPss {
        hash: SigHash::Sha384,
        salt_len: 48,
    },
    alg_id::RSA_PSS_SHA384,
);
static RSA_PSS_SHA512: Verify = rsa(
    SigScheme::RsaPss {
        hash: SigHash::Sha512,
        salt_len: 64,
    },
    alg_id::RSA_PSS_SHA512,
);
static ED25519: Verify = Verify {
    scheme: SigScheme::Ed25519,
    p256: false,
    public_key_alg_id: alg_id::ED25519,
    signature_alg_id: alg_id::ED25519,
};

/// What certificates and handshake signatures may be signed with.
pub(crate) static SUPPORTED_ALGORITHMS: WebPkiSupportedAlgorithms = WebPkiSupportedAlgorithms {
    all: &[
        &ECDSA_P256_SHA256,
        &ECDSA_P256_SHA384,
        &ECDSA_P384_SHA256,
        &ECDSA_P384_SHA384,
        &RSA_PKCS1_SHA256,
        &RSA_PKCS1_SHA384,
        &RSA_PKCS1_SHA512,
        &RSA_PSS_SHA256,
        &RSA_PSS_SHA384,
        &RSA_PSS_SHA512,
        &ED25519,
    ],
    mapping: &[
        (
            SignatureScheme::ECDSA_NISTP384_SHA384,
            &[&ECDSA_P384_SHA384, &ECDSA_P256_SHA384],
        ),
        (
            SignatureScheme::ECDSA_NISTP256_SHA256,
            &[&ECDSA_P256_SHA256, &ECDSA_P384_SHA256],
        ),
        (SignatureScheme::ED25519, &[&ED25519]),
        (SignatureScheme::RSA_PSS_SHA512, &[&RSA_PSS_SHA512]),
        (SignatureScheme::RSA_PSS_SHA384, &[&RSA_PSS_SHA384]),
        (SignatureScheme::RSA_PSS_SHA256, &[&RSA_PSS_SHA256]),
        (SignatureScheme::RSA_PKCS1_SHA512, &[&RSA_PKCS1_SHA512]),
        (SignatureScheme::RSA_PKCS1_SHA384, &[&RSA_PKCS1_SHA384]),
        (SignatureScheme::RSA_PKCS1_SHA256, &[&RSA_PKCS1_SHA256]),
    ],
};

/// Every cipher suite, key exchange group and key type of the provider in a real handshake
/// against OpenSSL's libssl (an independent TLS implementation): our rustls client against a
/// libssl server requiring a client certificate, application data both ways, and the EAP-TLS
/// key material of both ends compared.
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use openssl::asn1::Asn1Time;
    use openssl::bn::BigNum;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::hash::MessageDigest;
    use openssl::nid::Nid;
    use openssl::pkey::{Id, PKey, Private};
    use openssl::rsa::Rsa;
    use openssl::ssl::{Ssl, SslContextBuilder, SslMethod, SslVerifyMode, SslVersion};
    use openssl::x509::store::X509StoreBuilder;
    use openssl::x509::verify::X509VerifyFlags;
    use openssl::x509::{X509, X509Builder, X509NameBuilder};
    use rustls::ClientConnection;
    use rustls::pki_types::{CertificateDer, ServerName};
    use std::io::{Read as _, Write as _};

    use super::super::engine::{OpensslEngine, Progress};
    use super::super::rustls_engine::test_verifier;
    use super::*;

    #[derive(Clone, Copy, Debug)]
    enum KeyType {
        P256,
        P384,
        Rsa2048,
        Ed25519,
    }

    fn generate(kind: KeyType) -> PKey<Private> {
        match kind {
            KeyType::P256 | KeyType::P384 => {
                let nid = match kind {
                    KeyType::P256 => Nid::X9_62_PRIME256V1,
                    _ => Nid::SECP384R1,
                };
                let group = EcGroup::from_curve_name(nid).unwrap();
                PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
            }
            KeyType::Rsa2048 => PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap(),
            KeyType::Ed25519 => PKey::generate_ed25519().unwrap(),
        }
    }

    fn self_signed(key: &PKey<Private>, cn: &str) -> X509 {
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", cn).unwrap();
        let name = name.build();
        let mut b = X509Builder::new().unwrap();
        b.set_version(2).unwrap();
        let serial = BigNum::from_u32(7).unwrap().to_asn1_integer().unwrap();
        b.set_serial_number(&serial).unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::days_from_now(30).unwrap())
            .unwrap();
        let md = match key.id() {
            Id::ED25519 => MessageDigest::null(),
            _ => MessageDigest::sha256(),
        };
        b.sign(key, md).unwrap();
        b.build()
    }

    struct Case {
        version: SslVersion,
        suite: SupportedCipherSuite,
        kx: &'static dyn SupportedKxGroup,
        key: KeyType,
    }

    fn run(case: &Case) {
        let what = format!(
            "{:?} {:?} {:?}",
            case.suite.suite(),
            case.kx.name(),
            case.key
        );
        let server_key = generate(case.key);
        let server_cert = self_signed(&server_key, "server");
        let client_key = generate(case.key);
        let client_cert = self_signed(&client_key, "client");

        // libssl server: our client's certificate is its only anchor.
        let mut b = SslContextBuilder::new(SslMethod::tls()).unwrap();
        b.set_min_proto_version(Some(case.version)).unwrap();
        b.set_max_proto_version(Some(case.version)).unwrap();
        b.set_cipher_list("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384")
            .unwrap();
        b.set_certificate(&server_cert).unwrap();
        b.set_private_key(&server_key).unwrap();
        let mut store = X509StoreBuilder::new().unwrap();
        store.add_cert(client_cert.clone()).unwrap();
        b.set_cert_store(store.build());
        b.verify_param_mut()
            .set_flags(X509VerifyFlags::PARTIAL_CHAIN)
            .unwrap();
        b.set_verify(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT);
        let mut server = OpensslEngine::new(Ssl::new(&b.build()).unwrap(), true).unwrap();

        // Our rustls client, the provider narrowed to this suite and group.
        let mut p = (*provider()).clone();
        p.cipher_suites = vec![case.suite];
        // TLS 1.2 (RFC 8422 §5.1.1): supported_groups also names the curves an ECDSA
        // certificate may use, so the certificate's curve comes second, after the group under
        // test, which the client prefers and libssl (client preference) picks.
        p.kx_groups = match case.version {
            SslVersion::TLS1_2 => {
                let mut g: Vec<&'static dyn SupportedKxGroup> = vec![case.kx];
                g.extend(
                    [
                        &SECP256R1 as &'static dyn SupportedKxGroup,
                        &X25519,
                        &SECP384R1,
                    ]
                    .into_iter()
                    .filter(|o| o.name() != case.kx.name()),
                );
                g
            }
            _ => vec![case.kx],
        };
        let version: &'static rustls::SupportedProtocolVersion = match case.version {
            SslVersion::TLS1_2 => &rustls::version::TLS12,
            _ => &rustls::version::TLS13,
        };
        let anchor = CertificateDer::from(server_cert.to_der().unwrap());
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(p))
            .with_protocol_versions(&[version])
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(test_verifier(&anchor))
            .with_client_auth_cert(
                vec![CertificateDer::from(client_cert.to_der().unwrap())],
                PrivateKeyDer::try_from(client_key.private_key_to_pkcs8().unwrap()).unwrap(),
            )
            .unwrap();
        let name = ServerName::IpAddress(core::net::Ipv4Addr::LOCALHOST.into());
        let mut client = ClientConnection::new(Arc::new(config), name).unwrap();

        let mut server_done = false;
        for _ in 0..8 {
            let mut out = Vec::new();
            while client.wants_write() {
                client.write_tls(&mut out).unwrap();
            }
            server.feed(&out);
            if !server_done {
                server_done = matches!(
                    server.handshake().unwrap_or_else(|e| panic!("{what}: {e}")),
                    Progress::Complete
                );
            }
            let back = server.take_output();
            let mut rd = &back[..];
            while !rd.is_empty() {
                client.read_tls(&mut rd).unwrap();
                client
                    .process_new_packets()
                    .unwrap_or_else(|e| panic!("{what}: {e}"));
            }
            if server_done && !client.is_handshaking() && !client.wants_write() {
                break;
            }
        }
        assert!(
            server_done && !client.is_handshaking(),
            "{what}: incomplete"
        );
        assert_eq!(
            client.negotiated_cipher_suite().map(|s| s.suite()),
            Some(case.suite.suite()),
            "{what}"
        );
        assert_eq!(
            client.negotiated_key_exchange_group().map(|g| g.name()),
            Some(case.kx.name()),
            "{what}"
        );

        // Records both ways.
        client.writer().write_all(b"ping").unwrap();
        let mut out = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut out).unwrap();
        }
        server.feed(&out);
        match server.read_app_data().unwrap() {
            Progress::Data(d) => assert_eq!(d, b"ping", "{what}"),
            other => panic!("{what}: {other:?}"),
        }
        server.write_app_data(b"pong").unwrap();
        let back = server.take_output();
        client.read_tls(&mut &back[..]).unwrap();
        client.process_new_packets().unwrap();
        let mut got = [0u8; 4];
        client.reader().read_exact(&mut got).unwrap();
        assert_eq!(&got, b"pong", "{what}");

        // The EAP-TLS key material agrees (RFC 5216 / RFC 9190 exporters).
        let keys = server.export_keys().unwrap();
        let mut msk = [0u8; 128];
        let (label, context): (&str, Option<&[u8]>) = match case.version {
            SslVersion::TLS1_2 => (super::super::engine::LABEL_TLS12, None),
            _ => (super::super::engine::LABEL_KEY_MATERIAL, Some(&[0x0d])),
        };
        client
            .export_keying_material(&mut msk[..], label.as_bytes(), context)
            .unwrap();
        assert_eq!(&msk[..64], keys.msk.expose(), "{what}");
    }

    #[test]
    fn every_suite_group_and_key_type_against_libssl() {
        let tls13 = [TLS13_AES_128_GCM_SHA256, TLS13_AES_256_GCM_SHA384];
        let kx: [&'static dyn SupportedKxGroup; 3] = [&SECP256R1, &X25519, &SECP384R1];
        let mut n = 0;
        for suite in tls13 {
            for group in kx {
                for key in [
                    KeyType::P256,
                    KeyType::P384,
                    KeyType::Rsa2048,
                    KeyType::Ed25519,
                ] {
                    run(&Case {
                        version: SslVersion::TLS1_3,
                        suite,
                        kx: group,
                        key,
                    });
                    n += 1;
                }
            }
        }
        let tls12 = [
            (TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, KeyType::P256),
            (TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, KeyType::P384),
            (TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, KeyType::Ed25519),
            (TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, KeyType::Rsa2048),
            (TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, KeyType::Rsa2048),
        ];
        for (suite, key) in tls12 {
            for group in kx {
                run(&Case {
                    version: SslVersion::TLS1_2,
                    suite,
                    kx: group,
                    key,
                });
                n += 1;
            }
        }
        assert_eq!(n, 39);
    }

    #[test]
    fn invalid_key_shares_are_refused() {
        let p256 = SECP256R1.start().unwrap();
        // Not on the curve, wrong length, the point at infinity.
        let mut off_curve = p256.pub_key().to_vec();
        off_curve[64] ^= 1;
        for bad in [off_curve, vec![4u8; 10], vec![0u8]] {
            assert!(SECP256R1.start().unwrap().complete(&bad).is_err());
        }
        let p384 = SECP384R1.start().unwrap();
        let mut off_curve = p384.pub_key().to_vec();
        off_curve[96] ^= 1;
        for bad in [off_curve, vec![4u8; 97], vec![0u8]] {
            assert!(SECP384R1.start().unwrap().complete(&bad).is_err());
        }
        // X25519: wrong length, and a small-order point (all-zero shared secret).
        assert!(X25519.start().unwrap().complete(&[9u8; 31]).is_err());
        assert!(X25519.start().unwrap().complete(&[0u8; 32]).is_err());
        // A valid exchange agrees both ways.
        let a = X25519.start().unwrap();
        let b = X25519.start().unwrap();
        let (pa, pb) = (a.pub_key().to_vec(), b.pub_key().to_vec());
        assert_eq!(
            a.complete(&pb).unwrap().secret_bytes(),
            b.complete(&pa).unwrap().secret_bytes()
        );
    }

    /// RFC 8032 §7.1, TEST 2 (one-octet message) through the webpki verification algorithm,
    /// and a flipped bit refused.
    #[test]
    fn ed25519_rfc8032_vector() {
        let h = |s: &str| {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
                .collect::<Vec<u8>>()
        };
        let public = h("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c");
        let sig = h(concat!(
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da",
            "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
        ));
        ED25519.verify_signature(&public, &[0x72], &sig).unwrap();
        assert!(ED25519.verify_signature(&public, &[0x73], &sig).is_err());
    }
}
