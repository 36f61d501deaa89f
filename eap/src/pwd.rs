//! EAP-pwd (RFC 5931, EAP Type 52), peer and server, ciphersuite group 19 (P-256) with random
//! function 1 and PRF 1 (HMAC-SHA256), password preparation "none".
//!
//! The exchange (RFC 5931 §2.8): the server sends PWD-ID (ciphersuite, a random 4-octet token,
//! its identity), the peer echoes the ciphersuite and token with its own identity; both derive
//! the password element from token, identities and password; the server sends its commit
//! (`Element || Scalar`), the peer checks it and answers with its own; the server checks that and
//! sends Confirm_s, the peer checks it and answers with Confirm_p, and the server checks that.
//!
//! The Dragonfly math is `kmp-dragonfly`'s (hunting-and-pecking loop, commit, commit checks and
//! shared secret, all on OpenSSL); what is EAP-pwd's own (seed, KDF, confirm, key schedule) is in
//! [`crypto`], the framing (L/M fragmentation, PWD-ID) in [`frame`].
//!
//! # Behaviour
//!
//! - A packet that does not parse or comes out of order (wrong PWD-Exch, wrong length, a bad
//!   fragment) is ignored (RFC 4137 `ignore`) and changes nothing; the one exception is a
//!   message completed by reassembly that is then ignored: its fragments are dropped with it.
//! - Fragments (RFC 5931 §3.1) are acknowledged and reassembled up to [`MAX_MESSAGE_LEN`]
//!   octets; what we send is split at the configured fragment size ([`DEFAULT_FRAGMENT_SIZE`]).
//!   Total-Length is accepted in the RFC/FreeRADIUS reading and in hostapd's (+3), see
//!   [`frame`].
//! - The server looks the password up by the identity of the peer's PWD-ID response, not the
//!   EAP Identity (they usually agree; hostapd and FreeRADIUS hash the PWD-ID one).
//! - A well-formed message with unacceptable content ends the method with a failure, as hostapd
//!   and wpa_supplicant do: another ciphersuite or preparation, a token that is not ours, an
//!   unknown peer identity, a scalar outside `1 < s < r`, an element off the curve, a reflected
//!   commit, the shared point at infinity, or a confirm that does not verify. The peer then
//!   sends nothing and fails ([`Decision::Fail`]); the server answers [`ServerStep::Failure`].
//! - The peer computes the password element when the server's commit arrives. Its intermediate
//!   responses report [`MethodState::MayCont`] / [`Decision::Fail`] (a Failure is accepted at any
//!   time, a Success is not); its Confirm response [`MethodState::Done`] /
//!   [`Decision::UncondSucc`].

pub mod crypto;
pub mod frame;

use std::sync::Arc;

use kmp_api::crypto::ct_eq;
use kmp_api::session::SecretBytes;
use kmp_dragonfly::group::{Group, GroupId};
use kmp_dragonfly::keys::{Commit, CommitSecrets, DragonflyError, generate_commit, shared_secret};
use kmp_dragonfly::pwe::PasswordElement;
use zeroize::Zeroizing;

use crate::method::{
    Decision, MethodContext, MethodError, MethodKeys, MethodState, PeerMethod, PeerStep,
    ServerMethod, ServerStep,
};
use crate::wire::{EapType, MethodId};
use crypto::{GROUP, HASH_LEN, PREP_NONE, PRF, RANDOM_FUNCTION, df_error};
use frame::{Exch, Framer, IdPayload, Received};

pub use frame::{DEFAULT_FRAGMENT_SIZE, MAX_MESSAGE_LEN, MIN_FRAGMENT_SIZE};

fn p256() -> Result<Group, MethodError> {
    Group::new(GroupId::P256).map_err(df_error)
}

/// Whether a Dragonfly error is an authentication verdict (bad peer values) rather than a
/// local failure.
fn is_verdict(e: &DragonflyError) -> bool {
    matches!(
        e,
        DragonflyError::InvalidScalar
            | DragonflyError::InvalidElement
            | DragonflyError::ReflectedCommit
            | DragonflyError::PweNotFound
    )
}

/// Whether the PWD-ID names our ciphersuite and preparation.
fn our_suite(id: &IdPayload) -> bool {
    id.group == GROUP
        && id.random_function == RANDOM_FUNCTION
        && id.prf == PRF
        && id.prep == PREP_NONE
}

/// Both sides' state after the commits: the shared secret `k` and the two commits.
struct Agreed {
    k: Zeroizing<Vec<u8>>,
    own: Commit,
    peer: Commit,
}

