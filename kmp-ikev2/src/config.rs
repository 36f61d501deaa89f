//! Configuration of the IKEv2 KMP (the `ikev2` section, TOML).
//!
//! ```toml
//! psk = "a shared secret"             # or psk_hex = "…"; the shared key MIC method
//! ike_proposals = ["aes128ccm8-prfsha256-ecp256", "aes128gcm16-prfsha256-modp2048"]
//! child_proposals = ["aes128ccm8"]    # the child SA whose keys become 802.15.4 link keys
//! retransmit_ms = 1000                # first retransmission; doubles each time
//! max_retransmits = 5
//! half_open_cookie_threshold = 32     # responder asks for cookies above this many half-open SAs
//! nonce_len = 32
//! min_security_level = 6              # of the installed link keys
//! local_id = "fqdn:initiator.test"    # default: our EUI-64 as ID_KEY_ID (DECISIONS I3)
//! remote_id = "fqdn:responder.test"   # if given, the peer's ID must be exactly this
//! local_ts = ["127.0.0.1/32"]         # child SA traffic selectors; default ["::/0"]
//! remote_ts = ["127.0.0.1/32"]
//! rekey_child_after_secs = 3600       # CREATE_CHILD_SA rekeys (0, the default: never; I10)
//! rekey_ike_after_secs = 14400
//! pfs = false                         # a KE in child SA rekeys
//! dpd_secs = 30                       # liveness check when idle this long (0: off; I12)
//! childless = "allow"                 # RFC 6023: "allow" (default), "force" or "never" (I25);
//!                                     # "force" with child_proposals = [] makes an IKE SA only
//! broadcast_key = true                # send our 6TSCH broadcast key K_i in IKE_AUTH (I26)
//! broadcast_key_index = 1             # its key index (key identifier mode 3, source: our EUI-64)
//! broadcast_key_hex = "…"             # a provisioned K_i; default: random per process
//! ```
//!
//! Public-key authentication (DECISIONS I20–I23) replaces `psk`:
//!
//! ```toml
//! auth = "pubkey"                     # "psk" (the default) or "pubkey"
//! key = "private/me.pem"              # PEM private key: EC P-256 or RSA >= 2048
//! cert = "x509/me.pem"                # PEM end-entity cert, then intermediates; omit for a raw key
//! ca = ["x509ca/ca.pem"]              # trust anchors for the peer's chain
//! peer_raw_key = "pubkey/peer.pem"    # or: the peer's pinned raw public key (RFC 7670)
//! signature = "rfc7427"               # or "classic" (methods 1 and 9 only)
//! local_id = "dn:CN=me,O=example"     # ID_DER_ASN1_DN; fqdn/email/ipv4/ipv6 match subjectAltName
//! ```
//!
//! Identities (DECISIONS I5): `fqdn:NAME` (ID_FQDN), `email:USER@HOST` (ID_RFC822_ADDR),
//! `ipv4:A.B.C.D` (ID_IPV4_ADDR), `ipv6:ADDR` (ID_IPV6_ADDR), `keyid:HEX` (ID_KEY_ID) and `eui64`
//! (our own EUI-64 as ID_KEY_ID, the default), `dn:CN=…,O=…` (ID_DER_ASN1_DN). Traffic selectors (DECISIONS I6) are IPv4 or IPv6
//! prefixes, all protocols and ports; over 802.15.9 they select nothing, over UDP they must
//! intersect what the peer (e.g. strongSwan, which narrows) configured.
//!
//! Proposals use strongSwan's spelling so a configuration can be checked against a strongSwan
//! peer with the same string: encryption `aes128ccm8`, `aes128ccm16`, `aes128gcm16`, `aes128`
//! (CBC); integrity `sha256` (HMAC-SHA2-256-128, only with CBC); PRF `prfsha256`,
//! `prfaes128cmac`; DH `ecp256`, `modp2048`. Child proposals name only the encryption (and
//! integrity for CBC).

use std::sync::Arc;

use kmp_api::SecurityLevel;
use kmp_api::session::{SecretBytes, SessionError};
use kmp_api::time::Duration;
use serde::Deserialize;

use kmp_api::crypto::x509::Certificate;

use crate::auth::PublicKeyAuth;
use crate::crypto::{DhGroup, EncrAlg, IntegAlg, PrfAlg};
use crate::wire::TrafficSelector;

/// An IKE identity (RFC 7296 §3.5) as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentityConfig {
    /// Our EUI-64 as an 8-octet ID_KEY_ID (the default, DECISIONS I3).
    Eui64,
    /// An explicit ID Type and Identification Data.
    Explicit {
        /// ID Type (1 IPv4, 2 FQDN, 3 RFC 822, 5 IPv6, 9 DER_ASN1_DN, 11 KEY_ID).
        id_type: u8,
        /// Identification Data.
        data: Vec<u8>,
    },
}

