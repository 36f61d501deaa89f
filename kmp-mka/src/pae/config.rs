//! Configuration of the KMP ID 1 PAEs: the `[kmp.8021x]` TOML section.
//!
//! ```toml
//! role = "supplicant"            # or "authenticator": the PAE this node runs (both session roles)
//! identity = "node-7@pan.example" # EAP-Response/Identity (supplicant)
//! methods = ["tls", "psk", "pwd"] # order of preference, both sides (empty with [radius])
//! eapol_version = 3              # EAPOL Protocol Version sent (Wi-SUN: 3)
//! start = "key-request"          # supplicant's first frame: "key-request" (Wi-SUN) or "eapol-start"
//! start_retransmit_ms = 5000     # supplicant: resend the first frame until EAP begins …
//! start_attempts = 3             # … this many frames in all, then Timeout
//! idle_timeout_secs = 60         # supplicant: no EAP packet for this long fails (0: never)
//! retransmit_ms = 3000           # authenticator: EAP Request retransmission (RFC 3748 §4.3)
//! max_retransmissions = 4
//! identity_request = true        # authenticator: start with EAP-Request/Identity
//! backend_poll_ms = 50           # pass-through: how often to poll the AAA backend
//! mka = false                    # run MKA over EAPOL-MKA after EAP, in the same session
//!
//! [tls]                          # needed when methods names "tls"
//! cert_chain = "/etc/kmp/node.chain.pem"  # end entity first
//! key = "/etc/kmp/node.key.pem"
//! ca = "/etc/kmp/ca.pem"                  # trust anchors
//! versions = "both"              # "1.2", "1.3" or "both"
//! fragment_size = 1000
//! expected_peer_name = "aaa.pan.example"  # optional
//! engine = "rustls"              # or "openssl": the TLS implementation (eap DECISIONS E12)
//!
//! [psk]                          # needed when methods names "psk"
//! id = "node-7"                  # supplicant: ID_P; authenticator: ID_S
//! psk_hex = "000102030405060708090a0b0c0d0e0f"
//! [psk.peers]                    # authenticator, optional: per-device PSKs by ID_P (else psk_hex for all)
//! "node-7" = "000102030405060708090a0b0c0d0e0f"
//!
//! [pwd]                          # needed when methods names "pwd" (EAP-pwd, RFC 5931, group 19)
//! id = "node-7"                  # supplicant: its PWD-ID identity; authenticator: the server's
//! password = "dragonfly-password" # supplicant: its password; authenticator: for every peer …
//! fragment_size = 1000           # largest EAP-pwd type-data we send (at least 33)
//! [pwd.peers]                    # … unless per-device passwords are listed by PWD-ID identity
//! "node-7" = "dragonfly-password"
//!
//! [radius]                       # authenticator only: pass-through to RADIUS (no local methods)
//! nas_identifier = "br-1"        # NAS-Identifier in every Access-Request (1–253 octets)
//! bind = "0.0.0.0:0"             # local UDP address (default: any, on the first server's family)
//! retransmit_ms = 2000           # the same Access-Request again after this long …
//! max_transmissions = 3          # … this many datagrams per server, then the next server
//! dead_time_secs = 30            # a server that did not answer is tried last for this long
//! framed_mtu = 1200              # optional Framed-MTU (the largest EAP packet the link carries)
//! [[radius.servers]]             # one or more, in order of preference (failover)
//! addr = "192.0.2.10:1812"
//! secret = "shared-secret"
//! [[radius.servers]]
//! addr = "192.0.2.11:1812"
//! secret = "other-secret"
//!
//! [mka_settings]                 # used with mka = true
//! key_server_priority = 16       # default: 16 on the authenticator, 32 on the supplicant
//! hello_ms = 2000
//! life_ms = 6000
//! sak_retire_ms = 3000
//! icv_coverage = "pae-group-header"  # or "mkpdu-only" (decision M1)
//! key_scope = "pairwise"         # SAK installed pairwise with the peer, or "group"
//! key_index_base = 5             # SAK with AN a → key identifier mode 1, key index base + a
//! establish_timeout_ms = 20000   # no SAK in transmission by then: Timeout
//! min_security_level = 6
//! ```

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use eap::authenticator::AuthenticatorConfig;
use eap::tls::{TlsConfig, TlsEngine, TlsVersions};
use kmp_api::crypto::Key128;
use kmp_api::security::SecurityLevel;
use kmp_api::session::{SecretBytes, SessionError};
use kmp_api::time::Duration;
use serde::Deserialize;

