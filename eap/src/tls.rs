//! EAP-TLS (RFC 5216 with TLS 1.2, RFC 9190 with TLS 1.3) through OpenSSL, sans-IO.
//!
//! [`TlsPeer`] and [`TlsServer`] turn the type-data of one EAP-TLS message (the octets after the
//! EAP Type 13) into the type-data of the next. The EAP layer around them owns Identifiers,
//! retransmission, EAP-Success and EAP-Failure; this module owns the Flags octet, fragmentation
//! (RFC 5216 §2.1.5), the TLS handshake over memory buffers, the RFC 9190 §2.5 protected success
//! indication, and the keys (RFC 5216 §2.3, RFC 9190 §2.3).
//!
//! The conversation, server side first:
//!
//! ```text
//! server                                 peer
//! start()           --- S ------------>  process() -> Send(ClientHello)
//! process() -> Send(ServerHello…)  <----
//!                   ------------------>  process() -> Send(Certificate…Finished)
//! process() -> Send(Finished | 0x00) <--              (0x00: TLS 1.3 only)
//!                   ------------------>  process() -> Done { send: ack, keys }
//! process() -> Done { keys }  <--------  ack
//! EAP-Success
//! ```
//!
//! Every message longer than the configured fragment size goes out in fragments, each answered
//! by an acknowledgement (type-data `00`); both sides handle that themselves and return the
//! next fragment or acknowledgement as [`Step::Send`].
//!
//! Both sides always authenticate each other with certificates: the server requires a client
//! certificate, and each side checks the other's chain against its configured trust anchors only
//! (never a system store). No session resumption (no tickets, no session cache): every
//! authentication is a full handshake and yields fresh keys.

mod engine;
pub mod fragment;
mod method;
mod provider;
mod rustls_engine;

use std::sync::Arc;
use std::time::SystemTime;

use kmp_api::crypto::x509::Certificate;
use kmp_api::session::SecretBytes;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{
    Ssl, SslContext, SslContextBuilder, SslMethod, SslOptions, SslSessionCacheMode, SslVerifyMode,
    SslVersion,
};
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::X509VerifyFlags;
use openssl::x509::{X509, X509VerifyResult};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use self::engine::{Engine, OpensslEngine, Progress, lib_err};
use self::fragment::{Fragment, Outbox, Reassembly};
use self::rustls_engine::RustlsSide;

pub use self::engine::EAP_TYPE_TLS;

/// Default largest type-data of one EAP-TLS message, in octets (flags, TLS Message Length and
/// TLS data). With the EAP header and Type that is a 1005-octet EAP packet: small enough that an
/// 802.1X or PANA PDU stays near 1 KiB, which MPX then splits into 802.15.4 frames.
pub const DEFAULT_FRAGMENT_SIZE: usize = 1000;

/// Smallest fragment size accepted: any TLS alert (24 octets encrypted in TLS 1.3) still fits
/// in one message.
pub const MIN_FRAGMENT_SIZE: usize = 64;

/// Largest fragment size accepted (the EAP Length field is 16 bits).
pub const MAX_FRAGMENT_SIZE: usize = 65_000;

/// Default limit of one reassembled TLS message (flight): 64 KiB, far above a flight with a
/// few certificates, far below what a flood of fragments could otherwise pin in memory.
pub const DEFAULT_MAX_MESSAGE_LEN: usize = 64 * 1024;

/// The TLS 1.3 protected success indication, RFC 9190 §2.5: one octet of application data.
pub const SUCCESS_INDICATION: [u8; 1] = [0x00];

/// Why EAP-TLS failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The configuration is unusable.
    #[error("EAP-TLS configuration: {0}")]
    Config(String),
    /// The type-data does not parse or breaks the fragmentation rules.
    #[error("malformed EAP-TLS message: {0}")]
    Malformed(&'static str),
    /// A TLS Message Length (or the data received without one) above the reassembly limit.
    #[error("TLS message of {length} octets exceeds the limit of {max}")]
    MessageTooLong {
        /// The announced (or accumulated) length.
        length: usize,
        /// The configured limit.
        max: usize,
    },
    /// The fragments disagree with the announced TLS Message Length.
    #[error("TLS Message Length {announced:?} inconsistent with {got}")]
    LengthMismatch {
        /// The length announced by the first fragment, if any.
        announced: Option<u32>,
        /// The length that came (a different L, or the data received so far).
        got: usize,
    },
    /// A message that does not fit the state of the conversation.
    #[error("unexpected EAP-TLS message: expected {expected}, got {got}")]
    UnexpectedMessage {
        /// What this side waited for.
        expected: &'static str,
        /// What came.
        got: &'static str,
    },
    /// The other side's certificate chain was rejected (OpenSSL's reason).
    #[error("certificate rejected: {0}")]
    Certificate(String),
    /// The other side's certificate does not name the expected identity.
    #[error("the certificate does not name the expected peer")]
    PeerIdentity,
    /// The TLS handshake failed (a TLS alert sent or received, a decoding error, …).
    #[error("TLS handshake failed: {0}")]
    Handshake(String),
    /// TLS 1.3: something other than the one-octet 0x00 came as application data (RFC 9190
    /// §2.5).
    #[error("TLS 1.3: application data {0:02x?} is not the success indication 00")]
    SuccessIndication(Vec<u8>),
    /// Exporting the keys failed.
    #[error("key export failed: {0}")]
    KeyExport(String),
    /// OpenSSL failed outside the handshake.
    #[error("openssl: {0}")]
    Library(String),
    /// The method already finished (succeeded or failed); it takes no more messages.
    #[error("EAP-TLS method already finished")]
    Finished,
}

