//! The Dragonfly exchange as a sans-IO [`KmpSession`], and its factory.
//!
//! ```text
//! initiator                                   responder
//!   Commit_I  ─────────────────────────────▶    (checks, derives keys)
//!             ◀───────────────────────────── Commit_R, Confirm_R
//!   (derives keys) Confirm_I ──────────────▶    verify Confirm_I → install, finish
//!   verify Confirm_R → install, finish         [GroupKey ──▶ if configured]
//! ```
//!
//! Both sides send their confirm as soon as they hold both commits and then verify the peer's,
//! so a wrong password fails on both sides with `AuthenticationFailed`. Lost messages are
//! recovered by retransmission (bounded); a finished side lingers for the retransmission window
//! and answers a repeated commit or confirm with its last messages.

use std::sync::Arc;

use kmp_api::addr::ExtendedAddress;
use kmp_api::crypto::ct_eq;
use kmp_api::crypto::hmac::hmac_sha256;
use kmp_api::crypto::keywrap::{aes_key_unwrap, aes_key_wrap};
use kmp_api::id::KmpId;
use kmp_api::primitives::MacStatus;
use kmp_api::registry::KmpRegistration;
use kmp_api::rng::RngHandle;
use kmp_api::security::KeyIdentifier;
use kmp_api::session::{
    Action, EstablishedSa, FailureReason, KeyDirection, KeyInstall, KeyScope, KmpFactory,
    KmpSession, LinkKey, Outcome, Role, SessionContext, SessionError,
};
use kmp_api::time::{Duration, Instant};

use crate::config::DragonflyConfig;
use crate::group::{Group, GroupId};
use crate::keys::{
    Commit, CommitSecrets, DragonflyError, SessionKeys, check_peer_commit, confirm, derive_keys,
    generate_commit, group_kek, link_key, verify_confirm,
};
use crate::pwe::{PasswordElement, derive_pwe};
use crate::wire::{MessageRepr, MessageType, RejectStatus};

impl From<DragonflyError> for SessionError {
    fn from(e: DragonflyError) -> Self {
        match e {
            DragonflyError::ConfirmMismatch => SessionError::VerificationFailed("confirm"),
            DragonflyError::InvalidScalar => SessionError::VerificationFailed("peer scalar"),
            DragonflyError::InvalidElement => SessionError::VerificationFailed("peer element"),
            DragonflyError::ReflectedCommit => SessionError::VerificationFailed("reflected commit"),
            DragonflyError::Crypto(c) => SessionError::Crypto(c),
            DragonflyError::Rng(r) => SessionError::Rng(r),
            other => SessionError::Refused(other.to_string()),
        }
    }
}

/// What a side holds once both commits are known.
struct Keyed {
    group: Arc<Group>,
    keys: SessionKeys,
    own: Commit,
    peer: Commit,
    /// The messages to send again when the peer repeats itself.
    last_sent: Vec<Vec<u8>>,
}

/// Initiator after sending its commit: expects the responder's commit.
struct ExpectCommit {
    group: Arc<Group>,
    pwe: PasswordElement,
    secrets: CommitSecrets,
    own: Commit,
    token: Option<Vec<u8>>,
    tried: Vec<GroupId>,
}

enum State {
    /// Initiator before `start`; responder before the first commit.
    Idle,
    /// Initiator: commit sent.
    ExpectCommit(Box<ExpectCommit>),
    /// Both commits known, own confirm sent: expects the peer's confirm.
    ExpectConfirm(Box<Keyed>),
    /// Initiator: authenticated, waiting for the responder's group key.
    ExpectGroupKey(Box<Keyed>),
    /// Done; answers retransmissions until `linger_until`.
    Accepted(Box<Keyed>),
    /// Stateless answer sent (reject, token) or failed: nothing more to do.
    Closed,
}