/// Parses an identity: `eui64`, `fqdn:NAME`, `email:ADDR`, `ipv4:ADDR`, `ipv6:ADDR`,
/// `dn:CN=…,O=…` or `keyid:HEX`.
pub fn parse_identity(s: &str) -> Result<IdentityConfig, SessionError> {
    if s == "eui64" {
        return Ok(IdentityConfig::Eui64);
    }
    let (kind, value) = s
        .split_once(':')
        .ok_or_else(|| bad(format!("identity {s:?}: expected TYPE:VALUE or eui64")))?;
    let (id_type, data) = match kind {
        "fqdn" => (2, value.as_bytes().to_vec()),
        "email" | "rfc822" => (3, value.as_bytes().to_vec()),
        "ipv4" => {
            let a: std::net::Ipv4Addr = value
                .parse()
                .map_err(|_| bad(format!("identity {s:?}: not an IPv4 address")))?;
            (1, a.octets().to_vec())
        }
        "ipv6" => {
            let a: std::net::Ipv6Addr = value
                .parse()
                .map_err(|_| bad(format!("identity {s:?}: not an IPv6 address")))?;
            (5, a.octets().to_vec())
        }
        "dn" => (
            9,
            kmp_api::crypto::x509::name_der_from_text(value)
                .ok_or_else(|| bad(format!("identity {s:?}: not a DN")))?,
        ),
        "keyid" => (
            11,
            hex_decode(value).ok_or_else(|| bad(format!("identity {s:?}: keyid is not hex")))?,
        ),
        _ => return Err(bad(format!("identity {s:?}: unknown type {kind:?}"))),
    };
    if data.is_empty() {
        return Err(bad(format!("identity {s:?}: empty")));
    }
    Ok(IdentityConfig::Explicit { id_type, data })
}

/// Parses a traffic selector prefix (`127.0.0.1/32`, `0.0.0.0/0`, `::/0`, `fe80::/64`; a bare
/// address is a host): all protocols and ports.
pub fn parse_traffic_selector(s: &str) -> Result<TrafficSelector, SessionError> {
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (
            a,
            Some(
                l.parse::<u32>()
                    .map_err(|_| bad(format!("traffic selector {s:?}: bad prefix length")))?,
            ),
        ),
        None => (s, None),
    };
    let ip: std::net::IpAddr = addr
        .parse()
        .map_err(|_| bad(format!("traffic selector {s:?}: not an IP address")))?;
    let (ts_type, octets) = match ip {
        std::net::IpAddr::V4(a) => (7, a.octets().to_vec()),
        std::net::IpAddr::V6(a) => (8, a.octets().to_vec()),
    };
    let bits = u32::try_from(octets.len() * 8).unwrap_or(u32::MAX);
    let len = len.unwrap_or(bits);
    if len > bits {
        return Err(bad(format!("traffic selector {s:?}: prefix too long")));
    }
    let (mut start, mut end) = (octets.clone(), octets);
    for (i, (s_o, e_o)) in start.iter_mut().zip(end.iter_mut()).enumerate() {
        let first = u32::try_from(i * 8).unwrap_or(u32::MAX);
        // How many leading bits of this octet belong to the prefix.
        let keep = len.saturating_sub(first).min(8);
        let mask = if keep == 0 { 0u8 } else { 0xffu8 << (8 - keep) };
        *s_o &= mask;
        *e_o |= !mask;
    }
    Ok(TrafficSelector {
        ts_type,
        ip_protocol: 0,
        start_port: 0,
        end_port: 0xffff,
        start_address: start,
        end_address: end,
    })
}

/// One IKE SA proposal: the algorithms of all four transform types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IkeProposal {
    /// Encryption.
    pub encr: EncrAlg,
    /// Integrity (`None` with an AEAD).
    pub integ: IntegAlg,
    /// Pseudo-random function.
    pub prf: PrfAlg,
    /// Diffie-Hellman group.
    pub dh: DhGroup,
}

/// One child SA proposal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChildProposal {
    /// Encryption.
    pub encr: EncrAlg,
    /// Integrity (`None` with an AEAD).
    pub integ: IntegAlg,
}

fn parse_encr(t: &str) -> Option<EncrAlg> {
    Some(match t {
        "aes128ccm8" | "aes128ccm64" => EncrAlg::AesCcm8,
        "aes128ccm16" | "aes128ccm128" => EncrAlg::AesCcm16,
        "aes128gcm16" | "aes128gcm128" => EncrAlg::AesGcm16,
        "aes128" => EncrAlg::AesCbc,
        _ => return None,
    })
}