/// Which TLS versions may be negotiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsVersions {
    /// TLS 1.2 only (RFC 5216).
    Tls12,
    /// TLS 1.3 only (RFC 9190).
    Tls13,
    /// TLS 1.2 or 1.3; 1.3 when both sides can.
    #[default]
    Both,
}

/// Which TLS implementation runs the handshake (DECISIONS E12). Both keep every cryptographic
/// operation in OpenSSL; they differ in the protocol code around it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsEngine {
    /// rustls's state machine and webpki's path validation, with OpenSSL's primitives (a
    /// provider over `kmp_api::crypto`). About a third of OpenSSL 3.0's CPU per handshake.
    /// TLS 1.2 with ECDHE and AES-GCM only, TLS 1.3 with AES-GCM.
    #[default]
    Rustls,
    /// OpenSSL's libssl: also ChaCha20-Poly1305 suites in TLS 1.2, and OpenSSL's X.509
    /// verification (for deployments that must use it).
    OpenSsl,
}

/// The TLS version a handshake used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersion {
    /// TLS 1.2: keys by RFC 5216 §2.3.
    Tls12,
    /// TLS 1.3: keys by RFC 9190 §2.3.
    Tls13,
}

/// The keys of a successful EAP-TLS authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsKeys {
    /// The version the handshake used.
    pub version: TlsVersion,
    /// MSK: Key_Material[0..64].
    pub msk: SecretBytes,
    /// EMSK: Key_Material[64..128].
    pub emsk: SecretBytes,
    /// Session-Id (65 octets): 0x0D ‖ client.random ‖ server.random for TLS 1.2,
    /// 0x0D ‖ Method-Id for TLS 1.3.
    pub session_id: Vec<u8>,
}

/// A sink for TLS secrets in the NSS key log format (`CLIENT_RANDOM …`, `CLIENT_HANDSHAKE_…`),
/// for decrypting captures in Wireshark. Never set in production.
pub type KeyLog = Arc<dyn Fn(&str) + Send + Sync>;

/// Our certificate chain and private key.
#[derive(Clone)]
pub struct Credentials {
    chain: Vec<Certificate>,
    key: PKey<Private>,
}

impl core::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Credentials")
            .field("chain", &self.chain)
            .field("key", &"<secret>")
            .finish()
    }
}

impl Credentials {
    /// Our end-entity certificate followed by intermediates (PEM, in that order) and its
    /// private key (PEM, PKCS#8 or traditional). The key must be the certificate's.
    pub fn from_pem(chain_pem: &[u8], key_pem: &[u8]) -> Result<Credentials, TlsError> {
        let chain = Certificate::all_from_pem(chain_pem)
            .map_err(|e| TlsError::Config(format!("certificate chain: {e}")))?;
        if chain.is_empty() {
            return Err(TlsError::Config("certificate chain: no certificate".into()));
        }
        let key = PKey::private_key_from_pem(key_pem)
            .map_err(|e| TlsError::Config(format!("private key: {e}")))?;
        let leaf = to_x509(&chain[0])?;
        let public = leaf.public_key().map_err(lib_err)?;
        if !public.public_eq(&key) {
            return Err(TlsError::Config(
                "the certificate's public key is not the private key's".into(),
            ));
        }
        Ok(Credentials { chain, key })
    }

    /// The chain, end entity first.
    pub fn chain(&self) -> &[Certificate] {
        &self.chain
    }
}

