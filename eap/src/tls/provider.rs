//! A rustls [`CryptoProvider`] whose primitives are OpenSSL's, reached through
//! `kmp_api::crypto` where it has them (SHA-2 and HMAC over `openssl::sha`, AES-GCM, P-256
//! ECDH) and through the `openssl` crate's low-level key types otherwise (ECDSA on `EC_KEY`,
//! RSA, Ed25519, X25519).
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

use kmp_api::crypto::ecc::{P256KeyPair, P256PublicKey};
use kmp_api::crypto::gcm::{gcm_open, gcm_seal};
use kmp_api::crypto::hmac::{hmac_sha256_parts, hmac_sha384_parts};
use kmp_api::rng::RngHandle;
use openssl::bn::BigNumContext;
use openssl::derive::Deriver;
use openssl::ec::{EcGroup, EcKey, EcPoint};
use openssl::ecdsa::EcdsaSig;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Private, Public};
use openssl::rsa::{Padding, Rsa};
use openssl::sign::{RsaPssSaltlen, Signer as OsslSigner, Verifier};
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

#[derive(Clone)]
enum ShaState {
    Sha256(openssl::sha::Sha256),
    Sha384(openssl::sha::Sha384),
}

impl ShaState {
    fn new(alg: Sha) -> ShaState {
        match alg {
            Sha::Sha256 => ShaState::Sha256(openssl::sha::Sha256::new()),
            Sha::Sha384 => ShaState::Sha384(openssl::sha::Sha384::new()),
        }
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            ShaState::Sha256(h) => h.update(data),
            ShaState::Sha384(h) => h.update(data),
        }
    }

    fn finish(self) -> hash::Output {
        match self {
            ShaState::Sha256(h) => hash::Output::new(&h.finish()),
            ShaState::Sha384(h) => hash::Output::new(&h.finish()),
        }
    }
}

struct ShaHash(Sha);

static SHA256: ShaHash = ShaHash(Sha::Sha256);
static SHA384: ShaHash = ShaHash(Sha::Sha384);

impl hash::Hash for ShaHash {
    fn start(&self) -> Box<dyn hash::Context> {
        Box::new(ShaContext(ShaState::new(self.0)))
    }

