//! IKEv2 sessions (RFC 7296) over the sans-IO session contract: IKE_SA_INIT and IKE_AUTH with
//! shared-key MIC authentication, creating one child SA whose keys become 802.15.4 link keys
//! (DECISIONS I4), then INFORMATIONAL (liveness, delete) on the established IKE SA.
//!
//! - **Initiator**: proposes every configured IKE proposal with a KE for the first one's group;
//!   echoes a COOKIE, retries with the group an INVALID_KE_PAYLOAD asks for (if configured),
//!   retransmits with exponential back-off and a window of one.
//! - **Responder**: picks the first of the initiator's proposals it accepts; answers
//!   INVALID_KE_PAYLOAD when the initiator guessed another group and NO_PROPOSAL_CHOSEN when
//!   nothing matches; demands a cookie (statelessly, from the factory) above the configured
//!   number of half-open SAs; answers a retransmitted request with its cached response.
//! - A failed AUTH check fails the exchange with AUTHENTICATION_FAILED and installs nothing.
//!   AUTH is a shared key MIC or a signature with a certificate or raw public key ([`crate::auth`]).
//! - **Established** (both roles): CREATE_CHILD_SA rekeys of the child SA and of the IKE SA,
//!   begun by timers (`rekey_child_after_secs`, `rekey_ike_after_secs`) or by the peer, and
//!   liveness checks after `dpd_secs` of silence (DECISIONS I10–I13); a second child SA is
//!   refused with NO_ADDITIONAL_SAS.
//! - **Childless IKE SAs** (RFC 6023, `childless`, DECISIONS I25): announced by the responder,
//!   used by a `force` initiator, whose child SA then comes in its own CREATE_CHILD_SA.
//! - **Broadcast keys** (`broadcast_key`, DECISIONS I26): each side's 6TSCH K_i travels in
//!   IKE_AUTH and becomes the peer's mode-3 group receive key for that originator.

use std::collections::VecDeque;
use std::sync::Arc;

use kmp_api::primitives::MacStatus;
use kmp_api::rng::RngHandle;
use kmp_api::security::{KeyIdentifier, KeySource};
use kmp_api::session::{
    Action, EstablishedSa, FailureReason, KeyDirection, KeyInstall, KeyScope, KmpFactory,
    KmpSession, LinkKey, Outcome, Role, SecretBytes, SessionContext, SessionError, UpperLayerSa,
};
use kmp_api::{ExtendedAddress, Instant, KmpId};

use crate::auth::{self, PeerInit, SignedData};
use crate::config::{
    BROADCAST_KEY_NOTIFY, ChildProposal, Childless, IdentityConfig, IkeProposal, Ikev2Config,
    Profile, ROUTING_PROTOCOL_NOTIFY,
};
use crate::crypto::{
    DhGroup, DhPrivate, EncrAlg, IkeSaKeys, IntegAlg, PrfAlg, SkCipher, child_keymat,
    derive_ike_sa_keys,
};
use crate::wire::{
    self, ExchangeType, Flags, Header, IdPayload, KePayload, Message, NotifyPayload, Payload,
    Proposal, SaPayload, TrafficSelector, Transform, TsPayload, notify, payload_type, transform,
};

/// ID_KEY_ID (RFC 7296 §3.5): our EUI-64 is sent as an 8-octet key ID (DECISIONS I3).
const ID_KEY_ID: u8 = 11;
/// Protocol IDs (RFC 7296 §3.3.1).
const PROTO_IKE: u8 = 1;
const PROTO_ESP: u8 = 3;

fn encr_transform(e: EncrAlg) -> Transform {
    Transform {
        transform_type: transform::TYPE_ENCR,
        id: e.transform_id(),
        key_length: Some(128),
        other_attributes: vec![],
    }
}

fn ike_proposal_payload(number: u8, p: &IkeProposal, spi: &[u8]) -> Proposal {
    let mut t = vec![encr_transform(p.encr)];
    t.push(Transform {
        transform_type: transform::TYPE_PRF,
        id: p.prf.transform_id(),
        key_length: None,
        other_attributes: vec![],
    });
    if p.integ != IntegAlg::None {
        t.push(Transform {
            transform_type: transform::TYPE_INTEG,
            id: p.integ.transform_id(),
            key_length: None,
            other_attributes: vec![],
        });
    }
    t.push(Transform {
        transform_type: transform::TYPE_DH,
        id: p.dh.transform_id(),
        key_length: None,
        other_attributes: vec![],
    });
    Proposal {
        number,
        protocol: PROTO_IKE,
        spi: spi.to_vec(),
        transforms: t,
    }
}

fn child_proposal_payload(number: u8, p: &ChildProposal, spi: [u8; 4]) -> Proposal {
    let mut t = vec![encr_transform(p.encr)];
    if p.integ != IntegAlg::None {
        t.push(Transform {
            transform_type: transform::TYPE_INTEG,
            id: p.integ.transform_id(),
            key_length: None,
            other_attributes: vec![],
        });
    }
    t.push(Transform {
        transform_type: transform::TYPE_ESN,
        id: 0,
        key_length: None,
        other_attributes: vec![],
    });
    Proposal {
        number,
        protocol: PROTO_ESP,
        spi: spi.to_vec(),
        transforms: t,
    }
}

/// The algorithms a received IKE proposal names, if it names exactly one of each needed type
/// with values we know.
fn read_ike_proposal(p: &Proposal) -> Option<IkeProposal> {
    if p.protocol != PROTO_IKE {
        return None;
    }
    let (mut encr, mut integ, mut prf, mut dh) = (None, IntegAlg::None, None, None);
    for t in &p.transforms {
        match t.transform_type {
            transform::TYPE_ENCR => {
                encr = Some(EncrAlg::from_transform_id(t.id, t.key_length)?);
            }
            transform::TYPE_PRF => prf = Some(PrfAlg::from_transform_id(t.id)?),
            transform::TYPE_INTEG => integ = IntegAlg::from_transform_id(t.id)?,
            transform::TYPE_DH => dh = Some(DhGroup::from_transform_id(t.id)?),
            _ => return None,
        }
    }
    let encr = encr?;
    if encr.is_aead() != (integ == IntegAlg::None) {
        return None;
    }
    Some(IkeProposal {
        encr,
        integ,
        prf: prf?,
        dh: dh?,
    })
}

fn read_child_proposal(p: &Proposal) -> Option<(ChildProposal, [u8; 4])> {
    if p.protocol != PROTO_ESP {
        return None;
    }
    let spi: [u8; 4] = p.spi.as_slice().try_into().ok()?;
    let (mut encr, mut integ) = (None, IntegAlg::None);
    for t in &p.transforms {
        match t.transform_type {
            transform::TYPE_ENCR => {
                encr = Some(EncrAlg::from_transform_id(t.id, t.key_length)?);
            }
            transform::TYPE_INTEG => integ = IntegAlg::from_transform_id(t.id)?,
            // No extended sequence numbers (the link layer has its own frame counter).
            transform::TYPE_ESN if t.id == 0 => {}
            _ => return None,
        }
    }
    let encr = encr?;
    (encr.is_aead() == (integ == IntegAlg::None)).then_some((ChildProposal { encr, integ }, spi))
}

/// The intersection of two selectors of the same type, if not empty.
fn intersect(a: &TrafficSelector, b: &TrafficSelector) -> Option<TrafficSelector> {
    if a.ts_type != b.ts_type || a.start_address.len() != b.start_address.len() {
        return None;
    }
    let ip_protocol = match (a.ip_protocol, b.ip_protocol) {
        (0, p) | (p, 0) => p,
        (p, q) if p == q => p,
        _ => return None,
    };
    let (start_port, end_port) = (a.start_port.max(b.start_port), a.end_port.min(b.end_port));
    // Addresses of equal length compare as big-endian numbers.
    let start_address = a.start_address.clone().max(b.start_address.clone());
    let end_address = a.end_address.clone().min(b.end_address.clone());
    (start_port <= end_port && start_address <= end_address).then_some(TrafficSelector {
        ts_type: a.ts_type,
        ip_protocol,
        start_port,
        end_port,
        start_address,
        end_address,
    })
}

/// Responder narrowing (RFC 7296 §2.9): every non-empty intersection of an offered selector
/// with a configured one (DECISIONS I6).
fn narrow(offered: &[TrafficSelector], ours: &[TrafficSelector]) -> Vec<TrafficSelector> {
    let mut out: Vec<TrafficSelector> = Vec::new();
    for o in offered {
        for c in ours {
            if let Some(t) = intersect(o, c)
                && !out.contains(&t)
            {
                out.push(t);
            }
        }
    }
    out
}

fn notify_payload(notify_type: u16, data: Vec<u8>) -> Payload {
    Payload::Notify(NotifyPayload {
        protocol: 0,
        spi: vec![],
        notify_type,
        data,
    })
}

/// NAT_DETECTION_*_IP data (RFC 7296 §2.23): SHA-1(SPIi ‖ SPIr ‖ IP ‖ port).
fn nat_hash(spi_i: &[u8; 8], spi_r: &[u8; 8], addr: std::net::SocketAddr) -> Vec<u8> {
    let ip = match addr.ip() {
        std::net::IpAddr::V4(a) => a.octets().to_vec(),
        std::net::IpAddr::V6(a) => a.octets().to_vec(),
    };
    let data = [&spi_i[..], &spi_r[..], &ip, &addr.port().to_be_bytes()].concat();
    kmp_api::crypto::hmac::sha1(&data).to_vec()
}

/// The NAT_DETECTION_SOURCE_IP and _DESTINATION_IP notifies for a message from `local` to
/// `remote`, when the UDP binding gave the addresses.
fn nat_notifies(cfg: &Ikev2Config, spi_i: &[u8; 8], spi_r: &[u8; 8]) -> Vec<Payload> {
    cfg.nat_detection
        .map(|(local, remote)| {
            vec![
                notify_payload(
                    notify::NAT_DETECTION_SOURCE_IP,
                    nat_hash(spi_i, spi_r, local),
                ),
                notify_payload(
                    notify::NAT_DETECTION_DESTINATION_IP,
                    nat_hash(spi_i, spi_r, remote),
                ),
            ]
        })
        .unwrap_or_default()
}

fn find_notify(payloads: &[Payload], t: u16) -> Option<&NotifyPayload> {
    payloads.iter().find_map(|p| match p {
        Payload::Notify(n) if n.notify_type == t => Some(n),
        _ => None,
    })
}

/// An error notify (types below 16384) in a response, if any.
fn error_notify(payloads: &[Payload]) -> Option<u16> {
    payloads.iter().find_map(|p| match p {
        Payload::Notify(n) if n.notify_type < 16384 => Some(n.notify_type),
        _ => None,
    })
}

fn id_payload(id: &IdentityConfig, local: ExtendedAddress) -> IdPayload {
    match id {
        // Over 802.15.9 a device names itself by its EUI-64 (DECISIONS I3).
        IdentityConfig::Eui64 => IdPayload {
            id_type: ID_KEY_ID,
            data: local.0.to_vec(),
        },
        IdentityConfig::Explicit { id_type, data } => IdPayload {
            id_type: *id_type,
            data: data.clone(),
        },
    }
}

/// The exchange type sent on the wire for an exchange of the profile (RKMP renumbers them).
fn wire_exchange(profile: &Profile, e: ExchangeType) -> ExchangeType {
    match (profile, e) {
        (Profile::Ikev2, e) => e,
        (Profile::Rkmp { exchange_types, .. }, ExchangeType::IkeSaInit) => {
            ExchangeType::Other(exchange_types[0])
        }
        (Profile::Rkmp { exchange_types, .. }, ExchangeType::IkeAuth) => {
            ExchangeType::Other(exchange_types[1])
        }
        (Profile::Rkmp { exchange_types, .. }, ExchangeType::CreateChildSa) => {
            ExchangeType::Other(exchange_types[2])
        }
        (Profile::Rkmp { .. }, e) => e,
    }
}

/// The exchange a received exchange type means in the profile. Under RKMP the IKEv2 numbers
/// of the exchanges it renumbers mean nothing (an IKEv2 message is not an RKMP message).
fn logical_exchange(profile: &Profile, e: ExchangeType) -> ExchangeType {
    match profile {
        Profile::Ikev2 => e,
        Profile::Rkmp { exchange_types, .. } => match e {
            ExchangeType::Other(t) if t == exchange_types[0] => ExchangeType::IkeSaInit,
            ExchangeType::Other(t) if t == exchange_types[1] => ExchangeType::IkeAuth,
            ExchangeType::Other(t) if t == exchange_types[2] => ExchangeType::CreateChildSa,
            ExchangeType::IkeSaInit | ExchangeType::IkeAuth | ExchangeType::CreateChildSa => {
                ExchangeType::Other(e.to_u8())
            }
            e => e,
        },
    }
}

/// The selectors of an optional TS payload (none if absent).
fn selectors(t: Option<&TsPayload>) -> &[TrafficSelector] {
    t.map(|t| t.selectors.as_slice()).unwrap_or_default()
}

/// The routing protocol an RKMP IKE_AUTH message names, if any.
fn routing_protocol_of(payloads: &[Payload]) -> Option<u16> {
    find_notify(payloads, ROUTING_PROTOCOL_NOTIFY)
        .and_then(|n| <[u8; 2]>::try_from(n.data.as_slice()).ok())
        .map(u16::from_be_bytes)
}

/// The SA, KE, Nonce and traffic-selector payloads of a message, found in one pass (the last
/// of each kind wins).
#[derive(Default)]
struct Found<'a> {
    sa: Option<&'a SaPayload>,
    ke: Option<&'a KePayload>,
    nonce: Option<&'a Vec<u8>>,
    tsi: Option<&'a TsPayload>,
    tsr: Option<&'a TsPayload>,
}

