//! The KMP ID 1 session: a supplicant or authenticator PAE over EAPOL, with optional MKA.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use eap::EapError;
use eap::authenticator::{
    AuthAction, AuthFailure, AuthOutcome, Authenticator, PassThrough, PassThroughAction,
    PassThroughOutcome,
};
use eap::peer::{Peer, PeerAction, PeerConfig, PeerFailure, PeerOutcome};
use kmp_api::addr::ExtendedAddress;
use kmp_api::id::KmpId;
use kmp_api::rng::RngHandle;
use kmp_api::security::KeyIdentifier;
use kmp_api::session::{
    Action, EstablishedSa, FailureReason, KeyDirection, KeyInstall, KeyRemoval, KeyScope,
    KeySelector, KmpSession, LinkKey, Outcome, Role, SecretBytes, SessionContext, SessionError,
};
use kmp_api::time::Instant;

use super::backend::{Backend, BackendAnswer, BackendKey};
use super::config::{PaeConfig, SakScope, StartFrame};
use crate::eapol::{EapolBody, EapolRepr};
use crate::handshake::keys::ptkid;
use crate::handshake::{KeyRequest, PaeRole, PmkCache};
use crate::mka::wire::AssociationNumber;
use crate::mka::{CakKeys, KeyLength, MkaAction, MkaConfig, MkaEvent, Participant, Sci};

/// What every session of one factory shares.
pub(crate) struct Shared {
    pub(crate) config: PaeConfig,
    pub(crate) pmks: PmkCache,
    pub(crate) backend: Option<Arc<dyn Backend>>,
}

enum Eap {
    Peer(Peer),
    Standalone(Authenticator),
    PassThrough(PassThrough),
}

/// MKA running after EAP.
struct MkaRun {
    participant: Participant,
    ckn: Vec<u8>,
    /// Until the first SAK goes into transmission.
    establish_deadline: Option<Instant>,
    /// SAKs installed for receive by MKA, waiting to go into transmission: (KS MI, KN) → key.
    pending: HashMap<([u8; 12], u32), SecretBytes>,
    /// Association Numbers whose SAK is in the PIB.
    in_pib: Vec<AssociationNumber>,
}

/// One 802.1X PAE (supplicant or authenticator) with one peer, carried as KMP ID 1.
///
/// See the [module documentation](super) for the Wi-SUN ordering, the handoff to KMP ID 6 and
/// the SAK mapping.
pub struct PaeSession {
    role: Role,
    pae: PaeRole,
    local: ExtendedAddress,
    peer: ExtendedAddress,
    rng: RngHandle,
    shared: Arc<Shared>,
    eap: Eap,
    /// Authenticator: EAP has been started (Identity sent).
    eap_started: bool,
    /// Supplicant initiator: the next first-frame retransmission and the frames sent so far.
    start_timer: Option<(Instant, u32)>,
    /// Pass-through: the next backend poll while an answer is due.
    backend_due: Option<Instant>,
    mka: Option<MkaRun>,
    finished: bool,
    closed: bool,
    actions: VecDeque<Action>,
}

fn eap_err(e: EapError) -> SessionError {
    match e {
        EapError::Wire(w) => SessionError::Malformed(format!("EAP: {w}")),
        EapError::Rng(r) => SessionError::Rng(r),
        EapError::Method(m) => SessionError::UnexpectedMessage {
            expected: "a method message the EAP method accepts",
            got: m.to_string(),
        },
        other => SessionError::UnexpectedMessage {
            expected: "an EAP packet the EAP state machine accepts now",
            got: other.to_string(),
        },
    }
}

fn unexpected(expected: &'static str, got: &str) -> SessionError {
    SessionError::UnexpectedMessage {
        expected,
        got: got.to_string(),
    }
}