fn parse_prf(t: &str) -> Option<PrfAlg> {
    Some(match t {
        "prfsha256" => PrfAlg::HmacSha256,
        "prfaes128cmac" | "prfcmac" => PrfAlg::Aes128Cmac,
        _ => return None,
    })
}

fn parse_dh(t: &str) -> Option<DhGroup> {
    Some(match t {
        "ecp256" => DhGroup::Ecp256,
        "modp2048" => DhGroup::Modp2048,
        _ => return None,
    })
}

fn bad(msg: String) -> SessionError {
    SessionError::Config(format!("ikev2: {msg}"))
}

/// Parses an IKE proposal in strongSwan's spelling, e.g. `aes128ccm8-prfsha256-ecp256` or
/// `aes128-sha256-prfsha256-modp2048`. With CBC and no explicit PRF, the PRF follows the
/// integrity algorithm (as strongSwan does).
pub fn parse_ike_proposal(s: &str) -> Result<IkeProposal, SessionError> {
    let (mut encr, mut integ, mut prf, mut dh) = (None, None, None, None);
    for t in s.split('-') {
        if let Some(e) = parse_encr(t) {
            if encr.replace(e).is_some() {
                return Err(bad(format!("{s:?}: two encryption algorithms")));
            }
        } else if t == "sha256" {
            integ = Some(IntegAlg::HmacSha256_128);
        } else if let Some(p) = parse_prf(t) {
            prf = Some(p);
        } else if let Some(g) = parse_dh(t) {
            dh = Some(g);
        } else {
            return Err(bad(format!("{s:?}: unknown algorithm {t:?}")));
        }
    }
    let encr = encr.ok_or_else(|| bad(format!("{s:?}: no encryption algorithm")))?;
    let integ = match (encr.is_aead(), integ) {
        (true, None) => IntegAlg::None,
        (true, Some(_)) => return Err(bad(format!("{s:?}: an AEAD takes no integrity algorithm"))),
        (false, Some(i)) => i,
        (false, None) => return Err(bad(format!("{s:?}: CBC needs an integrity algorithm"))),
    };
    let prf = match (prf, integ) {
        (Some(p), _) => p,
        (None, IntegAlg::HmacSha256_128) => PrfAlg::HmacSha256,
        (None, _) => return Err(bad(format!("{s:?}: no PRF"))),
    };
    let dh = dh.ok_or_else(|| bad(format!("{s:?}: no DH group")))?;
    Ok(IkeProposal {
        encr,
        integ,
        prf,
        dh,
    })
}

/// Parses a child SA proposal, e.g. `aes128ccm8` or `aes128-sha256`.
pub fn parse_child_proposal(s: &str) -> Result<ChildProposal, SessionError> {
    let mut parts = s.split('-');
    let encr = parts
        .next()
        .and_then(parse_encr)
        .ok_or_else(|| bad(format!("{s:?}: no encryption algorithm first")))?;
    let integ = match parts.next() {
        None => IntegAlg::None,
        Some("sha256") => IntegAlg::HmacSha256_128,
        Some(t) => return Err(bad(format!("{s:?}: unknown algorithm {t:?}"))),
    };
    if let Some(t) = parts.next() {
        return Err(bad(format!("{s:?}: unexpected {t:?}")));
    }
    if encr.is_aead() != (integ == IntegAlg::None) {
        return Err(bad(format!(
            "{s:?}: an AEAD takes no integrity algorithm, CBC needs one"
        )));
    }
    Ok(ChildProposal { encr, integ })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    psk: Option<String>,
    psk_hex: Option<String>,
    #[serde(default = "default_ike")]
    ike_proposals: Vec<String>,
    #[serde(default = "default_child")]
    child_proposals: Vec<String>,
    #[serde(default = "default_retransmit_ms")]
    retransmit_ms: u64,
    #[serde(default = "default_max_retransmits")]
    max_retransmits: u32,
    #[serde(default = "default_cookie_threshold")]
    half_open_cookie_threshold: usize,
    #[serde(default = "default_nonce_len")]
    nonce_len: usize,
    #[serde(default = "default_level")]
    min_security_level: u8,
    #[serde(default)]
    key_lifetime_secs: u64,
    local_id: Option<String>,
    remote_id: Option<String>,
    #[serde(default = "default_ts")]
    local_ts: Vec<String>,
    #[serde(default = "default_ts")]
    remote_ts: Vec<String>,
    #[serde(default)]
    profile: Option<String>,
    routing_protocol: Option<u16>,
    rkmp_exchange_types: Option<[u8; 3]>,
    #[serde(default)]
    rekey_child_after_secs: u64,
    #[serde(default)]
    rekey_ike_after_secs: u64,
    #[serde(default)]
    dpd_secs: u64,
    #[serde(default)]
    pfs: bool,
    auth: Option<String>,
    cert: Option<String>,
    key: Option<String>,
    #[serde(default)]
    ca: Vec<String>,
    peer_raw_key: Option<String>,
    signature: Option<String>,
    childless: Option<String>,
    #[serde(default)]
    broadcast_key: bool,
    broadcast_key_index: Option<u8>,
    broadcast_key_hex: Option<String>,
}