    fn hash(&self, data: &[u8]) -> hash::Output {
        let mut s = ShaState::new(self.0);
        s.update(data);
        s.finish()
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

struct ShaContext(ShaState);

impl hash::Context for ShaContext {
    fn fork_finish(&self) -> hash::Output {
        self.0.clone().finish()
    }

    fn fork(&self) -> Box<dyn hash::Context> {
        Box::new(ShaContext(self.0.clone()))
    }

    fn finish(self: Box<Self>) -> hash::Output {
        self.0.finish()
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

/// P-256 ECDHE through `kmp_api::crypto::ecc` (OpenSSL's constant-time P-256 on `EC_KEY`).
#[derive(Debug)]
struct Secp256r1;

static SECP256R1: Secp256r1 = Secp256r1;

impl SupportedKxGroup for Secp256r1 {
    fn start(&self) -> Result<Box<dyn ActiveKeyExchange>, Error> {
        let pair = P256KeyPair::generate(&RngHandle::os())
            .map_err(|e| Error::General(format!("P-256 key generation: {e}")))?;
        let public = pair.public_key().to_uncompressed();
        Ok(Box::new(P256Exchange { pair, public }))
    }

    fn name(&self) -> NamedGroup {
        NamedGroup::secp256r1
    }
}

struct P256Exchange {
    pair: P256KeyPair,
    public: [u8; 65],
}

impl ActiveKeyExchange for P256Exchange {
    fn complete(self: Box<Self>, peer_pub_key: &[u8]) -> Result<SharedSecret, Error> {
        let peer = P256PublicKey::from_uncompressed(peer_pub_key)
            .map_err(|_| Error::from(rustls::PeerMisbehaved::InvalidKeyShare))?;
        let z = self
            .pair
            .diffie_hellman(&peer)
            .map_err(|_| Error::from(rustls::PeerMisbehaved::InvalidKeyShare))?;
        Ok(SharedSecret::from(&z.expose()[..]))
    }

    fn pub_key(&self) -> &[u8] {
        &self.public
    }

    fn group(&self) -> NamedGroup {
        NamedGroup::secp256r1
    }
}

/// P-384 ECDHE on OpenSSL's `EC_KEY` (offered last; TLS 1.2 servers also need it listed to
/// use a P-384 certificate, RFC 8422 §5.1.1).
#[derive(Debug)]
struct Secp384r1;

static SECP384R1: Secp384r1 = Secp384r1;

impl SupportedKxGroup for Secp384r1 {
    fn start(&self) -> Result<Box<dyn ActiveKeyExchange>, Error> {
        let fail = |e: openssl::error::ErrorStack| Error::General(format!("P-384 key: {e}"));
        let group =
            ec_group(Nid::SECP384R1).ok_or_else(|| Error::General("P-384 unavailable".into()))?;
        let key = EcKey::generate(group).map_err(fail)?;
        let mut ctx = BigNumContext::new().map_err(fail)?;
        let public = key
            .public_key()
            .to_bytes(
                group,
                openssl::ec::PointConversionForm::UNCOMPRESSED,
                &mut ctx,
            )
            .map_err(fail)?;
        Ok(Box::new(P384Exchange { key, public }))
    }

    fn name(&self) -> NamedGroup {
        NamedGroup::secp384r1
    }
}

struct P384Exchange {
    key: EcKey<Private>,
    public: Vec<u8>,
}

impl ActiveKeyExchange for P384Exchange {
    fn complete(self: Box<Self>, peer_pub_key: &[u8]) -> Result<SharedSecret, Error> {
        let invalid = || Error::from(rustls::PeerMisbehaved::InvalidKeyShare);
        let group = ec_group(Nid::SECP384R1).ok_or_else(invalid)?;
        // Uncompressed points only (RFC 8446 §4.2.8.2); `from_bytes` checks the curve.
        if peer_pub_key.len() != 97 || peer_pub_key[0] != 4 {
            return Err(invalid());
        }
        let mut ctx = BigNumContext::new_secure().map_err(|_| invalid())?;
        let peer = EcPoint::from_bytes(group, peer_pub_key, &mut ctx).map_err(|_| invalid())?;
        let mut shared = EcPoint::new(group).map_err(|_| invalid())?;
        shared
            .mul2(group, &peer, self.key.private_key(), &mut ctx)
            .map_err(|_| invalid())?;
        if shared.is_infinity(group) {
            return Err(invalid());
        }
        let mut x = openssl::bn::BigNum::new_secure().map_err(|_| invalid())?;
        let mut y = openssl::bn::BigNum::new().map_err(|_| invalid())?;
        shared
            .affine_coordinates(group, &mut x, &mut y, &mut ctx)
            .map_err(|_| invalid())?;
        let z = Zeroizing::new(x.to_vec_padded(48).map_err(|_| invalid())?);
        x.clear();
        Ok(SharedSecret::from(&z[..]))
    }

    fn pub_key(&self) -> &[u8] {
        &self.public
    }

    fn group(&self) -> NamedGroup {
        NamedGroup::secp384r1
    }
}

/// X25519 (RFC 7748) through OpenSSL's EVP interface.
#[derive(Debug)]
struct X25519Group;

static X25519: X25519Group = X25519Group;

impl SupportedKxGroup for X25519Group {
    fn start(&self) -> Result<Box<dyn ActiveKeyExchange>, Error> {
        let key = PKey::generate_x25519()
            .map_err(|e| Error::General(format!("X25519 key generation: {e}")))?;
        let public = key
            .raw_public_key()
            .map_err(|e| Error::General(format!("X25519 public key: {e}")))?;
        Ok(Box::new(X25519Exchange { key, public }))
    }

    fn name(&self) -> NamedGroup {
        NamedGroup::X25519
    }
}

struct X25519Exchange {
    key: PKey<Private>,
    public: Vec<u8>,
}

impl ActiveKeyExchange for X25519Exchange {
    fn complete(self: Box<Self>, peer_pub_key: &[u8]) -> Result<SharedSecret, Error> {
        let invalid = || Error::from(rustls::PeerMisbehaved::InvalidKeyShare);
        if peer_pub_key.len() != 32 {
            return Err(invalid());
        }
        let peer =
            PKey::public_key_from_raw_bytes(peer_pub_key, Id::X25519).map_err(|_| invalid())?;
        let mut deriver = Deriver::new(&self.key).map_err(|_| invalid())?;
        deriver.set_peer(&peer).map_err(|_| invalid())?;
        // OpenSSL refuses an all-zero result (a small-order peer point), RFC 7748 §6.1.
        let z = Zeroizing::new(deriver.derive_to_vec().map_err(|_| invalid())?);
        Ok(SharedSecret::from(&z[..]))
    }

    fn pub_key(&self) -> &[u8] {
        &self.public
    }

    fn group(&self) -> NamedGroup {
        NamedGroup::X25519
    }
}

// ---------------------------------------------------------------------------------------------
// Randomness and private keys

#[derive(Debug)]
struct Random;

impl SecureRandom for Random {
    fn fill(&self, buf: &mut [u8]) -> Result<(), GetRandomFailed> {
        openssl::rand::rand_bytes(buf).map_err(|_| GetRandomFailed)
    }
}

#[derive(Debug)]
struct Keys;

impl KeyProvider for Keys {
    fn load_private_key(
        &self,
        key_der: PrivateKeyDer<'static>,
    ) -> Result<Arc<dyn SigningKey>, Error> {
        let key = match &key_der {
            PrivateKeyDer::Pkcs8(k) => PKey::private_key_from_pkcs8(k.secret_pkcs8_der()),
            PrivateKeyDer::Sec1(k) => {
                EcKey::private_key_from_der(k.secret_sec1_der()).and_then(PKey::from_ec_key)
            }
            PrivateKeyDer::Pkcs1(k) => {
                Rsa::private_key_from_der(k.secret_pkcs1_der()).and_then(PKey::from_rsa)
            }
            _ => return Err(Error::General("unsupported private key encoding".into())),
        }
        .map_err(|e| Error::General(format!("private key: {e}")))?;
        Ok(Arc::new(OurSigningKey::new(&key)?))
    }
}

/// Our private key as rustls signs with it.
#[derive(Debug, Clone)]
pub(crate) enum OurSigningKey {
    /// ECDSA on `EC_KEY` (no EVP per signature), P-256 or P-384.
    Ec {
        /// The key, shared by all signers.
        key: Arc<EcKeyBox>,
        /// The one scheme this curve signs with.
        scheme: SignatureScheme,
    },
    /// RSA, PSS or PKCS#1 v1.5.
    Rsa(Arc<PKeyBox>),
    /// Ed25519.
    Ed25519(Arc<PKeyBox>),
}

/// An `EC_KEY` private key; `Debug` shows nothing of it.
pub(crate) struct EcKeyBox(EcKey<Private>);

impl core::fmt::Debug for EcKeyBox {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("EcKey(<secret>)")
    }
}

/// An EVP private key; `Debug` shows nothing of it.
pub(crate) struct PKeyBox(PKey<Private>);

impl core::fmt::Debug for PKeyBox {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("PKey(<secret>)")
    }
}

impl OurSigningKey {
    pub(crate) fn new(key: &PKey<Private>) -> Result<OurSigningKey, Error> {
        match key.id() {
            Id::EC => {
                let ec = key
                    .ec_key()
                    .map_err(|e| Error::General(format!("EC key: {e}")))?;
                let scheme = match ec.group().curve_name() {
                    Some(Nid::X9_62_PRIME256V1) => SignatureScheme::ECDSA_NISTP256_SHA256,
                    Some(Nid::SECP384R1) => SignatureScheme::ECDSA_NISTP384_SHA384,
                    _ => {
                        return Err(Error::General("EC keys must be on P-256 or P-384".into()));
                    }
                };
                Ok(OurSigningKey::Ec {
                    key: Arc::new(EcKeyBox(ec)),
                    scheme,
                })
            }
            Id::RSA => {
                if key.bits() < 2048 {
                    return Err(Error::General(
                        "RSA keys must have at least 2048 bits".into(),
                    ));
                }
                Ok(OurSigningKey::Rsa(Arc::new(PKeyBox(key.clone()))))
            }
            Id::ED25519 => Ok(OurSigningKey::Ed25519(Arc::new(PKeyBox(key.clone())))),
            _ => Err(Error::General(
                "the private key must be ECDSA (P-256, P-384), RSA or Ed25519".into(),
            )),
        }
    }
}

impl SigningKey for OurSigningKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        let scheme = match self {
            OurSigningKey::Ec { scheme, .. } => offered.contains(scheme).then_some(*scheme)?,
            OurSigningKey::Rsa(_) => [
                SignatureScheme::RSA_PSS_SHA256,
                SignatureScheme::RSA_PSS_SHA384,
                SignatureScheme::RSA_PSS_SHA512,
                SignatureScheme::RSA_PKCS1_SHA256,
                SignatureScheme::RSA_PKCS1_SHA384,
                SignatureScheme::RSA_PKCS1_SHA512,
            ]
            .into_iter()
            .find(|s| offered.contains(s))?,
            OurSigningKey::Ed25519(_) => offered
                .contains(&SignatureScheme::ED25519)
                .then_some(SignatureScheme::ED25519)?,
        };
        Some(Box::new(OurSigner {
            key: self.clone(),
            scheme,
        }))
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        match self {
            OurSigningKey::Ec { .. } => SignatureAlgorithm::ECDSA,
            OurSigningKey::Rsa(_) => SignatureAlgorithm::RSA,
            OurSigningKey::Ed25519(_) => SignatureAlgorithm::ED25519,
        }
    }
}