/// Configuration of one side of EAP-TLS.
#[derive(Clone)]
pub struct TlsConfig {
    /// Our chain and key. The server needs them; a peer without them sends an empty
    /// Certificate, which our server (and any RFC 5216 server) rejects.
    pub credentials: Option<Credentials>,
    /// The certificates the other side's chain must end at. Nothing else is trusted.
    pub trust_anchors: Vec<Certificate>,
    /// Versions allowed.
    pub versions: TlsVersions,
    /// Largest type-data per EAP-TLS message; longer TLS messages are fragmented.
    pub fragment_size: usize,
    /// Largest TLS message (flight) accepted from the other side.
    pub max_message_len: usize,
    /// If set, the other side's end-entity certificate must carry this name: a subjectAltName
    /// dNSName (ASCII case-insensitive), URI or rfc822Name equal to it, or a subject commonName
    /// equal to it.
    pub expected_peer_name: Option<String>,
    /// The time certificates are checked at; `None`: OpenSSL reads the system clock. A
    /// simulation on virtual time sets it.
    pub validation_time: Option<SystemTime>,
    /// Where to write TLS secrets for debugging; see [`KeyLog`].
    pub key_log: Option<KeyLog>,
    /// The TLS implementation.
    pub engine: TlsEngine,
}

impl core::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("credentials", &self.credentials)
            .field("trust_anchors", &self.trust_anchors)
            .field("versions", &self.versions)
            .field("fragment_size", &self.fragment_size)
            .field("max_message_len", &self.max_message_len)
            .field("expected_peer_name", &self.expected_peer_name)
            .field("validation_time", &self.validation_time)
            .field("key_log", &self.key_log.is_some())
            .field("engine", &self.engine)
            .finish()
    }
}

impl TlsConfig {
    /// Our chain and key, and the trust anchors, all PEM; the other settings at their defaults
    /// (both versions, [`DEFAULT_FRAGMENT_SIZE`], [`DEFAULT_MAX_MESSAGE_LEN`], no name check,
    /// system clock).
    pub fn from_pem(
        chain_pem: &[u8],
        key_pem: &[u8],
        trust_anchors_pem: &[u8],
    ) -> Result<TlsConfig, TlsError> {
        let mut config = TlsConfig::without_credentials(trust_anchors_pem)?;
        config.credentials = Some(Credentials::from_pem(chain_pem, key_pem)?);
        Ok(config)
    }

    /// A configuration with trust anchors (PEM) only: a peer that has no certificate.
    pub fn without_credentials(trust_anchors_pem: &[u8]) -> Result<TlsConfig, TlsError> {
        let trust_anchors = Certificate::all_from_pem(trust_anchors_pem)
            .map_err(|e| TlsError::Config(format!("trust anchors: {e}")))?;
        Ok(TlsConfig {
            credentials: None,
            trust_anchors,
            versions: TlsVersions::Both,
            fragment_size: DEFAULT_FRAGMENT_SIZE,
            max_message_len: DEFAULT_MAX_MESSAGE_LEN,
            expected_peer_name: None,
            validation_time: None,
            key_log: None,
            engine: TlsEngine::default(),
        })
    }

    fn check(&self) -> Result<(), TlsError> {
        if !(MIN_FRAGMENT_SIZE..=MAX_FRAGMENT_SIZE).contains(&self.fragment_size) {
            return Err(TlsError::Config(format!(
                "fragment size {} outside {MIN_FRAGMENT_SIZE}..={MAX_FRAGMENT_SIZE}",
                self.fragment_size
            )));
        }
        if self.max_message_len == 0 || u32::try_from(self.max_message_len).is_err() {
            return Err(TlsError::Config(format!(
                "maximum message length {} outside 1..2^32",
                self.max_message_len
            )));
        }
        if self.trust_anchors.is_empty() {
            return Err(TlsError::Config("no trust anchors".into()));
        }
        Ok(())
    }