impl State {
    fn name(&self) -> &'static str {
        match self {
            State::Idle => "Idle",
            State::ExpectCommit(_) => "ExpectCommit",
            State::ExpectConfirm(_) => "ExpectConfirm",
            State::ExpectGroupKey(_) => "ExpectGroupKey",
            State::Accepted(_) => "Accepted",
            State::Closed => "Closed",
        }
    }
}

/// One Dragonfly exchange with one peer.
pub struct DragonflySession {
    config: Arc<DragonflyConfig>,
    groups: Arc<Groups>,
    role: Role,
    local: ExtendedAddress,
    peer: ExtendedAddress,
    rng: RngHandle,
    state: State,
    actions: std::collections::VecDeque<Action>,
    deadline: Option<Instant>,
    attempts: u32,
}

impl DragonflySession {
    /// A session for `ctx` with `config`, using the factory's prepared groups.
    fn with_groups(
        config: Arc<DragonflyConfig>,
        groups: Arc<Groups>,
        ctx: SessionContext,
    ) -> DragonflySession {
        DragonflySession {
            config,
            groups,
            role: ctx.role,
            local: ctx.local,
            peer: ctx.peer,
            rng: ctx.rng,
            state: State::Idle,
            actions: Default::default(),
            deadline: None,
            attempts: 0,
        }
    }

    fn ids(&self) -> (&[u8], &[u8]) {
        // Identities are the EUI-64s in display order (Annex E is not public: DECISIONS.md).
        match self.role {
            Role::Initiator => (&self.local.0, &self.peer.0),
            Role::Responder => (&self.peer.0, &self.local.0),
        }
    }

    fn pwe(&self, group: &Group) -> Result<PasswordElement, SessionError> {
        let (a, b) = self.ids();
        let c = &self.config;
        Ok(derive_pwe(
            group,
            c.profile,
            c.method,
            &c.password,
            a,
            b,
            None,
        )?)
    }

    fn send(&mut self, m: &MessageRepr<'_>) -> Result<Vec<u8>, SessionError> {
        let pdu = m
            .to_vec()
            .map_err(|e| SessionError::Malformed(e.to_string()))?;
        self.actions.push_back(Action::Send(pdu.clone()));
        Ok(pdu)
    }

    fn arm(&mut self, now: Instant) {
        self.deadline = Some(now + self.config.retransmit);
    }

    fn fail(&mut self, reason: FailureReason) {
        tracing::info!(peer = %self.peer, %reason, "dragonfly failed");
        self.actions
            .push_back(Action::Finished(Outcome::Failure(reason)));
        self.state = State::Closed;
        self.deadline = None;
    }