use super::methods::{MethodProvider, PskProvider, PwdProvider, TlsProvider};
use crate::eapol::ProtocolVersion;
use crate::handshake::PaeRole;
use crate::mka::IcvCoverage;

/// The supplicant's first frame when it starts (KMP-CREATE.request on the node).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartFrame {
    /// An EAPOL-Key request with the PMKID / PTKID KDEs it holds, as a Wi-SUN node sends it
    /// ([`crate::handshake::KeyRequest`]).
    KeyRequest,
    /// An EAPOL-Start (802.1X).
    EapolStart,
}

/// Who a SAK installed from MKA belongs to in the PIB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SakScope {
    /// Pairwise with the session's peer (the CA of an EAP-derived CAK has exactly two members).
    Pairwise,
    /// A group key.
    Group,
}

/// MKA after EAP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MkaSettings {
    /// Key Server Priority; `None`: 16 on the authenticator, 32 on the supplicant, so the
    /// authenticator is key server.
    pub key_server_priority: Option<u8>,
    /// MKA Hello Time.
    pub hello_time: Duration,
    /// MKA Life Time.
    pub life_time: Duration,
    /// MKA SAK Retire Time.
    pub sak_retire_time: Duration,
    /// What the MKPDU ICV covers (decision M1).
    pub icv_coverage: IcvCoverage,
    /// Pairwise with the peer or group.
    pub key_scope: SakScope,
    /// The SAK with Association Number `a` is installed with key identifier mode 1 and key
    /// index `key_index_base + a` (default 5: 5–8, after Wi-SUN's GTK indices 1–4).
    pub key_index_base: u8,
    /// How long after EAP success the first SAK may take to go into transmission.
    pub establish_timeout: Duration,
    /// Lowest security level of frames under the SAK.
    pub min_security_level: SecurityLevel,
}

impl Default for MkaSettings {
    fn default() -> Self {
        MkaSettings {
            key_server_priority: None,
            hello_time: Duration::from_secs(2),
            life_time: Duration::from_secs(6),
            sak_retire_time: Duration::from_secs(3),
            icv_coverage: IcvCoverage::PaeGroupHeader,
            key_scope: SakScope::Pairwise,
            key_index_base: 5,
            establish_timeout: Duration::from_secs(20),
            min_security_level: SecurityLevel::EncMic64,
        }
    }
}

/// One RADIUS server of the `[radius]` table.
#[derive(Debug, Clone)]
pub struct RadiusServer {
    /// Where Access-Requests go (and the only source replies are accepted from).
    pub addr: SocketAddr,
    /// The shared secret (not empty; never logged).
    pub secret: SecretBytes,
}

/// Pass-through to RADIUS servers: the `[radius]` table (see the [module docs](self)); the
/// backend is built from it by `RadiusBackend::bind` (cargo feature `radius`).
#[derive(Debug, Clone)]
pub struct RadiusSettings {
    /// Servers in order of preference (at least one).
    pub servers: Vec<RadiusServer>,
    /// NAS-Identifier (1–253 octets).
    pub nas_identifier: Vec<u8>,
    /// The local UDP address of the one socket.
    pub bind: SocketAddr,
    /// Time between transmissions of one Access-Request to one server.
    pub retransmit_timeout: Duration,
    /// Datagrams per server before failing over (at least 1).
    pub max_transmissions: u32,
    /// How long a server that did not answer is tried last.
    pub dead_time: Duration,
    /// Framed-MTU to send, if any.
    pub framed_mtu: Option<u32>,
}

impl RadiusSettings {
    /// `servers` with the defaults: NAS-Identifier `nas_identifier`, any local address on the
    /// first server's family, 2 s × 3 transmissions per server, 30 s dead time, no Framed-MTU.
    pub fn new(servers: Vec<RadiusServer>, nas_identifier: &[u8]) -> RadiusSettings {
        let v6 = servers.first().is_some_and(|s| s.addr.is_ipv6());
        RadiusSettings {
            bind: any_addr(v6),
            servers,
            nas_identifier: nas_identifier.to_vec(),
            retransmit_timeout: Duration::from_secs(2),
            max_transmissions: 3,
            dead_time: Duration::from_secs(30),
            framed_mtu: None,
        }
    }
}

fn any_addr(v6: bool) -> SocketAddr {
    if v6 {
        SocketAddr::from(([0u16; 8], 0))
    } else {
        SocketAddr::from(([0u8; 4], 0))
    }
}