impl PaeSession {
    pub(crate) fn new(
        shared: Arc<Shared>,
        ctx: SessionContext,
    ) -> Result<PaeSession, SessionError> {
        let cfg = &shared.config;
        let eap = match cfg.role {
            PaeRole::Supplicant => {
                let methods = cfg
                    .methods
                    .iter()
                    .map(|m| m.peer_method())
                    .collect::<Result<Vec<_>, _>>()?;
                let peer_cfg = PeerConfig {
                    identity: cfg.identity.clone(),
                    idle_timeout: cfg.idle_timeout,
                };
                Eap::Peer(Peer::new(peer_cfg, methods, ctx.rng.clone(), ctx.now))
            }
            PaeRole::Authenticator if shared.backend.is_some() => {
                Eap::PassThrough(PassThrough::new(cfg.authenticator, ctx.rng.clone()))
            }
            PaeRole::Authenticator => {
                let methods = cfg
                    .methods
                    .iter()
                    .map(|m| m.server_method())
                    .collect::<Result<Vec<_>, _>>()?;
                Eap::Standalone(Authenticator::new(
                    cfg.authenticator,
                    methods,
                    ctx.rng.clone(),
                ))
            }
        };
        Ok(PaeSession {
            role: ctx.role,
            pae: cfg.role,
            local: ctx.local,
            peer: ctx.peer,
            rng: ctx.rng,
            eap,
            eap_started: false,
            start_timer: None,
            backend_due: None,
            mka: None,
            finished: false,
            closed: false,
            actions: VecDeque::new(),
            shared,
        })
    }

    fn config(&self) -> &PaeConfig {
        &self.shared.config
    }

    fn backend_key(&self) -> BackendKey {
        BackendKey {
            local: self.local,
            peer: self.peer,
        }
    }

    /// The PAE this session plays.
    pub fn pae_role(&self) -> PaeRole {
        self.pae
    }

    /// Whether MKA runs in this session now.
    pub fn mka_running(&self) -> bool {
        self.mka.is_some()
    }

    fn eapol(&mut self, body: EapolBody<'_>) {
        let repr = EapolRepr {
            version: self.config().eapol_version,
            body,
        };
        match repr.to_vec() {
            Ok(pdu) => self.actions.push_back(Action::Send(pdu)),
            Err(e) => self.fail(FailureReason::Internal(format!("EAPOL encoding: {e}"))),
        }
    }

    /// Supplicant: the EAPOL-Start or the Wi-SUN key request.
    fn send_start_frame(&mut self) {
        match self.config().start {
            StartFrame::EapolStart => self.eapol(EapolBody::Start(&[])),
            StartFrame::KeyRequest => {
                let mut req = KeyRequest::default();
                if let Some(e) = self.shared.pmks.get(self.local, self.peer)
                    && e.role == PaeRole::Supplicant
                {
                    req.pmkid = Some(e.pmkid);
                    req.replay_counter = e.replay_counter.unwrap_or(0);
                    let (aa, spa) = e.role.aa_spa(self.local, self.peer);
                    req.ptkid = e.ptk.as_ref().and_then(|p| ptkid(p, aa, spa).ok());
                }
                match req.to_pdu() {
                    Ok(pdu) => self.actions.push_back(Action::Send(pdu)),
                    Err(e) => self.fail(FailureReason::Internal(format!("key request: {e}"))),
                }
            }
        }
    }

    /// Authenticator: EAP-Request/Identity (or the first method).
    fn start_eap(&mut self, now: Instant) -> Result<(), SessionError> {
        if self.eap_started {
            return Ok(());
        }
        let r = match &mut self.eap {
            Eap::Standalone(a) => a.start(now),
            Eap::PassThrough(p) => p.start(now),
            Eap::Peer(_) => return Ok(()),
        };
        r.map_err(eap_err)?;
        self.eap_started = true;
        self.pump(now);
        Ok(())
    }

    fn fail(&mut self, reason: FailureReason) {
        if self.closed {
            return;
        }
        tracing::debug!(peer = %self.peer, %reason, "802.1X PAE failed");
        if let (Some(b), Eap::PassThrough(_)) = (&self.shared.backend, &self.eap) {
            b.abandon(self.backend_key());
        }
        self.closed = true;
        self.start_timer = None;
        self.backend_due = None;
        self.mka = None;
        if !self.finished {
            self.finished = true;
            self.actions
                .push_back(Action::Finished(Outcome::Failure(reason)));
        }
    }

    fn succeed(&mut self, session_id: Vec<u8>, keys_installed: usize) {
        self.finished = true;
        self.actions
            .push_back(Action::Finished(Outcome::Success(EstablishedSa {
                peer: self.peer,
                session_id,
                lifetime: None,
                keys_installed,
            })));
    }