fn broadcast_key(
    on: bool,
    index: Option<u8>,
    hex: Option<&str>,
) -> Result<Option<BroadcastKey>, SessionError> {
    if !on && hex.is_none() {
        if index.is_some() {
            return Err(bad("broadcast_key_index needs broadcast_key = true".into()));
        }
        return Ok(None);
    }
    let index = index.unwrap_or(1);
    if index == 0 {
        return Err(bad("broadcast_key_index must be 1..=255".into()));
    }
    let key = match hex {
        None => None,
        Some(h) => {
            let k = hex_decode(h).ok_or_else(|| bad("broadcast_key_hex: not hex".into()))?;
            if k.len() != 16 {
                return Err(bad(format!(
                    "broadcast_key_hex: {} octets, an 802.15.4 key has 16",
                    k.len()
                )));
            }
            Some(Arc::new(SecretBytes::new(k)))
        }
    };
    Ok(Some(BroadcastKey { index, key }))
}

fn read_file(what: &str, path: &str) -> Result<Vec<u8>, SessionError> {
    std::fs::read(path).map_err(|e| bad(format!("{what} = {path:?}: {e}")))
}

/// Certificates of a PEM file (one or more `CERTIFICATE` blocks).
fn read_certs(what: &str, path: &str) -> Result<Vec<Certificate>, SessionError> {
    let pem = read_file(what, path)?;
    let certs =
        Certificate::all_from_pem(&pem).map_err(|e| bad(format!("{what} = {path:?}: {e}")))?;
    if certs.is_empty() {
        return Err(bad(format!("{what} = {path:?}: no certificate")));
    }
    Ok(certs)
}

fn pubkey_auth(raw: &Raw) -> Result<Option<Arc<PublicKeyAuth>>, SessionError> {
    match raw.auth.as_deref().unwrap_or("psk") {
        "psk" => {
            if raw.cert.is_some()
                || raw.key.is_some()
                || !raw.ca.is_empty()
                || raw.peer_raw_key.is_some()
            {
                return Err(bad(
                    "cert, key, ca and peer_raw_key need auth = \"pubkey\"".into()
                ));
            }
            Ok(None)
        }
        "pubkey" => {
            let path = raw
                .key
                .as_deref()
                .ok_or_else(|| bad("auth = \"pubkey\" needs key".into()))?;
            let key = kmp_api::crypto::sig::SigningKey::from_pem(&read_file("key", path)?)
                .map_err(|e| bad(format!("key = {path:?}: not a PEM private key: {e}")))?;
            let chain = raw
                .cert
                .as_deref()
                .map(|p| read_certs("cert", p))
                .transpose()?
                .unwrap_or_default();
            let mut anchors = Vec::new();
            for p in &raw.ca {
                anchors.extend(read_certs("ca", p)?);
            }
            let peer_raw_key = raw
                .peer_raw_key
                .as_deref()
                .map(|p| {
                    let pem = read_file("peer_raw_key", p)?;
                    kmp_api::crypto::sig::VerifyingKey::from_pem(&pem)
                        .and_then(|k| k.to_spki_der())
                        .map_err(|e| {
                            bad(format!("peer_raw_key = {p:?}: not a PEM public key: {e}"))
                        })
                })
                .transpose()?;
            let classic = match raw.signature.as_deref().unwrap_or("rfc7427") {
                "rfc7427" => false,
                "classic" => true,
                s => return Err(bad(format!("unknown signature {s:?} (rfc7427 or classic)"))),
            };
            Ok(Some(Arc::new(PublicKeyAuth::new(
                key,
                chain,
                anchors,
                peer_raw_key,
                classic,
            )?)))
        }
        a => Err(bad(format!("unknown auth {a:?} (psk or pubkey)"))),
    }
}

/// The KMP ID of RKMP: vendor-specific 255 with a locally administered OUI of this project
/// (DECISIONS K4), until IEEE 802.15.9 assigns one.
pub const RKMP_KMP_ID: kmp_api::KmpId =
    kmp_api::KmpId::VendorSpecific(kmp_api::Oui([0x02, 0x52, 0x4b]));

/// The status notify that names the routing protocol an RKMP child SA serves (private-use
/// notify type; data: the 16-bit routing protocol identifier, big-endian).
pub const ROUTING_PROTOCOL_NOTIFY: u16 = 40960;