/// `k` from our commit and the peer's, checking the peer's commit first; `Ok(None)` is an
/// authentication failure (invalid or reflected commit, shared point at infinity).
fn agree(
    group: &Group,
    pwe: &PasswordElement,
    secrets: &CommitSecrets,
    own: &Commit,
    peer: Commit,
) -> Result<Option<Agreed>, MethodError> {
    match shared_secret(group, pwe, secrets, own, &peer) {
        Ok((k, _)) => Ok(Some(Agreed {
            k,
            own: own.clone(),
            peer,
        })),
        Err(e) if is_verdict(&e) => Ok(None),
        Err(e) => Err(df_error(e)),
    }
}

/// The password element, `Ok(None)` if hunting-and-pecking found none (an authentication
/// failure, probability about 2^-200).
fn pwe(
    group: &Group,
    token: &[u8; 4],
    peer_id: &[u8],
    server_id: &[u8],
    password: &[u8],
) -> Result<Option<PasswordElement>, MethodError> {
    match crypto::derive_pwe(group, token, peer_id, server_id, password) {
        Ok(p) => Ok(Some(p)),
        Err(e) if is_verdict(&e) => Ok(None),
        Err(e) => Err(df_error(e)),
    }
}

// ---------------------------------------------------------------------------------------------
// Peer

enum PeerState {
    ExpectId,
    ExpectCommit { token: [u8; 4], server_id: Vec<u8> },
    ExpectConfirm(Agreed),
    Done(Option<MethodKeys>),
}

/// The peer side of EAP-pwd, for one authentication.
pub struct PwdPeer {
    identity: Vec<u8>,
    password: SecretBytes,
    group: Group,
    framer: Framer,
    state: PeerState,
    server_id: Option<Vec<u8>>,
}

impl PwdPeer {
    /// A peer that calls itself `identity` in PWD-ID and knows `password` (used as is:
    /// preparation "none"), with the default fragment size.
    pub fn new(
        identity: impl Into<Vec<u8>>,
        password: SecretBytes,
    ) -> Result<PwdPeer, MethodError> {
        PwdPeer::with_fragment_size(identity, password, DEFAULT_FRAGMENT_SIZE)
    }

    /// As [`PwdPeer::new`] with the largest type-data of a response (at least
    /// [`MIN_FRAGMENT_SIZE`]); longer responses are fragmented.
    pub fn with_fragment_size(
        identity: impl Into<Vec<u8>>,
        password: SecretBytes,
        fragment_size: usize,
    ) -> Result<PwdPeer, MethodError> {
        Ok(PwdPeer {
            identity: identity.into(),
            password,
            group: p256()?,
            framer: Framer::new(fragment_size),
            state: PeerState::ExpectId,
            server_id: None,
        })
    }

    /// The server's identity from its PWD-ID request.
    pub fn server_identity(&self) -> Option<&[u8]> {
        self.server_id.as_deref()
    }

    fn fail(&mut self) -> PeerStep {
        self.state = PeerState::Done(None);
        PeerStep {
            response: None,
            state: MethodState::Done,
            decision: Decision::Fail,
        }
    }

    /// An intermediate response: MAY_CONT with decision FAIL, as wpa_supplicant's EAP-pwd
    /// peer reports, so that a Failure ends the conversation at any point (an unknown identity
    /// or a refused commit at the server) and a Success before the confirms is refused.
    fn cont(response: Vec<u8>) -> PeerStep {
        PeerStep {
            response: Some(response),
            state: MethodState::MayCont,
            decision: Decision::Fail,
        }
    }