    /// EAP succeeded with `msk`: PMK = MSK[0..32] into the cache, then MKA or the end.
    fn eap_success(&mut self, now: Instant, msk: &SecretBytes, session_id: &[u8]) {
        if let (Some(b), Eap::PassThrough(_)) = (&self.shared.backend, &self.eap) {
            b.abandon(self.backend_key());
        }
        let pmkid =
            match self
                .shared
                .pmks
                .insert_from_msk(self.local, self.peer, self.pae, msk.expose())
            {
                Ok(id) => id,
                Err(e) => return self.fail(FailureReason::Internal(format!("PMK: {e}"))),
            };
        tracing::debug!(peer = %self.peer, "802.1X EAP success, PMK cached");
        let Some(settings) = self.config().mka.clone() else {
            self.closed = true;
            return self.succeed(pmkid.to_vec(), 0);
        };
        let keys = match CakKeys::from_eap(
            msk.expose(),
            session_id,
            &self.local.0,
            &self.peer.0,
            KeyLength::Aes128,
        ) {
            Ok(k) => k,
            Err(e) => return self.fail(FailureReason::Internal(format!("MKA CAK: {e}"))),
        };
        let mut cfg = MkaConfig::new(Sci::from_eui64(self.local));
        cfg.key_server_priority = settings.key_server_priority.unwrap_or(match self.pae {
            PaeRole::Authenticator => 16,
            PaeRole::Supplicant => 32,
        });
        cfg.hello_time = settings.hello_time;
        cfg.life_time = settings.life_time;
        cfg.sak_retire_time = settings.sak_retire_time;
        cfg.icv_coverage = settings.icv_coverage;
        let ckn = keys.ckn().as_bytes().to_vec();
        let mut participant = match Participant::new(cfg, keys, self.rng.clone()) {
            Ok(p) => p,
            Err(e) => return self.fail(FailureReason::Internal(format!("MKA: {e}"))),
        };
        if let Err(e) = participant.start(now) {
            return self.fail(FailureReason::Internal(format!("MKA: {e}")));
        }
        self.mka = Some(MkaRun {
            participant,
            ckn,
            establish_deadline: now.checked_add(settings.establish_timeout),
            pending: HashMap::new(),
            in_pib: vec![],
        });
    }

    fn link_key_id(&self, an: AssociationNumber) -> KeyIdentifier {
        let base = self.config().mka.as_ref().map_or(5, |m| m.key_index_base);
        KeyIdentifier::Index(base.saturating_add(an.get()))
    }

    fn mka_event(&mut self, ev: MkaEvent) {
        let Some(settings) = self.config().mka.clone() else {
            return;
        };
        match ev {
            MkaEvent::SakInstalled {
                key_server_mi,
                kn,
                sak,
                ..
            } => {
                if let Some(m) = self.mka.as_mut() {
                    m.pending.insert((key_server_mi.0, kn), sak);
                }
            }
            MkaEvent::SakTransmit {
                key_server_mi,
                kn,
                an,
            } => {
                let lookup = self.link_key_id(an);
                let Some(m) = self.mka.as_mut() else { return };
                let Some(sak) = m.pending.remove(&(key_server_mi.0, kn)) else {
                    return;
                };
                m.in_pib.retain(|a| *a != an);
                m.in_pib.push(an);
                m.establish_deadline = None;
                let ckn = m.ckn.clone();
                self.actions.push_back(Action::InstallKeys(KeyInstall {
                    owner: KmpId::Ieee8021xMka,
                    peer: self.peer,
                    link_keys: vec![LinkKey {
                        key: sak,
                        lookup,
                        scope: match settings.key_scope {
                            SakScope::Pairwise => KeyScope::Pairwise(self.peer),
                            SakScope::Group => KeyScope::Group,
                        },
                        direction: KeyDirection::Both,
                        min_security_level: settings.min_security_level,
                        lifetime: None,
                    }],
                    upper_layer_sas: vec![],
                }));
                if !self.finished {
                    self.succeed(ckn, 1);
                }
            }
            MkaEvent::SakRetired { an, .. } => {
                let lookup = self.link_key_id(an);
                let Some(m) = self.mka.as_mut() else { return };
                if m.in_pib.contains(&an) {
                    m.in_pib.retain(|a| *a != an);
                    self.remove_keys(KeySelector::LinkKey(lookup));
                }
            }
            MkaEvent::PeerLost { .. } => {
                if self.finished {
                    // The CA is gone: its keys go, and the session ends.
                    self.remove_keys(KeySelector::All);
                    self.mka = None;
                    self.closed = true;
                }
            }
            MkaEvent::PeerLive { .. } => {}
        }
    }

    fn remove_keys(&mut self, which: KeySelector) {
        self.actions.push_back(Action::RemoveKeys(KeyRemoval {
            owner: KmpId::Ieee8021xMka,
            peer: self.peer,
            which,
        }));
    }