    fn build(&self, server: bool) -> Result<SslContext, TlsError> {
        self.check()?;
        let mut b = SslContextBuilder::new(SslMethod::tls()).map_err(lib_err)?;
        let (min, max) = match self.versions {
            TlsVersions::Tls12 => (SslVersion::TLS1_2, SslVersion::TLS1_2),
            TlsVersions::Tls13 => (SslVersion::TLS1_3, SslVersion::TLS1_3),
            TlsVersions::Both => (SslVersion::TLS1_2, SslVersion::TLS1_3),
        };
        b.set_min_proto_version(Some(min)).map_err(lib_err)?;
        b.set_max_proto_version(Some(max)).map_err(lib_err)?;
        // TLS 1.2: forward-secret AEAD suites only.
        b.set_cipher_list(
            "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:\
             ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:\
             ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305",
        )
        .map_err(lib_err)?;
        b.set_options(SslOptions::NO_TICKET | SslOptions::NO_RENEGOTIATION);
        // RFC 8446 Appendix D.4 compatibility mode (a fake session ID and ChangeCipherSpec
        // records) helps only across TCP middleboxes; over 802.15.4 it costs ~40 octets a side.
        b.clear_options(SslOptions::ENABLE_MIDDLEBOX_COMPAT);
        b.set_session_cache_mode(SslSessionCacheMode::OFF);
        if server {
            b.set_num_tickets(0).map_err(lib_err)?;
        }

        match &self.credentials {
            Some(creds) => {
                let mut certs = creds.chain.iter();
                if let Some(leaf) = certs.next() {
                    let leaf = to_x509(leaf)?;
                    b.set_certificate(&leaf).map_err(lib_err)?;
                }
                for c in certs {
                    b.add_extra_chain_cert(to_x509(c)?).map_err(lib_err)?;
                }
                b.set_private_key(&creds.key).map_err(lib_err)?;
                b.check_private_key()
                    .map_err(|e| TlsError::Config(format!("private key: {e}")))?;
            }
            None if server => {
                return Err(TlsError::Config(
                    "the server needs a certificate and key".into(),
                ));
            }
            None => {}
        }

        let mut store = X509StoreBuilder::new().map_err(lib_err)?;
        for anchor in &self.trust_anchors {
            store.add_cert(to_x509(anchor)?).map_err(lib_err)?;
        }
        b.set_cert_store(store.build());
        let param = b.verify_param_mut();
        // Anchors need not be self-signed roots, as in `kmp_api::crypto::x509::verify_chain`.
        param
            .set_flags(X509VerifyFlags::PARTIAL_CHAIN)
            .map_err(lib_err)?;
        if let Some(t) = self.validation_time {
            let secs = match t.duration_since(SystemTime::UNIX_EPOCH) {
                Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
                Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
            };
            // `time_t` is 32 bits on some targets.
            #[allow(clippy::useless_conversion)]
            let secs = secs
                .try_into()
                .map_err(|_| TlsError::Config("validation time out of range".into()))?;
            param.set_time(secs);
        }
        if let Some(log) = &self.key_log {
            let log = Arc::clone(log);
            b.set_keylog_callback(move |_, line| log(line));
        }
        Ok(b.build())
    }
}

fn to_x509(cert: &Certificate) -> Result<X509, TlsError> {
    X509::from_der(cert.der()).map_err(lib_err)
}

/// Whether the DER certificate names `name` (see [`TlsConfig::expected_peer_name`]): a subjectAltName dNSName (ASCII case-insensitive),
/// URI or rfc822Name equal to it, or a subject commonName equal to it.
fn names(der: &[u8], name: &str) -> bool {
    let Ok((_, cert)) = X509Certificate::from_der(der) else {
        return false;
    };
    if cert
        .subject()
        .iter_common_name()
        .any(|cn| cn.as_str().is_ok_and(|s| s == name))
    {
        return true;
    }
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return false;
    };
    san.value.general_names.iter().any(|g| match g {
        GeneralName::DNSName(d) => d.eq_ignore_ascii_case(name),
        GeneralName::URI(u) | GeneralName::RFC822Name(u) => *u == name,
        _ => false,
    })
}

/// The configured TLS implementation of one side.
#[derive(Clone)]
enum Backend {
    OpenSsl(SslContext),
    Rustls(RustlsSide),
}

/// A configured EAP-TLS side, shared by all its sessions (one OpenSSL context or rustls
/// configuration).
#[derive(Clone)]
struct Shared {
    backend: Backend,
    fragment_size: usize,
    max_message_len: usize,
    expected_peer_name: Option<String>,
}

impl core::fmt::Debug for Shared {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Shared")
            .field("fragment_size", &self.fragment_size)
            .field("max_message_len", &self.max_message_len)
            .field("expected_peer_name", &self.expected_peer_name)
            .finish_non_exhaustive()
    }
}

impl Shared {
    fn new(config: &TlsConfig, server: bool) -> Result<Shared, TlsError> {
        config.check()?;
        let backend = match config.engine {
            TlsEngine::OpenSsl => Backend::OpenSsl(config.build(server)?),
            TlsEngine::Rustls => Backend::Rustls(RustlsSide::new(config, server)?),
        };
        Ok(Shared {
            backend,
            fragment_size: config.fragment_size,
            max_message_len: config.max_message_len,
            expected_peer_name: config.expected_peer_name.clone(),
        })
    }

    fn engine(&self, server: bool, expected: Option<String>) -> Result<Engine, TlsError> {
        let ctx = match &self.backend {
            Backend::OpenSsl(ctx) => ctx,
            Backend::Rustls(side) => {
                return Ok(Engine::Rustls(Box::new(side.engine(server, expected)?)));
            }
        };
        let mut ssl = Ssl::new(ctx).map_err(lib_err)?;
        let mode = if server {
            SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT
        } else {
            SslVerifyMode::PEER
        };
        ssl.set_verify_callback(mode, move |ok, store| {
            if !ok || store.error_depth() != 0 {
                return ok;
            }
            let Some(name) = expected.as_deref() else {
                return true;
            };
            if store
                .current_cert()
                .and_then(|c| c.to_der().ok())
                .is_some_and(|der| names(&der, name))
            {
                true
            } else {
                store.set_error(X509VerifyResult::APPLICATION_VERIFICATION);
                false
            }
        });
        Ok(Engine::OpenSsl(OpensslEngine::new(ssl, server)?))
    }
}