impl<'a> Found<'a> {
    fn of(payloads: &'a [Payload]) -> Found<'a> {
        let mut f = Found::default();
        for p in payloads {
            match p {
                Payload::Sa(s) => f.sa = Some(s),
                Payload::Ke(k) => f.ke = Some(k),
                Payload::Nonce(n) => f.nonce = Some(n),
                Payload::TsI(t) => f.tsi = Some(t),
                Payload::TsR(t) => f.tsr = Some(t),
                _ => {}
            }
        }
        f
    }
}

/// The keyed state of an IKE SA.
struct IkeSa {
    proposal: IkeProposal,
    spi_i: [u8; 8],
    spi_r: [u8; 8],
    keys: IkeSaKeys,
    /// Protects what the initiator sends.
    c_i: SkCipher,
    /// Protects what the responder sends.
    c_r: SkCipher,
    ni: Vec<u8>,
    nr: Vec<u8>,
}

impl IkeSa {
    /// The SA with its ciphers, from keys derived by `new` or `rekeyed`.
    fn from_keys(
        proposal: IkeProposal,
        spi_i: [u8; 8],
        spi_r: [u8; 8],
        keys: IkeSaKeys,
        ni: Vec<u8>,
        nr: Vec<u8>,
    ) -> Result<IkeSa, SessionError> {
        let cipher = |e: &SecretBytes, a: &SecretBytes| {
            SkCipher::new(proposal.encr, proposal.integ, e.expose(), a.expose())
        };
        let c_i = cipher(&keys.sk_ei, &keys.sk_ai)?;
        let c_r = cipher(&keys.sk_er, &keys.sk_ar)?;
        Ok(IkeSa {
            proposal,
            spi_i,
            spi_r,
            keys,
            c_i,
            c_r,
            ni,
            nr,
        })
    }

    fn new(
        proposal: IkeProposal,
        spi_i: [u8; 8],
        spi_r: [u8; 8],
        ni: Vec<u8>,
        nr: Vec<u8>,
        g_ir: &[u8],
    ) -> Result<IkeSa, SessionError> {
        let keys = derive_ike_sa_keys(
            proposal.prf,
            proposal.encr,
            proposal.integ,
            &ni,
            &nr,
            g_ir,
            &spi_i,
            &spi_r,
        )?;
        IkeSa::from_keys(proposal, spi_i, spi_r, keys, ni, nr)
    }
}

/// A child SA's SPIs: the initiator's (of the exchange that made it), then the responder's.
type ChildSpis = ([u8; 4], [u8; 4]);

/// A request we sent and may retransmit.
struct Outstanding {
    message_id: u32,
    raw: Vec<u8>,
    retransmits: u32,
    deadline: Instant,
}

enum State {
    /// Initiator: IKE_SA_INIT request sent.
    InitSent {
        proposal_group: DhGroup,
        dh: DhPrivate,
        ni: Vec<u8>,
        cookie: Option<Vec<u8>>,
        request: Vec<u8>,
    },
    /// Initiator: IKE_AUTH request sent.
    AuthSent {
        sa: Box<IkeSa>,
        /// Our inbound SPI of the child SA offered; `None`: a childless IKE_AUTH (RFC 6023).
        child_spi: Option<[u8; 4]>,
        /// The responder's IKE_SA_INIT response (signed by its AUTH).
        init_response: Vec<u8>,
    },
    /// Responder: waiting for the IKE_SA_INIT request.
    Listening,
    /// Responder: IKE_SA_INIT answered, waiting for IKE_AUTH.
    InitAnswered {
        sa: Box<IkeSa>,
        /// Our IKE_SA_INIT response (signed by our AUTH).
        response: Vec<u8>,
        /// The initiator's IKE_SA_INIT request (signed by its AUTH).
        request: Vec<u8>,
        /// We announced CHILDLESS_IKEV2_SUPPORTED (RFC 6023): IKE_AUTH may come without a
        /// child SA.
        childless: bool,
    },
    /// Both sides: the IKE SA and its child SA exist (no child SA: a childless IKE SA, RFC
    /// 6023, until a CREATE_CHILD_SA makes one).
    Established {
        sa: Box<IkeSa>,
        child: Option<ChildSa>,
        /// The SPIs (ours, theirs) of the child SA the peer's last rekey replaced, until the
        /// peer deletes it.
        old_child: Option<([u8; 4], [u8; 4])>,
        /// The IKE SA our answer to the peer's rekey made (and whether we are its initiator),
        /// in use once the old one is deleted; or ours, once our delete of the old is answered.
        next_ike: Option<(Box<IkeSa>, bool)>,
        /// When the IKE SA was made (for `rekey_ike_after`).
        ike_since: Instant,
    },
    Closed,
}

/// One IKEv2 session; see the [module docs](self).
pub struct Ikev2Session {
    cfg: Arc<Ikev2Config>,
    role: Role,
    local: ExtendedAddress,
    peer: ExtendedAddress,
    rng: RngHandle,
    state: State,
    actions: VecDeque<Action>,
    outstanding: Option<Outstanding>,
    /// Initiator: next request's message ID.
    next_request_id: u32,
    /// Responder: the message ID we expect next, and our cached last response.
    expected_request_id: u32,
    last_response: Option<(u32, Vec<u8>)>,
    /// Whether we are the current IKE SA's initiator (the I flag and which SK keys we use):
    /// our role at first, the rekey's initiator after an IKE SA rekey (RFC 7296 §2.18).
    ike_initiator: bool,
    /// What our outstanding request on the established SA was.
    pending: Option<Pending>,
    /// When we last heard from the peer (for `dpd`).
    last_heard: Instant,
    deadline: Option<Instant>,
    finished: bool,
    /// What the peer's IKE_SA_INIT said about signature authentication.
    peer_init: PeerInit,
    /// Link keys and SAs handed to the PIB so far (for KMP-FINISHED).
    installed: usize,
}

/// An error while building an encrypted message: the codec's or the cipher's.
struct SealFail(SessionError);

impl From<wire::WireError> for SealFail {
    fn from(e: wire::WireError) -> SealFail {
        SealFail(internal(e))
    }
}

fn internal(e: impl std::fmt::Display) -> SessionError {
    SessionError::Config(format!("ikev2 internal: {e}"))
}

impl Ikev2Session {
    fn new(cfg: Arc<Ikev2Config>, ctx: &SessionContext) -> Ikev2Session {
        Ikev2Session {
            cfg,
            role: ctx.role,
            local: ctx.local,
            peer: ctx.peer,
            rng: ctx.rng.clone(),
            state: if ctx.role == Role::Initiator {
                State::Closed
            } else {
                State::Listening
            },
            actions: VecDeque::new(),
            outstanding: None,
            next_request_id: 0,
            expected_request_id: 0,
            last_response: None,
            ike_initiator: ctx.role == Role::Initiator,
            pending: None,
            last_heard: ctx.now,
            deadline: None,
            finished: false,
            peer_init: PeerInit::default(),
            installed: 0,
        }
    }

    fn random<const N: usize>(&self) -> Result<[u8; N], SessionError> {
        let mut b = [0u8; N];
        self.rng.fill(&mut b)?;
        Ok(b)
    }

    fn nonce(&self) -> Result<Vec<u8>, SessionError> {
        let mut n = vec![0u8; self.cfg.nonce_len];
        self.rng.fill(&mut n)?;
        Ok(n)
    }

    /// Hands keys to the PIB, counting them for KMP-FINISHED.
    fn install(&mut self, k: KeyInstall) {
        self.installed += k.link_keys.len() + k.upper_layer_sas.len();
        self.actions.push_back(Action::InstallKeys(k));
    }

    /// Our broadcast key K_i as the status notify that carries it inside IKE_AUTH (DECISIONS
    /// I26), if configured.
    fn broadcast_key_notify(&self) -> Option<Payload> {
        let b = self.cfg.broadcast_key.as_ref()?;
        let key = b.key.as_ref()?;
        let mut data = Vec::with_capacity(17);
        data.push(b.index);
        data.extend_from_slice(key.expose());
        Some(notify_payload(BROADCAST_KEY_NOTIFY, data))
    }

    /// The peer's broadcast key from its IKE_AUTH, as the receive key of the broadcast frames
    /// it originates (key identifier mode 3: its EUI-64 and the index). `Ok(None)`: it sent
    /// none, or we do not use broadcast keys; `Err`: a malformed one.
    fn peer_broadcast_key(&self, inner: &[Payload]) -> Result<Option<LinkKey>, SessionError> {
        if self.cfg.broadcast_key.is_none() {
            return Ok(None);
        }
        let Some(n) = find_notify(inner, BROADCAST_KEY_NOTIFY) else {
            return Ok(None);
        };
        match n.data.split_first() {
            Some((&index, key)) if index != 0 && key.len() == 16 => Ok(Some(LinkKey {
                key: SecretBytes::from_slice(key),
                lookup: KeyIdentifier::SourceIndex(KeySource::Eight(self.peer.0), index),
                scope: KeyScope::Group,
                direction: KeyDirection::Receive,
                min_security_level: self.cfg.min_security_level,
                lifetime: self.cfg.key_lifetime,
            })),
            _ => Err(SessionError::Malformed(format!(
                "broadcast key notify of {} octets (index 1-255 and 16 key octets)",
                n.data.len()
            ))),
        }
    }

    fn fail(&mut self, reason: FailureReason) {
        if !self.finished {
            self.finished = true;
            tracing::info!(peer = %self.peer, %reason, "IKEv2 exchange failed");
            self.actions
                .push_back(Action::Finished(Outcome::Failure(reason)));
        }
        self.state = State::Closed;
        self.outstanding = None;
        self.deadline = None;
    }

    /// Sends a request and keeps it for retransmission.
    fn send_request(&mut self, now: Instant, message_id: u32, raw: Vec<u8>) {
        self.actions.push_back(Action::Send(raw.clone()));
        self.outstanding = Some(Outstanding {
            message_id,
            raw,
            retransmits: 0,
            deadline: now + self.cfg.retransmit,
        });
    }

    fn send_response(&mut self, message_id: u32, raw: Vec<u8>) {
        self.actions.push_back(Action::Send(raw.clone()));
        self.last_response = Some((message_id, raw));
    }

    fn header(
        &self,
        spi_i: [u8; 8],
        spi_r: [u8; 8],
        exchange: ExchangeType,
        response: bool,
        message_id: u32,
    ) -> Header {
        Header {
            spi_i,
            spi_r,
            next_payload: payload_type::NONE,
            major_version: 2,
            minor_version: 0,
            exchange: wire_exchange(&self.cfg.profile, exchange),
            flags: Flags {
                initiator: self.ike_initiator,
                version: false,
                response,
            },
            message_id,
            length: 0,
        }
    }

    /// An encrypted message on `sa` carrying `inner`.
    fn seal(
        &self,
        sa: &IkeSa,
        exchange: ExchangeType,
        response: bool,
        message_id: u32,
        inner: &[Payload],
    ) -> Result<Vec<u8>, SessionError> {
        let header = self.header(sa.spi_i, sa.spi_r, exchange, response, message_id);
        let (first, plaintext) = wire::emit_payloads(inner);
        let cipher = if self.ike_initiator { &sa.c_i } else { &sa.c_r };
        let body_len = cipher.sealed_len(plaintext.len());
        wire::emit_with_sk(&header, &[], first, body_len, |aad| {
            cipher
                .seal(aad, &plaintext, &self.rng)
                .map_err(|e| SealFail(SessionError::from(e)))
        })
        .map_err(|f: SealFail| f.0)
    }

    /// The payloads inside the SK payload of a message from the peer.
    fn open(&self, sa: &IkeSa, raw: &[u8]) -> Result<Vec<Payload>, SessionError> {
        let parts = wire::sk_parts(raw).map_err(|e| SessionError::Malformed(e.to_string()))?;
        let cipher = if self.ike_initiator { &sa.c_r } else { &sa.c_i };
        let plaintext = cipher
            .open(parts.aad, parts.body)
            .map_err(|_| SessionError::VerificationFailed("SK payload integrity check failed"))?;
        wire::parse_payloads(parts.first_inner, &plaintext)
            .map_err(|e| SessionError::Malformed(e.to_string()))
    }