    /// Moves everything the inner state machines produced into actions.
    fn pump(&mut self, now: Instant) {
        loop {
            let mut progressed = false;
            match &mut self.eap {
                Eap::Peer(p) => {
                    if let Some(a) = p.poll_action() {
                        progressed = true;
                        self.peer_action(now, a);
                    }
                }
                Eap::Standalone(a) => {
                    if let Some(x) = a.poll_action() {
                        progressed = true;
                        self.auth_action(now, x);
                    }
                }
                Eap::PassThrough(p) => {
                    if let Some(x) = p.poll_action() {
                        progressed = true;
                        self.pass_through_action(now, x);
                    }
                }
            }
            if let Some(m) = self.mka.as_mut()
                && let Some(a) = m.participant.poll_action()
            {
                progressed = true;
                match a {
                    MkaAction::Transmit(pdu) => self.actions.push_back(Action::Send(pdu)),
                    MkaAction::Event(ev) => self.mka_event(ev),
                }
            }
            if !progressed {
                break;
            }
        }
    }

    fn peer_action(&mut self, now: Instant, a: PeerAction) {
        match a {
            PeerAction::Send(eap) => self.eapol(EapolBody::EapPacket(&eap)),
            PeerAction::Notification(text) => {
                tracing::info!(peer = %self.peer, text = %String::from_utf8_lossy(&text), "EAP notification");
            }
            PeerAction::Finished(PeerOutcome::Success {
                keys: Some(keys), ..
            }) => self.eap_success(now, &keys.msk, &keys.session_id),
            PeerAction::Finished(PeerOutcome::Success { keys: None, method }) => self.fail(
                FailureReason::ProtocolViolation(format!("EAP method {method:?} derived no MSK")),
            ),
            PeerAction::Finished(PeerOutcome::Failure(f)) => self.fail(match f {
                PeerFailure::Timeout => FailureReason::Timeout { attempts: 1 },
                _ => FailureReason::AuthenticationFailed,
            }),
        }
    }

    fn auth_failure(&self, f: AuthFailure) -> FailureReason {
        match f {
            AuthFailure::NoAcceptableMethod => FailureReason::NegotiationFailed,
            AuthFailure::Timeout => FailureReason::Timeout {
                attempts: self.config().authenticator.max_retransmissions + 1,
            },
            AuthFailure::BackendTimeout => {
                FailureReason::Internal("the AAA backend did not answer".into())
            }
            _ => FailureReason::AuthenticationFailed,
        }
    }

    fn auth_action(&mut self, now: Instant, a: AuthAction) {
        match a {
            AuthAction::Send(eap) => self.eapol(EapolBody::EapPacket(&eap)),
            AuthAction::Finished(AuthOutcome::Success {
                keys: Some(keys), ..
            }) => self.eap_success(now, &keys.msk, &keys.session_id),
            AuthAction::Finished(AuthOutcome::Success {
                keys: None, method, ..
            }) => self.fail(FailureReason::ProtocolViolation(format!(
                "EAP method {method:?} derived no MSK"
            ))),
            AuthAction::Finished(AuthOutcome::Failure(f)) => {
                let reason = self.auth_failure(f);
                self.fail(reason);
            }
        }
    }

    fn pass_through_action(&mut self, now: Instant, a: PassThroughAction) {
        match a {
            PassThroughAction::Send(eap) => self.eapol(EapolBody::EapPacket(&eap)),
            PassThroughAction::ToBackend(resp) => {
                if let Some(b) = &self.shared.backend {
                    b.submit(self.backend_key(), &resp);
                }
                self.backend_due = now.checked_add(self.config().backend_poll);
            }
            PassThroughAction::Finished(PassThroughOutcome::Success { msk: Some(msk), .. }) => {
                // RADIUS carries no EAP Session-Id; MKA is refused with a backend (factory).
                self.eap_success(now, &msk, &[]);
            }
            PassThroughAction::Finished(PassThroughOutcome::Success { msk: None, .. }) => self
                .fail(FailureReason::ProtocolViolation(
                    "the AAA backend accepted without an MSK".into(),
                )),
            PassThroughAction::Finished(PassThroughOutcome::Failure(f)) => {
                let reason = self.auth_failure(f);
                self.fail(reason);
            }
        }
    }