/// Which protocol the sessions speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// IKEv2: the child SA's keys become 802.15.4 link keys.
    Ikev2,
    /// RKMP, the IKEv2-derived routing KMP: no traffic selectors, and the child SA's keys
    /// become routing-protocol SAs in the PIB store (DECISIONS K3).
    Rkmp {
        /// The routing protocol the child SA serves (`mpx::runtime::RoutingProtocol` values).
        routing_protocol: u16,
        /// Exchange types of RKMP_SA_INIT, RKMP_SA_AUTH and the child SA exchange.
        exchange_types: [u8; 3],
    },
}

/// The private-use status notify that carries a node's broadcast key K_i inside IKE_AUTH (data:
/// key index, then the 16-octet key; DECISIONS I26).
pub const BROADCAST_KEY_NOTIFY: u16 = 40961;

/// Our 6TSCH broadcast key K_i (6TSCH security framework R2-7, R2-8): the 802.15.4 key that
/// protects the broadcast frames we originate, named by key identifier mode 3 with our EUI-64
/// as key source and `index`. Sent to every peer inside IKE_AUTH; each peer sends its own.
#[derive(Clone)]
pub struct BroadcastKey {
    /// The key index (1–255; 0 is reserved in 802.15.4).
    pub index: u8,
    /// The key; `None` in a configuration: [`crate::session::Ikev2Factory::new`] draws one.
    pub key: Option<Arc<SecretBytes>>,
}

impl std::fmt::Debug for BroadcastKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BroadcastKey")
            .field("index", &self.index)
            .field("key", &self.key.as_ref().map(|_| "<secret>"))
            .finish()
    }
}

/// Childless IKE SA initiation (RFC 6023, DECISIONS I25), in strongSwan's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Childless {
    /// The responder announces CHILDLESS_IKEV2_SUPPORTED and accepts an IKE_AUTH without a
    /// child SA; the initiator creates the child SA in IKE_AUTH.
    #[default]
    Allow,
    /// The initiator creates the IKE SA alone (and fails if the responder does not announce
    /// support), then its child SA with CREATE_CHILD_SA; the responder refuses an IKE_AUTH
    /// that carries a child SA.
    Force,
    /// Neither: the responder does not announce support and needs the child SA in IKE_AUTH.
    Never,
}

fn default_ts() -> Vec<String> {
    vec!["::/0".into()]
}

fn default_ike() -> Vec<String> {
    vec!["aes128ccm8-prfsha256-ecp256".into()]
}
fn default_child() -> Vec<String> {
    vec!["aes128ccm8".into()]
}
fn default_retransmit_ms() -> u64 {
    1_000
}
fn default_max_retransmits() -> u32 {
    5
}
fn default_cookie_threshold() -> usize {
    32
}
fn default_nonce_len() -> usize {
    32
}
fn default_level() -> u8 {
    6
}

/// The IKEv2 KMP's configuration; see the [module docs](self).
#[derive(Clone)]
pub struct Ikev2Config {
    /// The pre-shared key (shared key MIC authentication).
    pub psk: Option<Arc<SecretBytes>>,
    /// IKE SA proposals, most preferred first.
    pub ike_proposals: Vec<IkeProposal>,
    /// Child SA proposals, most preferred first.
    pub child_proposals: Vec<ChildProposal>,
    /// First retransmission timeout; doubles with each retransmission.
    pub retransmit: Duration,
    /// Retransmissions before the exchange fails.
    pub max_retransmits: u32,
    /// Half-open responder SAs above which the responder demands a cookie.
    pub half_open_cookie_threshold: usize,
    /// Our nonce length (16–256, at least half the PRF key size).
    pub nonce_len: usize,
    /// Minimum security level of the installed link keys.
    pub min_security_level: SecurityLevel,
    /// Lifetime of the installed keys (`None`: no expiry).
    pub key_lifetime: Option<Duration>,
    /// IKEv2 or RKMP.
    pub profile: Profile,
    /// Our identity (IDi or IDr).
    pub local_id: IdentityConfig,
    /// The identity the peer must present; `None` accepts any (the PSK still has to match).
    pub remote_id: Option<IdentityConfig>,
    /// Our side of the child SA's traffic selectors (TSi on the initiator, TSr on the
    /// responder).
    pub local_ts: Vec<TrafficSelector>,
    /// The peer's side of the child SA's traffic selectors.
    pub remote_ts: Vec<TrafficSelector>,
    /// Set by the UDP binding, never from TOML: our and the peer's UDP address, for the
    /// NAT_DETECTION notifies in IKE_SA_INIT (RFC 7296 §2.23, DECISIONS I9). `None` over
    /// 802.15.9, where they are omitted.
    pub nat_detection: Option<(std::net::SocketAddr, std::net::SocketAddr)>,
    /// Rekey the child SA this long after it was made (`rekey_child_after_secs`, 0 = never;
    /// DECISIONS I10).
    pub rekey_child_after: Option<Duration>,
    /// Rekey the IKE SA this long after it was made (`rekey_ike_after_secs`, 0 = never).
    pub rekey_ike_after: Option<Duration>,
    /// Send an empty INFORMATIONAL after this long without hearing from the peer (`dpd_secs`,
    /// 0 = off; RFC 7296 §1.4).
    pub dpd: Option<Duration>,
    /// Child SA rekeys carry a KE of the IKE SA's group (perfect forward secrecy).
    pub pfs: bool,
    /// Childless IKE SA initiation (RFC 6023).
    pub childless: Childless,
    /// Our broadcast key, sent to the peer in IKE_AUTH; `None`: neither sent nor accepted.
    pub broadcast_key: Option<BroadcastKey>,
    /// Public-key credentials (`auth = "pubkey"`); when set they are used instead of the PSK.
    pub pubkey: Option<Arc<PublicKeyAuth>>,
    /// The wall-clock time at which the peer's certificates are checked; `None` (the default,
    /// never from TOML): the session's `now`, read as microseconds since the Unix epoch (what
    /// the runtime's system clock gives). A simulation on virtual time, and tests, set it.
    pub validation_time: Option<std::time::SystemTime>,
}