/// Validated configuration of the KMP ID 1 PAEs.
#[derive(Debug, Clone)]
pub struct PaeConfig {
    /// The PAE this node runs; initiator and responder sessions both play it.
    pub role: PaeRole,
    /// The identity of the EAP-Response/Identity.
    pub identity: Vec<u8>,
    /// The EAP methods, in order of preference.
    pub methods: Vec<Arc<dyn MethodProvider>>,
    /// EAPOL Protocol Version sent (any of 1–3 is accepted).
    pub eapol_version: ProtocolVersion,
    /// Supplicant: the first frame.
    pub start: StartFrame,
    /// Supplicant: resend the first frame after this long without an EAP Request.
    pub start_retransmit: Duration,
    /// Supplicant: first frames sent in all before giving up.
    pub start_attempts: u32,
    /// Supplicant: RFC 4137 ClientTimeout.
    pub idle_timeout: Option<Duration>,
    /// Authenticator: EAP retransmission and Identity.
    pub authenticator: AuthenticatorConfig,
    /// Pass-through: the interval at which the session polls the backend.
    pub backend_poll: Duration,
    /// MKA after EAP, if set.
    pub mka: Option<MkaSettings>,
    /// Authenticator: relay EAP to these RADIUS servers instead of running `methods`.
    pub radius: Option<RadiusSettings>,
}

impl PaeConfig {
    /// Defaults for `role` with `identity` and `methods`: EAPOL v3, Wi-SUN key request start
    /// (5 s, 3 attempts), 60 s idle timeout, RFC 4137 retransmission (3 s, 4 times), 50 ms
    /// backend polling, no MKA.
    pub fn new(
        role: PaeRole,
        identity: impl Into<Vec<u8>>,
        methods: Vec<Arc<dyn MethodProvider>>,
    ) -> PaeConfig {
        PaeConfig {
            role,
            identity: identity.into(),
            methods,
            eapol_version: ProtocolVersion::V2010,
            start: StartFrame::KeyRequest,
            start_retransmit: Duration::from_secs(5),
            start_attempts: 3,
            idle_timeout: Some(Duration::from_secs(60)),
            authenticator: AuthenticatorConfig::default(),
            backend_poll: Duration::from_millis(50),
            mka: None,
            radius: None,
        }
    }