    /// Pass-through: takes the backend's answer, if there is one.
    fn poll_backend(&mut self, now: Instant) {
        if self.backend_due.is_none() {
            return;
        }
        let key = self.backend_key();
        let (Some(b), Eap::PassThrough(p)) = (&self.shared.backend, &mut self.eap) else {
            return;
        };
        let Some(answer) = b.poll(key) else {
            self.backend_due = now.checked_add(self.shared.config.backend_poll);
            return;
        };
        self.backend_due = None;
        let r = match answer {
            BackendAnswer::Request(req) => p.backend_request(now, &req),
            BackendAnswer::Accept { eap, msk } => p.backend_accept(eap.as_deref(), msk),
            BackendAnswer::Reject(eap) => p.backend_reject(eap.as_deref()),
            BackendAnswer::Timeout => p.backend_timeout(),
        };
        if let Err(e) = r {
            // An answer the pass-through cannot use (not a Request, not a Success): the
            // conversation cannot go on.
            self.fail(FailureReason::ProtocolViolation(format!(
                "unusable AAA backend answer: {e}"
            )));
        }
    }

    fn on_eap(&mut self, now: Instant, packet: &[u8]) -> Result<(), SessionError> {
        if self.finished {
            return Err(unexpected("EAPOL-MKA", "EAP after the EAP conversation"));
        }
        let r = match &mut self.eap {
            Eap::Peer(p) => p.handle_packet(now, packet),
            Eap::Standalone(a) => {
                if !self.eap_started {
                    return Err(unexpected(
                        "EAPOL-Start or a key request",
                        "EAP before the authenticator started",
                    ));
                }
                a.handle_packet(now, packet)
            }
            Eap::PassThrough(p) => {
                if !self.eap_started {
                    return Err(unexpected(
                        "EAPOL-Start or a key request",
                        "EAP before the authenticator started",
                    ));
                }
                p.handle_packet(now, packet)
            }
        };
        r.map_err(eap_err)?;
        // The supplicant's first frame has been answered.
        self.start_timer = None;
        Ok(())
    }

    fn on_start_request(&mut self, now: Instant, what: &str) -> Result<(), SessionError> {
        if self.pae != PaeRole::Authenticator {
            return Err(unexpected("EAP Request", what));
        }
        if self.finished {
            return Err(unexpected("EAPOL-MKA", what));
        }
        // A repeated Start / key request while EAP runs is absorbed: EAP retransmits itself.
        self.start_eap(now)
    }

    fn dispatch(&mut self, now: Instant, pdu: &[u8]) -> Result<(), SessionError> {
        let repr = EapolRepr::parse_bytes(pdu)
            .map_err(|e| SessionError::Malformed(format!("EAPOL: {e}")))?;
        match repr.body {
            EapolBody::EapPacket(eap) => self.on_eap(now, eap),
            EapolBody::Start(_) => self.on_start_request(now, "EAPOL-Start"),
            EapolBody::Key(_) => {
                let req = KeyRequest::parse(pdu)
                    .map_err(|e| SessionError::Malformed(format!("EAPOL-Key: {e}")))?;
                if req.is_none() {
                    return Err(unexpected(
                        "an EAPOL-Key request",
                        "EAPOL-Key without Request (KMP ID 6/7 carry those)",
                    ));
                }
                self.on_start_request(now, "EAPOL-Key request")
            }
            EapolBody::Mka(_) => {
                let Some(m) = self.mka.as_mut() else {
                    return Err(unexpected("EAP", "EAPOL-MKA before EAP succeeded"));
                };
                m.participant.handle_mkpdu(now, pdu).map_err(|e| match e {
                    crate::mka::MkaError::Wire(w) => SessionError::Malformed(format!("MKPDU: {w}")),
                    crate::mka::MkaError::IcvMismatch => {
                        SessionError::VerificationFailed("MKPDU ICV")
                    }
                    other => SessionError::Refused(format!("MKPDU: {other}")),
                })
            }
            EapolBody::Logoff(_) if self.pae == PaeRole::Authenticator => {
                if self.finished {
                    if self.mka.take().is_some() {
                        self.remove_keys(KeySelector::All);
                    }
                    self.closed = true;
                } else {
                    // The supplicant gave up (802.1X-2020 Logoff): packet type 2 as the code.
                    self.fail(FailureReason::RejectedByPeer { code: 2 });
                }
                Ok(())
            }
            other => Err(unexpected(
                "EAP, EAPOL-Start, an EAPOL-Key request or EAPOL-MKA",
                &format!("{:?}", other.packet_type()),
            )),
        }
    }
}

