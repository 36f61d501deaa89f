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

use std::collections::VecDeque;
use std::sync::Arc;

use kmp_api::primitives::MacStatus;
use kmp_api::rng::RngHandle;
use kmp_api::security::KeyIdentifier;
use kmp_api::session::{
    Action, EstablishedSa, FailureReason, KeyDirection, KeyInstall, KeyScope, KmpFactory,
    KmpSession, LinkKey, Outcome, Role, SecretBytes, SessionContext, SessionError, UpperLayerSa,
};
use kmp_api::{ExtendedAddress, Instant, KmpId};

use crate::config::{
    ChildProposal, IdentityConfig, IkeProposal, Ikev2Config, Profile, ROUTING_PROTOCOL_NOTIFY,
};
use crate::crypto::{
    DhGroup, DhPrivate, EncrAlg, IkeSaKeys, IntegAlg, PrfAlg, SkCipher, child_keymat,
    derive_ike_sa_keys, psk_auth,
};
use crate::wire::{
    self, AuthPayload, ExchangeType, Flags, Header, IdPayload, KePayload, Message, NotifyPayload,
    Payload, Proposal, SaPayload, TrafficSelector, Transform, TsPayload, notify, payload_type,
    transform,
};

/// ID_KEY_ID (RFC 7296 §3.5): our EUI-64 is sent as an 8-octet key ID (DECISIONS I3).
const ID_KEY_ID: u8 = 11;
/// Shared Key Message Integrity Code (RFC 7296 §3.8).
const AUTH_SHARED_KEY: u8 = 2;
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
    openssl::sha::sha1(&data).to_vec()
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