#[derive(Debug)]
struct OurSigner {
    key: OurSigningKey,
    scheme: SignatureScheme,
}

fn scheme_digest(scheme: SignatureScheme) -> MessageDigest {
    match scheme {
        SignatureScheme::ECDSA_NISTP384_SHA384
        | SignatureScheme::RSA_PSS_SHA384
        | SignatureScheme::RSA_PKCS1_SHA384 => MessageDigest::sha384(),
        SignatureScheme::RSA_PSS_SHA512 | SignatureScheme::RSA_PKCS1_SHA512 => {
            MessageDigest::sha512()
        }
        _ => MessageDigest::sha256(),
    }
}

fn is_pss(scheme: SignatureScheme) -> bool {
    matches!(
        scheme,
        SignatureScheme::RSA_PSS_SHA256
            | SignatureScheme::RSA_PSS_SHA384
            | SignatureScheme::RSA_PSS_SHA512
    )
}

impl Signer for OurSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        let fail = |e: openssl::error::ErrorStack| Error::General(format!("signing: {e}"));
        match &self.key {
            OurSigningKey::Ec { key, scheme } => {
                let digest = match *scheme {
                    SignatureScheme::ECDSA_NISTP384_SHA384 => {
                        openssl::sha::sha384(message).to_vec()
                    }
                    _ => openssl::sha::sha256(message).to_vec(),
                };
                let sig = EcdsaSig::sign(&digest, &key.0).map_err(fail)?;
                sig.to_der().map_err(fail)
            }
            OurSigningKey::Rsa(key) => {
                let md = scheme_digest(self.scheme);
                let mut signer = OsslSigner::new(md, &key.0).map_err(fail)?;
                if is_pss(self.scheme) {
                    signer.set_rsa_padding(Padding::PKCS1_PSS).map_err(fail)?;
                    signer
                        .set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH)
                        .map_err(fail)?;
                    signer.set_rsa_mgf1_md(md).map_err(fail)?;
                } else {
                    signer.set_rsa_padding(Padding::PKCS1).map_err(fail)?;
                }
                signer.sign_oneshot_to_vec(message).map_err(fail)
            }
            OurSigningKey::Ed25519(key) => {
                let mut signer = OsslSigner::new_without_digest(&key.0).map_err(fail)?;
                signer.sign_oneshot_to_vec(message).map_err(fail)
            }
        }
    }

    fn scheme(&self) -> SignatureScheme {
        self.scheme
    }
}