/// The configuration of EAP-TLS peers, built once and shared by their sessions.
#[derive(Clone)]
pub struct TlsPeerContext(Arc<Shared>);

impl TlsPeerContext {
    /// Checks `config` and builds the OpenSSL context.
    pub fn new(config: &TlsConfig) -> Result<TlsPeerContext, TlsError> {
        Ok(TlsPeerContext(Arc::new(Shared::new(config, false)?)))
    }
}

impl core::fmt::Debug for TlsPeerContext {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("TlsPeerContext")
    }
}

/// The configuration of an EAP-TLS server, built once and shared by its sessions.
#[derive(Clone)]
pub struct TlsServerContext(Arc<Shared>);

impl TlsServerContext {
    /// Checks `config` (credentials required) and builds the OpenSSL context.
    pub fn new(config: &TlsConfig) -> Result<TlsServerContext, TlsError> {
        Ok(TlsServerContext(Arc::new(Shared::new(config, true)?)))
    }
}

impl core::fmt::Debug for TlsServerContext {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("TlsServerContext")
    }
}

/// What to do after a message was processed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send this type-data and wait for the other side's next message.
    Send(Vec<u8>),
    /// The method succeeded with these keys. A peer sends `send` (the final acknowledgement)
    /// and then expects EAP-Success; a server has nothing to send (`None`) and sends
    /// EAP-Success.
    Done {
        /// The last type-data to send, if any.
        send: Option<Vec<u8>>,
        /// The keys.
        keys: TlsKeys,
    },
    /// The TLS handshake failed with `error`; send `send` (our TLS alert, or, for a peer that
    /// received an alert, an acknowledgement) so the other side learns it. The method has
    /// failed: a peer then expects EAP-Failure; a server waits for the peer's acknowledgement,
    /// answers it with `Err`, and sends EAP-Failure (RFC 5216 §2.1.3, RFC 9190 §2.1.5).
    Fail {
        /// The type-data to send.
        send: Vec<u8>,
        /// Why the method failed.
        error: TlsError,
    },
}

/// Fragmentation state shared by both roles.
#[derive(Debug)]
struct Link {
    outbox: Outbox,
    reassembly: Reassembly,
    fragment_size: usize,
}

/// What an incoming message amounted to after the fragment layer.
enum Incoming<'a> {
    /// Answer with this (the next fragment of ours, or an acknowledgement of theirs).
    Reply(Vec<u8>),
    /// A complete TLS message.
    Message(Vec<u8>),
    /// An acknowledgement with nothing of ours pending.
    Ack,
    /// The S flag.
    Start(Fragment<'a>),
}

impl Link {
    fn new(shared: &Shared) -> Link {
        Link {
            outbox: Outbox::default(),
            reassembly: Reassembly::new(shared.max_message_len),
            fragment_size: shared.fragment_size,
        }
    }

    fn receive<'a>(&mut self, type_data: &'a [u8]) -> Result<Incoming<'a>, TlsError> {
        let frag = Fragment::parse(type_data)?;
        if self.outbox.pending() {
            if frag.is_ack() {
                return Ok(Incoming::Reply(
                    self.outbox.next_fragment(self.fragment_size),
                ));
            }
            return Err(TlsError::UnexpectedMessage {
                expected: "acknowledgement",
                got: frag.kind(),
            });
        }
        if frag.start {
            return Ok(Incoming::Start(frag));
        }
        if frag.is_ack() {
            if self.reassembly.in_progress() {
                return Err(TlsError::UnexpectedMessage {
                    expected: "TLS fragment",
                    got: frag.kind(),
                });
            }
            return Ok(Incoming::Ack);
        }
        match self.reassembly.push(&frag)? {
            None => Ok(Incoming::Reply(Fragment::ACK.to_vec())),
            Some(m) => Ok(Incoming::Message(m)),
        }
    }

    /// The first fragment of `records` (all of it when short enough).
    fn send(&mut self, records: Vec<u8>) -> Vec<u8> {
        self.outbox.load(records);
        self.outbox.next_fragment(self.fragment_size)
    }

    /// The failure message: our alert if OpenSSL produced one that fits in one fragment,
    /// otherwise `fallback`.
    fn alert(&mut self, records: Vec<u8>, fallback: Option<Vec<u8>>) -> Option<Vec<u8>> {
        if !records.is_empty() && records.len() < self.fragment_size {
            let mut out = Vec::with_capacity(records.len() + 1);
            Fragment {
                data: &records,
                ..Fragment::ACK
            }
            .emit(&mut out);
            Some(out)
        } else {
            fallback
        }
    }
}