/// The routing protocol an RKMP IKE_AUTH message names, if any.
fn routing_protocol_of(payloads: &[Payload]) -> Option<u16> {
    find_notify(payloads, ROUTING_PROTOCOL_NOTIFY)
        .and_then(|n| <[u8; 2]>::try_from(n.data.as_slice()).ok())
        .map(u16::from_be_bytes)
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
        let c_i = SkCipher::new(
            proposal.encr,
            proposal.integ,
            keys.sk_ei.expose(),
            keys.sk_ai.expose(),
        )?;
        let c_r = SkCipher::new(
            proposal.encr,
            proposal.integ,
            keys.sk_er.expose(),
            keys.sk_ar.expose(),
        )?;
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
}

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
        child_spi: [u8; 4],
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
    },
    /// Both sides: the IKE SA and its child SA exist.
    Established {
        sa: Box<IkeSa>,
        child_spis: ([u8; 4], [u8; 4]),
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
    deadline: Option<Instant>,
    finished: bool,
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
            deadline: None,
            finished: false,
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
                initiator: self.role == Role::Initiator,
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
        let cipher = if self.role == Role::Initiator {
            &sa.c_i
        } else {
            &sa.c_r
        };
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
        let cipher = if self.role == Role::Initiator {
            &sa.c_r
        } else {
            &sa.c_i
        };
        let plaintext = cipher
            .open(parts.aad, parts.body)
            .map_err(|_| SessionError::VerificationFailed("SK payload integrity check failed"))?;
        wire::parse_payloads(parts.first_inner, &plaintext)
            .map_err(|e| SessionError::Malformed(e.to_string()))
    }

    fn auth_data(
        &self,
        sa: &IkeSa,
        signer_is_initiator: bool,
        signed_message: &[u8],
        id: &IdPayload,
    ) -> Result<SecretBytes, SessionError> {
        let psk = self
            .cfg
            .psk
            .as_ref()
            .ok_or_else(|| SessionError::Config("ikev2: no PSK configured".into()))?;
        let (nonce, sk_p) = if signer_is_initiator {
            (&sa.nr, &sa.keys.sk_pi)
        } else {
            (&sa.ni, &sa.keys.sk_pr)
        };
        Ok(psk_auth(
            sa.proposal.prf,
            psk.expose(),
            signed_message,
            nonce,
            sk_p.expose(),
            &id.body_for_auth(),
        )?)
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
        let mut sa_p = None;
        let mut ke = None;
        let mut nr = None;
        for p in &msg.payloads {
            match p {
                Payload::Sa(s) => sa_p = Some(s),
                Payload::Ke(k) => ke = Some(k),
                Payload::Nonce(n) => nr = Some(n),
                _ => {}
            }
        }
        let (Some(sa_p), Some(ke), Some(nr)) = (sa_p, ke, nr) else {
            return Err(SessionError::Malformed(
                "IKE_SA_INIT response lacks SA, KE or Nr".into(),
            ));
        };
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
        // IKE_AUTH request: SK{IDi, AUTH, SA, TSi, TSr}.
        let id = self.our_id();
        let auth = self.auth_data(&sa, true, &request, &id)?;
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
        let inner = vec![
            Payload::IdI(id),
            Payload::Auth(AuthPayload {
                method: AUTH_SHARED_KEY,
                data: auth.expose().to_vec(),
            }),
            Payload::Sa(SaPayload {
                proposals: child_proposals,
            }),
        ];
        let mut inner = inner;
        self.add_selectors(
            &mut inner,
            self.cfg.local_ts.clone(),
            self.cfg.remote_ts.clone(),
        );
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
        let (Some(idr), Some(auth)) = (idr, auth) else {
            return Err(SessionError::Malformed(
                "IKE_AUTH response lacks IDr or AUTH".into(),
            ));
        };
        if !self.peer_id_ok(idr) {
            tracing::warn!(peer = %self.peer, "IKE_AUTH: the responder's ID is not the configured remote_id");
            self.fail(FailureReason::AuthenticationFailed);
            return Ok(());
        }
        let expected = self.auth_data(sa, false, init_response, idr)?;
        if auth.method != AUTH_SHARED_KEY || !kmp_api::crypto::ct_eq(expected.expose(), &auth.data)
        {
            tracing::warn!(peer = %self.peer, "IKE_AUTH: the responder's AUTH does not verify");
            self.fail(FailureReason::AuthenticationFailed);
            return Ok(());
        }
        if let Profile::Rkmp {
            routing_protocol, ..
        } = self.cfg.profile
        {
            if routing_protocol_of(&inner) != Some(routing_protocol) {
                self.fail(FailureReason::NegotiationFailed);
                return Ok(());
            }
        } else if has_ts != (true, true) {
            self.fail(FailureReason::ProtocolViolation(
                "IKE_AUTH response with a child SA lacks TSi or TSr".into(),
            ));
            return Ok(());
        }
        let chosen = sa_p.and_then(|s| match s.proposals.as_slice() {
            [one] => read_child_proposal(one),
            _ => None,
        });
        let Some((child, spi_r)) = chosen.filter(|(c, _)| self.cfg.child_proposals.contains(c))
        else {
            self.fail(FailureReason::NegotiationFailed);
            return Ok(());
        };
        let child_spi = *child_spi;
        let State::AuthSent { sa, .. } = std::mem::replace(&mut self.state, State::Closed) else {
            return Err(internal("state"));
        };
        self.outstanding = None;
        // The child SA's keys do not depend on the request IDs; the next request is ours.
        self.establish(now, sa, child, (child_spi, spi_r))
    }

    // ----- responder -----

    fn on_init_request(
        &mut self,
        now: Instant,
        raw: &[u8],
        msg: Message,
    ) -> Result<(), SessionError> {
        let mut sa_p = None;
        let mut ke = None;
        let mut ni = None;
        for p in &msg.payloads {
            match p {
                Payload::Sa(s) => sa_p = Some(s),
                Payload::Ke(k) => ke = Some(k),
                Payload::Nonce(n) => ni = Some(n),
                _ => {}
            }
        }
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
        let (Some(idi), Some(auth)) = (idi, auth) else {
            return Err(SessionError::Malformed(
                "IKE_AUTH request lacks IDi or AUTH".into(),
            ));
        };
        let State::InitAnswered { request, .. } = &self.state else {
            return Err(internal("state"));
        };
        let expected = self.auth_data(sa, true, request, idi)?;
        let id_ok = self.peer_id_ok(idi);
        if !id_ok
            || auth.method != AUTH_SHARED_KEY
            || !kmp_api::crypto::ct_eq(expected.expose(), &auth.data)
        {
            tracing::warn!(peer = %self.peer, id_ok, "IKE_AUTH: the initiator's ID or AUTH does not verify");
            let reply = self.seal(
                sa,
                ExchangeType::IkeAuth,
                true,
                1,
                &[notify_payload(notify::AUTHENTICATION_FAILED, vec![])],
            )?;
            self.send_response(1, reply);
            self.fail(FailureReason::AuthenticationFailed);
            return Ok(());
        }
        let chosen = sa_p.and_then(|s| {
            s.proposals.iter().find_map(|p| {
                read_child_proposal(p)
                    .filter(|(c, _)| self.cfg.child_proposals.contains(c))
                    .map(|(c, spi)| (p.number, c, spi))
            })
        });
        let Some((number, child, spi_i)) = chosen else {
            let reply = self.seal(
                sa,
                ExchangeType::IkeAuth,
                true,
                1,
                &[notify_payload(notify::NO_PROPOSAL_CHOSEN, vec![])],
            )?;
            self.send_response(1, reply);
            self.fail(FailureReason::NegotiationFailed);
            return Ok(());
        };
        if let Profile::Rkmp {
            routing_protocol, ..
        } = self.cfg.profile
            && routing_protocol_of(&inner) != Some(routing_protocol)
        {
            tracing::warn!(peer = %self.peer, "RKMP_SA_AUTH for another routing protocol");
            let reply = self.seal(
                sa,
                ExchangeType::IkeAuth,
                true,
                1,
                &[notify_payload(notify::NO_PROPOSAL_CHOSEN, vec![])],
            )?;
            self.send_response(1, reply);
            self.fail(FailureReason::NegotiationFailed);
            return Ok(());
        }
        let narrowed = if matches!(self.cfg.profile, Profile::Rkmp { .. }) {
            // No traffic selectors in RKMP: nothing to narrow.
            (self.cfg.remote_ts.clone(), self.cfg.local_ts.clone())
        } else {
            (
                narrow(
                    tsi.map(|t| t.selectors.as_slice()).unwrap_or_default(),
                    &self.cfg.remote_ts,
                ),
                narrow(
                    tsr.map(|t| t.selectors.as_slice()).unwrap_or_default(),
                    &self.cfg.local_ts,
                ),
            )
        };
        if narrowed.0.is_empty() || narrowed.1.is_empty() {
            tracing::warn!(peer = %self.peer, "IKE_AUTH: no common traffic selectors");
            let reply = self.seal(
                sa,
                ExchangeType::IkeAuth,
                true,
                1,
                &[notify_payload(notify::TS_UNACCEPTABLE, vec![])],
            )?;
            self.send_response(1, reply);
            self.fail(FailureReason::NegotiationFailed);
            return Ok(());
        }
        let State::InitAnswered { response, .. } = &self.state else {
            return Err(internal("state"));
        };
        let id = self.our_id();
        let our_auth = self.auth_data(sa, false, response, &id)?;
        let spi_r: [u8; 4] = self.random()?;
        let mut p = child_proposal_payload(number, &child, spi_r);
        p.number = number;
        let inner = vec![
            Payload::IdR(id),
            Payload::Auth(AuthPayload {
                method: AUTH_SHARED_KEY,
                data: our_auth.expose().to_vec(),
            }),
            Payload::Sa(SaPayload { proposals: vec![p] }),
        ];
        let mut inner = inner;
        self.add_selectors(&mut inner, narrowed.0, narrowed.1);
        let reply = self.seal(sa, ExchangeType::IkeAuth, true, 1, &inner)?;
        self.send_response(1, reply);
        self.expected_request_id = 2;
        let State::InitAnswered { sa, .. } = std::mem::replace(&mut self.state, State::Closed)
        else {
            return Err(internal("state"));
        };
        self.establish(now, sa, child, (spi_i, spi_r))
    }

    // ----- both -----

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

    /// Derives the child SA's keys, hands them to the PIB and reports success.
    fn establish(
        &mut self,
        now: Instant,
        sa: Box<IkeSa>,
        child: ChildProposal,
        child_spis: ([u8; 4], [u8; 4]),
    ) -> Result<(), SessionError> {
        let per_dir = child.encr.key_material_len() + child.integ.key_len();
        let keymat = child_keymat(
            sa.proposal.prf,
            sa.keys.sk_d.expose(),
            None,
            &sa.ni,
            &sa.nr,
            2 * per_dir,
        )?;
        let k = keymat.expose();
        let i2r = SecretBytes::from_slice(k.get(..16).ok_or_else(|| internal("keymat"))?);
        let r2i = SecretBytes::from_slice(
            k.get(per_dir..per_dir + 16)
                .ok_or_else(|| internal("keymat"))?,
        );
        let (tx, rx) = if self.role == Role::Initiator {
            (i2r, r2i)
        } else {
            (r2i, i2r)
        };
        let link = |key, direction| LinkKey {
            key,
            lookup: KeyIdentifier::Implicit,
            scope: KeyScope::Pairwise(self.peer),
            direction,
            min_security_level: self.cfg.min_security_level,
            lifetime: self.cfg.key_lifetime,
        };
        let mut sa_id = child_spis.0.to_vec();
        sa_id.extend_from_slice(&child_spis.1);
        let mut session_id = sa.spi_i.to_vec();
        session_id.extend_from_slice(&sa.spi_r);
        let install = if let Profile::Rkmp {
            routing_protocol, ..
        } = self.cfg.profile
        {
            // RKMP (DECISIONS K3): the RKMP SA keeps SK_d (for later child SAs); the child SA
            // becomes a routing-protocol SA under it, with each direction's whole key material.
            let mut routing_id = routing_protocol.to_be_bytes().to_vec();
            routing_id.extend_from_slice(&sa_id);
            let i2r_all =
                SecretBytes::from_slice(k.get(..per_dir).ok_or_else(|| internal("keymat"))?);
            let r2i_all = SecretBytes::from_slice(
                k.get(per_dir..2 * per_dir)
                    .ok_or_else(|| internal("keymat"))?,
            );
            KeyInstall {
                owner: self.cfg.kmp_id(),
                peer: self.peer,
                link_keys: vec![],
                upper_layer_sas: vec![
                    UpperLayerSa {
                        sa_id: session_id.clone(),
                        kind: "rkmp-sa".into(),
                        keys: vec![("SK_d".into(), sa.keys.sk_d.clone())],
                        lifetime: self.cfg.key_lifetime,
                        parent: None,
                    },
                    UpperLayerSa {
                        sa_id: routing_id,
                        kind: "rkmp-routing".into(),
                        keys: vec![("key-i2r".into(), i2r_all), ("key-r2i".into(), r2i_all)],
                        lifetime: self.cfg.key_lifetime,
                        parent: Some(session_id.clone()),
                    },
                ],
            }
        } else {
            KeyInstall {
                owner: self.cfg.kmp_id(),
                peer: self.peer,
                link_keys: vec![
                    link(tx, KeyDirection::Transmit),
                    link(rx, KeyDirection::Receive),
                ],
                upper_layer_sas: vec![UpperLayerSa {
                    sa_id: sa_id.clone(),
                    kind: "ikev2-child".into(),
                    keys: vec![],
                    lifetime: self.cfg.key_lifetime,
                    parent: None,
                }],
            }
        };
        self.actions.push_back(Action::InstallKeys(install));
        self.actions
            .push_back(Action::Finished(Outcome::Success(EstablishedSa {
                peer: self.peer,
                session_id,
                lifetime: self.cfg.key_lifetime,
                keys_installed: 2,
            })));
        self.finished = true;
        tracing::info!(peer = %self.peer, role = ?self.role, "IKE SA and child SA established");
        self.state = State::Established { sa, child_spis };
        self.deadline = None;
        let _ = now;
        Ok(())
    }
}