    /// What the signer's AUTH covers (RFC 7296 §2.15).
    fn signed_data<'a>(
        sa: &'a IkeSa,
        signer_is_initiator: bool,
        signed_message: &'a [u8],
        id: &'a IdPayload,
    ) -> SignedData<'a> {
        let (peer_nonce, sk_p) = if signer_is_initiator {
            (&sa.nr, &sa.keys.sk_pi)
        } else {
            (&sa.ni, &sa.keys.sk_pr)
        };
        SignedData {
            message: signed_message,
            peer_nonce,
            prf: sa.proposal.prf,
            sk_p: sk_p.expose(),
            id,
        }
    }

    /// Our CERT payloads (if any) and AUTH payload.
    fn auth_payloads(
        &self,
        sa: &IkeSa,
        signer_is_initiator: bool,
        signed_message: &[u8],
        id: &IdPayload,
    ) -> Result<Vec<Payload>, SessionError> {
        auth::build(
            self.cfg.psk.as_ref(),
            self.cfg.pubkey.as_deref(),
            &self.peer_init,
            &Self::signed_data(sa, signer_is_initiator, signed_message, id),
        )
    }

    /// Whether the peer's AUTH (with its CERTs) verifies; logs why not.
    fn auth_ok(
        &self,
        now: Instant,
        sa: &IkeSa,
        signer_is_initiator: bool,
        signed_message: &[u8],
        id: &IdPayload,
        payloads: &[Payload],
    ) -> bool {
        // Certificates are checked at the session's own time: the runtime's system clock
        // counts microseconds since the Unix epoch (mpx::runtime::Clock::System), so no wall
        // clock is read here; a simulation on virtual time sets `validation_time`.
        let now = self.cfg.validation_time.unwrap_or_else(|| {
            std::time::UNIX_EPOCH + std::time::Duration::from_micros(now.as_micros())
        });
        match auth::verify(
            self.cfg.psk.as_ref(),
            self.cfg.pubkey.as_deref(),
            payloads,
            &Self::signed_data(sa, signer_is_initiator, signed_message, id),
            now,
        ) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(peer = %self.peer, reason = %e, "IKE_AUTH: the peer's AUTH does not verify");
                false
            }
        }
    }

    fn our_id(&self) -> IdPayload {
        id_payload(&self.cfg.local_id, self.local)
    }

    /// Whether the peer's ID is the configured `remote_id` (any ID when none is configured;
    /// `eui64` then means the peer's EUI-64 as ID_KEY_ID). DECISIONS I5.
    fn peer_id_ok(&self, id: &IdPayload) -> bool {
        self.cfg
            .remote_id
            .as_ref()
            .is_none_or(|want| id_payload(want, self.peer) == *id)
    }

    // ----- initiator -----

    fn start_initiator(&mut self, now: Instant, group: DhGroup) -> Result<(), SessionError> {
        let spi_i: [u8; 8] = match &self.state {
            State::InitSent { request, .. } => request
                .get(..8)
                .and_then(|s| s.try_into().ok())
                .ok_or_else(|| internal("request too short"))?,
            _ => self.random()?,
        };
        let ni = match &self.state {
            State::InitSent { ni, .. } => ni.clone(),
            _ => self.nonce()?,
        };
        let cookie = match &self.state {
            State::InitSent { cookie, .. } => cookie.clone(),
            _ => None,
        };
        self.send_init(now, spi_i, group, ni, cookie)
    }

    fn send_init(
        &mut self,
        now: Instant,
        spi_i: [u8; 8],
        group: DhGroup,
        ni: Vec<u8>,
        cookie: Option<Vec<u8>>,
    ) -> Result<(), SessionError> {
        let dh = group.generate(&self.rng)?;
        let proposals = self
            .cfg
            .ike_proposals
            .iter()
            .enumerate()
            .map(|(i, p)| ike_proposal_payload(u8::try_from(i + 1).unwrap_or(u8::MAX), p, &[]))
            .collect();
        let mut payloads = Vec::new();
        if let Some(c) = &cookie {
            payloads.push(notify_payload(notify::COOKIE, c.clone()));
        }
        payloads.push(Payload::Sa(SaPayload { proposals }));
        payloads.push(Payload::Ke(KePayload {
            group: group.transform_id(),
            data: dh.public(),
        }));
        payloads.push(Payload::Nonce(ni.clone()));
        payloads.extend(nat_notifies(&self.cfg, &spi_i, &[0; 8]));
        if self.cfg.pubkey.is_some() {
            payloads.push(auth::signature_hash_notify());
        }
        if self.cfg.childless == Childless::Force {
            payloads.push(notify_payload(notify::CHILDLESS_IKEV2_SUPPORTED, vec![]));
        }
        let msg = Message {
            header: self.header(spi_i, [0; 8], ExchangeType::IkeSaInit, false, 0),
            payloads,
        };
        let raw = msg.emit();
        self.state = State::InitSent {
            proposal_group: group,
            dh,
            ni,
            cookie,
            request: raw.clone(),
        };
        self.next_request_id = 1;
        self.send_request(now, 0, raw);
        Ok(())
    }

    fn on_init_response(
        &mut self,
        now: Instant,
        raw: &[u8],
        msg: Message,
    ) -> Result<(), SessionError> {
        let State::InitSent {
            proposal_group,
            ni,
            request,
            ..
        } = &self.state
        else {
            return Err(SessionError::UnexpectedMessage {
                expected: "nothing",
                got: "IKE_SA_INIT response".into(),
            });
        };
        let (proposal_group, spi_i) = (*proposal_group, msg.header.spi_i);
        if request.get(..8) != Some(&spi_i[..]) {
            return Err(SessionError::Malformed(
                "IKE_SA_INIT response for another SPI".into(),
            ));
        }
        if let Some(c) = find_notify(&msg.payloads, notify::COOKIE) {
            if c.data.is_empty() || c.data.len() > 64 {
                return Err(SessionError::Malformed("COOKIE of a bad length".into()));
            }
            let (ni, c) = (ni.clone(), c.data.clone());
            tracing::debug!(peer = %self.peer, "responder asks for a cookie");
            return self.send_init(now, spi_i, proposal_group, ni, Some(c));
        }
        if let Some(n) = find_notify(&msg.payloads, notify::INVALID_KE_PAYLOAD) {
            let wanted = n
                .data
                .get(..2)
                .map(|b| u16::from_be_bytes([b[0], b[1]]))
                .and_then(DhGroup::from_transform_id);
            return match wanted {
                Some(g)
                    if g != proposal_group && self.cfg.ike_proposals.iter().any(|p| p.dh == g) =>
                {
                    tracing::debug!(peer = %self.peer, group = g.transform_id(), "INVALID_KE_PAYLOAD: retrying with the requested group");
                    let ni = ni.clone();
                    let cookie = match &self.state {
                        State::InitSent { cookie, .. } => cookie.clone(),
                        _ => None,
                    };
                    self.send_init(now, spi_i, g, ni, cookie)
                }
                _ => {
                    self.fail(FailureReason::NegotiationFailed);
                    Ok(())
                }
            };
        }
        if let Some(code) = error_notify(&msg.payloads) {
            self.fail(if code == notify::NO_PROPOSAL_CHOSEN {
                FailureReason::NegotiationFailed
            } else {
                FailureReason::RejectedByPeer {
                    code: u32::from(code),
                }
            });
            return Ok(());
        }
        self.peer_init = auth::read_init(&msg.payloads);
        let Found {
            sa: sa_p,
            ke,
            nonce: nr,
            ..
        } = Found::of(&msg.payloads);
        let (Some(sa_p), Some(ke), Some(nr)) = (sa_p, ke, nr) else {
            return Err(SessionError::Malformed(
                "IKE_SA_INIT response lacks SA, KE or Nr".into(),
            ));
        };
        let childless = self.cfg.childless == Childless::Force;
        if childless && find_notify(&msg.payloads, notify::CHILDLESS_IKEV2_SUPPORTED).is_none() {
            tracing::warn!(peer = %self.peer, "childless = force, but the responder does not support childless IKE SAs (RFC 6023)");
            self.fail(FailureReason::NegotiationFailed);
            return Ok(());
        }
        if !(16..=256).contains(&nr.len()) {
            return Err(SessionError::Malformed("Nr length".into()));
        }
        let chosen = match sa_p.proposals.as_slice() {
            [one] => read_ike_proposal(one),
            _ => None,
        };
        let Some(chosen) = chosen.filter(|c| self.cfg.ike_proposals.contains(c)) else {
            self.fail(FailureReason::ProtocolViolation(
                "responder chose a proposal we did not offer".into(),
            ));
            return Ok(());
        };
        if chosen.dh != proposal_group || ke.group != proposal_group.transform_id() {
            self.fail(FailureReason::ProtocolViolation("KE group mismatch".into()));
            return Ok(());
        }
        let State::InitSent {
            dh, ni, request, ..
        } = std::mem::replace(&mut self.state, State::Closed)
        else {
            return Err(internal("state"));
        };
        let g_ir = match dh.shared(&ke.data) {
            Ok(s) => s,
            Err(e) => {
                self.fail(FailureReason::ProtocolViolation(format!("bad KE: {e}")));
                return Ok(());
            }
        };
        let sa = IkeSa::new(
            chosen,
            spi_i,
            msg.header.spi_r,
            ni,
            nr.clone(),
            g_ir.expose(),
        )?;
        // IKE_AUTH request: SK{IDi, AUTH, SA, TSi, TSr}; childless: SK{IDi, AUTH}.
        let id = self.our_id();
        let auth = self.auth_payloads(&sa, true, &request, &id)?;
        // IDi, [CERT+], [CERTREQ], AUTH (RFC 7296 §1.2).
        let mut inner = vec![Payload::IdI(id)];
        let (cert_auth, auth_p) = auth.split_at(auth.len().saturating_sub(1));
        inner.extend_from_slice(cert_auth);
        inner.extend(auth::certreq(self.cfg.pubkey.as_deref()));
        inner.extend_from_slice(auth_p);
        inner.extend(self.broadcast_key_notify());
        let child_spi = if childless {
            None
        } else {
            let child_spi: [u8; 4] = self.random()?;
            let child_proposals = self
                .cfg
                .child_proposals
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    child_proposal_payload(u8::try_from(i + 1).unwrap_or(u8::MAX), p, child_spi)
                })
                .collect();
            inner.push(Payload::Sa(SaPayload {
                proposals: child_proposals,
            }));
            self.add_selectors(
                &mut inner,
                self.cfg.local_ts.clone(),
                self.cfg.remote_ts.clone(),
            );
            Some(child_spi)
        };
        let out = self.seal(&sa, ExchangeType::IkeAuth, false, 1, &inner)?;
        self.state = State::AuthSent {
            sa: Box::new(sa),
            child_spi,
            init_response: raw.to_vec(),
        };
        self.next_request_id = 2;
        self.send_request(now, 1, out);
        Ok(())
    }

    fn on_auth_response(&mut self, now: Instant, raw: &[u8]) -> Result<(), SessionError> {
        let State::AuthSent {
            sa,
            child_spi,
            init_response,
        } = &self.state
        else {
            return Err(internal("state"));
        };
        let inner = self.open(sa, raw)?;
        if let Some(code) = error_notify(&inner) {
            self.fail(if code == notify::AUTHENTICATION_FAILED {
                FailureReason::AuthenticationFailed
            } else if code == notify::NO_PROPOSAL_CHOSEN || code == notify::TS_UNACCEPTABLE {
                // No common child SA: over 802.15.9 the child SA is the reason for the
                // exchange (its keys are the link keys), so the join fails as a whole.
                FailureReason::NegotiationFailed
            } else {
                FailureReason::RejectedByPeer {
                    code: u32::from(code),
                }
            });
            return Ok(());
        }
        let (mut idr, mut auth, mut sa_p, mut has_ts) = (None, None, None, (false, false));
        for p in &inner {
            match p {
                Payload::IdR(i) => idr = Some(i),
                Payload::Auth(a) => auth = Some(a),
                Payload::Sa(s) => sa_p = Some(s),
                Payload::TsI(t) => has_ts.0 = !t.selectors.is_empty(),
                Payload::TsR(t) => has_ts.1 = !t.selectors.is_empty(),
                // Status notifies (INITIAL_CONTACT, ESP_TFC_PADDING_NOT_SUPPORTED, …) and
                // anything else we do not use are ignored (DECISIONS I7).
                _ => {}
            }
        }
        let (Some(idr), Some(_)) = (idr, auth) else {
            return Err(SessionError::Malformed(
                "IKE_AUTH response lacks IDr or AUTH".into(),
            ));
        };
        if !self.peer_id_ok(idr) {
            tracing::warn!(peer = %self.peer, "IKE_AUTH: the responder's ID is not the configured remote_id");
            self.fail(FailureReason::AuthenticationFailed);
            return Ok(());
        }
        if !self.auth_ok(now, sa, false, init_response, idr, &inner) {
            self.fail(FailureReason::AuthenticationFailed);
            return Ok(());
        }
        if child_spi.is_some() && !self.routing_protocol_agrees(&inner) {
            self.fail(FailureReason::NegotiationFailed);
            return Ok(());
        }
        let child = match *child_spi {
            // Childless (RFC 6023): a child SA in the answer is one we did not ask for.
            None if sa_p.is_some() => {
                self.fail(FailureReason::ProtocolViolation(
                    "childless IKE_AUTH answered with a child SA".into(),
                ));
                return Ok(());
            }
            None => None,
            Some(child_spi) => {
                if self.cfg.profile == Profile::Ikev2 && has_ts != (true, true) {
                    self.fail(FailureReason::ProtocolViolation(
                        "IKE_AUTH response with a child SA lacks TSi or TSr".into(),
                    ));
                    return Ok(());
                }
                let chosen = sa_p.and_then(|s| match s.proposals.as_slice() {
                    [one] => read_child_proposal(one),
                    _ => None,
                });
                let Some((child, spi_r)) =
                    chosen.filter(|(c, _)| self.cfg.child_proposals.contains(c))
                else {
                    self.fail(FailureReason::NegotiationFailed);
                    return Ok(());
                };
                Some((child, (child_spi, spi_r)))
            }
        };
        let broadcast = match self.peer_broadcast_key(&inner) {
            Ok(b) => b,
            Err(e) => {
                self.fail(FailureReason::ProtocolViolation(e.to_string()));
                return Ok(());
            }
        };
        let State::AuthSent { sa, .. } = std::mem::replace(&mut self.state, State::Closed) else {
            return Err(internal("state"));
        };
        self.outstanding = None;
        // The child SA's keys do not depend on the request IDs; the next request is ours.
        self.establish(now, sa, child, broadcast)
    }

    // ----- responder -----

    fn on_init_request(
        &mut self,
        now: Instant,
        raw: &[u8],
        msg: Message,
    ) -> Result<(), SessionError> {
        let Found {
            sa: sa_p,
            ke,
            nonce: ni,
            ..
        } = Found::of(&msg.payloads);
        let (Some(sa_p), Some(ke), Some(ni)) = (sa_p, ke, ni) else {
            return Err(SessionError::Malformed(
                "IKE_SA_INIT request lacks SA, KE or Ni".into(),
            ));
        };
        if !(16..=256).contains(&ni.len()) {
            return Err(SessionError::Malformed("Ni length".into()));
        }
        let spi_i = msg.header.spi_i;
        // The first of the initiator's proposals that we accept.
        let chosen = sa_p.proposals.iter().find_map(|p| {
            read_ike_proposal(p)
                .filter(|c| self.cfg.ike_proposals.contains(c))
                .map(|c| (p.number, c))
        });
        let Some((number, chosen)) = chosen else {
            let reply = Message {
                header: self.header(spi_i, [0; 8], ExchangeType::IkeSaInit, true, 0),
                payloads: vec![notify_payload(notify::NO_PROPOSAL_CHOSEN, vec![])],
            };
            self.send_response(0, reply.emit());
            self.fail(FailureReason::NegotiationFailed);
            return Ok(());
        };
        if ke.group != chosen.dh.transform_id() {
            // Stateless: the initiator retries with our group and the same SPIi.
            let reply = Message {
                header: self.header(spi_i, [0; 8], ExchangeType::IkeSaInit, true, 0),
                payloads: vec![notify_payload(
                    notify::INVALID_KE_PAYLOAD,
                    chosen.dh.transform_id().to_be_bytes().to_vec(),
                )],
            };
            self.actions.push_back(Action::Send(reply.emit()));
            return Ok(());
        }
        // Childless IKE SAs (RFC 6023, DECISIONS I25): the responder announces support (unless
        // `never`), whether or not the initiator did; the initiator then decides.
        let childless = self.cfg.childless != Childless::Never;
        let dh = chosen.dh.generate(&self.rng)?;
        let g_ir = match dh.shared(&ke.data) {
            Ok(s) => s,
            Err(_) => {
                let reply = Message {
                    header: self.header(spi_i, [0; 8], ExchangeType::IkeSaInit, true, 0),
                    payloads: vec![notify_payload(notify::INVALID_SYNTAX, vec![])],
                };
                self.send_response(0, reply.emit());
                self.fail(FailureReason::ProtocolViolation("bad KE".into()));
                return Ok(());
            }
        };
        let spi_r: [u8; 8] = self.random()?;
        let nr = self.nonce()?;
        let mut chosen_payload = ike_proposal_payload(number, &chosen, &[]);
        chosen_payload.number = number;
        let mut payloads = vec![
            Payload::Sa(SaPayload {
                proposals: vec![chosen_payload],
            }),
            Payload::Ke(KePayload {
                group: chosen.dh.transform_id(),
                data: dh.public(),
            }),
            Payload::Nonce(nr.clone()),
        ];
        // NAT detection only answers an initiator that asked (RFC 7296 §2.23); we never float
        // ourselves and do not check the peer's hashes (DECISIONS I9).
        if find_notify(&msg.payloads, notify::NAT_DETECTION_SOURCE_IP).is_some() {
            payloads.extend(nat_notifies(&self.cfg, &spi_i, &spi_r));
        }
        // Signature authentication: RFC 7427 §4 and our CERTREQ (DECISIONS I21).
        self.peer_init = auth::read_init(&msg.payloads);
        if self.cfg.pubkey.is_some() {
            if self.peer_init.sha256_signatures {
                payloads.push(auth::signature_hash_notify());
            }
            payloads.extend(auth::certreq(self.cfg.pubkey.as_deref()));
        }
        if childless {
            payloads.push(notify_payload(notify::CHILDLESS_IKEV2_SUPPORTED, vec![]));
        }
        let reply = Message {
            header: self.header(spi_i, spi_r, ExchangeType::IkeSaInit, true, 0),
            payloads,
        };
        let response = reply.emit();
        let sa = IkeSa::new(chosen, spi_i, spi_r, ni.clone(), nr, g_ir.expose())?;
        self.state = State::InitAnswered {
            sa: Box::new(sa),
            response: response.clone(),
            request: raw.to_vec(),
            childless,
        };
        self.expected_request_id = 1;
        self.send_response(0, response);
        self.deadline = Some(now + self.half_open_timeout());
        Ok(())
    }

    /// How long a half-open responder SA waits for IKE_AUTH: the initiator's whole
    /// retransmission schedule.
    fn half_open_timeout(&self) -> kmp_api::Duration {
        let mut total = 0u64;
        let mut t = self.cfg.retransmit.as_micros();
        for _ in 0..=self.cfg.max_retransmits {
            total = total.saturating_add(t);
            t = t.saturating_mul(2);
        }
        kmp_api::Duration::from_micros(total)
    }

    fn on_auth_request(&mut self, now: Instant, raw: &[u8]) -> Result<(), SessionError> {
        let State::InitAnswered { sa, .. } = &self.state else {
            return Err(internal("state"));
        };
        let inner = self.open(sa, raw)?;
        let (mut idi, mut auth, mut sa_p, mut tsi, mut tsr) = (None, None, None, None, None);
        for p in &inner {
            match p {
                Payload::IdI(i) => idi = Some(i),
                Payload::Auth(a) => auth = Some(a),
                Payload::Sa(s) => sa_p = Some(s),
                Payload::TsI(t) => tsi = Some(t),
                Payload::TsR(t) => tsr = Some(t),
                // IDr (the initiator's guess of our ID), status notifies (INITIAL_CONTACT,
                // MOBIKE_SUPPORTED, ESP_TFC_PADDING_NOT_SUPPORTED, NON_FIRST_FRAGMENTS_ALSO, …)
                // and anything else we do not use are ignored (DECISIONS I7).
                _ => {}
            }
        }
        let (Some(idi), Some(_)) = (idi, auth) else {
            return Err(SessionError::Malformed(
                "IKE_AUTH request lacks IDi or AUTH".into(),
            ));
        };
        let State::InitAnswered { request, .. } = &self.state else {
            return Err(internal("state"));
        };
        let id_ok = self.peer_id_ok(idi);
        if !id_ok || !self.auth_ok(now, sa, true, request, idi, &inner) {
            tracing::warn!(peer = %self.peer, id_ok, "IKE_AUTH: the initiator's ID or AUTH does not verify");
            return self.refuse_ike_auth(
                notify::AUTHENTICATION_FAILED,
                FailureReason::AuthenticationFailed,
            );
        }
        let broadcast = match self.peer_broadcast_key(&inner) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(peer = %self.peer, error = %e, "IKE_AUTH: malformed broadcast key");
                return self.refuse_ike_auth(
                    notify::INVALID_SYNTAX,
                    FailureReason::ProtocolViolation(e.to_string()),
                );
            }
        };
        let State::InitAnswered { childless, .. } = &self.state else {
            return Err(internal("state"));
        };
        // A childless IKE_AUTH (RFC 6023): no SA, TSi or TSr, after we announced support.
        let childless = *childless && sa_p.is_none() && tsi.is_none() && tsr.is_none();
        let offer = if childless {
            None
        } else if self.cfg.childless == Childless::Force {
            // `force`: only childless initiation is accepted (strongSwan's meaning).
            tracing::warn!(peer = %self.peer, "childless = force: IKE_AUTH with a child SA refused");
            return self
                .refuse_ike_auth(notify::NO_PROPOSAL_CHOSEN, FailureReason::NegotiationFailed);
        } else {
            let chosen = sa_p.and_then(|s| {
                s.proposals.iter().find_map(|p| {
                    read_child_proposal(p)
                        .filter(|(c, _)| self.cfg.child_proposals.contains(c))
                        .map(|(c, spi)| (p.number, c, spi))
                })
            });
            let refusal = if chosen.is_none() {
                Some(notify::NO_PROPOSAL_CHOSEN)
            } else if !self.routing_protocol_agrees(&inner) {
                tracing::warn!(peer = %self.peer, "RKMP_SA_AUTH for another routing protocol");
                Some(notify::NO_PROPOSAL_CHOSEN)
            } else {
                None
            };
            let narrowed = self.narrowed_selectors(tsi, tsr);
            let refusal = refusal.or_else(|| {
                (narrowed.0.is_empty() || narrowed.1.is_empty()).then(|| {
                    tracing::warn!(peer = %self.peer, "IKE_AUTH: no common traffic selectors");
                    notify::TS_UNACCEPTABLE
                })
            });
            match (chosen, refusal) {
                (Some(chosen), None) => Some((chosen, narrowed)),
                (_, code) => {
                    let code = code.unwrap_or(notify::NO_PROPOSAL_CHOSEN);
                    return self.refuse_ike_auth(code, FailureReason::NegotiationFailed);
                }
            }
        };
        let State::InitAnswered { response, .. } = &self.state else {
            return Err(internal("state"));
        };
        let id = self.our_id();
        let our_auth = self.auth_payloads(sa, false, response, &id)?;
        // IDr, [CERT+], AUTH, [our broadcast key], then the child SA's SA, TSi, TSr (none when
        // childless).
        let mut inner = vec![Payload::IdR(id)];
        inner.extend(our_auth);
        inner.extend(self.broadcast_key_notify());
        let child = match offer {
            None => None,
            Some(((number, child, spi_i), narrowed)) => {
                let spi_r: [u8; 4] = self.random()?;
                let mut p = child_proposal_payload(number, &child, spi_r);
                p.number = number;
                inner.push(Payload::Sa(SaPayload { proposals: vec![p] }));
                self.add_selectors(&mut inner, narrowed.0, narrowed.1);
                Some((child, (spi_i, spi_r)))
            }
        };
        let reply = self.seal(sa, ExchangeType::IkeAuth, true, 1, &inner)?;
        self.send_response(1, reply);
        self.expected_request_id = 2;
        let State::InitAnswered { sa, .. } = std::mem::replace(&mut self.state, State::Closed)
        else {
            return Err(internal("state"));
        };
        self.establish(now, sa, child, broadcast)
    }

    /// Answers the IKE_AUTH request with an error notify and fails the exchange.
    fn refuse_ike_auth(&mut self, code: u16, reason: FailureReason) -> Result<(), SessionError> {
        let State::InitAnswered { sa, .. } = &self.state else {
            return Err(internal("state"));
        };
        let reply = self.seal(
            sa,
            ExchangeType::IkeAuth,
            true,
            1,
            &[notify_payload(code, vec![])],
        )?;
        self.send_response(1, reply);
        self.fail(reason);
        Ok(())
    }

    // ----- both -----

    /// The peer's selectors narrowed to ours (RFC 7296 §2.9); RKMP has none, so ours stand.
    fn narrowed_selectors(
        &self,
        tsi: Option<&TsPayload>,
        tsr: Option<&TsPayload>,
    ) -> (Vec<wire::TrafficSelector>, Vec<wire::TrafficSelector>) {
        if matches!(self.cfg.profile, Profile::Rkmp { .. }) {
            return (self.cfg.remote_ts.clone(), self.cfg.local_ts.clone());
        }
        (
            narrow(selectors(tsi), &self.cfg.remote_ts),
            narrow(selectors(tsr), &self.cfg.local_ts),
        )
    }

    /// Under RKMP, whether the message names our routing protocol; always true for IKEv2.
    fn routing_protocol_agrees(&self, payloads: &[Payload]) -> bool {
        match self.cfg.profile {
            Profile::Ikev2 => true,
            Profile::Rkmp {
                routing_protocol, ..
            } => routing_protocol_of(payloads) == Some(routing_protocol),
        }
    }

    /// IKEv2 carries traffic selectors in IKE_AUTH; RKMP carries none and names the routing
    /// protocol instead.
    fn add_selectors(
        &self,
        inner: &mut Vec<Payload>,
        tsi: Vec<wire::TrafficSelector>,
        tsr: Vec<wire::TrafficSelector>,
    ) {
        match self.cfg.profile {
            Profile::Ikev2 => {
                inner.push(Payload::TsI(TsPayload { selectors: tsi }));
                inner.push(Payload::TsR(TsPayload { selectors: tsr }));
            }
            Profile::Rkmp {
                routing_protocol, ..
            } => inner.push(notify_payload(
                ROUTING_PROTOCOL_NOTIFY,
                routing_protocol.to_be_bytes().to_vec(),
            )),
        }
    }

    /// Derives the child SA's keys, hands them to the PIB and reports success. `child`: the
    /// proposal and SPIs (initiator's, responder's); `None` for a childless IKE SA (RFC 6023),
    /// which installs no link keys (under RKMP: only the RKMP SA's record). `broadcast`: the
    /// peer's broadcast key, installed with the link keys; ours is installed as our own.
    fn establish(
        &mut self,
        now: Instant,
        sa: Box<IkeSa>,
        child: Option<(ChildProposal, ChildSpis)>,
        broadcast: Option<LinkKey>,
    ) -> Result<(), SessionError> {
        let mut link_keys = Vec::new();
        let mut upper_layer_sas = Vec::new();
        if matches!(self.cfg.profile, Profile::Rkmp { .. }) {
            // RKMP (DECISIONS K3): the RKMP SA keeps SK_d (for later child SAs); the child SA
            // becomes a routing-protocol SA under it, with each direction's whole key material.
            upper_layer_sas.push(rkmp_sa_record(&sa, self.cfg.key_lifetime));
        }
        let child = match child {
            None => None,
            Some((proposal, spis)) => {
                let (keys, record) = self.child_records(
                    &sa,
                    &proposal,
                    self.role == Role::Initiator,
                    &sa.ni,
                    &sa.nr,
                    None,
                    spis,
                )?;
                link_keys = keys;
                upper_layer_sas.push(record.clone());
                let (ours, theirs) = if self.role == Role::Initiator {
                    spis
                } else {
                    (spis.1, spis.0)
                };
                Some(ChildSa {
                    ours,
                    theirs,
                    record,
                    since: now,
                })
            }
        };
        link_keys.extend(broadcast);
        if !link_keys.is_empty() || !upper_layer_sas.is_empty() {
            self.install(KeyInstall {
                owner: self.cfg.kmp_id(),
                peer: self.peer,
                link_keys,
                upper_layer_sas,
            });
        }
        // Our own K_i protects what we broadcast to every peer: it is installed for us, not for
        // this peer, so that ending this IKE SA leaves it in place (replacing it with itself
        // when another session already installed it).
        if let Some(key) = self.cfg.broadcast_key.as_ref().and_then(|b| {
            b.key
                .as_ref()
                .map(|k| (b.index, SecretBytes::from_slice(k.expose())))
        }) {
            self.install(KeyInstall {
                owner: self.cfg.kmp_id(),
                peer: self.local,
                link_keys: vec![LinkKey {
                    key: key.1,
                    lookup: KeyIdentifier::SourceIndex(KeySource::Eight(self.local.0), key.0),
                    scope: KeyScope::Group,
                    direction: KeyDirection::Transmit,
                    min_security_level: self.cfg.min_security_level,
                    lifetime: None,
                }],
                upper_layer_sas: vec![],
            });
        }
        // A childless initiator with child proposals makes its child SA next (RFC 6023 §4);
        // the join succeeds once that is done, since the child SA's keys are what it is for.
        let first_child_follows =
            child.is_none() && self.role == Role::Initiator && !self.cfg.child_proposals.is_empty();
        tracing::info!(peer = %self.peer, role = ?self.role, child = child.is_some(), "IKE SA established");
        self.state = State::Established {
            sa,
            child,
            old_child: None,
            next_ike: None,
            ike_since: now,
        };
        self.last_heard = now;
        self.deadline = None;
        if first_child_follows {
            self.start_child(now)
        } else {
            self.report_success();
            Ok(())
        }
    }

    /// KMP-FINISHED with success, counting what the session handed to the PIB.
    fn report_success(&mut self) {
        let State::Established { sa, .. } = &self.state else {
            return;
        };
        self.actions
            .push_back(Action::Finished(Outcome::Success(EstablishedSa {
                peer: self.peer,
                session_id: session_id_of(sa),
                lifetime: self.cfg.key_lifetime,
                keys_installed: self.installed,
            })));
        self.finished = true;
    }

    /// Gives up an IKE SA before the join succeeded: deletes it at the peer (best effort),
    /// removes what was installed and reports the failure.
    fn abandon(&mut self, now: Instant, reason: FailureReason) {
        self.delete(now);
        self.fail(reason);
    }
}