/// Where an EAP-TLS peer is.
#[derive(Debug)]
enum PeerState {
    /// Waiting for the server's EAP-TLS Start.
    ExpectStart,
    /// In the TLS handshake.
    ExpectHandshake(Engine),
    /// TLS 1.3: handshake complete, waiting for the 0x00 success indication.
    ExpectSuccessIndication(Engine),
    /// Keys handed out, or failure reported.
    Finished(Result<TlsKeys, TlsError>),
}

/// The peer side of EAP-TLS (the TLS client).
#[derive(Debug)]
pub struct TlsPeer {
    shared: Arc<Shared>,
    link: Link,
    state: PeerState,
}

impl TlsPeer {
    /// A peer session with the context's expected server name.
    pub fn new(ctx: &TlsPeerContext) -> TlsPeer {
        TlsPeer {
            link: Link::new(&ctx.0),
            shared: Arc::clone(&ctx.0),
            state: PeerState::ExpectStart,
        }
    }

    /// Whether the method has finished (keys handed out, or failed).
    pub fn is_finished(&self) -> bool {
        matches!(self.state, PeerState::Finished(_))
    }

    /// The keys, once the method succeeded.
    pub fn tls_keys(&self) -> Option<&TlsKeys> {
        match &self.state {
            PeerState::Finished(Ok(keys)) => Some(keys),
            _ => None,
        }
    }

    /// Why the method failed, once it has.
    pub fn failure(&self) -> Option<&TlsError> {
        match &self.state {
            PeerState::Finished(Err(e)) => Some(e),
            _ => None,
        }
    }

    /// Processes the type-data of an EAP-Request/EAP-TLS and says what to answer.
    ///
    /// `Err` means the method failed with nothing to send (a malformed or unexpected message,
    /// or any message after the method finished); the EAP layer then waits for EAP-Failure.
    /// A TLS failure gives [`Step::Fail`], whose type-data the peer still sends.
    pub fn process(&mut self, type_data: &[u8]) -> Result<Step, TlsError> {
        if let PeerState::Finished(r) = &self.state {
            return Err(r.as_ref().err().cloned().unwrap_or(TlsError::Finished));
        }
        match self.step(type_data) {
            Ok(step) => {
                match &step {
                    Step::Send(_) => {}
                    Step::Done { keys, .. } => self.state = PeerState::Finished(Ok(keys.clone())),
                    Step::Fail { error, .. } => {
                        self.state = PeerState::Finished(Err(error.clone()));
                    }
                }
                Ok(step)
            }
            Err(e) => {
                self.state = PeerState::Finished(Err(e.clone()));
                Err(e)
            }
        }
    }