// ---------------------------------------------------------------------------------------------
// Signature verification (certificates and handshake signatures)

fn ec_group(curve: Nid) -> Option<&'static EcGroup> {
    static P256: OnceLock<Option<EcGroup>> = OnceLock::new();
    static P384: OnceLock<Option<EcGroup>> = OnceLock::new();
    let cell = match curve {
        Nid::X9_62_PRIME256V1 => &P256,
        Nid::SECP384R1 => &P384,
        _ => return None,
    };
    cell.get_or_init(|| EcGroup::from_curve_name(curve).ok())
        .as_ref()
}

/// ECDSA on `EC_KEY`: the public key is the SEC 1 point of the subjectPublicKey, the
/// signature a DER `ECDSA-Sig-Value`; OpenSSL truncates a digest longer than the order.
#[derive(Debug)]
struct EcdsaVerify {
    curve: Nid,
    sha384: bool,
    public_key_alg_id: AlgorithmIdentifier,
    signature_alg_id: AlgorithmIdentifier,
}

impl SignatureVerificationAlgorithm for EcdsaVerify {
    fn verify_signature(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), InvalidSignature> {
        let group = ec_group(self.curve).ok_or(InvalidSignature)?;
        let mut ctx = BigNumContext::new().map_err(|_| InvalidSignature)?;
        let point =
            EcPoint::from_bytes(group, public_key, &mut ctx).map_err(|_| InvalidSignature)?;
        let key: EcKey<Public> =
            EcKey::from_public_key(group, &point).map_err(|_| InvalidSignature)?;
        let sig = EcdsaSig::from_der(signature).map_err(|_| InvalidSignature)?;
        let digest = if self.sha384 {
            openssl::sha::sha384(message).to_vec()
        } else {
            openssl::sha::sha256(message).to_vec()
        };
        match sig.verify(&digest, &key) {
            Ok(true) => Ok(()),
            _ => Err(InvalidSignature),
        }
    }

    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        self.public_key_alg_id
    }

    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        self.signature_alg_id
    }
}