    fn commit_message<'a>(
        group: GroupId,
        token: Option<&'a [u8]>,
        c: &'a Commit,
    ) -> MessageRepr<'a> {
        MessageRepr::Commit {
            group,
            token,
            scalar: &c.scalar,
            element: &c.element,
        }
    }

    /// Initiator: commits with the group at `index` of the configuration.
    fn begin(
        &mut self,
        now: Instant,
        index: usize,
        tried: Vec<GroupId>,
    ) -> Result<(), SessionError> {
        let id = *self
            .config
            .groups
            .get(index)
            .ok_or(SessionError::Refused("no group left".into()))?;
        let group = self.groups.get(id)?;
        let pwe = self.pwe(&group)?;
        let (secrets, own) = generate_commit(&group, &pwe, &self.rng)?;
        self.send(&Self::commit_message(id, None, &own))?;
        let mut tried = tried;
        tried.push(id);
        self.state = State::ExpectCommit(Box::new(ExpectCommit {
            group,
            pwe,
            secrets,
            own,
            token: None,
            tried,
        }));
        self.attempts = 0;
        self.arm(now);
        Ok(())
    }

    /// Both commits known: derive keys, send our confirm, expect the peer's.
    fn keyed(
        &mut self,
        now: Instant,
        group: Arc<Group>,
        (pwe, secrets): (&PasswordElement, &CommitSecrets),
        (own, peer): (Commit, Commit),
        mut last_sent: Vec<Vec<u8>>,
    ) -> Result<(), SessionError> {
        check_peer_commit(&group, &own, &peer)?;
        let keys = derive_keys(&group, self.config.profile, pwe, secrets, &own, &peer)?;
        let c = confirm(
            &group,
            self.config.profile,
            keys.kck.expose(),
            1,
            &own,
            &peer,
        )?;
        let pdu = self.send(&MessageRepr::Confirm {
            group: group.id(),
            send_confirm: 1,
            confirm: &c,
        })?;
        last_sent.push(pdu);
        self.state = State::ExpectConfirm(Box::new(Keyed {
            group,
            keys,
            own,
            peer,
            last_sent,
        }));
        self.attempts = 0;
        self.arm(now);
        Ok(())
    }

    /// The peer's confirm verified: install and finish (or wait for the group key).
    fn accept(&mut self, now: Instant, mut k: Box<Keyed>) -> Result<(), SessionError> {
        if self.role == Role::Responder {
            if let Some((key, index, lifetime)) = self.config.group_key {
                let kek = group_kek(&k.keys).map_err(|e| self.internal(e.into()))?;
                let wrapped =
                    aes_key_wrap(kek.expose(), &key).map_err(|e| self.internal(e.into()))?;
                let pdu = self.send(&MessageRepr::GroupKey {
                    group: k.group.id().number(),
                    key_index: index,
                    lifetime_secs: lifetime,
                    wrapped: &wrapped,
                })?;
                k.last_sent.push(pdu);
            }
        } else if self.config.expect_group_key {
            self.state = State::ExpectGroupKey(k);
            self.attempts = 0;
            self.arm(now);
            return Ok(());
        }
        let install = self.install(&k, None).map_err(|e| self.internal(e))?;
        let n = install.link_keys.len();
        self.actions.push_back(Action::InstallKeys(install));
        self.finish_success(now, k, n);
        Ok(())
    }

    fn finish_success(&mut self, now: Instant, k: Box<Keyed>, installed: usize) {
        tracing::info!(peer = %self.peer, group = k.group.id().number(), "dragonfly authenticated");
        self.actions
            .push_back(Action::Finished(Outcome::Success(EstablishedSa {
                peer: self.peer,
                session_id: k.keys.pmkid.to_vec(),
                lifetime: self.config.key_lifetime,
                keys_installed: installed,
            })));
        // Linger long enough to answer every retransmission the peer may still send.
        let linger = self
            .config
            .retransmit
            .saturating_mul(u64::from(self.config.max_retries) + 1);
        self.deadline = Some(now + linger);
        self.state = State::Accepted(k);
    }

    /// The keys to hand to the PIB: the pairwise link key, plus a delivered group key.
    fn install(&self, k: &Keyed, group_key: Option<LinkKey>) -> Result<KeyInstall, SessionError> {
        let (a, b) = self.ids();
        let link = link_key(&k.keys, a, b)?;
        let mut link_keys = vec![LinkKey {
            key: link,
            lookup: KeyIdentifier::Implicit,
            scope: KeyScope::Pairwise(self.peer),
            direction: KeyDirection::Both,
            min_security_level: self.config.min_security_level,
            lifetime: self.config.key_lifetime,
        }];
        link_keys.extend(group_key);
        Ok(KeyInstall {
            owner: KmpId::Dragonfly,
            peer: self.peer,
            link_keys,
            upper_layer_sas: vec![],
        })
    }

    /// Fails the session for an internal error (crypto library), so nothing half-derived is
    /// ever installed, and passes the error on.
    fn internal(&mut self, e: SessionError) -> SessionError {
        self.fail(FailureReason::Internal(e.to_string()));
        e
    }

    fn on_message(&mut self, now: Instant, m: MessageRepr<'_>) -> Result<(), SessionError> {
        let state = std::mem::replace(&mut self.state, State::Closed);
        match (state, m) {
            (
                State::Idle,
                MessageRepr::Commit {
                    group,
                    scalar,
                    element,
                    ..
                },
            ) if self.role == Role::Responder => {
                if !self.config.groups.contains(&group) {
                    self.reject_group(group.number())?;
                    return Ok(());
                }
                let g = self.groups.get(group)?;
                let pwe = self.pwe(&g)?;
                let (secrets, own) = generate_commit(&g, &pwe, &self.rng)?;
                let peer = Commit {
                    scalar: scalar.to_vec(),
                    element: element.to_vec(),
                };
                // Check before answering, so a bad commit costs us no message.
                check_peer_commit(&g, &own, &peer)?;
                let pdu = self.send(&Self::commit_message(group, None, &own))?;
                self.keyed(now, g, (&pwe, &secrets), (own, peer), vec![pdu])
            }
            (
                State::ExpectCommit(e),
                MessageRepr::Commit {
                    group,
                    scalar,
                    element,
                    ..
                },
            ) if group == e.group.id() => {
                let peer = Commit {
                    scalar: scalar.to_vec(),
                    element: element.to_vec(),
                };
                if let Err(err) = check_peer_commit(&e.group, &e.own, &peer) {
                    // A bad (or forged) commit is dropped; keep waiting for the genuine one.
                    self.state = State::ExpectCommit(e);
                    return Err(err.into());
                }
                let e = *e;
                self.keyed(now, e.group, (&e.pwe, &e.secrets), (e.own, peer), vec![])
            }
            (State::ExpectCommit(mut e), MessageRepr::Token { token, .. }) => {
                e.token = Some(token.to_vec());
                self.send(&Self::commit_message(e.group.id(), Some(token), &e.own))?;
                self.state = State::ExpectCommit(e);
                self.arm(now);
                Ok(())
            }
            (
                State::ExpectCommit(e),
                MessageRepr::Reject {
                    status: RejectStatus::UnsupportedGroup,
                    supported,
                    ..
                },
            ) => {
                let theirs: Vec<u16> = supported
                    .chunks_exact(2)
                    .map(|c| u16::from_le_bytes([c[0], c[1]]))
                    .collect();
                let next = self.config.groups.iter().position(|g| {
                    !e.tried.contains(g) && (theirs.is_empty() || theirs.contains(&g.number()))
                });
                match next {
                    Some(i) => self.begin(now, i, e.tried),
                    None => {
                        self.fail(FailureReason::NegotiationFailed);
                        Ok(())
                    }
                }
            }
            (
                State::ExpectConfirm(k),
                MessageRepr::Confirm {
                    group,
                    send_confirm,
                    confirm: c,
                },
            ) if group == k.group.id() => {
                let ok = verify_confirm(
                    &k.group,
                    self.config.profile,
                    k.keys.kck.expose(),
                    send_confirm,
                    &k.own,
                    &k.peer,
                    c,
                );
                match ok {
                    Ok(()) => self.accept(now, k),
                    Err(e) => {
                        self.fail(FailureReason::AuthenticationFailed);
                        Err(e.into())
                    }
                }
            }
            // The peer repeats its commit because our answer was lost: repeat ours (the
            // initiator its confirm; the responder its commit and confirm).
            (State::ExpectConfirm(k), MessageRepr::Commit { scalar, .. })
                if ct_eq(scalar, &k.peer.scalar) =>
            {
                self.resend(&k.last_sent);
                self.state = State::ExpectConfirm(k);
                Ok(())
            }
            (
                State::ExpectGroupKey(k),
                MessageRepr::GroupKey {
                    key_index,
                    lifetime_secs,
                    wrapped,
                    ..
                },
            ) => {
                let key = match group_kek(&k.keys)
                    .map_err(SessionError::from)
                    .and_then(|kek| Ok(aes_key_unwrap(kek.expose(), wrapped)?))
                {
                    Ok(key) => key,
                    Err(e) => {
                        // A corrupt or forged group key is dropped; the responder will repeat it.
                        tracing::warn!(peer = %self.peer, "group key did not unwrap");
                        self.state = State::ExpectGroupKey(k);
                        return Err(e);
                    }
                };
                let group_key = LinkKey {
                    key,
                    lookup: KeyIdentifier::Index(key_index),
                    scope: KeyScope::Group,
                    direction: KeyDirection::Both,
                    min_security_level: self.config.min_security_level,
                    lifetime: (lifetime_secs > 0)
                        .then(|| Duration::from_secs(u64::from(lifetime_secs))),
                };
                let install = self
                    .install(&k, Some(group_key))
                    .map_err(|e| self.internal(e))?;
                let n = install.link_keys.len();
                self.actions.push_back(Action::InstallKeys(install));
                self.finish_success(now, k, n);
                Ok(())
            }
            // Finished, but the peer did not hear our confirm: the initiator answers a repeated
            // responder commit, the responder a repeated initiator confirm, each with its confirm
            // (and group key) only. The initiator never answers a confirm and no finished side
            // resends its commit, so two finished sides cannot keep each other talking.
            (State::Accepted(k), MessageRepr::Commit { scalar, .. })
                if self.role == Role::Initiator && ct_eq(scalar, &k.peer.scalar) =>
            {
                self.resend_confirms(&k.last_sent);
                self.state = State::Accepted(k);
                Ok(())
            }
            (State::Accepted(k), MessageRepr::Confirm { .. }) => {
                if self.role == Role::Responder {
                    self.resend_confirms(&k.last_sent);
                }
                self.state = State::Accepted(k);
                Ok(())
            }
            (State::ExpectGroupKey(k), MessageRepr::Confirm { .. }) => {
                self.state = State::ExpectGroupKey(k);
                Ok(())
            }
            (state, m) => {
                let expected = match &state {
                    State::Idle => "Commit",
                    State::ExpectCommit(_) => "Commit, Token or Reject",
                    State::ExpectConfirm(_) => "Confirm",
                    State::ExpectGroupKey(_) => "GroupKey",
                    State::Accepted(_) | State::Closed => "nothing",
                };
                let got = format!("{m:?}").chars().take(40).collect();
                self.state = state;
                Err(SessionError::UnexpectedMessage { expected, got })
            }
        }
    }

    fn reject_group(&mut self, group: u16) -> Result<(), SessionError> {
        let supported: Vec<u8> = self
            .config
            .groups
            .iter()
            .flat_map(|g| g.number().to_le_bytes())
            .collect();
        self.send(&MessageRepr::Reject {
            group,
            status: RejectStatus::UnsupportedGroup,
            supported: &supported,
        })?;
        self.state = State::Closed;
        self.deadline = None;
        Ok(())
    }

    /// Resends what we sent except our commit.
    fn resend_confirms(&mut self, pdus: &[Vec<u8>]) {
        let commit = MessageType::Commit.to_u8();
        for p in pdus.iter().filter(|p| p.first() != Some(&commit)) {
            self.actions.push_back(Action::Send(p.clone()));
        }
    }

    fn resend(&mut self, pdus: &[Vec<u8>]) {
        for p in pdus {
            self.actions.push_back(Action::Send(p.clone()));
        }
    }
}