    fn message(
        &mut self,
        ctx: &MethodContext<'_>,
        exch: Exch,
        payload: &[u8],
    ) -> Result<PeerStep, MethodError> {
        match (&self.state, exch) {
            (PeerState::ExpectId, Exch::Id) => {
                let id = IdPayload::parse(payload)?;
                if !our_suite(&id) {
                    tracing::debug!(group = id.group, "EAP-pwd: unsupported ciphersuite");
                    return Ok(self.fail());
                }
                let resp = IdPayload {
                    identity: self.identity.clone(),
                    ..id.clone()
                };
                let out = self.framer.send(Exch::Id, resp.to_bytes())?;
                self.server_id = Some(id.identity.clone());
                self.state = PeerState::ExpectCommit {
                    token: id.token,
                    server_id: id.identity,
                };
                Ok(PwdPeer::cont(out))
            }
            (PeerState::ExpectCommit { token, server_id }, Exch::Commit) => {
                let server = crypto::parse_commit(&self.group, payload)
                    .ok_or(MethodError::Invalid("PWD-Commit of the wrong length"))?;
                let Some(pwe) = pwe(
                    &self.group,
                    token,
                    &self.identity,
                    server_id,
                    self.password.expose(),
                )?
                else {
                    return Ok(self.fail());
                };
                let (secrets, own) =
                    generate_commit(&self.group, &pwe, ctx.rng).map_err(df_error)?;
                let agreed = agree(&self.group, &pwe, &secrets, &own, server)?;
                let Some(agreed) = agreed else {
                    tracing::debug!("EAP-pwd: the server's commit is invalid");
                    return Ok(self.fail());
                };
                let out = self
                    .framer
                    .send(Exch::Commit, crypto::commit_payload(&agreed.own))?;
                self.state = PeerState::ExpectConfirm(agreed);
                Ok(PwdPeer::cont(out))
            }
            (PeerState::ExpectConfirm(a), Exch::Confirm) => {
                if payload.len() != HASH_LEN {
                    return Err(MethodError::Invalid("PWD-Confirm of the wrong length"));
                }
                let expected = crypto::confirm(&a.k, &a.peer, &a.own)?;
                if !ct_eq(&expected, payload) {
                    tracing::debug!("EAP-pwd: the server's confirm does not verify");
                    return Ok(self.fail());
                }
                let confirm_p = crypto::confirm(&a.k, &a.own, &a.peer)?;
                let keys = crypto::method_keys(&a.k, &a.own, &a.peer, &confirm_p, payload)?;
                let out = self.framer.send(Exch::Confirm, confirm_p.to_vec())?;
                self.state = PeerState::Done(Some(keys));
                Ok(PeerStep {
                    response: Some(out),
                    state: MethodState::Done,
                    decision: Decision::UncondSucc,
                })
            }
            (PeerState::Done(_), _) => Err(MethodError::WrongState("EAP-pwd peer is done")),
            _ => Err(MethodError::Invalid("EAP-pwd message out of order")),
        }
    }
}

impl PeerMethod for PwdPeer {
    fn method_id(&self) -> MethodId {
        MethodId::Legacy(EapType::PWD)
    }

    fn process(
        &mut self,
        ctx: &MethodContext<'_>,
        request: &[u8],
    ) -> Result<PeerStep, MethodError> {
        if matches!(self.state, PeerState::Done(_)) {
            return Err(MethodError::WrongState("EAP-pwd peer is done"));
        }
        match self.framer.receive(request)? {
            Received::Reply(out) => Ok(PwdPeer::cont(out)),
            Received::Message(exch, payload) => self.message(ctx, exch, &payload),
        }
    }