/// RSA (2048 to 8192 bits): the public key is the PKCS#1 `RSAPublicKey` of the
/// subjectPublicKey.
#[derive(Debug)]
struct RsaVerify {
    scheme: SignatureScheme,
    signature_alg_id: AlgorithmIdentifier,
}

impl SignatureVerificationAlgorithm for RsaVerify {
    fn verify_signature(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), InvalidSignature> {
        let rsa = Rsa::public_key_from_der_pkcs1(public_key).map_err(|_| InvalidSignature)?;
        if !(2048..=8192).contains(&rsa.size().saturating_mul(8)) {
            return Err(InvalidSignature);
        }
        let key = PKey::from_rsa(rsa).map_err(|_| InvalidSignature)?;
        let md = scheme_digest(self.scheme);
        let mut v = Verifier::new(md, &key).map_err(|_| InvalidSignature)?;
        if is_pss(self.scheme) {
            v.set_rsa_padding(Padding::PKCS1_PSS)
                .and_then(|()| v.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH))
                .and_then(|()| v.set_rsa_mgf1_md(md))
                .map_err(|_| InvalidSignature)?;
        } else {
            v.set_rsa_padding(Padding::PKCS1)
                .map_err(|_| InvalidSignature)?;
        }
        match v.verify_oneshot(signature, message) {
            Ok(true) => Ok(()),
            _ => Err(InvalidSignature),
        }
    }

    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        alg_id::RSA_ENCRYPTION
    }

    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        self.signature_alg_id
    }
}