impl Ikev2Session {
    /// INFORMATIONAL request on the established SA: liveness (empty) or delete.
    fn on_informational_request(
        &mut self,
        raw: &[u8],
        message_id: u32,
    ) -> Result<(), SessionError> {
        let State::Established { sa, child_spis } = &self.state else {
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
        let ours = if self.role == Role::Initiator {
            child_spis.1
        } else {
            child_spis.0
        };
        let child_deleted = deletes
            .iter()
            .any(|d| d.protocol == PROTO_ESP && d.spis.iter().any(|s| s.as_slice() == ours));
        let mut reply_inner = Vec::new();
        if child_deleted && !ike_deleted {
            // RFC 7296 §1.4.1: answer a child SA delete with the delete of our inbound SA.
            let mine = if self.role == Role::Initiator {
                child_spis.0
            } else {
                child_spis.1
            };
            reply_inner.push(Payload::Delete(wire::DeletePayload {
                protocol: PROTO_ESP,
                spi_size: 4,
                spis: vec![mine.to_vec()],
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
        if ike_deleted || child_deleted {
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
            if h.flags.initiator == (self.role == Role::Initiator) {
                return Err(SessionError::Malformed(
                    "response with our own I flag".into(),
                ));
            }
            return match (&self.state, h.exchange) {
                (State::InitSent { .. }, ExchangeType::IkeSaInit) => {
                    self.on_init_response(now, pdu, msg)
                }
                (State::AuthSent { .. }, ExchangeType::IkeAuth) => self.on_auth_response(now, pdu),
                (State::Established { sa, .. }, ExchangeType::Informational) => {
                    // Our liveness check or delete was answered.
                    self.open(sa, pdu)?;
                    self.outstanding = None;
                    Ok(())
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
                self.on_informational_request(pdu, h.message_id)
            }
            (State::Established { sa, .. }, ExchangeType::CreateChildSa) => {
                // Rekeying is not offered yet: refuse cleanly so the peer can delete and
                // re-establish instead (RFC 7296 §1.3, NO_ADDITIONAL_SAS).
                let reply = self.seal(
                    sa,
                    ExchangeType::CreateChildSa,
                    true,
                    h.message_id,
                    &[notify_payload(notify::NO_ADDITIONAL_SAS, vec![])],
                )?;
                self.send_response(h.message_id, reply);
                self.expected_request_id = h.message_id.wrapping_add(1);
                Ok(())
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
        self.dispatch(now, pdu)
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
    }

    fn poll_timeout(&self) -> Option<Instant> {
        match (self.outstanding.as_ref().map(|o| o.deadline), self.deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
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
    pub fn new(cfg: Ikev2Config) -> Result<Ikev2Factory, SessionError> {
        let mut cookie_secret = [0u8; 32];
        RngHandle::os().fill(&mut cookie_secret)?;
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