impl Ikev2Session {
    /// INFORMATIONAL request on the established SA: liveness (empty) or delete.
    fn on_informational_request(
        &mut self,
        now: Instant,
        raw: &[u8],
        message_id: u32,
    ) -> Result<(), SessionError> {
        let State::Established {
            sa,
            child,
            old_child,
            next_ike,
            ..
        } = &self.state
        else {
            return Err(internal("state"));
        };
        let inner = self.open(sa, raw)?;
        let deletes: Vec<&wire::DeletePayload> = inner
            .iter()
            .filter_map(|p| match p {
                Payload::Delete(d) => Some(d),
                _ => None,
            })
            .collect();
        let ike_deleted = deletes.iter().any(|d| d.protocol == PROTO_IKE);
        let names = |spi: [u8; 4]| {
            deletes
                .iter()
                .any(|d| d.protocol == PROTO_ESP && d.spis.iter().any(|s| s.as_slice() == spi))
        };
        let child_deleted = child.as_ref().is_some_and(|c| names(c.theirs));
        // The delete of the child SA the peer's rekey replaced (RFC 7296 §2.8): answered, and
        // nothing else happens (its record went when the new one came).
        let old_deleted = old_child.filter(|(_, theirs)| names(*theirs));
        // The delete of the IKE SA the peer's rekey replaced: the new one takes over.
        let rekeyed_ike = ike_deleted && next_ike.is_some();
        let mut reply_inner = Vec::new();
        if let Some((mine, _)) = old_deleted {
            reply_inner.push(Payload::Delete(wire::DeletePayload {
                protocol: PROTO_ESP,
                spi_size: 4,
                spis: vec![mine.to_vec()],
            }));
        }
        if let Some(c) = child.as_ref().filter(|_| child_deleted && !ike_deleted) {
            // RFC 7296 §1.4.1: answer a child SA delete with the delete of our inbound SA.
            reply_inner.push(Payload::Delete(wire::DeletePayload {
                protocol: PROTO_ESP,
                spi_size: 4,
                spis: vec![c.ours.to_vec()],
            }));
        }
        let reply = self.seal(
            sa,
            ExchangeType::Informational,
            true,
            message_id,
            &reply_inner,
        )?;
        self.send_response(message_id, reply);
        self.expected_request_id = message_id.wrapping_add(1);
        if old_deleted.is_some()
            && let State::Established { old_child, .. } = &mut self.state
        {
            *old_child = None;
        }
        if rekeyed_ike {
            self.promote(now);
        } else if ike_deleted || child_deleted {
            tracing::info!(peer = %self.peer, ike = ike_deleted, "peer deleted the SA: keys removed");
            self.actions
                .push_back(Action::RemoveKeys(kmp_api::session::KeyRemoval {
                    owner: self.cfg.kmp_id(),
                    peer: self.peer,
                    which: kmp_api::session::KeySelector::All,
                }));
            self.state = State::Closed;
        }
        Ok(())
    }