impl KmpSession for DragonflySession {
    fn kmp_id(&self) -> KmpId {
        KmpId::Dragonfly
    }

    fn role(&self) -> Role {
        self.role
    }

    fn peer(&self) -> ExtendedAddress {
        self.peer
    }

    fn start(&mut self, now: Instant) -> Result<(), SessionError> {
        if self.role == Role::Initiator
            && matches!(self.state, State::Idle)
            && let Err(e) = self.begin(now, 0, vec![])
        {
            self.fail(FailureReason::Internal(e.to_string()));
            return Err(e);
        }
        Ok(())
    }

    fn handle_datagram(&mut self, now: Instant, pdu: &[u8]) -> Result<(), SessionError> {
        if matches!(self.state, State::Closed) {
            return Err(SessionError::Finished);
        }
        let m =
            MessageRepr::parse_bytes(pdu).map_err(|e| SessionError::Malformed(e.to_string()))?;
        let before = self.state.name();
        let r = self.on_message(now, m);
        if let Err(e) = &r {
            tracing::debug!(peer = %self.peer, state = before, error = %e, "dragonfly input dropped");
        }
        r
    }

    fn handle_timeout(&mut self, now: Instant) {
        if self.deadline.is_none_or(|d| now < d) {
            return;
        }
        let state = std::mem::replace(&mut self.state, State::Closed);
        match state {
            State::Accepted(_) | State::Closed | State::Idle => {
                // Linger over (or nothing pending): the session is done.
                self.deadline = None;
            }
            s => {
                if self.attempts >= self.config.max_retries {
                    self.state = s;
                    let attempts = self.attempts + 1;
                    self.fail(FailureReason::Timeout { attempts });
                    return;
                }
                self.attempts += 1;
                match &s {
                    State::ExpectCommit(e) => {
                        let token = e.token.clone();
                        let m = Self::commit_message(e.group.id(), token.as_deref(), &e.own);
                        let _ = self.send(&m);
                    }
                    State::ExpectConfirm(k) | State::ExpectGroupKey(k) => {
                        let pdus = k.last_sent.clone();
                        self.resend(&pdus);
                    }
                    _ => {}
                }
                self.state = s;
                self.arm(now);
            }
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The link could not deliver what we sent (MPX-DATA.confirm failure after the MAC's own
    /// retries): retransmit after an eighth of the retransmission timeout instead of the whole
    /// of it. The retransmission still counts against `max_retries`, so a dead link ends the
    /// exchange as before, only sooner.
    fn handle_link_failure(&mut self, now: Instant, status: MacStatus) {
        if matches!(status, MacStatus::Purged | MacStatus::Success) {
            return;
        }
        if !matches!(
            self.state,
            State::ExpectCommit(_) | State::ExpectConfirm(_) | State::ExpectGroupKey(_)
        ) {
            return;
        }
        let soon = now + Duration::from_micros(self.config.retransmit.as_micros() / 8);
        if self.deadline.is_some_and(|d| soon < d) {
            tracing::debug!(peer = %self.peer, ?status, "link failure: early retransmission");
            self.deadline = Some(soon);
        }
    }

    fn delete(&mut self, _now: Instant) {
        if !matches!(self.state, State::Closed | State::Accepted(_)) {
            self.fail(FailureReason::Deleted);
        }
        self.state = State::Closed;
        self.deadline = None;
    }

    fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
            || (self.deadline.is_none() && matches!(self.state, State::Accepted(_)))
    }
}

/// The configured groups, set up once (an EC group from its curve name, its order and prime)
/// and shared by every session of a factory.
struct Groups(Vec<Arc<Group>>);

impl Groups {
    fn new(ids: &[GroupId]) -> Result<Groups, SessionError> {
        Ok(Groups(
            ids.iter()
                .map(|&id| Group::new(id).map(Arc::new))
                .collect::<Result<_, _>>()?,
        ))
    }

    fn get(&self, id: GroupId) -> Result<Arc<Group>, SessionError> {
        self.0
            .iter()
            .find(|g| g.id() == id)
            .cloned()
            .ok_or_else(|| SessionError::Refused(format!("group {} not configured", id.number())))
    }
}

/// Makes Dragonfly sessions; holds the configuration and the anti-clogging secret.
pub struct DragonflyFactory {
    config: Arc<DragonflyConfig>,
    groups: Arc<Groups>,
    token_secret: [u8; 32],
}

impl DragonflyFactory {
    /// A factory with `config`; the anti-clogging secret comes from `rng`.
    pub fn new(config: DragonflyConfig, rng: &RngHandle) -> Result<DragonflyFactory, SessionError> {
        Ok(DragonflyFactory {
            groups: Arc::new(Groups::new(&config.groups)?),
            config: Arc::new(config),
            token_secret: rng.array()?,
        })
    }

    fn token_for(&self, peer: ExtendedAddress) -> Result<[u8; 16], SessionError> {
        let h = hmac_sha256(&self.token_secret, &peer.0)?;
        let mut t = [0u8; 16];
        t.copy_from_slice(&h[..16]);
        Ok(t)
    }
}

impl Drop for DragonflyFactory {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.token_secret);
    }
}