    fn keys(&self) -> Option<MethodKeys> {
        match &self.state {
            PeerState::Done(k) => k.clone(),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Server

/// Where the server finds the password of a peer, by the identity in its PWD-ID response.
pub trait PwdStore: Send + Sync {
    /// The password of `peer_id`, or `None` if the peer is unknown (authentication then fails).
    fn password(&self, peer_id: &[u8]) -> Option<SecretBytes>;
}

impl<F> PwdStore for F
where
    F: Fn(&[u8]) -> Option<SecretBytes> + Send + Sync,
{
    fn password(&self, peer_id: &[u8]) -> Option<SecretBytes> {
        self(peer_id)
    }
}

enum ServerState {
    Idle,
    ExpectId {
        token: [u8; 4],
    },
    ExpectCommit {
        pwe: PasswordElement,
        secrets: CommitSecrets,
        own: Commit,
    },
    ExpectConfirm {
        agreed: Agreed,
        confirm_s: [u8; HASH_LEN],
    },
    Done(Option<MethodKeys>),
}

/// The server side of EAP-pwd, for one authentication.
pub struct PwdServer {
    server_id: Vec<u8>,
    store: Arc<dyn PwdStore>,
    group: Group,
    framer: Framer,
    state: ServerState,
    peer_id: Option<Vec<u8>>,
}

impl PwdServer {
    /// A server that calls itself `server_id` in PWD-ID and looks peers up in `store`, with the
    /// default fragment size.
    pub fn new(
        server_id: impl Into<Vec<u8>>,
        store: Arc<dyn PwdStore>,
    ) -> Result<PwdServer, MethodError> {
        PwdServer::with_fragment_size(server_id, store, DEFAULT_FRAGMENT_SIZE)
    }

    /// As [`PwdServer::new`] with the largest type-data of a request (at least
    /// [`MIN_FRAGMENT_SIZE`]); longer requests are fragmented.
    pub fn with_fragment_size(
        server_id: impl Into<Vec<u8>>,
        store: Arc<dyn PwdStore>,
        fragment_size: usize,
    ) -> Result<PwdServer, MethodError> {
        Ok(PwdServer {
            server_id: server_id.into(),
            store,
            group: p256()?,
            framer: Framer::new(fragment_size),
            state: ServerState::Idle,
            peer_id: None,
        })
    }

    /// The identity of the peer's PWD-ID response, once it named a known peer.
    pub fn peer_identity(&self) -> Option<&[u8]> {
        self.peer_id.as_deref()
    }

    fn fail(&mut self) -> ServerStep {
        self.state = ServerState::Done(None);
        ServerStep::Failure
    }

    fn message(
        &mut self,
        ctx: &MethodContext<'_>,
        exch: Exch,
        payload: &[u8],
    ) -> Result<ServerStep, MethodError> {
        match (&self.state, exch) {
            (ServerState::ExpectId { token }, Exch::Id) => {
                let id = IdPayload::parse(payload)?;
                if !our_suite(&id) || id.token != *token {
                    tracing::debug!("EAP-pwd: PWD-ID response with another suite or token");
                    return Ok(self.fail());
                }
                let Some(password) = self.store.password(&id.identity) else {
                    tracing::debug!("EAP-pwd: unknown peer identity");
                    return Ok(self.fail());
                };
                let Some(pwe) = pwe(
                    &self.group,
                    token,
                    &id.identity,
                    &self.server_id,
                    password.expose(),
                )?
                else {
                    return Ok(self.fail());
                };
                let (secrets, own) =
                    generate_commit(&self.group, &pwe, ctx.rng).map_err(df_error)?;
                let out = self
                    .framer
                    .send(Exch::Commit, crypto::commit_payload(&own))?;
                self.peer_id = Some(id.identity);
                self.state = ServerState::ExpectCommit { pwe, secrets, own };
                Ok(ServerStep::Request(out))
            }
            (ServerState::ExpectCommit { .. }, Exch::Commit) => {
                let peer = crypto::parse_commit(&self.group, payload)
                    .ok_or(MethodError::Invalid("PWD-Commit of the wrong length"))?;
                let ServerState::ExpectCommit { pwe, secrets, own } = &self.state else {
                    return Err(MethodError::WrongState("EAP-pwd server state"));
                };
                let Some(agreed) = agree(&self.group, pwe, secrets, own, peer)? else {
                    tracing::debug!("EAP-pwd: the peer's commit is invalid");
                    return Ok(self.fail());
                };
                let confirm_s = crypto::confirm(&agreed.k, &agreed.own, &agreed.peer)?;
                let out = self.framer.send(Exch::Confirm, confirm_s.to_vec())?;
                self.state = ServerState::ExpectConfirm { agreed, confirm_s };
                Ok(ServerStep::Request(out))
            }
            (ServerState::ExpectConfirm { agreed, confirm_s }, Exch::Confirm) => {
                if payload.len() != HASH_LEN {
                    return Err(MethodError::Invalid("PWD-Confirm of the wrong length"));
                }
                let expected = crypto::confirm(&agreed.k, &agreed.peer, &agreed.own)?;
                if !ct_eq(&expected, payload) {
                    tracing::debug!("EAP-pwd: the peer's confirm does not verify");
                    return Ok(self.fail());
                }
                let keys =
                    crypto::method_keys(&agreed.k, &agreed.peer, &agreed.own, payload, confirm_s)?;
                self.state = ServerState::Done(Some(keys));
                Ok(ServerStep::Success)
            }
            (ServerState::Idle, _) => Err(MethodError::WrongState("EAP-pwd server not started")),
            (ServerState::Done(_), _) => Err(MethodError::WrongState("EAP-pwd server is done")),
            _ => Err(MethodError::Invalid("EAP-pwd message out of order")),
        }
    }
}

impl ServerMethod for PwdServer {
    fn method_id(&self) -> MethodId {
        MethodId::Legacy(EapType::PWD)
    }

    fn start(&mut self, ctx: &MethodContext<'_>, _identity: &[u8]) -> Result<Vec<u8>, MethodError> {
        if !matches!(self.state, ServerState::Idle) {
            return Err(MethodError::WrongState("EAP-pwd server already started"));
        }
        let token = ctx.rng.array::<4>()?;
        let id = IdPayload {
            group: GROUP,
            random_function: RANDOM_FUNCTION,
            prf: PRF,
            token,
            prep: PREP_NONE,
            identity: self.server_id.clone(),
        };
        let out = self.framer.send(Exch::Id, id.to_bytes())?;
        self.state = ServerState::ExpectId { token };
        Ok(out)
    }

    fn process(
        &mut self,
        ctx: &MethodContext<'_>,
        response: &[u8],
    ) -> Result<ServerStep, MethodError> {
        match self.state {
            ServerState::Idle => {
                return Err(MethodError::WrongState("EAP-pwd server not started"));
            }
            ServerState::Done(_) => return Err(MethodError::WrongState("EAP-pwd server is done")),
            _ => {}
        }
        match self.framer.receive(response)? {
            Received::Reply(out) => Ok(ServerStep::Request(out)),
            Received::Message(exch, payload) => self.message(ctx, exch, &payload),
        }
    }

    fn keys(&self) -> Option<MethodKeys> {
        match &self.state {
            ServerState::Done(k) => k.clone(),
            _ => None,
        }
    }
}