    /// Parses the TOML section, reading the PEM files it names. Errors name the field.
    pub fn from_toml(text: &str) -> Result<PaeConfig, SessionError> {
        // The message and line only: toml's own rendering quotes the source line, which may be
        // a RADIUS secret or a password.
        let raw: Raw = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
            match line {
                Some(l) => bad(format!("TOML line {l}: {}", e.message())),
                None => bad(format!("TOML: {}", e.message())),
            }
        })?;
        let role = match raw.role.as_str() {
            "supplicant" => PaeRole::Supplicant,
            "authenticator" => PaeRole::Authenticator,
            other => {
                return Err(bad(format!(
                    "role = {other:?}: supplicant or authenticator"
                )));
            }
        };
        let mut methods: Vec<Arc<dyn MethodProvider>> = vec![];
        for name in &raw.methods {
            if methods.iter().any(|m| m.name() == name) {
                return Err(bad(format!("methods: {name:?} listed twice")));
            }
            methods.push(match name.as_str() {
                "tls" => Arc::new(TlsProvider::new(&tls_config(raw.tls.as_ref())?)?),
                "psk" => psk_provider(raw.psk.as_ref())?,
                "pwd" => pwd_provider(raw.pwd.as_ref())?,
                other => return Err(bad(format!("methods: unknown method {other:?}"))),
            });
        }
        let radius = raw.radius.map(radius_settings).transpose()?;
        if radius.is_some() {
            if role != PaeRole::Authenticator {
                return Err(bad("[radius] needs role = \"authenticator\""));
            }
            if !methods.is_empty() {
                return Err(bad(
                    "methods must be empty with [radius]: the RADIUS server runs the EAP methods",
                ));
            }
            if raw.mka {
                return Err(bad(
                    "mka = true needs the EAP Session-Id, which RADIUS does not give ([radius])",
                ));
            }
        } else if methods.is_empty() {
            return Err(bad(
                "methods: at least one of \"tls\", \"psk\", \"pwd\" (or a [radius] table)",
            ));
        }
        let eapol_version = ProtocolVersion::from_u8(raw.eapol_version)
            .map_err(|_| bad("eapol_version must be 1, 2 or 3"))?;
        let start = match raw.start.as_str() {
            "key-request" => StartFrame::KeyRequest,
            "eapol-start" => StartFrame::EapolStart,
            other => {
                return Err(bad(format!(
                    "start = {other:?}: key-request or eapol-start"
                )));
            }
        };
        if raw.start_retransmit_ms == 0 || raw.retransmit_ms == 0 || raw.backend_poll_ms == 0 {
            return Err(bad(
                "start_retransmit_ms, retransmit_ms and backend_poll_ms must be positive",
            ));
        }
        if raw.start_attempts == 0 {
            return Err(bad("start_attempts must be positive"));
        }
        let mka = if raw.mka {
            Some(mka_settings(raw.mka_settings.unwrap_or_default())?)
        } else {
            None
        };
        Ok(PaeConfig {
            role,
            identity: raw.identity.into_bytes(),
            methods,
            eapol_version,
            start,
            start_retransmit: Duration::from_millis(raw.start_retransmit_ms),
            start_attempts: raw.start_attempts,
            idle_timeout: (raw.idle_timeout_secs > 0)
                .then(|| Duration::from_secs(raw.idle_timeout_secs)),
            authenticator: AuthenticatorConfig {
                retransmit_timeout: Duration::from_millis(raw.retransmit_ms),
                max_retransmissions: raw.max_retransmissions,
                identity_request: raw.identity_request,
            },
            backend_poll: Duration::from_millis(raw.backend_poll_ms),
            mka,
            radius,
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default = "supplicant")]
    role: String,
    #[serde(default)]
    identity: String,
    #[serde(default)]
    methods: Vec<String>,
    #[serde(default = "three")]
    eapol_version: u8,
    #[serde(default = "key_request")]
    start: String,
    #[serde(default = "five_s")]
    start_retransmit_ms: u64,
    #[serde(default = "three_u32")]
    start_attempts: u32,
    #[serde(default = "sixty")]
    idle_timeout_secs: u64,
    #[serde(default = "three_s")]
    retransmit_ms: u64,
    #[serde(default = "four")]
    max_retransmissions: u32,
    #[serde(default = "yes")]
    identity_request: bool,
    #[serde(default = "fifty")]
    backend_poll_ms: u64,
    #[serde(default)]
    mka: bool,
    tls: Option<RawTls>,
    psk: Option<RawPsk>,
    pwd: Option<RawPwd>,
    radius: Option<RawRadius>,
    mka_settings: Option<RawMka>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPwd {
    id: String,
    password: String,
    #[serde(default = "thousand_pwd")]
    fragment_size: usize,
    #[serde(default)]
    peers: HashMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRadius {
    #[serde(default)]
    servers: Vec<RawRadiusServer>,
    nas_identifier: String,
    bind: Option<String>,
    #[serde(default = "two_s")]
    retransmit_ms: u64,
    #[serde(default = "three_u32")]
    max_transmissions: u32,
    #[serde(default = "thirty")]
    dead_time_secs: u64,
    framed_mtu: Option<u32>,
}

/// Never printed: the secret stays out of error messages and logs.
impl core::fmt::Debug for RawRadius {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RawRadius").finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRadiusServer {
    addr: String,
    secret: String,
}

impl Drop for RawRadiusServer {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.secret);
    }
}