impl KmpFactory for DragonflyFactory {
    fn kmp_id(&self) -> KmpId {
        KmpId::Dragonfly
    }

    fn new_initiator(&self, ctx: SessionContext) -> Result<Box<dyn KmpSession>, SessionError> {
        Ok(Box::new(DragonflySession::with_groups(
            Arc::clone(&self.config),
            Arc::clone(&self.groups),
            SessionContext {
                role: Role::Initiator,
                ..ctx
            },
        )))
    }

    fn new_responder(
        &self,
        ctx: SessionContext,
        first_pdu: &[u8],
    ) -> Result<Box<dyn KmpSession>, SessionError> {
        let m = MessageRepr::parse_bytes(first_pdu)
            .map_err(|e| SessionError::Malformed(e.to_string()))?;
        let MessageRepr::Commit { group, token, .. } = m else {
            return Err(SessionError::UnexpectedMessage {
                expected: "Commit",
                got: format!("{m:?}").chars().take(40).collect(),
            });
        };
        let peer = ctx.peer;
        let mut s = DragonflySession::with_groups(
            Arc::clone(&self.config),
            Arc::clone(&self.groups),
            SessionContext {
                role: Role::Responder,
                ..ctx.clone()
            },
        );
        if ctx.open_responder_sessions >= self.config.anti_clogging_threshold {
            let expected = self.token_for(peer)?;
            if !token.is_some_and(|t| ct_eq(t, &expected)) {
                // Stateless answer: the peer must come back with the token.
                s.send(&MessageRepr::Token {
                    group: group.number(),
                    token: &expected,
                })?;
                s.state = State::Closed;
                // The commit is not to be processed by this session.
                return Ok(Box::new(TokenOnly(s)));
            }
        }
        Ok(Box::new(s))
    }
}

/// A responder that only answers with an anti-clogging token and holds no state.
struct TokenOnly(DragonflySession);

impl KmpSession for TokenOnly {
    fn kmp_id(&self) -> KmpId {
        KmpId::Dragonfly
    }
    fn role(&self) -> Role {
        Role::Responder
    }
    fn peer(&self) -> ExtendedAddress {
        self.0.peer
    }
    fn start(&mut self, _: Instant) -> Result<(), SessionError> {
        Ok(())
    }
    fn handle_datagram(&mut self, _: Instant, _: &[u8]) -> Result<(), SessionError> {
        // The runtime feeds the first PDU here; the token is already queued.
        Ok(())
    }
    fn handle_timeout(&mut self, _: Instant) {}
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
    fn poll_action(&mut self) -> Option<Action> {
        self.0.poll_action()
    }
    fn is_closed(&self) -> bool {
        true
    }
}

fn make_factory(config: &str) -> Result<Arc<dyn KmpFactory>, SessionError> {
    let config = DragonflyConfig::from_toml(config)?;
    Ok(Arc::new(DragonflyFactory::new(config, &RngHandle::os())?))
}

inventory::submit! {
    KmpRegistration::new(KmpId::Dragonfly, "dragonfly", make_factory)
}