impl std::fmt::Debug for Ikev2Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ikev2Config")
            .field("psk", &self.psk.as_ref().map(|_| "<secret>"))
            .field("ike_proposals", &self.ike_proposals)
            .field("child_proposals", &self.child_proposals)
            .field("retransmit", &self.retransmit)
            .field("max_retransmits", &self.max_retransmits)
            .field(
                "half_open_cookie_threshold",
                &self.half_open_cookie_threshold,
            )
            .field("nonce_len", &self.nonce_len)
            .field("min_security_level", &self.min_security_level)
            .field("key_lifetime", &self.key_lifetime)
            .field("local_id", &self.local_id)
            .field("remote_id", &self.remote_id)
            .field("local_ts", &self.local_ts)
            .field("remote_ts", &self.remote_ts)
            .field("nat_detection", &self.nat_detection)
            .field("rekey_child_after", &self.rekey_child_after)
            .field("rekey_ike_after", &self.rekey_ike_after)
            .field("dpd", &self.dpd)
            .field("pfs", &self.pfs)
            .field("childless", &self.childless)
            .field("broadcast_key", &self.broadcast_key)
            .field("profile", &self.profile)
            .field("pubkey", &self.pubkey)
            .field("validation_time", &self.validation_time)
            .finish()
    }
}

impl Ikev2Config {
    /// Parses the TOML section (`profile` defaults to `"ikev2"`).
    pub fn from_toml(text: &str) -> Result<Ikev2Config, SessionError> {
        Self::parse(text, "ikev2")
    }

    /// Parses RKMP's TOML section: the same keys, `profile` defaults to `"rkmp"`.
    pub fn from_toml_rkmp(text: &str) -> Result<Ikev2Config, SessionError> {
        Self::parse(text, "rkmp")
    }