impl KmpSession for PaeSession {
    fn kmp_id(&self) -> KmpId {
        KmpId::Ieee8021xMka
    }

    fn role(&self) -> Role {
        self.role
    }

    fn peer(&self) -> ExtendedAddress {
        self.peer
    }

    fn start(&mut self, now: Instant) -> Result<(), SessionError> {
        if self.role != Role::Initiator || self.closed {
            return Ok(());
        }
        match self.pae {
            PaeRole::Authenticator => self.start_eap(now),
            PaeRole::Supplicant => {
                if self.start_timer.is_some() {
                    return Ok(());
                }
                self.send_start_frame();
                self.start_timer = now
                    .checked_add(self.config().start_retransmit)
                    .map(|t| (t, 1));
                Ok(())
            }
        }
    }

    fn handle_datagram(&mut self, now: Instant, pdu: &[u8]) -> Result<(), SessionError> {
        if self.closed {
            return Err(SessionError::Finished);
        }
        let r = self.dispatch(now, pdu);
        self.poll_backend(now);
        self.pump(now);
        r
    }

    fn handle_timeout(&mut self, now: Instant) {
        if self.closed {
            return;
        }
        if let Some((t, sent)) = self.start_timer
            && now >= t
        {
            if sent >= self.config().start_attempts {
                self.fail(FailureReason::Timeout { attempts: sent });
                return;
            }
            self.send_start_frame();
            let next = now.checked_add(self.config().start_retransmit);
            self.start_timer = next.map(|t| (t, sent + 1));
        }
        if !self.finished {
            match &mut self.eap {
                Eap::Peer(p) => p.handle_timeout(now),
                Eap::Standalone(a) => a.handle_timeout(now),
                Eap::PassThrough(p) => p.handle_timeout(now),
            }
        }
        self.poll_backend(now);
        self.pump(now);
        if let Some(m) = self.mka.as_mut() {
            if m.establish_deadline.is_some_and(|d| now >= d) {
                self.fail(FailureReason::Timeout { attempts: 1 });
                return;
            }
            if m.participant.poll_timeout().is_some_and(|t| now >= t)
                && let Err(e) = m.participant.handle_timeout(now)
            {
                self.fail(FailureReason::Internal(format!("MKA: {e}")));
                return;
            }
        }
        self.pump(now);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        if self.closed {
            return None;
        }
        let eap = if self.finished {
            None
        } else {
            match &self.eap {
                Eap::Peer(p) => p.poll_timeout(),
                Eap::Standalone(a) => a.poll_timeout(),
                Eap::PassThrough(p) => p.poll_timeout(),
            }
        };
        let (mka, establish) = match &self.mka {
            Some(m) => (m.participant.poll_timeout(), m.establish_deadline),
            None => (None, None),
        };
        [
            self.start_timer.map(|(t, _)| t),
            eap,
            self.backend_due,
            mka,
            establish,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    fn delete(&mut self, now: Instant) {
        let _ = now;
        if !self.finished {
            self.fail(FailureReason::Deleted);
        } else if let (Some(b), Eap::PassThrough(_)) = (&self.shared.backend, &self.eap) {
            b.abandon(self.backend_key());
        }
        self.mka = None;
        self.closed = true;
    }

    fn is_closed(&self) -> bool {
        self.closed
    }
}

/// Checks the first PDU of a responder session for `role`: an authenticator is made by an
/// EAPOL-Start or an EAPOL-Key request, a supplicant by an EAP Request.
pub(crate) fn check_first_pdu(role: PaeRole, pdu: &[u8]) -> Result<(), SessionError> {
    let repr =
        EapolRepr::parse_bytes(pdu).map_err(|e| SessionError::Malformed(format!("EAPOL: {e}")))?;
    let ok = match (role, &repr.body) {
        (PaeRole::Authenticator, EapolBody::Start(_)) => true,
        (PaeRole::Authenticator, EapolBody::Key(_)) => {
            matches!(KeyRequest::parse(pdu), Ok(Some(_)))
        }
        (PaeRole::Supplicant, EapolBody::EapPacket(eap)) => matches!(
            eap::wire::Packet::parse(eap),
            Ok(eap::wire::Packet::Request { .. })
        ),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(unexpected(
            match role {
                PaeRole::Authenticator => "EAPOL-Start or an EAPOL-Key request",
                PaeRole::Supplicant => "an EAP Request",
            },
            &format!("{:?}", repr.body.packet_type()),
        ))
    }
}