impl Drop for RawPwd {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.password);
        for pw in self.peers.values_mut() {
            zeroize::Zeroize::zeroize(pw);
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert_chain: String,
    key: String,
    ca: String,
    #[serde(default = "both")]
    versions: String,
    #[serde(default = "thousand")]
    fragment_size: usize,
    expected_peer_name: Option<String>,
    engine: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPsk {
    id: String,
    psk_hex: String,
    #[serde(default)]
    peers: HashMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMka {
    key_server_priority: Option<u8>,
    hello_ms: Option<u64>,
    life_ms: Option<u64>,
    sak_retire_ms: Option<u64>,
    icv_coverage: Option<String>,
    key_scope: Option<String>,
    key_index_base: Option<u8>,
    establish_timeout_ms: Option<u64>,
    min_security_level: Option<u8>,
}

fn supplicant() -> String {
    "supplicant".into()
}
fn key_request() -> String {
    "key-request".into()
}
fn both() -> String {
    "both".into()
}
fn three() -> u8 {
    3
}
fn three_u32() -> u32 {
    3
}
fn four() -> u32 {
    4
}
fn five_s() -> u64 {
    5_000
}
fn three_s() -> u64 {
    3_000
}
fn sixty() -> u64 {
    60
}
fn fifty() -> u64 {
    50
}
fn two_s() -> u64 {
    2_000
}
fn thirty() -> u64 {
    30
}
fn thousand_pwd() -> usize {
    eap::pwd::DEFAULT_FRAGMENT_SIZE
}
fn thousand() -> usize {
    eap::tls::DEFAULT_FRAGMENT_SIZE
}
fn yes() -> bool {
    true
}

fn bad(msg: impl Into<String>) -> SessionError {
    SessionError::Config(format!("802.1X: {}", msg.into()))
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
        .collect()
}

fn key128(field: &str, hex: &str) -> Result<Key128, SessionError> {
    decode_hex(hex)
        .and_then(|k| Key128::from_slice(&k).ok())
        .ok_or_else(|| bad(format!("{field} must be 32 hex digits")))
}

fn read_file(field: &str, path: &str) -> Result<Vec<u8>, SessionError> {
    std::fs::read(path).map_err(|e| bad(format!("tls.{field} = {path:?}: {e}")))
}

fn tls_config(raw: Option<&RawTls>) -> Result<TlsConfig, SessionError> {
    let raw = raw.ok_or_else(|| bad("methods names \"tls\" but there is no [tls] table"))?;
    let mut c = TlsConfig::from_pem(
        &read_file("cert_chain", &raw.cert_chain)?,
        &read_file("key", &raw.key)?,
        &read_file("ca", &raw.ca)?,
    )
    .map_err(|e| bad(format!("tls: {e}")))?;
    c.versions = match raw.versions.as_str() {
        "1.2" => TlsVersions::Tls12,
        "1.3" => TlsVersions::Tls13,
        "both" => TlsVersions::Both,
        other => return Err(bad(format!("tls.versions = {other:?}: 1.2, 1.3 or both"))),
    };
    c.fragment_size = raw.fragment_size;
    c.engine = match raw.engine.as_deref() {
        None => TlsEngine::default(),
        Some("rustls") => TlsEngine::Rustls,
        Some("openssl") => TlsEngine::OpenSsl,
        Some(other) => return Err(bad(format!("tls.engine = {other:?}: rustls or openssl"))),
    };
    c.expected_peer_name.clone_from(&raw.expected_peer_name);
    Ok(c)
}

fn psk_provider(raw: Option<&RawPsk>) -> Result<Arc<dyn MethodProvider>, SessionError> {
    let raw = raw.ok_or_else(|| bad("methods names \"psk\" but there is no [psk] table"))?;
    let psk = key128("psk.psk_hex", &raw.psk_hex)?;
    if raw.peers.is_empty() {
        return Ok(Arc::new(PskProvider::new(raw.id.clone(), psk)));
    }
    let mut peers: HashMap<Vec<u8>, Key128> = HashMap::new();
    for (id, hex) in &raw.peers {
        peers.insert(id.clone().into_bytes(), key128("psk.peers", hex)?);
    }
    let store = Arc::new(move |id_p: &[u8]| peers.get(id_p).cloned());
    Ok(Arc::new(PskProvider::with_store(
        raw.id.clone(),
        psk,
        store,
    )))
}

fn pwd_provider(raw: Option<&RawPwd>) -> Result<Arc<dyn MethodProvider>, SessionError> {
    let raw = raw.ok_or_else(|| bad("methods names \"pwd\" but there is no [pwd] table"))?;
    if raw.password.is_empty() {
        return Err(bad("pwd.password must not be empty"));
    }
    let password = SecretBytes::from_slice(raw.password.as_bytes());
    let provider = if raw.peers.is_empty() {
        PwdProvider::new(raw.id.clone(), password)
    } else {
        let mut peers: HashMap<Vec<u8>, SecretBytes> = HashMap::new();
        for (id, pw) in &raw.peers {
            if pw.is_empty() {
                return Err(bad(format!("pwd.peers.{id:?}: empty password")));
            }
            peers.insert(
                id.clone().into_bytes(),
                SecretBytes::from_slice(pw.as_bytes()),
            );
        }
        let store = Arc::new(move |id: &[u8]| peers.get(id).cloned());
        PwdProvider::with_store(raw.id.clone(), password, store)
    };
    let provider = provider
        .with_fragment_size(raw.fragment_size)
        .map_err(|_| {
            bad(format!(
                "pwd.fragment_size must be at least {}",
                eap::pwd::MIN_FRAGMENT_SIZE
            ))
        })?;
    Ok(Arc::new(provider))
}

fn radius_settings(raw: RawRadius) -> Result<RadiusSettings, SessionError> {
    if raw.servers.is_empty() {
        return Err(bad("radius.servers: at least one [[radius.servers]]"));
    }
    let mut servers = Vec::with_capacity(raw.servers.len());
    for (i, s) in raw.servers.iter().enumerate() {
        let addr: SocketAddr = s.addr.parse().map_err(|_| {
            bad(format!(
                "radius.servers[{i}].addr = {:?}: an IP address and port",
                s.addr
            ))
        })?;
        if s.secret.is_empty() {
            return Err(bad(format!("radius.servers[{i}].secret must not be empty")));
        }
        if servers.iter().any(|x: &RadiusServer| x.addr == addr) {
            return Err(bad(format!("radius.servers[{i}].addr {addr} listed twice")));
        }
        servers.push(RadiusServer {
            addr,
            secret: SecretBytes::from_slice(s.secret.as_bytes()),
        });
    }
    if raw.nas_identifier.is_empty() || raw.nas_identifier.len() > 253 {
        return Err(bad("radius.nas_identifier must be 1 to 253 octets"));
    }
    if raw.retransmit_ms == 0 || raw.max_transmissions == 0 {
        return Err(bad(
            "radius.retransmit_ms and radius.max_transmissions must be positive",
        ));
    }
    if raw.framed_mtu.is_some_and(|m| !(64..=65_535).contains(&m)) {
        return Err(bad("radius.framed_mtu must be 64 to 65535"));
    }
    let mut settings = RadiusSettings::new(servers, raw.nas_identifier.as_bytes());
    if let Some(b) = &raw.bind {
        settings.bind = b
            .parse()
            .map_err(|_| bad(format!("radius.bind = {b:?}: an IP address and port")))?;
    }
    if settings
        .servers
        .iter()
        .any(|s| s.addr.is_ipv6() != settings.bind.is_ipv6())
    {
        return Err(bad(
            "radius: every server must be of the bind address's family (one UDP socket)",
        ));
    }
    settings.retransmit_timeout = Duration::from_millis(raw.retransmit_ms);
    settings.max_transmissions = raw.max_transmissions;
    settings.dead_time = Duration::from_secs(raw.dead_time_secs);
    settings.framed_mtu = raw.framed_mtu;
    Ok(settings)
}

fn mka_settings(raw: RawMka) -> Result<MkaSettings, SessionError> {
    let d = MkaSettings::default();
    let ms = |v: Option<u64>, d: Duration, field: &str| match v {
        None => Ok(d),
        Some(0) => Err(bad(format!("mka_settings.{field} must be positive"))),
        Some(v) => Ok(Duration::from_millis(v)),
    };
    let icv_coverage = match raw.icv_coverage.as_deref() {
        None | Some("pae-group-header") => IcvCoverage::PaeGroupHeader,
        Some("mkpdu-only") => IcvCoverage::MkpduOnly,
        Some(other) => {
            return Err(bad(format!(
                "mka_settings.icv_coverage = {other:?}: pae-group-header or mkpdu-only"
            )));
        }
    };
    let key_scope = match raw.key_scope.as_deref() {
        None | Some("pairwise") => SakScope::Pairwise,
        Some("group") => SakScope::Group,
        Some(other) => {
            return Err(bad(format!(
                "mka_settings.key_scope = {other:?}: pairwise or group"
            )));
        }
    };
    let key_index_base = raw.key_index_base.unwrap_or(d.key_index_base);
    if key_index_base > 0xff - 3 {
        return Err(bad(
            "mka_settings.key_index_base must leave room for AN 0..=3",
        ));
    }
    let level = raw.min_security_level.unwrap_or(6);
    if level > 7 {
        return Err(bad("mka_settings.min_security_level must be 0..=7"));
    }
    Ok(MkaSettings {
        key_server_priority: raw.key_server_priority,
        hello_time: ms(raw.hello_ms, d.hello_time, "hello_ms")?,
        life_time: ms(raw.life_ms, d.life_time, "life_ms")?,
        sak_retire_time: ms(raw.sak_retire_ms, d.sak_retire_time, "sak_retire_ms")?,
        icv_coverage,
        key_scope,
        key_index_base,
        establish_timeout: ms(
            raw.establish_timeout_ms,
            d.establish_timeout,
            "establish_timeout_ms",
        )?,
        min_security_level: SecurityLevel::from_bits(level),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn parses_psk_and_refuses() {
        let c = PaeConfig::from_toml(
            "role = \"authenticator\"\nidentity = \"br\"\nmethods = [\"psk\"]\nmka = true\n\
             retransmit_ms = 500\n\
             [psk]\nid = \"br\"\npsk_hex = \"000102030405060708090a0b0c0d0e0f\"\n\
             [mka_settings]\nkey_scope = \"group\"\nhello_ms = 100\n",
        )
        .unwrap();
        assert_eq!(c.role, PaeRole::Authenticator);
        assert_eq!(c.methods[0].name(), "psk");
        assert_eq!(
            c.authenticator.retransmit_timeout,
            Duration::from_millis(500)
        );
        let m = c.mka.unwrap();
        assert_eq!(m.key_scope, SakScope::Group);
        assert_eq!(m.hello_time, Duration::from_millis(100));
        assert_eq!(m.key_index_base, 5);
        let d = PaeConfig::from_toml(
            "methods = [\"psk\"]\n[psk]\nid = \"n\"\npsk_hex = \"000102030405060708090a0b0c0d0e0f\"",
        )
        .unwrap();
        assert_eq!(d.role, PaeRole::Supplicant);
        assert_eq!(d.start, StartFrame::KeyRequest);
        assert_eq!(d.eapol_version, ProtocolVersion::V2010);
        assert!(d.mka.is_none());
        let psk = "[psk]\nid = \"n\"\npsk_hex = \"000102030405060708090a0b0c0d0e0f\"";
        for bad in [
            "methods = []".to_string(),
            "methods = [\"pwd\"]".to_string(),
            format!("methods = [\"psk\", \"psk\"]\n{psk}"),
            "methods = [\"psk\"]".to_string(),
            "methods = [\"tls\"]".to_string(),
            format!("methods = [\"psk\"]\nrole = \"relay\"\n{psk}"),
            format!("methods = [\"psk\"]\neapol_version = 4\n{psk}"),
            format!("methods = [\"psk\"]\nstart = \"hello\"\n{psk}"),
            format!("methods = [\"psk\"]\nretransmit_ms = 0\n{psk}"),
            format!("methods = [\"psk\"]\nsurprise = 1\n{psk}"),
            "methods = [\"psk\"]\n[psk]\nid = \"n\"\npsk_hex = \"00\"".to_string(),
            format!("methods = [\"psk\"]\nmka = true\n{psk}\n[mka_settings]\nkey_scope = \"x\""),
            "methods = [\"tls\"]\n[tls]\ncert_chain = \"/nonexistent\"\nkey = \"/n\"\nca = \"/n\""
                .to_string(),
            "methods = [\"pwd\"]".to_string(),
            "methods = [\"pwd\"]\n[pwd]\nid = \"n\"\npassword = \"\"".to_string(),
            "methods = [\"pwd\"]\n[pwd]\nid = \"n\"\npassword = \"p\"\nfragment_size = 32"
                .to_string(),
            "methods = [\"pwd\"]\n[pwd]\nid = \"n\"\npassword = \"p\"\n[pwd.peers]\nx = \"\""
                .to_string(),
            "methods = [\"pwd\"]\n[pwd]\nid = \"n\"\npasswd = \"p\"".to_string(),
        ] {
            assert!(PaeConfig::from_toml(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn parses_pwd() {
        let c = PaeConfig::from_toml(
            "methods = [\"pwd\", \"psk\"]\n[pwd]\nid = \"node-2\"\npassword = \"pw\"\n\
             fragment_size = 40\n[pwd.peers]\n\"node-2\" = \"pw\"\n\
             [psk]\nid = \"n\"\npsk_hex = \"000102030405060708090a0b0c0d0e0f\"",
        )
        .unwrap();
        assert_eq!(c.methods[0].name(), "pwd");
        assert_eq!(c.methods[1].name(), "psk");
        assert!(c.methods[0].peer_method().is_ok());
        assert!(c.methods[0].server_method().is_ok());
        // The password is not in the debug output.
        assert!(!format!("{c:?}").contains("pw\""));
    }

    const RADIUS: &str = "role = \"authenticator\"\n[radius]\nnas_identifier = \"br-1\"\n";

    fn server(addr: &str, secret: &str) -> String {
        format!("[[radius.servers]]\naddr = \"{addr}\"\nsecret = \"{secret}\"\n")
    }

    #[test]
    fn parses_radius() {
        let c = PaeConfig::from_toml(&format!(
            "{RADIUS}retransmit_ms = 250\nmax_transmissions = 2\ndead_time_secs = 5\n\
             framed_mtu = 1100\n{}{}",
            server("127.0.0.1:1812", "top-secret-1"),
            server("127.0.0.2:1812", "top-secret-2")
        ))
        .unwrap();
        assert!(c.methods.is_empty());
        let r = c.radius.as_ref().unwrap();
        assert_eq!(r.servers.len(), 2);
        assert_eq!(r.servers[1].addr, "127.0.0.2:1812".parse().unwrap());
        assert_eq!(r.servers[0].secret.expose(), b"top-secret-1");
        assert_eq!(r.nas_identifier, b"br-1");
        assert_eq!(r.bind, "0.0.0.0:0".parse().unwrap());
        assert_eq!(r.retransmit_timeout, Duration::from_millis(250));
        assert_eq!(r.max_transmissions, 2);
        assert_eq!(r.dead_time, Duration::from_secs(5));
        assert_eq!(r.framed_mtu, Some(1100));
        assert!(!format!("{c:?}").contains("top-secret"));
        let d = PaeConfig::from_toml(&format!("{RADIUS}{}", server("[::1]:1812", "s"))).unwrap();
        let r = d.radius.unwrap();
        assert_eq!(r.bind, "[::]:0".parse().unwrap());
        assert_eq!(r.retransmit_timeout, Duration::from_secs(2));
        assert_eq!(r.max_transmissions, 3);
        assert_eq!(r.dead_time, Duration::from_secs(30));
        assert_eq!(r.framed_mtu, None);
    }

    #[test]
    fn refuses_bad_radius_tables() {
        let s = server("127.0.0.1:1812", "s");
        let psk = "[psk]\nid = \"n\"\npsk_hex = \"000102030405060708090a0b0c0d0e0f\"";
        for (bad, why) in [
            (RADIUS.to_string(), "no servers"),
            (format!("{RADIUS}{}", server("127.0.0.1", "s")), "no port"),
            (
                format!("{RADIUS}{}", server("radius.example:1812", "s")),
                "a name",
            ),
            (
                format!("{RADIUS}{}", server("127.0.0.1:1812", "")),
                "empty secret",
            ),
            (format!("{RADIUS}{s}{s}"), "the same server twice"),
            (
                format!("{RADIUS}retransmit_ms = 0\n{s}"),
                "zero retransmission",
            ),
            (
                format!("{RADIUS}max_transmissions = 0\n{s}"),
                "no transmissions",
            ),
            (format!("{RADIUS}framed_mtu = 10\n{s}"), "tiny MTU"),
            (format!("{RADIUS}bind = \"any\"\n{s}"), "bad bind"),
            (format!("{RADIUS}bind = \"[::]:0\"\n{s}"), "family mismatch"),
            (
                format!("{RADIUS}{s}{}", server("[::1]:1812", "s")),
                "mixed families",
            ),
            (format!("{RADIUS}port = 1812\n{s}"), "unknown field"),
            (
                "role = \"authenticator\"\n[radius]\n".to_string() + &s,
                "no NAS-Identifier",
            ),
            (
                format!("role = \"authenticator\"\n[radius]\nnas_identifier = \"\"\n{s}"),
                "empty NAS-Identifier",
            ),
            (
                format!(
                    "role = \"authenticator\"\n[radius]\nnas_identifier = \"{}\"\n{s}",
                    "n".repeat(254)
                ),
                "long NAS-Identifier",
            ),
            (
                format!("[radius]\nnas_identifier = \"n\"\n{s}"),
                "a supplicant",
            ),
            (
                format!("methods = [\"psk\"]\n{RADIUS}{s}{psk}"),
                "methods with RADIUS",
            ),
            (format!("mka = true\n{RADIUS}{s}"), "MKA with RADIUS"),
        ] {
            assert!(
                PaeConfig::from_toml(&bad).is_err(),
                "accepted ({why}): {bad:?}"
            );
        }
        // A mistyped key next to a secret: the error names the field, not the secret.
        let e = PaeConfig::from_toml(&format!(
            "{RADIUS}[[radius.servers]]\naddr = \"127.0.0.1:1812\"\nsecrett = \"hush-hush\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("secrett") && !e.contains("hush-hush"), "{e}");
    }
}