    fn parse(text: &str, default_profile: &str) -> Result<Ikev2Config, SessionError> {
        let raw: Raw = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
        let pubkey = pubkey_auth(&raw)?;
        let psk = match (raw.psk, raw.psk_hex) {
            (Some(_), Some(_)) => return Err(bad("give psk or psk_hex, not both".into())),
            (Some(p), None) => Some(SecretBytes::new(p.into_bytes())),
            (None, Some(h)) => Some(SecretBytes::new(
                hex_decode(&h).ok_or_else(|| bad("psk_hex: not hex".into()))?,
            )),
            (None, None) => None,
        };
        if psk.as_ref().is_some_and(|p| p.is_empty()) {
            return Err(bad("the PSK is empty".into()));
        }
        if raw.ike_proposals.is_empty() {
            return Err(bad("at least one IKE proposal".into()));
        }
        // No child proposals: an IKE SA alone, which only a childless initiation makes.
        if raw.child_proposals.is_empty() && raw.childless.as_deref() != Some("force") {
            return Err(bad(
                "at least one child proposal (none only with childless = \"force\")".into(),
            ));
        }
        if !(16..=256).contains(&raw.nonce_len) {
            return Err(bad("nonce_len must be 16..=256".into()));
        }
        if raw.min_security_level > 7 {
            return Err(bad("min_security_level must be 0..=7".into()));
        }
        if raw.retransmit_ms == 0 {
            return Err(bad("retransmit_ms must not be 0".into()));
        }
        let ike_proposals = raw
            .ike_proposals
            .iter()
            .map(|s| parse_ike_proposal(s))
            .collect::<Result<Vec<_>, _>>()?;
        if ike_proposals
            .iter()
            .any(|p| raw.nonce_len < p.prf.key_len() / 2)
        {
            return Err(bad("nonce_len below half the PRF key size".into()));
        }
        if raw.local_ts.is_empty() || raw.remote_ts.is_empty() {
            return Err(bad("local_ts and remote_ts must not be empty".into()));
        }
        let ts = |v: &[String]| {
            v.iter()
                .map(|s| parse_traffic_selector(s))
                .collect::<Result<Vec<_>, _>>()
        };
        if pubkey.is_some() && psk.is_some() {
            return Err(bad("auth = \"pubkey\" takes no psk".into()));
        }
        Ok(Ikev2Config {
            pubkey,
            validation_time: None,
            local_id: raw
                .local_id
                .as_deref()
                .map_or(Ok(IdentityConfig::Eui64), parse_identity)?,
            remote_id: raw.remote_id.as_deref().map(parse_identity).transpose()?,
            local_ts: ts(&raw.local_ts)?,
            remote_ts: ts(&raw.remote_ts)?,
            nat_detection: None,
            rekey_child_after: (raw.rekey_child_after_secs > 0)
                .then(|| Duration::from_secs(raw.rekey_child_after_secs)),
            rekey_ike_after: (raw.rekey_ike_after_secs > 0)
                .then(|| Duration::from_secs(raw.rekey_ike_after_secs)),
            dpd: (raw.dpd_secs > 0).then(|| Duration::from_secs(raw.dpd_secs)),
            pfs: raw.pfs,
            broadcast_key: broadcast_key(
                raw.broadcast_key,
                raw.broadcast_key_index,
                raw.broadcast_key_hex.as_deref(),
            )?,
            childless: match raw.childless.as_deref().unwrap_or("allow") {
                "allow" => Childless::Allow,
                "force" => Childless::Force,
                "never" => Childless::Never,
                s => {
                    return Err(bad(format!(
                        "unknown childless {s:?} (allow, force or never)"
                    )));
                }
            },
            psk: psk.map(Arc::new),
            ike_proposals,
            child_proposals: raw
                .child_proposals
                .iter()
                .map(|s| parse_child_proposal(s))
                .collect::<Result<Vec<_>, _>>()?,
            retransmit: Duration::from_millis(raw.retransmit_ms),
            max_retransmits: raw.max_retransmits,
            half_open_cookie_threshold: raw.half_open_cookie_threshold,
            nonce_len: raw.nonce_len,
            min_security_level: SecurityLevel::from_bits(raw.min_security_level),
            key_lifetime: (raw.key_lifetime_secs > 0)
                .then(|| Duration::from_secs(raw.key_lifetime_secs)),
            profile: match raw.profile.as_deref().unwrap_or(default_profile) {
                "ikev2" => {
                    if raw.routing_protocol.is_some() || raw.rkmp_exchange_types.is_some() {
                        return Err(bad(
                            "routing_protocol and rkmp_exchange_types need profile = \"rkmp\""
                                .into(),
                        ));
                    }
                    Profile::Ikev2
                }
                "rkmp" => {
                    let exchange_types = raw.rkmp_exchange_types.unwrap_or([240, 241, 242]);
                    if exchange_types.iter().any(|t| (34..=37).contains(t))
                        || exchange_types[0] == exchange_types[1]
                        || exchange_types[1] == exchange_types[2]
                        || exchange_types[0] == exchange_types[2]
                    {
                        return Err(bad("rkmp_exchange_types must be three distinct values other than IKEv2's 34-37".into()));
                    }
                    Profile::Rkmp {
                        routing_protocol: raw.routing_protocol.unwrap_or(1),
                        exchange_types,
                    }
                }
                p => return Err(bad(format!("unknown profile {p:?} (ikev2 or rkmp)"))),
            },
        })
    }