    fn step(&mut self, type_data: &[u8]) -> Result<Step, TlsError> {
        let msg = match self.link.receive(type_data)? {
            Incoming::Reply(r) => return Ok(Step::Send(r)),
            Incoming::Start(frag) => {
                if !matches!(self.state, PeerState::ExpectStart) {
                    return Err(TlsError::UnexpectedMessage {
                        expected: "TLS data",
                        got: "EAP-TLS Start",
                    });
                }
                if !frag.data.is_empty() || frag.more_fragments {
                    return Err(TlsError::Malformed("EAP-TLS Start with data"));
                }
                let mut engine = self
                    .shared
                    .engine(false, self.shared.expected_peer_name.clone())?;
                let out = match engine.handshake()? {
                    Progress::WantRead => engine.take_output(),
                    _ => return Err(TlsError::Handshake("no ClientHello".into())),
                };
                self.state = PeerState::ExpectHandshake(engine);
                return Ok(Step::Send(self.link.send(out)));
            }
            Incoming::Ack => {
                return Err(TlsError::UnexpectedMessage {
                    expected: if matches!(self.state, PeerState::ExpectStart) {
                        "EAP-TLS Start"
                    } else {
                        "TLS data"
                    },
                    got: "acknowledgement",
                });
            }
            Incoming::Message(m) => m,
        };
        let ack = Fragment::ACK.to_vec();
        match core::mem::replace(
            &mut self.state,
            PeerState::Finished(Err(TlsError::Finished)),
        ) {
            PeerState::ExpectStart => Err(TlsError::UnexpectedMessage {
                expected: "EAP-TLS Start",
                got: "TLS data",
            }),
            PeerState::ExpectHandshake(mut engine) => {
                engine.feed(&msg);
                let progress = match engine.handshake() {
                    Ok(p) => p,
                    Err(error) => {
                        let out = engine.take_output();
                        let send = self.link.alert(out, Some(ack)).unwrap_or_default();
                        return Ok(Step::Fail { send, error });
                    }
                };
                let out = engine.take_output();
                match progress {
                    Progress::Complete => match engine.version()? {
                        TlsVersion::Tls12 => {
                            if !out.is_empty() || engine.has_unread_input() {
                                return Err(TlsError::Handshake(
                                    "TLS data after the server's Finished".into(),
                                ));
                            }
                            let keys = engine.export_keys()?;
                            Ok(Step::Done {
                                send: Some(ack),
                                keys,
                            })
                        }
                        TlsVersion::Tls13 => {
                            if out.is_empty() {
                                return Err(TlsError::Handshake("no client Finished".into()));
                            }
                            // The success indication cannot be in this message: the server
                            // sends it only after our Finished.
                            let step = Step::Send(self.link.send(out));
                            self.state = PeerState::ExpectSuccessIndication(engine);
                            Ok(step)
                        }
                    },
                    // Every EAP-TLS message ends a flight (RFC 5216 §2.1.5 fragments only
                    // with M). An acknowledgement here would read as the final one.
                    _ if out.is_empty() => Err(TlsError::Handshake(
                        "the server's flight is incomplete".into(),
                    )),
                    _ => {
                        self.state = PeerState::ExpectHandshake(engine);
                        Ok(Step::Send(self.link.send(out)))
                    }
                }
            }
            PeerState::ExpectSuccessIndication(mut engine) => {
                engine.feed(&msg);
                match engine.read_app_data() {
                    Ok(Progress::Data(d)) => {
                        if d != SUCCESS_INDICATION || engine.has_unread_input() {
                            let error = TlsError::SuccessIndication(d);
                            return Ok(Step::Fail { send: ack, error });
                        }
                        let keys = engine.export_keys()?;
                        Ok(Step::Done {
                            send: Some(ack),
                            keys,
                        })
                    }
                    // A message without the indication (a lone NewSessionTicket, a cut
                    // record). Acknowledging it would read as the final acknowledgement.
                    Ok(_) => Err(TlsError::SuccessIndication(Vec::new())),
                    Err(error) => {
                        let out = engine.take_output();
                        let send = self.link.alert(out, Some(ack)).unwrap_or_default();
                        Ok(Step::Fail { send, error })
                    }
                }
            }
            PeerState::Finished(r) => Err(r.err().unwrap_or(TlsError::Finished)),
        }
    }
}

/// Where an EAP-TLS server is.
#[derive(Debug)]
enum ServerState {
    /// [`TlsServer::start`] not called yet.
    Idle,
    /// In the TLS handshake.
    ExpectHandshake(Engine),
    /// Our last flight (TLS 1.2 Finished, or TLS 1.3 success indication) is out; waiting for
    /// the peer's acknowledgement.
    ExpectFinalAck(Engine, TlsKeys),
    /// We sent an alert; waiting for the peer's acknowledgement to report the failure.
    ExpectAlertAck(TlsError),
    /// Keys handed out, or failure reported.
    Finished(Result<TlsKeys, TlsError>),
}

/// The server side of EAP-TLS (the TLS server).
#[derive(Debug)]
pub struct TlsServer {
    shared: Arc<Shared>,
    expected_peer_name: Option<String>,
    name_from_identity: bool,
    link: Link,
    state: ServerState,
}

impl TlsServer {
    /// A server session checking the peer's certificate for the context's expected name.
    pub fn new(ctx: &TlsServerContext) -> TlsServer {
        let name = ctx.0.expected_peer_name.clone();
        TlsServer::expecting(ctx, name)
    }

    /// A server session checking the peer's certificate for `expected_peer_name` (for
    /// example the identity of the EAP-Response/Identity), instead of the context's.
    pub fn expecting(ctx: &TlsServerContext, expected_peer_name: Option<String>) -> TlsServer {
        TlsServer {
            link: Link::new(&ctx.0),
            shared: Arc::clone(&ctx.0),
            expected_peer_name,
            name_from_identity: false,
            state: ServerState::Idle,
        }
    }

    /// A server session for the EAP state machine ([`crate::method::ServerMethod`]) that
    /// requires the peer's certificate to carry the identity of its EAP-Response/Identity
    /// (RFC 5216 §5.2 allows this binding; it breaks identity privacy, RFC 9190 §2.1.8, so
    /// it is opt-in).
    pub fn expecting_identity(ctx: &TlsServerContext) -> TlsServer {
        let mut s = TlsServer::expecting(ctx, None);
        s.name_from_identity = true;
        s
    }

    /// Whether the method has finished (keys handed out, or failed).
    pub fn is_finished(&self) -> bool {
        matches!(self.state, ServerState::Finished(_))
    }

    /// The keys, once the method succeeded.
    pub fn tls_keys(&self) -> Option<&TlsKeys> {
        match &self.state {
            ServerState::Finished(Ok(keys)) => Some(keys),
            _ => None,
        }
    }