    fn dispatch(&mut self, now: Instant, pdu: &[u8]) -> Result<(), SessionError> {
        let mut msg = Message::parse(pdu).map_err(|e| SessionError::Malformed(e.to_string()))?;
        msg.header.exchange = logical_exchange(&self.cfg.profile, msg.header.exchange);
        let h = msg.header;
        if h.flags.response {
            let Some(o) = &self.outstanding else {
                return Err(SessionError::UnexpectedMessage {
                    expected: "no response",
                    got: format!("response to message {}", h.message_id),
                });
            };
            if h.message_id != o.message_id {
                return Err(SessionError::UnexpectedMessage {
                    expected: "the response to our outstanding request",
                    got: format!("response to message {}", h.message_id),
                });
            }
            // A response from the IKE SA initiator's peer carries I = 0, and vice versa.
            if h.flags.initiator == self.ike_initiator {
                return Err(SessionError::Malformed(
                    "response with our own I flag".into(),
                ));
            }
            return match (&self.state, h.exchange) {
                (State::InitSent { .. }, ExchangeType::IkeSaInit) => {
                    self.on_init_response(now, pdu, msg)
                }
                (State::AuthSent { .. }, ExchangeType::IkeAuth) => self.on_auth_response(now, pdu),
                (State::Established { .. }, ExchangeType::Informational) => {
                    // Our liveness check or delete was answered.
                    self.on_informational_response(now, pdu)
                }
                (State::Established { .. }, ExchangeType::CreateChildSa) => {
                    let r = self.on_create_child_response(now, pdu);
                    if let Err(e) = &r
                        && !self.finished
                        && self.outstanding.is_none()
                    {
                        // A bad answer to our first child SA: nothing will come after it.
                        self.abandon(now, FailureReason::ProtocolViolation(e.to_string()));
                    }
                    r
                }
                _ => Err(SessionError::UnexpectedMessage {
                    expected: "a response to our request",
                    got: format!("{:?} response", h.exchange),
                }),
            };
        }
        // A request from the peer.
        if let State::Listening = self.state {
            if h.exchange != ExchangeType::IkeSaInit || h.message_id != 0 || h.spi_r != [0; 8] {
                return Err(SessionError::UnexpectedMessage {
                    expected: "IKE_SA_INIT request",
                    got: format!("{:?} message {}", h.exchange, h.message_id),
                });
            }
            return self.on_init_request(now, pdu, msg);
        }
        if let Some((mid, resp)) = &self.last_response
            && *mid == h.message_id
            && resp.get(..8) == Some(&h.spi_i[..])
        {
            // A retransmitted request: the same answer again (RFC 7296 §2.1).
            tracing::debug!(peer = %self.peer, message_id = mid, "retransmitted request answered from cache");
            self.actions.push_back(Action::Send(resp.clone()));
            return Ok(());
        }
        if h.message_id != self.expected_request_id {
            return Err(SessionError::UnexpectedMessage {
                expected: "the next request",
                got: format!(
                    "request {} (expected {})",
                    h.message_id, self.expected_request_id
                ),
            });
        }
        match (&self.state, h.exchange) {
            (State::InitAnswered { .. }, ExchangeType::IkeAuth) => self.on_auth_request(now, pdu),
            (State::Established { .. }, ExchangeType::Informational) => {
                self.on_informational_request(now, pdu, h.message_id)
            }
            (State::Established { .. }, ExchangeType::CreateChildSa) => {
                self.on_create_child_request(now, pdu, h.message_id)
            }
            _ => Err(SessionError::UnexpectedMessage {
                expected: "a request valid in this state",
                got: format!("{:?} request", h.exchange),
            }),
        }
    }
}

impl KmpSession for Ikev2Session {
    fn kmp_id(&self) -> KmpId {
        self.cfg.kmp_id()
    }

    fn role(&self) -> Role {
        self.role
    }

    fn peer(&self) -> ExtendedAddress {
        self.peer
    }

    fn start(&mut self, now: Instant) -> Result<(), SessionError> {
        if self.role != Role::Initiator || !matches!(self.state, State::Closed) || self.finished {
            return Err(SessionError::UnexpectedMessage {
                expected: "a new initiator",
                got: "start".into(),
            });
        }
        let group = self
            .cfg
            .ike_proposals
            .first()
            .map(|p| p.dh)
            .ok_or_else(|| SessionError::Config("ikev2: no IKE proposal".into()))?;
        self.start_initiator(now, group)
    }

    fn handle_datagram(&mut self, now: Instant, pdu: &[u8]) -> Result<(), SessionError> {
        if matches!(self.state, State::Closed) {
            return Err(SessionError::Finished);
        }
        self.dispatch(now, pdu)?;
        // Only an authenticated message gets this far on an established SA.
        self.last_heard = now;
        Ok(())
    }