    /// The KMP ID the sessions serve: 3 for IKEv2, [`RKMP_KMP_ID`] for RKMP.
    pub fn kmp_id(&self) -> kmp_api::KmpId {
        match self.profile {
            Profile::Ikev2 => kmp_api::KmpId::Ikev2,
            Profile::Rkmp { .. } => RKMP_KMP_ID,
        }
    }
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strongswan_proposal_strings() {
        let p = parse_ike_proposal("aes128ccm8-prfsha256-ecp256").unwrap();
        assert_eq!(
            p,
            IkeProposal {
                encr: EncrAlg::AesCcm8,
                integ: IntegAlg::None,
                prf: PrfAlg::HmacSha256,
                dh: DhGroup::Ecp256
            }
        );
        let p = parse_ike_proposal("aes128-sha256-modp2048").unwrap();
        assert_eq!(p.integ, IntegAlg::HmacSha256_128);
        assert_eq!(p.prf, PrfAlg::HmacSha256);
        assert_eq!(
            parse_ike_proposal("aes128gcm16-prfaes128cmac-ecp256")
                .unwrap()
                .prf,
            PrfAlg::Aes128Cmac
        );
        for bad in [
            "",
            "aes128ccm8-ecp256",
            "aes128ccm8-sha256-prfsha256-ecp256",
            "aes128-prfsha256-ecp256",
            "aes128ccm8-aes128gcm16-prfsha256-ecp256",
            "aes128ccm8-prfsha256-ecp384",
            "aes128ccm8-prfsha256",
        ] {
            assert!(parse_ike_proposal(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_child_proposal("aes128ccm8").unwrap(),
            ChildProposal {
                encr: EncrAlg::AesCcm8,
                integ: IntegAlg::None
            }
        );
        assert!(parse_child_proposal("aes128").is_err());
        assert!(parse_child_proposal("aes128ccm8-sha256").is_err());
        assert!(parse_child_proposal("aes128-sha256").is_ok());
    }

    #[test]
    fn toml() {
        let c = Ikev2Config::from_toml("psk = \"secret\"").unwrap();
        assert_eq!(c.ike_proposals.len(), 1);
        assert_eq!(c.psk.unwrap().expose(), b"secret");
        assert!(Ikev2Config::from_toml("psk = \"\"").is_err());
        assert!(Ikev2Config::from_toml("psk = \"a\"\npsk_hex = \"00\"").is_err());
        assert!(Ikev2Config::from_toml("psk_hex = \"0g\"").is_err());
        assert!(Ikev2Config::from_toml("nonce_len = 8").is_err());
        assert!(Ikev2Config::from_toml("bogus = 1").is_err());
        assert!(Ikev2Config::from_toml("ike_proposals = []").is_err());
        let dbg = format!("{:?}", Ikev2Config::from_toml("psk = \"hidden\"").unwrap());
        assert!(!dbg.contains("hidden"), "{dbg}");
    }

    #[test]
    fn identities_and_selectors() {
        assert_eq!(parse_identity("eui64").unwrap(), IdentityConfig::Eui64);
        assert_eq!(
            parse_identity("fqdn:a.test").unwrap(),
            IdentityConfig::Explicit {
                id_type: 2,
                data: b"a.test".to_vec()
            }
        );
        assert_eq!(
            parse_identity("keyid:0215").unwrap(),
            IdentityConfig::Explicit {
                id_type: 11,
                data: vec![2, 0x15]
            }
        );
        assert_eq!(
            parse_identity("ipv4:127.0.0.1").unwrap(),
            IdentityConfig::Explicit {
                id_type: 1,
                data: vec![127, 0, 0, 1]
            }
        );
        for bad in [
            "",
            "fqdn:",
            "keyid:xy",
            "ipv4:1.2.3",
            "x:y",
            "initiator.test",
        ] {
            assert!(parse_identity(bad).is_err(), "{bad}");
        }
        let t = parse_traffic_selector("10.1.2.3/16").unwrap();
        assert_eq!((t.ts_type, t.start_port, t.end_port), (7, 0, 0xffff));
        assert_eq!(t.start_address, vec![10, 1, 0, 0]);
        assert_eq!(t.end_address, vec![10, 1, 255, 255]);
        let t = parse_traffic_selector("127.0.0.1").unwrap();
        assert_eq!(t.start_address, t.end_address);
        let t = parse_traffic_selector("10.1.2.3/13").unwrap();
        assert_eq!(t.start_address, vec![10, 0, 0, 0]);
        assert_eq!(t.end_address, vec![10, 7, 255, 255]);
        let t = parse_traffic_selector("::/0").unwrap();
        assert_eq!((t.ts_type, t.end_address), (8, vec![0xff; 16]));
        assert!(parse_traffic_selector("1.2.3.4/33").is_err());
        assert!(parse_traffic_selector("nope/3").is_err());
        let c = Ikev2Config::from_toml(
            "local_id = \"fqdn:i.test\"\nremote_id = \"fqdn:r.test\"\nlocal_ts = [\"127.0.0.1/32\"]",
        )
        .unwrap();
        assert_eq!(c.local_ts.len(), 1);
        assert_eq!(c.remote_ts[0].ts_type, 8);
        assert!(c.remote_id.is_some());
        assert!(Ikev2Config::from_toml("local_ts = []").is_err());
    }
}