/// Ed25519 (RFC 8032): the public key is the 32-octet subjectPublicKey.
#[derive(Debug)]
struct Ed25519Verify;

impl SignatureVerificationAlgorithm for Ed25519Verify {
    fn verify_signature(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), InvalidSignature> {
        let key = PKey::public_key_from_raw_bytes(public_key, Id::ED25519)
            .map_err(|_| InvalidSignature)?;
        let mut v = Verifier::new_without_digest(&key).map_err(|_| InvalidSignature)?;
        match v.verify_oneshot(signature, message) {
            Ok(true) => Ok(()),
            _ => Err(InvalidSignature),
        }
    }

    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        alg_id::ED25519
    }

    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        alg_id::ED25519
    }
}

static ECDSA_P256_SHA256: EcdsaVerify = EcdsaVerify {
    curve: Nid::X9_62_PRIME256V1,
    sha384: false,
    public_key_alg_id: alg_id::ECDSA_P256,
    signature_alg_id: alg_id::ECDSA_SHA256,
};
static ECDSA_P256_SHA384: EcdsaVerify = EcdsaVerify {
    curve: Nid::X9_62_PRIME256V1,
    sha384: true,
    public_key_alg_id: alg_id::ECDSA_P256,
    signature_alg_id: alg_id::ECDSA_SHA384,
};
static ECDSA_P384_SHA256: EcdsaVerify = EcdsaVerify {
    curve: Nid::SECP384R1,
    sha384: false,
    public_key_alg_id: alg_id::ECDSA_P384,
    signature_alg_id: alg_id::ECDSA_SHA256,
};
static ECDSA_P384_SHA384: EcdsaVerify = EcdsaVerify {
    curve: Nid::SECP384R1,
    sha384: true,
    public_key_alg_id: alg_id::ECDSA_P384,
    signature_alg_id: alg_id::ECDSA_SHA384,
};
static RSA_PKCS1_SHA256: RsaVerify = RsaVerify {
    scheme: SignatureScheme::RSA_PKCS1_SHA256,
    signature_alg_id: alg_id::RSA_PKCS1_SHA256,
};
static RSA_PKCS1_SHA384: RsaVerify = RsaVerify {
    scheme: SignatureScheme::RSA_PKCS1_SHA384,
    signature_alg_id: alg_id::RSA_PKCS1_SHA384,
};
static RSA_PKCS1_SHA512: RsaVerify = RsaVerify {
    scheme: SignatureScheme::RSA_PKCS1_SHA512,
    signature_alg_id: alg_id::RSA_PKCS1_SHA512,
};
static RSA_PSS_SHA256: RsaVerify = RsaVerify {
    scheme: SignatureScheme::RSA_PSS_SHA256,
    signature_alg_id: alg_id::RSA_PSS_SHA256,
};
static RSA_PSS_SHA384: RsaVerify = RsaVerify {
    scheme: SignatureScheme::RSA_PSS_SHA384,
    signature_alg_id: alg_id::RSA_PSS_SHA384,
};
static RSA_PSS_SHA512: RsaVerify = RsaVerify {
    scheme: SignatureScheme::RSA_PSS_SHA512,
    signature_alg_id: alg_id::RSA_PSS_SHA512,
};
static ED25519: Ed25519Verify = Ed25519Verify;

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