    /// Why the method failed, once it has (or, while the alert awaits its acknowledgement,
    /// will).
    pub fn failure(&self) -> Option<&TlsError> {
        match &self.state {
            ServerState::Finished(Err(e)) | ServerState::ExpectAlertAck(e) => Some(e),
            _ => None,
        }
    }

    /// The type-data of the first EAP-Request/EAP-TLS: the Start (flags `20`, no data).
    /// Calling it again restarts the conversation.
    pub fn start(&mut self) -> Result<Vec<u8>, TlsError> {
        let engine = self.shared.engine(true, self.expected_peer_name.clone())?;
        self.link = Link::new(&self.shared);
        self.state = ServerState::ExpectHandshake(engine);
        Ok(Fragment {
            start: true,
            ..Fragment::ACK
        }
        .to_vec())
    }

    /// Processes the type-data of an EAP-Response/EAP-TLS and says what to answer.
    ///
    /// `Err` means the method failed: send EAP-Failure.
    pub fn process(&mut self, type_data: &[u8]) -> Result<Step, TlsError> {
        match &self.state {
            ServerState::Finished(r) => {
                return Err(r.as_ref().err().cloned().unwrap_or(TlsError::Finished));
            }
            ServerState::Idle => {
                return Err(TlsError::UnexpectedMessage {
                    expected: "nothing before start()",
                    got: "EAP-TLS response",
                });
            }
            _ => {}
        }
        match self.step(type_data) {
            Ok(step) => {
                if let Step::Done { keys, .. } = &step {
                    self.state = ServerState::Finished(Ok(keys.clone()));
                }
                Ok(step)
            }
            Err(e) => {
                self.state = ServerState::Finished(Err(e.clone()));
                Err(e)
            }
        }
    }

    fn step(&mut self, type_data: &[u8]) -> Result<Step, TlsError> {
        let incoming = self.link.receive(type_data);
        let state = core::mem::replace(
            &mut self.state,
            ServerState::Finished(Err(TlsError::Finished)),
        );
        if let ServerState::ExpectAlertAck(error) = state {
            return Err(error);
        }
        let msg = match incoming? {
            Incoming::Reply(r) => {
                self.state = state;
                return Ok(Step::Send(r));
            }
            Incoming::Start(_) => {
                return Err(TlsError::UnexpectedMessage {
                    expected: "TLS data",
                    got: "EAP-TLS Start",
                });
            }
            Incoming::Ack => {
                return match state {
                    ServerState::ExpectFinalAck(_, keys) => Ok(Step::Done { send: None, keys }),
                    _ => Err(TlsError::UnexpectedMessage {
                        expected: "TLS data",
                        got: "acknowledgement",
                    }),
                };
            }
            Incoming::Message(m) => m,
        };
        match state {
            ServerState::ExpectHandshake(mut engine) => {
                engine.feed(&msg);
                let progress = match engine.handshake() {
                    Ok(p) => p,
                    Err(error) => {
                        let out = engine.take_output();
                        return match self.link.alert(out, None) {
                            Some(send) => {
                                self.state = ServerState::ExpectAlertAck(error.clone());
                                Ok(Step::Fail { send, error })
                            }
                            None => Err(error),
                        };
                    }
                };
                match progress {
                    Progress::Complete => {
                        if engine.has_unread_input() {
                            return Err(TlsError::Handshake(
                                "TLS data after the peer's Finished".into(),
                            ));
                        }
                        let keys = engine.export_keys()?;
                        if keys.version == TlsVersion::Tls13 {
                            engine.write_app_data(&SUCCESS_INDICATION)?;
                        }
                        let out = engine.take_output();
                        if out.is_empty() {
                            return Err(TlsError::Handshake("no final flight".into()));
                        }
                        let first = self.link.send(out);
                        self.state = ServerState::ExpectFinalAck(engine, keys);
                        Ok(Step::Send(first))
                    }
                    _ => {
                        let out = engine.take_output();
                        if out.is_empty() {
                            return Err(TlsError::Handshake(
                                "the peer's flight is incomplete".into(),
                            ));
                        }
                        let first = self.link.send(out);
                        self.state = ServerState::ExpectHandshake(engine);
                        Ok(Step::Send(first))
                    }
                }
            }
            ServerState::ExpectFinalAck(mut engine, _) => {
                // Most likely an alert: the peer rejected our Finished or our certificate.
                engine.feed(&msg);
                Err(match engine.read_app_data() {
                    Err(e) => e,
                    Ok(_) => TlsError::UnexpectedMessage {
                        expected: "acknowledgement",
                        got: "TLS data",
                    },
                })
            }
            ServerState::Idle | ServerState::ExpectAlertAck(_) | ServerState::Finished(_) => {
                Err(TlsError::Finished)
            }
        }
    }
}