    fn handle_timeout(&mut self, now: Instant) {
        if let Some(o) = &mut self.outstanding
            && o.deadline <= now
        {
            if o.retransmits >= self.cfg.max_retransmits {
                let attempts = o.retransmits + 1;
                if self.finished {
                    // A liveness check or delete of an established SA went unanswered: the
                    // peer is gone; its keys go too.
                    self.actions
                        .push_back(Action::RemoveKeys(kmp_api::session::KeyRemoval {
                            owner: self.cfg.kmp_id(),
                            peer: self.peer,
                            which: kmp_api::session::KeySelector::All,
                        }));
                    self.state = State::Closed;
                    self.outstanding = None;
                } else {
                    self.fail(FailureReason::Timeout { attempts });
                }
                return;
            }
            o.retransmits += 1;
            let backoff = self
                .cfg
                .retransmit
                .saturating_mul(1u64 << o.retransmits.min(16));
            o.deadline = now + backoff;
            tracing::debug!(peer = %self.peer, message_id = o.message_id, n = o.retransmits, "retransmitting");
            self.actions.push_back(Action::Send(o.raw.clone()));
        }
        if self.deadline.is_some_and(|d| d <= now) {
            self.deadline = None;
            if matches!(self.state, State::InitAnswered { .. }) {
                // A half-open SA whose IKE_AUTH never came.
                self.fail(FailureReason::Timeout { attempts: 1 });
            }
        }
        // Rekeys and liveness checks (DECISIONS I10, I12).
        if let Err(e) = self.own_request_due(now) {
            tracing::warn!(peer = %self.peer, error = %e, "could not start a rekey or liveness check");
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        [
            self.outstanding.as_ref().map(|o| o.deadline),
            self.deadline,
            self.next_own_request(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    fn handle_link_failure(&mut self, now: Instant, status: MacStatus) {
        // Retransmit at once instead of waiting for the timer, without spending a retry.
        if let Some(o) = &mut self.outstanding
            && !matches!(status, MacStatus::Purged)
        {
            o.deadline = o.deadline.min(now + self.cfg.retransmit);
        }
    }

    fn delete(&mut self, now: Instant) {
        if let State::Established { sa, .. } = &self.state {
            let id = self.next_request_id;
            let del = [Payload::Delete(wire::DeletePayload {
                protocol: PROTO_IKE,
                spi_size: 0,
                spis: vec![],
            })];
            if let Ok(raw) = self.seal(sa, ExchangeType::Informational, false, id, &del) {
                // Best effort: the delete is sent once; the SA is gone either way.
                self.actions.push_back(Action::Send(raw));
            }
            self.actions
                .push_back(Action::RemoveKeys(kmp_api::session::KeyRemoval {
                    owner: self.cfg.kmp_id(),
                    peer: self.peer,
                    which: kmp_api::session::KeySelector::All,
                }));
        } else {
            self.fail(FailureReason::Deleted);
        }
        let _ = now;
        self.state = State::Closed;
        self.outstanding = None;
        self.deadline = None;
    }

    fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
            && (self.finished || self.role == Role::Responder)
            && self.actions.is_empty()
    }
}

/// Makes IKEv2 sessions; holds the configuration and the cookie secret.
pub struct Ikev2Factory {
    cfg: Arc<Ikev2Config>,
    cookie_secret: [u8; 32],
}

impl std::fmt::Debug for Ikev2Factory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ikev2Factory")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl Ikev2Factory {
    /// A factory for `cfg`; the cookie secret comes from the OS.
    pub fn new(mut cfg: Ikev2Config) -> Result<Ikev2Factory, SessionError> {
        let rng = RngHandle::os();
        let mut cookie_secret = [0u8; 32];
        rng.fill(&mut cookie_secret)?;
        // Our broadcast key, unless provisioned: one per process, the same for every peer.
        if let Some(b) = cfg.broadcast_key.as_mut().filter(|b| b.key.is_none()) {
            let mut k = vec![0u8; 16];
            rng.fill(&mut k)?;
            b.key = Some(Arc::new(SecretBytes::new(k)));
        }
        Ok(Ikev2Factory {
            cfg: Arc::new(cfg),
            cookie_secret,
        })
    }

    /// The cookie for an initiator (RFC 7296 §2.6): HMAC-SHA-256(secret, Ni ‖ EUI-64 ‖ SPIi),
    /// truncated to 16 octets; the link-layer address stands in for the IP address.
    fn cookie(
        &self,
        ni: &[u8],
        peer: ExtendedAddress,
        spi_i: &[u8; 8],
    ) -> Result<Vec<u8>, SessionError> {
        let mac = PrfAlg::HmacSha256.prf(&self.cookie_secret, &[ni, &peer.0, spi_i].concat())?;
        Ok(mac.expose().get(..16).unwrap_or_default().to_vec())
    }
}

impl Ikev2Factory {
    /// The same factory (configuration and cookie secret) for sessions over UDP between
    /// `local` and `remote`: they send NAT_DETECTION notifies (used by [`crate::udp`]).
    pub fn for_udp(
        &self,
        local: std::net::SocketAddr,
        remote: std::net::SocketAddr,
    ) -> Ikev2Factory {
        let mut cfg = (*self.cfg).clone();
        cfg.nat_detection = Some((local, remote));
        Ikev2Factory {
            cfg: Arc::new(cfg),
            cookie_secret: self.cookie_secret,
        }
    }
}

impl KmpFactory for Ikev2Factory {
    fn kmp_id(&self) -> KmpId {
        self.cfg.kmp_id()
    }

    fn new_initiator(&self, ctx: SessionContext) -> Result<Box<dyn KmpSession>, SessionError> {
        Ok(Box::new(Ikev2Session::new(self.cfg.clone(), &ctx)))
    }

    fn new_responder(
        &self,
        ctx: SessionContext,
        first_pdu: &[u8],
    ) -> Result<Box<dyn KmpSession>, SessionError> {
        let mut msg =
            Message::parse(first_pdu).map_err(|e| SessionError::Malformed(e.to_string()))?;
        msg.header.exchange = logical_exchange(&self.cfg.profile, msg.header.exchange);
        let h = &msg.header;
        if h.exchange != ExchangeType::IkeSaInit
            || h.flags.response
            || !h.flags.initiator
            || h.message_id != 0
            || h.spi_r != [0; 8]
        {
            return Err(SessionError::Refused("not an IKE_SA_INIT request".into()));
        }
        if ctx.open_responder_sessions >= self.cfg.half_open_cookie_threshold {
            let ni = msg
                .payloads
                .iter()
                .find_map(|p| match p {
                    Payload::Nonce(n) => Some(n.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            let want = self.cookie(&ni, ctx.peer, &h.spi_i)?;
            let echoed = find_notify(&msg.payloads, notify::COOKIE)
                .is_some_and(|c| kmp_api::crypto::ct_eq(&c.data, &want));
            if !echoed {
                tracing::debug!(peer = %ctx.peer, "half-open SAs above the threshold: cookie demanded");
                let reply = Message {
                    header: Header {
                        spi_i: h.spi_i,
                        spi_r: [0; 8],
                        next_payload: payload_type::NONE,
                        major_version: 2,
                        minor_version: 0,
                        exchange: wire_exchange(&self.cfg.profile, ExchangeType::IkeSaInit),
                        flags: Flags {
                            initiator: false,
                            version: false,
                            response: true,
                        },
                        message_id: 0,
                        length: 0,
                    },
                    payloads: vec![notify_payload(notify::COOKIE, want)],
                };
                return Ok(Box::new(CookieOnly {
                    kmp_id: self.cfg.kmp_id(),
                    peer: ctx.peer,
                    reply: Some(reply.emit()),
                }));
            }
        }
        Ok(Box::new(Ikev2Session::new(self.cfg.clone(), &ctx)))
    }
}

/// The stateless answer to an IKE_SA_INIT without a valid cookie: sends N(COOKIE), then is
/// closed; nothing is kept for the initiator.
struct CookieOnly {
    kmp_id: KmpId,
    peer: ExtendedAddress,
    reply: Option<Vec<u8>>,
}

impl KmpSession for CookieOnly {
    fn kmp_id(&self) -> KmpId {
        self.kmp_id
    }
    fn role(&self) -> Role {
        Role::Responder
    }
    fn peer(&self) -> ExtendedAddress {
        self.peer
    }
    fn start(&mut self, _: Instant) -> Result<(), SessionError> {
        Err(SessionError::Finished)
    }
    fn handle_datagram(&mut self, _: Instant, _: &[u8]) -> Result<(), SessionError> {
        Ok(())
    }
    fn handle_timeout(&mut self, _: Instant) {}
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
    fn poll_action(&mut self) -> Option<Action> {
        self.reply.take().map(Action::Send)
    }
    fn is_closed(&self) -> bool {
        self.reply.is_none()
    }
}

fn make_factory(config: &str) -> Result<Arc<dyn KmpFactory>, SessionError> {
    let cfg = Ikev2Config::from_toml(config)?;
    if cfg.profile != Profile::Ikev2 {
        return Err(SessionError::Config(
            "ikev2: profile = \"rkmp\" belongs in the rkmp section".into(),
        ));
    }
    Ok(Arc::new(Ikev2Factory::new(cfg)?))
}

/// RKMP's section is the IKEv2 configuration with `profile = "rkmp"` as the default.
fn make_rkmp_factory(config: &str) -> Result<Arc<dyn KmpFactory>, SessionError> {
    let cfg = Ikev2Config::from_toml_rkmp(config)?;
    if !matches!(cfg.profile, Profile::Rkmp { .. }) {
        return Err(SessionError::Config(
            "rkmp: profile must be \"rkmp\"".into(),
        ));
    }
    Ok(Arc::new(Ikev2Factory::new(cfg)?))
}

inventory::submit! {
    kmp_api::KmpRegistration::new(KmpId::Ikev2, "ikev2", make_factory)
}

inventory::submit! {
    kmp_api::KmpRegistration::new(crate::config::RKMP_KMP_ID, "rkmp", make_rkmp_factory)
}

/// A child SA (one per IKE SA over 802.15.9, DECISIONS I11).
struct ChildSa {
    /// Our inbound SPI.
    ours: [u8; 4],
    /// The peer's inbound SPI.
    theirs: [u8; 4],
    /// Its record in the PIB store (`ikev2-child`, or RKMP's `rkmp-routing` with its keys).
    record: UpperLayerSa,
    /// When it was made (for `rekey_child_after`).
    since: Instant,
}

/// What our outstanding request on an established IKE SA was (DECISIONS I10–I12).
enum Pending {
    /// A liveness check, or anything else whose answer only reopens the window.
    Informational,
    /// CREATE_CHILD_SA rekeying the child SA, or making the first one of a childless IKE SA.
    Child {
        ni: Vec<u8>,
        dh: Option<DhPrivate>,
        spi: [u8; 4],
    },
    /// CREATE_CHILD_SA rekeying the IKE SA.
    IkeRekey {
        ni: Vec<u8>,
        dh: DhPrivate,
        spi: [u8; 8],
    },
    /// INFORMATIONAL Delete of the old IKE SA after our IKE SA rekey.
    DeleteOldIke,
}

/// A child SA offer: the proposal with a D-H transform when the exchange carries a KE.
fn child_offer(number: u8, p: &ChildProposal, spi: [u8; 4], dh: Option<DhGroup>) -> Proposal {
    let mut prop = child_proposal_payload(number, p, spi);
    if let Some(g) = dh {
        let at = prop.transforms.len().saturating_sub(1);
        prop.transforms.insert(
            at,
            Transform {
                transform_type: transform::TYPE_DH,
                id: g.transform_id(),
                key_length: None,
                other_attributes: vec![],
            },
        );
    }
    prop
}

/// A received child SA offer: the proposal, its SPI and the D-H groups it names (`0` is NONE).
fn read_child_offer(p: &Proposal) -> Option<(ChildProposal, [u8; 4], Vec<u16>)> {
    let mut rest = p.clone();
    let groups: Vec<u16> = p
        .transforms
        .iter()
        .filter(|t| t.transform_type == transform::TYPE_DH)
        .map(|t| t.id)
        .collect();
    rest.transforms
        .retain(|t| t.transform_type != transform::TYPE_DH);
    read_child_proposal(&rest).map(|(c, spi)| (c, spi, groups))
}

fn session_id_of(sa: &IkeSa) -> Vec<u8> {
    [&sa.spi_i[..], &sa.spi_r[..]].concat()
}

/// RKMP's record of the IKE SA (DECISIONS K3): its SK_d, for later child SAs.
fn rkmp_sa_record(sa: &IkeSa, lifetime: Option<kmp_api::Duration>) -> UpperLayerSa {
    UpperLayerSa {
        sa_id: session_id_of(sa),
        kind: "rkmp-sa".into(),
        keys: vec![("SK_d".into(), sa.keys.sk_d.clone())],
        lifetime,
        parent: None,
    }
}

impl IkeSa {
    /// The IKE SA a rekey made: keys from the new SKEYSEED (RFC 7296 §2.18).
    fn rekeyed(
        old: &IkeSa,
        proposal: IkeProposal,
        spi_i: [u8; 8],
        spi_r: [u8; 8],
        ni: Vec<u8>,
        nr: Vec<u8>,
        g_ir: &[u8],
    ) -> Result<IkeSa, SessionError> {
        // SKEYSEED' with the old SA's PRF (as strongSwan does), the keys with the new one.
        let seed = crate::crypto::keys::rekey_skeyseed(
            old.proposal.prf,
            old.keys.sk_d.expose(),
            g_ir,
            &ni,
            &nr,
        )?;
        let keys = crate::crypto::keys::ike_sa_keys_from_skeyseed(
            proposal.prf,
            proposal.encr,
            proposal.integ,
            seed.expose(),
            &ni,
            &nr,
            &spi_i,
            &spi_r,
        )?;
        IkeSa::from_keys(proposal, spi_i, spi_r, keys, ni, nr)
    }
}

/// The outcome of a CREATE_CHILD_SA request we answer.
enum Answer {
    /// An error notify; nothing changes.
    Refuse(u16, Vec<u8>),
    /// A rekeyed child SA.
    Child {
        reply: Vec<Payload>,
        child: ChildSa,
        install: KeyInstall,
    },
    /// A rekeyed IKE SA, in use once the peer deletes the old one.
    Ike { reply: Vec<Payload>, sa: Box<IkeSa> },
}

impl Ikev2Session {
    fn removal(&self, which: kmp_api::session::KeySelector) -> Action {
        Action::RemoveKeys(kmp_api::session::KeyRemoval {
            owner: self.cfg.kmp_id(),
            peer: self.peer,
            which,
        })
    }

    /// A child SA's keys (RFC 7296 §2.17) as PIB records: link keys and an `ikev2-child`
    /// record (IKEv2), or an `rkmp-routing` SA under the IKE SA's record (RKMP). `we_began`:
    /// we sent the request of the exchange that made it; `spis`: the requester's SPI, then the
    /// responder's.
    #[allow(clippy::too_many_arguments)]
    fn child_records(
        &self,
        sa: &IkeSa,
        child: &ChildProposal,
        we_began: bool,
        ni: &[u8],
        nr: &[u8],
        g_ir: Option<&[u8]>,
        spis: ([u8; 4], [u8; 4]),
    ) -> Result<(Vec<LinkKey>, UpperLayerSa), SessionError> {
        let per_dir = child.encr.key_material_len() + child.integ.key_len();
        let keymat = child_keymat(
            sa.proposal.prf,
            sa.keys.sk_d.expose(),
            g_ir,
            ni,
            nr,
            2 * per_dir,
        )?;
        let k = keymat.expose();
        let part = |r: std::ops::Range<usize>| {
            k.get(r)
                .map(SecretBytes::from_slice)
                .ok_or_else(|| internal("keymat"))
        };
        let sa_id = [&spis.0[..], &spis.1[..]].concat();
        if let Profile::Rkmp {
            routing_protocol, ..
        } = self.cfg.profile
        {
            let mut routing_id = routing_protocol.to_be_bytes().to_vec();
            routing_id.extend_from_slice(&sa_id);
            return Ok((
                vec![],
                UpperLayerSa {
                    sa_id: routing_id,
                    kind: "rkmp-routing".into(),
                    keys: vec![
                        ("key-i2r".into(), part(0..per_dir)?),
                        ("key-r2i".into(), part(per_dir..2 * per_dir)?),
                    ],
                    lifetime: self.cfg.key_lifetime,
                    parent: Some(session_id_of(sa)),
                },
            ));
        }
        let (i2r, r2i) = (part(0..16)?, part(per_dir..per_dir + 16)?);
        let (tx, rx) = if we_began { (i2r, r2i) } else { (r2i, i2r) };
        let link = |key, direction| LinkKey {
            key,
            lookup: KeyIdentifier::Implicit,
            scope: KeyScope::Pairwise(self.peer),
            direction,
            min_security_level: self.cfg.min_security_level,
            lifetime: self.cfg.key_lifetime,
        };
        Ok((
            vec![
                link(tx, KeyDirection::Transmit),
                link(rx, KeyDirection::Receive),
            ],
            UpperLayerSa {
                sa_id,
                kind: "ikev2-child".into(),
                keys: vec![],
                lifetime: self.cfg.key_lifetime,
                parent: None,
            },
        ))
    }

    /// Starts a child SA rekey (RFC 7296 §1.3.3), or creates the first child SA of a
    /// childless IKE SA (RFC 6023 §4: the same exchange without REKEY_SA); a no-op unless
    /// established and idle.
    fn start_child(&mut self, now: Instant) -> Result<(), SessionError> {
        let State::Established { sa, child, .. } = &self.state else {
            return Ok(());
        };
        if self.outstanding.is_some() {
            return Ok(());
        }
        let spi: [u8; 4] = self.random()?;
        let ni = self.nonce()?;
        let group = sa.proposal.dh;
        let dh = if self.cfg.pfs {
            Some(group.generate(&self.rng)?)
        } else {
            None
        };
        let proposals = self
            .cfg
            .child_proposals
            .iter()
            .enumerate()
            .map(|(i, p)| {
                child_offer(
                    u8::try_from(i + 1).unwrap_or(u8::MAX),
                    p,
                    spi,
                    dh.as_ref().map(|_| group),
                )
            })
            .collect();
        let mut inner: Vec<Payload> = child
            .iter()
            .map(|c| {
                Payload::Notify(NotifyPayload {
                    protocol: PROTO_ESP,
                    spi: c.ours.to_vec(),
                    notify_type: notify::REKEY_SA,
                    data: vec![],
                })
            })
            .collect();
        inner.push(Payload::Sa(SaPayload { proposals }));
        inner.push(Payload::Nonce(ni.clone()));
        if let Some(d) = &dh {
            inner.push(Payload::Ke(KePayload {
                group: group.transform_id(),
                data: d.public(),
            }));
        }
        self.add_selectors(
            &mut inner,
            self.cfg.local_ts.clone(),
            self.cfg.remote_ts.clone(),
        );
        let mid = self.next_request_id;
        let raw = self.seal(sa, ExchangeType::CreateChildSa, false, mid, &inner)?;
        if child.is_some() {
            tracing::info!(peer = %self.peer, "rekeying the child SA");
        } else {
            tracing::info!(peer = %self.peer, "creating the first child SA (RFC 6023)");
        }
        self.next_request_id = mid.wrapping_add(1);
        self.send_request(now, mid, raw);
        self.pending = Some(Pending::Child { ni, dh, spi });
        Ok(())
    }

    /// Starts an IKE SA rekey (RFC 7296 §1.3.2); a no-op unless established and idle.
    fn start_ike_rekey(&mut self, now: Instant) -> Result<(), SessionError> {
        let State::Established { sa, .. } = &self.state else {
            return Ok(());
        };
        if self.outstanding.is_some() {
            return Ok(());
        }
        let spi: [u8; 8] = self.random()?;
        let ni = self.nonce()?;
        // The KE is for the group the current SA uses; we offer only proposals of that group
        // first, then the others (without a KE of theirs an INVALID_KE_PAYLOAD would follow).
        let group = sa.proposal.dh;
        let dh = group.generate(&self.rng)?;
        let mut offers: Vec<&IkeProposal> = self
            .cfg
            .ike_proposals
            .iter()
            .filter(|p| p.dh == group)
            .collect();
        if offers.is_empty() {
            offers.push(&sa.proposal);
        }
        let proposals = offers
            .iter()
            .enumerate()
            .map(|(i, p)| ike_proposal_payload(u8::try_from(i + 1).unwrap_or(u8::MAX), p, &spi))
            .collect();
        let inner = vec![
            Payload::Sa(SaPayload { proposals }),
            Payload::Nonce(ni.clone()),
            Payload::Ke(KePayload {
                group: group.transform_id(),
                data: dh.public(),
            }),
        ];
        let mid = self.next_request_id;
        let raw = self.seal(sa, ExchangeType::CreateChildSa, false, mid, &inner)?;
        tracing::info!(peer = %self.peer, "rekeying the IKE SA");
        self.next_request_id = mid.wrapping_add(1);
        self.send_request(now, mid, raw);
        self.pending = Some(Pending::IkeRekey { ni, dh, spi });
        Ok(())
    }

    /// Sends an empty INFORMATIONAL request (liveness check, RFC 7296 §1.4).
    fn start_dpd(&mut self, now: Instant) -> Result<(), SessionError> {
        let State::Established { sa, .. } = &self.state else {
            return Ok(());
        };
        let mid = self.next_request_id;
        let raw = self.seal(sa, ExchangeType::Informational, false, mid, &[])?;
        tracing::debug!(peer = %self.peer, "liveness check");
        self.next_request_id = mid.wrapping_add(1);
        self.send_request(now, mid, raw);
        self.pending = Some(Pending::Informational);
        Ok(())
    }

    /// The next time an established SA wants to send a request on its own.
    fn next_own_request(&self) -> Option<Instant> {
        let State::Established {
            child,
            next_ike: None,
            ike_since,
            ..
        } = &self.state
        else {
            return None;
        };
        if self.outstanding.is_some() {
            return None;
        }
        [
            self.cfg.rekey_ike_after.map(|d| *ike_since + d),
            self.cfg
                .rekey_child_after
                .and_then(|d| child.as_ref().map(|c| c.since + d)),
            self.cfg.dpd.map(|d| self.last_heard + d),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Starts whichever of IKE SA rekey, child SA rekey and liveness check is due.
    fn own_request_due(&mut self, now: Instant) -> Result<(), SessionError> {
        if self.next_own_request().is_none_or(|t| t > now) {
            return Ok(());
        }
        let State::Established {
            child, ike_since, ..
        } = &self.state
        else {
            return Ok(());
        };
        let ike_due = self
            .cfg
            .rekey_ike_after
            .is_some_and(|d| *ike_since + d <= now);
        let child_due = self
            .cfg
            .rekey_child_after
            .is_some_and(|d| child.as_ref().is_some_and(|c| c.since + d <= now));
        if ike_due {
            self.start_ike_rekey(now)
        } else if child_due {
            self.start_child(now)
        } else {
            self.start_dpd(now)
        }
    }

    /// Makes the IKE SA a rekey created the current one: message IDs restart at 0 and, under
    /// RKMP, the PIB's records follow (the routing SA moves under the new RKMP SA).
    fn promote(&mut self, now: Instant) {
        let rkmp = matches!(self.cfg.profile, Profile::Rkmp { .. });
        let lifetime = self.cfg.key_lifetime;
        let State::Established {
            sa,
            child,
            next_ike,
            ike_since,
            ..
        } = &mut self.state
        else {
            return;
        };
        let Some((new, we_initiated)) = next_ike.take() else {
            return;
        };
        let old = std::mem::replace(sa, new);
        *ike_since = now;
        let records = rkmp.then(|| {
            let mut records = vec![rkmp_sa_record(sa, lifetime)];
            if let Some(c) = child {
                c.record.parent = Some(session_id_of(sa));
                records.push(c.record.clone());
            }
            records
        });
        self.ike_initiator = we_initiated;
        self.next_request_id = 0;
        self.expected_request_id = 0;
        tracing::info!(peer = %self.peer, "IKE SA rekeyed");
        if let Some(records) = records {
            self.actions.push_back(Action::InstallKeys(KeyInstall {
                owner: self.cfg.kmp_id(),
                peer: self.peer,
                link_keys: vec![],
                upper_layer_sas: records,
            }));
            let gone = self.removal(kmp_api::session::KeySelector::UpperLayerSa {
                sa_id: session_id_of(&old),
                revoke_children: false,
            });
            self.actions.push_back(gone);
        }
    }

    /// Whether a rekey request of the peer collides with ours and wins (RFC 7296 §2.8.1: the
    /// lower nonce loses). A losing request of ours is abandoned (its answer is ignored).
    fn collision_we_win(&mut self, their_nonce: &[u8]) -> bool {
        let ours = match &self.pending {
            Some(Pending::Child { ni, .. } | Pending::IkeRekey { ni, .. }) => ni.as_slice(),
            _ => return false,
        };
        if ours > their_nonce {
            return true;
        }
        tracing::info!(peer = %self.peer, "rekey collision: the peer's rekey wins");
        self.pending = Some(Pending::Informational);
        false
    }

    /// A CREATE_CHILD_SA request on the established IKE SA: a child SA or IKE SA rekey.
    fn on_create_child_request(
        &mut self,
        now: Instant,
        raw: &[u8],
        message_id: u32,
    ) -> Result<(), SessionError> {
        let State::Established { sa, .. } = &self.state else {
            return Err(internal("state"));
        };
        let inner = self.open(sa, raw)?;
        let answer = self.answer_create_child(now, &inner)?;
        let reply_inner = match answer {
            Answer::Refuse(code, data) => {
                tracing::info!(peer = %self.peer, code, "CREATE_CHILD_SA refused");
                vec![notify_payload(code, data)]
            }
            Answer::Child {
                reply,
                child: new,
                install,
            } => {
                let State::Established {
                    child, old_child, ..
                } = &mut self.state
                else {
                    return Err(internal("state"));
                };
                let old = child.replace(new);
                self.actions.push_back(Action::InstallKeys(install));
                if let Some(old) = old {
                    *old_child = Some((old.ours, old.theirs));
                    let gone = self.removal(kmp_api::session::KeySelector::UpperLayerSa {
                        sa_id: old.record.sa_id,
                        revoke_children: false,
                    });
                    self.actions.push_back(gone);
                    tracing::info!(peer = %self.peer, "child SA rekeyed (peer's request)");
                } else {
                    tracing::info!(peer = %self.peer, "child SA created on a childless IKE SA (peer's request)");
                }
                reply
            }
            Answer::Ike { reply, sa: new } => {
                // The peer began the rekey: it is the new IKE SA's initiator (RFC 7296 §2.18).
                if let State::Established { next_ike, .. } = &mut self.state {
                    *next_ike = Some((new, false));
                }
                reply
            }
        };
        let State::Established { sa, .. } = &self.state else {
            return Err(internal("state"));
        };
        let reply = self.seal(
            sa,
            ExchangeType::CreateChildSa,
            true,
            message_id,
            &reply_inner,
        )?;
        self.send_response(message_id, reply);
        self.expected_request_id = message_id.wrapping_add(1);
        Ok(())
    }

    fn answer_create_child(
        &mut self,
        now: Instant,
        inner: &[Payload],
    ) -> Result<Answer, SessionError> {
        let Found {
            sa: sa_p,
            ke,
            nonce: ni,
            tsi,
            tsr,
        } = Found::of(inner);
        let (Some(sa_p), Some(ni)) = (sa_p, ni) else {
            return Ok(Answer::Refuse(notify::INVALID_SYNTAX, vec![]));
        };
        if !(16..=256).contains(&ni.len()) {
            return Ok(Answer::Refuse(notify::INVALID_SYNTAX, vec![]));
        }
        let rekey = find_notify(inner, notify::REKEY_SA);
        let is_ike = sa_p.proposals.iter().any(|p| p.protocol == PROTO_IKE);
        let State::Established { child, .. } = &self.state else {
            return Err(internal("state"));
        };
        if !is_ike {
            match (rekey, child) {
                // The first child SA of a childless IKE SA (RFC 6023).
                (None, None) => {}
                // One child SA per IKE SA over 802.15.9 (DECISIONS I11).
                (None, Some(_)) => return Ok(Answer::Refuse(notify::NO_ADDITIONAL_SAS, vec![])),
                (Some(n), Some(c)) if n.protocol == PROTO_ESP && n.spi.as_slice() == c.theirs => {}
                (Some(_), _) => return Ok(Answer::Refuse(notify::CHILD_SA_NOT_FOUND, vec![])),
            }
        }
        if self.collision_we_win(ni) {
            return Ok(Answer::Refuse(notify::TEMPORARY_FAILURE, vec![]));
        }
        let State::Established { sa, .. } = &self.state else {
            return Err(internal("state"));
        };
        let nr = self.nonce()?;
        if is_ike {
            let chosen = sa_p.proposals.iter().find_map(|p| {
                let spi: [u8; 8] = p.spi.as_slice().try_into().ok()?;
                read_ike_proposal(p)
                    .filter(|c| self.cfg.ike_proposals.contains(c))
                    .map(|c| (p.number, c, spi))
            });
            let Some((number, chosen, spi_i)) = chosen else {
                return Ok(Answer::Refuse(notify::NO_PROPOSAL_CHOSEN, vec![]));
            };
            let Some(ke) = ke.filter(|k| k.group == chosen.dh.transform_id()) else {
                return Ok(Answer::Refuse(
                    notify::INVALID_KE_PAYLOAD,
                    chosen.dh.transform_id().to_be_bytes().to_vec(),
                ));
            };
            let dh = chosen.dh.generate(&self.rng)?;
            let Ok(g_ir) = dh.shared(&ke.data) else {
                return Ok(Answer::Refuse(notify::INVALID_SYNTAX, vec![]));
            };
            let spi_r: [u8; 8] = self.random()?;
            let new = IkeSa::rekeyed(
                sa,
                chosen,
                spi_i,
                spi_r,
                ni.clone(),
                nr.clone(),
                g_ir.expose(),
            )?;
            let mut p = ike_proposal_payload(number, &chosen, &spi_r);
            p.number = number;
            let reply = vec![
                Payload::Sa(SaPayload { proposals: vec![p] }),
                Payload::Nonce(nr),
                Payload::Ke(KePayload {
                    group: chosen.dh.transform_id(),
                    data: dh.public(),
                }),
            ];
            return Ok(Answer::Ike {
                reply,
                sa: Box::new(new),
            });
        }
        // A child SA rekey: a proposal we accept, with the KE's group when there is a KE.
        let ke_group = ke.map_or(0, |k| k.group);
        let chosen = sa_p.proposals.iter().find_map(|p| {
            let (c, spi, groups) = read_child_offer(p)?;
            let group_ok = if ke_group == 0 {
                groups.is_empty() || groups.contains(&0)
            } else {
                groups.contains(&ke_group)
            };
            (group_ok && self.cfg.child_proposals.contains(&c)).then_some((p.number, c, spi))
        });
        let Some((number, chosen, spi_i)) = chosen else {
            return Ok(Answer::Refuse(notify::NO_PROPOSAL_CHOSEN, vec![]));
        };
        if !self.routing_protocol_agrees(inner) {
            return Ok(Answer::Refuse(notify::NO_PROPOSAL_CHOSEN, vec![]));
        }
        let narrowed = self.narrowed_selectors(tsi, tsr);
        if narrowed.0.is_empty() || narrowed.1.is_empty() {
            return Ok(Answer::Refuse(notify::TS_UNACCEPTABLE, vec![]));
        }
        let (dh, g_ir) = match ke {
            Some(k) => {
                let Some(group) = DhGroup::from_transform_id(k.group) else {
                    return Ok(Answer::Refuse(notify::NO_PROPOSAL_CHOSEN, vec![]));
                };
                let dh = group.generate(&self.rng)?;
                let Ok(g) = dh.shared(&k.data) else {
                    return Ok(Answer::Refuse(notify::INVALID_SYNTAX, vec![]));
                };
                (Some((group, dh)), Some(g))
            }
            None => (None, None),
        };
        let spi_r: [u8; 4] = self.random()?;
        let (link_keys, record) = self.child_records(
            sa,
            &chosen,
            false,
            ni,
            &nr,
            g_ir.as_ref().map(|g| g.expose()),
            (spi_i, spi_r),
        )?;
        let mut p = child_offer(number, &chosen, spi_r, dh.as_ref().map(|(g, _)| *g));
        p.number = number;
        let mut reply = vec![
            Payload::Sa(SaPayload { proposals: vec![p] }),
            Payload::Nonce(nr),
        ];
        if let Some((group, d)) = &dh {
            reply.push(Payload::Ke(KePayload {
                group: group.transform_id(),
                data: d.public(),
            }));
        }
        self.add_selectors(&mut reply, narrowed.0, narrowed.1);
        Ok(Answer::Child {
            reply,
            child: ChildSa {
                ours: spi_r,
                theirs: spi_i,
                record: record.clone(),
                since: now,
            },
            install: KeyInstall {
                owner: self.cfg.kmp_id(),
                peer: self.peer,
                link_keys,
                upper_layer_sas: vec![record],
            },
        })
    }

    /// The answer to our CREATE_CHILD_SA request.
    fn on_create_child_response(&mut self, now: Instant, raw: &[u8]) -> Result<(), SessionError> {
        let State::Established { sa, .. } = &self.state else {
            return Err(internal("state"));
        };
        let inner = self.open(sa, raw)?;
        self.outstanding = None;
        let pending = self.pending.take();
        if let Some(code) = error_notify(&inner) {
            // TEMPORARY_FAILURE (a collision the peer won, or it is busy), or a refusal: the
            // SAs stay as they are; try again after another period.
            tracing::info!(peer = %self.peer, code, "our CREATE_CHILD_SA was refused");
            if !self.finished {
                // The first child SA of our childless IKE SA: the join fails as a whole.
                self.abandon(now, FailureReason::NegotiationFailed);
                return Ok(());
            }
            if let State::Established {
                child, ike_since, ..
            } = &mut self.state
            {
                match (pending, child) {
                    (Some(Pending::IkeRekey { .. }), _) => *ike_since = now,
                    (_, Some(c)) => c.since = now,
                    (_, None) => {}
                }
            }
            return Ok(());
        }
        let Found {
            sa: sa_p,
            ke,
            nonce: nr,
            ..
        } = Found::of(&inner);
        let (Some(sa_p), Some(nr)) = (sa_p, nr) else {
            return Err(SessionError::Malformed(
                "CREATE_CHILD_SA response lacks SA or Nr".into(),
            ));
        };
        let [one] = sa_p.proposals.as_slice() else {
            return Err(SessionError::Malformed(
                "CREATE_CHILD_SA response with other than one proposal".into(),
            ));
        };
        match pending {
            Some(Pending::Child { ni, dh, spi }) => {
                let Some((chosen, spi_r, _)) =
                    read_child_offer(one).filter(|(c, _, _)| self.cfg.child_proposals.contains(c))
                else {
                    return Err(SessionError::Malformed(
                        "child SA rekey: a proposal we did not offer".into(),
                    ));
                };
                let g_ir = match (&dh, ke) {
                    (Some(d), Some(k)) => Some(
                        d.shared(&k.data)
                            .map_err(|e| SessionError::Malformed(format!("bad KE: {e}")))?,
                    ),
                    (None, _) => None,
                    (Some(_), None) => {
                        return Err(SessionError::Malformed("child SA rekey: no KE".into()));
                    }
                };
                let State::Established { sa, .. } = &self.state else {
                    return Err(internal("state"));
                };
                let (link_keys, record) = self.child_records(
                    sa,
                    &chosen,
                    true,
                    &ni,
                    nr,
                    g_ir.as_ref().map(|g| g.expose()),
                    (spi, spi_r),
                )?;
                let new = ChildSa {
                    ours: spi,
                    theirs: spi_r,
                    record: record.clone(),
                    since: now,
                };
                let State::Established { child, .. } = &mut self.state else {
                    return Err(internal("state"));
                };
                let Some(old) = child.replace(new) else {
                    // The first child SA of our childless IKE SA: the exchange is complete.
                    self.install(KeyInstall {
                        owner: self.cfg.kmp_id(),
                        peer: self.peer,
                        link_keys,
                        upper_layer_sas: vec![record],
                    });
                    self.report_success();
                    tracing::info!(peer = %self.peer, "first child SA created");
                    return Ok(());
                };
                // RFC 7296 §2.8: the old child SA is deleted once the new one is in place.
                let del = [Payload::Delete(wire::DeletePayload {
                    protocol: PROTO_ESP,
                    spi_size: 4,
                    spis: vec![old.ours.to_vec()],
                })];
                let mid = self.next_request_id;
                let State::Established { sa: cur, .. } = &self.state else {
                    return Err(internal("state"));
                };
                let raw = self.seal(cur, ExchangeType::Informational, false, mid, &del)?;
                self.actions.push_back(Action::InstallKeys(KeyInstall {
                    owner: self.cfg.kmp_id(),
                    peer: self.peer,
                    link_keys,
                    upper_layer_sas: vec![record],
                }));
                let gone = self.removal(kmp_api::session::KeySelector::UpperLayerSa {
                    sa_id: old.record.sa_id,
                    revoke_children: false,
                });
                self.actions.push_back(gone);
                tracing::info!(peer = %self.peer, "child SA rekeyed");
                self.next_request_id = mid.wrapping_add(1);
                self.send_request(now, mid, raw);
                self.pending = Some(Pending::Informational);
                Ok(())
            }
            Some(Pending::IkeRekey { ni, dh, spi }) => {
                let spi_r: Option<[u8; 8]> = one.spi.as_slice().try_into().ok();
                let chosen = read_ike_proposal(one).filter(|c| self.cfg.ike_proposals.contains(c));
                let (Some(chosen), Some(spi_r), Some(ke)) = (chosen, spi_r, ke) else {
                    return Err(SessionError::Malformed(
                        "IKE SA rekey: bad SA, SPI or no KE".into(),
                    ));
                };
                let g_ir = dh
                    .shared(&ke.data)
                    .map_err(|e| SessionError::Malformed(format!("bad KE: {e}")))?;
                let State::Established { sa, .. } = &self.state else {
                    return Err(internal("state"));
                };
                let new = IkeSa::rekeyed(sa, chosen, spi, spi_r, ni, nr.clone(), g_ir.expose())?;
                // RFC 7296 §1.3.2: the old IKE SA is deleted on the old SA; the new one is
                // used once that is answered.
                let del = [Payload::Delete(wire::DeletePayload {
                    protocol: PROTO_IKE,
                    spi_size: 0,
                    spis: vec![],
                })];
                let mid = self.next_request_id;
                let raw = self.seal(sa, ExchangeType::Informational, false, mid, &del)?;
                if let State::Established { next_ike, .. } = &mut self.state {
                    *next_ike = Some((Box::new(new), true));
                }
                self.next_request_id = mid.wrapping_add(1);
                self.send_request(now, mid, raw);
                self.pending = Some(Pending::DeleteOldIke);
                Ok(())
            }
            // An abandoned rekey (a collision the peer won): nothing to do.
            _ => Ok(()),
        }
    }

    /// The answer to our INFORMATIONAL request.
    fn on_informational_response(&mut self, now: Instant, raw: &[u8]) -> Result<(), SessionError> {
        let State::Established { sa, .. } = &self.state else {
            return Err(internal("state"));
        };
        self.open(sa, raw)?;
        self.outstanding = None;
        if let Some(Pending::DeleteOldIke) = self.pending.take() {
            self.promote(now);
        }
        Ok(())
    }
}

#[cfg(test)]
mod rekey_tests {
    //! Rekey requests a well-behaved peer never sends: a rekey of an unknown child SA, and a
    //! second child SA.
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    const A: ExtendedAddress = ExtendedAddress([2, 0, 0, 0, 0, 0, 0, 1]);
    const B: ExtendedAddress = ExtendedAddress([2, 0, 0, 0, 0, 0, 0, 2]);

    fn session(role: Role, seed: u64) -> Ikev2Session {
        let cfg = Ikev2Config::from_toml("psk = \"a shared secret for the test\"\n").unwrap();
        let (local, peer) = if role == Role::Initiator {
            (A, B)
        } else {
            (B, A)
        };
        let ctx = SessionContext {
            local,
            peer,
            role,
            rng: RngHandle::seeded(seed),
            now: Instant::ZERO,
            open_responder_sessions: 0,
        };
        Ikev2Session::new(Arc::new(cfg), &ctx)
    }

    /// Drains the actions: the sends, and how many installs there were.
    fn drain(s: &mut Ikev2Session) -> (Vec<Vec<u8>>, usize) {
        let (mut sent, mut installs) = (vec![], 0);
        while let Some(a) = s.poll_action() {
            match a {
                Action::Send(m) => sent.push(m),
                Action::InstallKeys(_) => installs += 1,
                _ => {}
            }
        }
        (sent, installs)
    }

    fn established() -> (Ikev2Session, Ikev2Session) {
        let (mut i, mut r) = (session(Role::Initiator, 1), session(Role::Responder, 2));
        i.start(Instant::ZERO).unwrap();
        for _ in 0..4 {
            for m in drain(&mut i).0 {
                r.handle_datagram(Instant::ZERO, &m).unwrap();
            }
            for m in drain(&mut r).0 {
                i.handle_datagram(Instant::ZERO, &m).unwrap();
            }
        }
        assert!(matches!(i.state, State::Established { .. }));
        assert!(matches!(r.state, State::Established { .. }));
        (i, r)
    }

    /// The notify in the responder's answer, opened by the initiator.
    fn answer_notify(i: &Ikev2Session, raw: &[u8]) -> Option<u16> {
        let State::Established { sa, .. } = &i.state else {
            panic!("state");
        };
        error_notify(&i.open(sa, raw).unwrap())
    }

    #[test]
    fn a_rekey_of_an_unknown_child_sa_is_child_sa_not_found() {
        let (mut i, mut r) = established();
        if let State::Established {
            child: Some(child), ..
        } = &mut i.state
        {
            child.ours = [9, 9, 9, 9];
        }
        i.start_child(Instant::ZERO).unwrap();
        let (req, _) = drain(&mut i);
        r.handle_datagram(Instant::ZERO, &req[0]).unwrap();
        let (reply, installs) = drain(&mut r);
        assert_eq!(installs, 0);
        assert_eq!(
            answer_notify(&i, &reply[0]),
            Some(notify::CHILD_SA_NOT_FOUND)
        );
        // The initiator keeps its SAs and reopens its window.
        i.handle_datagram(Instant::ZERO, &reply[0]).unwrap();
        assert_eq!(drain(&mut i), (vec![], 0));
        assert!(i.outstanding.is_none() && matches!(i.state, State::Established { .. }));
    }

    #[test]
    fn a_new_child_sa_is_refused_with_no_additional_sas() {
        let (i, mut r) = established();
        let State::Established { sa, .. } = &i.state else {
            panic!("state");
        };
        let mut inner = vec![
            Payload::Sa(SaPayload {
                proposals: vec![child_offer(
                    1,
                    &i.cfg.child_proposals[0],
                    [1, 2, 3, 4],
                    None,
                )],
            }),
            Payload::Nonce(vec![7; 32]),
        ];
        i.add_selectors(&mut inner, i.cfg.local_ts.clone(), i.cfg.remote_ts.clone());
        let req = i
            .seal(
                sa,
                ExchangeType::CreateChildSa,
                false,
                i.next_request_id,
                &inner,
            )
            .unwrap();
        r.handle_datagram(Instant::ZERO, &req).unwrap();
        let (reply, installs) = drain(&mut r);
        assert_eq!(installs, 0);
        assert_eq!(
            answer_notify(&i, &reply[0]),
            Some(notify::NO_ADDITIONAL_SAS)
        );
    }

    #[test]
    fn a_broadcast_key_notify_must_hold_an_index_and_16_octets() {
        let cfg = Ikev2Config::from_toml(
            "psk = \"a shared secret for the test\"\nbroadcast_key = true\n",
        )
        .unwrap();
        let ctx = SessionContext {
            local: A,
            peer: B,
            role: Role::Initiator,
            rng: RngHandle::seeded(1),
            now: Instant::ZERO,
            open_responder_sessions: 0,
        };
        let s = Ikev2Session::new(Arc::new(cfg), &ctx);
        let with = |data: Vec<u8>| vec![notify_payload(BROADCAST_KEY_NOTIFY, data)];
        let mut good = vec![7];
        good.extend([0x42; 16]);
        let k = s.peer_broadcast_key(&with(good)).unwrap().unwrap();
        assert_eq!(
            k.lookup,
            KeyIdentifier::SourceIndex(KeySource::Eight(B.0), 7)
        );
        assert_eq!(
            (k.scope, k.direction),
            (KeyScope::Group, KeyDirection::Receive)
        );
        assert_eq!(k.key.expose(), &[0x42; 16]);
        for bad in [vec![], vec![7], vec![7; 16], vec![7; 18], {
            let mut v = vec![0];
            v.extend([1; 16]);
            v
        }] {
            assert!(s.peer_broadcast_key(&with(bad.clone())).is_err(), "{bad:?}");
        }
        assert!(s.peer_broadcast_key(&[]).unwrap().is_none());
        // Without broadcast keys of our own we take none.
        let plain = session(Role::Initiator, 2);
        let mut good = vec![7];
        good.extend([0x42; 16]);
        assert!(plain.peer_broadcast_key(&with(good)).unwrap().is_none());
    }
}
