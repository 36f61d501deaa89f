//! The EAP authenticator: standalone, with the methods in this process (after RFC 4137 §5), or
//! pass-through, relaying to an AAA backend (after the AAA states of RFC 4137 §7).
//!
//! Both are driven the same way:
//!
//! ```text
//! start(now)                // send the first Request
//! handle_packet(now, eap)   // every EAP packet from the peer
//! handle_timeout(now)       // when poll_timeout() has passed: retransmit or give up
//! poll_timeout()            // next retransmission deadline
//! poll_action()             // drain until None
//! ```
//!
//! Retransmission (RFC 3748 §4.3): the last Request is sent again after
//! [`AuthenticatorConfig::retransmit_timeout`], at most
//! [`AuthenticatorConfig::max_retransmissions`] times; then the conversation fails with
//! [`AuthFailure::Timeout`] and, as in RFC 4137 TIMEOUT_FAILURE, no Failure is sent. Success and
//! Failure are never retransmitted. Only a Response with the Identifier of the outstanding
//! Request is accepted; anything else is discarded (and the timer keeps running).

use std::collections::VecDeque;

use kmp_api::rng::RngHandle;
use kmp_api::session::SecretBytes;
use kmp_api::time::{Duration, Instant};

use crate::EapError;
use crate::method::{MethodContext, MethodKeys, ServerMethod, ServerStep};
use crate::wire::{Body, Code, EapType, ExpandedType, MethodId, Packet};

/// Authenticator configuration (both modes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthenticatorConfig {
    /// Time before the last Request is sent again (RFC 3748 §4.3 suggests at least 3 s; on a
    /// slow radio with fragmentation give more).
    pub retransmit_timeout: Duration,
    /// How many times a Request is retransmitted before giving up (RFC 4137 MaxRetrans).
    pub max_retransmissions: u32,
    /// Standalone mode: start with an Identity Request (otherwise propose the first method
    /// directly, with an empty identity). The pass-through mode always starts with Identity.
    pub identity_request: bool,
}

impl Default for AuthenticatorConfig {
    /// 3 s, 4 retransmissions (RFC 4137 §5.3's MaxRetrans suggestion), Identity first.
    fn default() -> Self {
        AuthenticatorConfig {
            retransmit_timeout: Duration::from_secs(3),
            max_retransmissions: 4,
            identity_request: true,
        }
    }
}

/// Why the authenticator failed the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthFailure {
    /// The method rejected the peer.
    MethodFailed(MethodId),
    /// The peer Nak'ed every method we offer (or none is configured).
    NoAcceptableMethod,
    /// No valid Response after the last retransmission.
    Timeout,
    /// Pass-through: the backend rejected the peer.
    Rejected,
    /// Pass-through: the backend did not answer ([`PassThrough::backend_timeout`]).
    BackendTimeout,
}

/// How a standalone conversation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOutcome {
    /// The peer is authenticated; Success was sent.
    Success {
        /// The identity from the Identity Response (empty without one).
        identity: Vec<u8>,
        /// The method that authenticated the peer.
        method: MethodId,
        /// Its keys, if it derives keys.
        keys: Option<MethodKeys>,
    },
    /// Failure (sent, except on [`AuthFailure::Timeout`]).
    Failure(AuthFailure),
}

/// What a standalone authenticator wants done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthAction {
    /// Send this EAP packet to the peer.
    Send(Vec<u8>),
    /// The conversation is over.
    Finished(AuthOutcome),
}

/// The last Request and its retransmission timer.
#[derive(Debug, Default)]
struct Retransmit {
    request: Option<Vec<u8>>,
    count: u32,
    deadline: Option<Instant>,
}

impl Retransmit {
    fn arm(&mut self, now: Instant, timeout: Duration, request: Vec<u8>) {
        self.request = Some(request);
        self.count = 0;
        self.deadline = now.checked_add(timeout);
    }

    fn stop(&mut self) {
        self.deadline = None;
    }

    /// On a passed deadline: `Some(Ok(request))` to resend, `Some(Err(()))` when exhausted.
    fn on_timeout(
        &mut self,
        now: Instant,
        config: &AuthenticatorConfig,
    ) -> Option<Result<Vec<u8>, ()>> {
        let deadline = self.deadline?;
        if now < deadline {
            return None;
        }
        if self.count >= config.max_retransmissions {
            self.deadline = None;
            return Some(Err(()));
        }
        self.count += 1;
        self.deadline = now.checked_add(config.retransmit_timeout);
        self.request.clone().map(Ok)
    }
}

enum State {
    Created,
    /// Identity Request outstanding.
    Identity,
    /// The first Request of `methods[i]` outstanding: a Nak is acceptable.
    Proposed(usize),
    /// `methods[i]` is running.
    Continue(usize),
    Done,
}

/// The standalone authenticator (EAP server in the same process) for one conversation.
pub struct Authenticator {
    config: AuthenticatorConfig,
    methods: Vec<Box<dyn ServerMethod>>,
    /// Indices of the methods still acceptable to the peer, in our order of preference.
    candidates: Vec<usize>,
    rng: RngHandle,
    state: State,
    current_id: u8,
    identity: Vec<u8>,
    retransmit: Retransmit,
    actions: VecDeque<AuthAction>,
}

impl Authenticator {
    /// An authenticator offering `methods` (fresh instances, in order of preference).
    pub fn new(
        config: AuthenticatorConfig,
        methods: Vec<Box<dyn ServerMethod>>,
        rng: RngHandle,
    ) -> Authenticator {
        Authenticator {
            config,
            candidates: (0..methods.len()).collect(),
            methods,
            rng,
            state: State::Created,
            current_id: 0,
            identity: Vec::new(),
            retransmit: Retransmit::default(),
            actions: VecDeque::new(),
        }
    }

    /// Sends the first Request (Identity, or the first method). The first Identifier is random.
    pub fn start(&mut self, now: Instant) -> Result<(), EapError> {
        if !matches!(self.state, State::Created) {
            return Err(EapError::Unexpected {
                expected: "start once",
                got: "a second start",
            });
        }
        // The Identifier is incremented before each new Request.
        self.current_id = self.rng.array::<1>()?[0].wrapping_sub(1);
        if self.config.identity_request {
            self.state = State::Identity;
            self.send_request(now, Body::Identity(&[]));
        } else {
            self.propose_next(now);
        }
        Ok(())
    }

    /// Starts as an EAP server behind a pass-through authenticator (RFC 4137 §6, the backend
    /// authenticator; a RADIUS server's EAP side): `first` is the EAP packet of the first
    /// Access-Request. Usually the peer's Identity Response: its identity is recorded, its
    /// Identifier adopted, and the first method proposed. Empty (RADIUS EAP-Start, RFC 3579
    /// §2.1): like [`Authenticator::start`]. Anything else is refused and nothing starts.
    pub fn start_backend(&mut self, now: Instant, first: &[u8]) -> Result<(), EapError> {
        if first.is_empty() {
            return self.start(now);
        }
        if !matches!(self.state, State::Created) {
            return Err(EapError::Unexpected {
                expected: "start once",
                got: "a second start",
            });
        }
        match Packet::parse(first)? {
            Packet::Response {
                identifier,
                body: Body::Identity(id),
            } => {
                self.identity = id.to_vec();
                self.current_id = identifier;
                self.propose_next(now);
                Ok(())
            }
            _ => Err(EapError::Unexpected {
                expected: "Identity Response",
                got: "another packet",
            }),
        }
    }

    /// The identity from the Identity Response (empty before).
    pub fn identity(&self) -> &[u8] {
        &self.identity
    }

    /// Whether the conversation is over.
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// The next action; call until `None` after every other call.
    pub fn poll_action(&mut self) -> Option<AuthAction> {
        self.actions.pop_front()
    }

    /// When [`Authenticator::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.retransmit.deadline
    }

    /// Retransmits the last Request, or fails after the last retransmission.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.retransmit.on_timeout(now, &self.config) {
            Some(Ok(req)) => self.actions.push_back(AuthAction::Send(req)),
            Some(Err(())) => self.finish(AuthOutcome::Failure(AuthFailure::Timeout), false),
            None => {}
        }
    }

    /// Processes one EAP packet from the peer. An `Err` says why it was discarded; the
    /// conversation goes on.
    pub fn handle_packet(&mut self, now: Instant, packet: &[u8]) -> Result<(), EapError> {
        if self.is_finished() {
            return Err(EapError::Finished);
        }
        let (identifier, body) = match Packet::parse(packet)? {
            Packet::Response { identifier, body } => (identifier, body),
            _ => {
                return Err(EapError::Unexpected {
                    expected: "Response",
                    got: "Request, Success or Failure",
                });
            }
        };
        if identifier != self.current_id || matches!(self.state, State::Created) {
            return Err(EapError::Unexpected {
                expected: "Response to the outstanding Request",
                got: "another Identifier",
            });
        }
        match (&self.state, body) {
            (State::Identity, Body::Identity(id)) => {
                self.identity = id.to_vec();
                self.propose_next(now);
                Ok(())
            }
            (State::Proposed(i), Body::Nak(types)) => {
                let i = *i;
                let ok = |m: MethodId| match m {
                    MethodId::Legacy(t) => types.contains(&t),
                    MethodId::Expanded(_) => types.contains(&EapType::EXPANDED),
                };
                self.after_nak(now, i, ok);
                Ok(())
            }
            (State::Proposed(i), Body::ExpandedNak(types)) => {
                let i = *i;
                let ok = |m: MethodId| match m {
                    MethodId::Legacy(t) => ExpandedType::new(ExpandedType::IETF, t.0.into())
                        .is_some_and(|e| types.contains(&e)),
                    MethodId::Expanded(e) => types.contains(&e),
                };
                self.after_nak(now, i, ok);
                Ok(())
            }
            (State::Proposed(i) | State::Continue(i), Body::Method { method, data })
                if self.methods[*i].method_id() == method =>
            {
                let i = *i;
                self.method_response(now, i, data)
            }
            _ => Err(EapError::Unexpected {
                expected: "a Response of the outstanding Request's type",
                got: "another type",
            }),
        }
    }

    fn after_nak(&mut self, now: Instant, nak_ed: usize, acceptable: impl Fn(MethodId) -> bool) {
        let methods = &self.methods;
        self.candidates
            .retain(|&j| j != nak_ed && acceptable(methods[j].method_id()));
        self.propose_next(now);
    }

    /// Starts the first remaining candidate method, or fails if none is left. A method that
    /// cannot start is dropped and the next one tried.
    fn propose_next(&mut self, now: Instant) {
        while let Some(&i) = self.candidates.first() {
            let ctx = MethodContext {
                rng: &self.rng,
                now,
                in_identifier: self.current_id.wrapping_add(1),
                out_identifier: self.current_id.wrapping_add(1),
            };
            match self.methods[i].start(&ctx, &self.identity) {
                Ok(data) => {
                    let method = self.methods[i].method_id();
                    self.state = State::Proposed(i);
                    self.send_request(
                        now,
                        Body::Method {
                            method,
                            data: &data,
                        },
                    );
                    return;
                }
                Err(e) => {
                    tracing::warn!(
                        "EAP method {:?} cannot start: {e}",
                        self.methods[i].method_id()
                    );
                    self.candidates.remove(0);
                }
            }
        }
        self.finish(AuthOutcome::Failure(AuthFailure::NoAcceptableMethod), true);
    }

    fn method_response(&mut self, now: Instant, i: usize, data: &[u8]) -> Result<(), EapError> {
        let ctx = MethodContext {
            rng: &self.rng,
            now,
            in_identifier: self.current_id,
            out_identifier: self.current_id.wrapping_add(1),
        };
        let step = self.methods[i].process(&ctx, data)?;
        let method = self.methods[i].method_id();
        match step {
            ServerStep::Request(next) => {
                self.state = State::Continue(i);
                self.send_request(
                    now,
                    Body::Method {
                        method,
                        data: &next,
                    },
                );
            }
            ServerStep::Success => {
                let keys = self.methods[i].keys();
                let outcome = AuthOutcome::Success {
                    identity: self.identity.clone(),
                    method,
                    keys,
                };
                self.finish(outcome, true);
            }
            ServerStep::Failure => self.finish(
                AuthOutcome::Failure(AuthFailure::MethodFailed(method)),
                true,
            ),
        }
        Ok(())
    }

    fn send_request(&mut self, now: Instant, body: Body<'_>) {
        self.current_id = self.current_id.wrapping_add(1);
        let packet = Packet::Request {
            identifier: self.current_id,
            body,
        }
        .to_vec();
        self.retransmit
            .arm(now, self.config.retransmit_timeout, packet.clone());
        self.actions.push_back(AuthAction::Send(packet));
    }

    /// Ends the conversation; sends Success or Failure (with the Identifier of the last
    /// Response) if `send`.
    fn finish(&mut self, outcome: AuthOutcome, send: bool) {
        self.retransmit.stop();
        self.state = State::Done;
        if send {
            let packet = match outcome {
                AuthOutcome::Success { .. } => Packet::Success {
                    identifier: self.current_id,
                },
                AuthOutcome::Failure(_) => Packet::Failure {
                    identifier: self.current_id,
                },
            };
            self.actions.push_back(AuthAction::Send(packet.to_vec()));
        }
        self.actions.push_back(AuthAction::Finished(outcome));
    }
}

// ---------------------------------------------------------------------------------------------
// Pass-through

/// How a pass-through conversation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PassThroughOutcome {
    /// The backend accepted the peer; Success was sent.
    Success {
        /// The identity from the Identity Response.
        identity: Vec<u8>,
        /// The MSK the backend handed over (RADIUS: from MS-MPPE-Recv-Key/Send-Key), if any.
        msk: Option<SecretBytes>,
    },
    /// Failure (sent, except on [`AuthFailure::Timeout`] and [`AuthFailure::BackendTimeout`]).
    Failure(AuthFailure),
}

/// What a pass-through authenticator wants done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PassThroughAction {
    /// Send this EAP packet to the peer.
    Send(Vec<u8>),
    /// Hand this EAP Response (the octets exactly as the peer sent them) to the backend (RADIUS:
    /// as EAP-Message in an Access-Request). Answer later with exactly one of
    /// [`PassThrough::backend_request`], [`PassThrough::backend_accept`],
    /// [`PassThrough::backend_reject`] or [`PassThrough::backend_timeout`].
    ToBackend(Vec<u8>),
    /// The conversation is over.
    Finished(PassThroughOutcome),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PtState {
    Created,
    /// A Request is outstanding at the peer.
    AwaitPeer,
    /// A Response went to the backend; waiting for its verdict or next Request.
    AwaitBackend,
    Done,
}

/// The pass-through authenticator for one conversation (RFC 4137 §7 AAA states; the backend
/// is an EAP server behind RADIUS or Diameter, reached by the caller).
///
/// It sends the Identity Request itself (with a random Identifier), then relays: every valid
/// Response from the peer comes out as [`PassThroughAction::ToBackend`]; the caller answers with
/// the backend's decision. The authenticator checks what it relays (a Response must carry the
/// outstanding Identifier; a backend Request must parse as a Request), retransmits Requests to
/// the peer on its own timer, and never looks inside methods. The backend chooses the
/// Identifiers of its Requests.
pub struct PassThrough {
    config: AuthenticatorConfig,
    rng: RngHandle,
    state: PtState,
    current_id: u8,
    identity: Vec<u8>,
    retransmit: Retransmit,
    actions: VecDeque<PassThroughAction>,
}

impl PassThrough {
    /// A pass-through authenticator; `config.identity_request` is ignored (Identity is always
    /// requested locally, so the backend gets the identity in the first Access-Request).
    pub fn new(config: AuthenticatorConfig, rng: RngHandle) -> PassThrough {
        PassThrough {
            config,
            rng,
            state: PtState::Created,
            current_id: 0,
            identity: Vec::new(),
            retransmit: Retransmit::default(),
            actions: VecDeque::new(),
        }
    }

    /// Sends the Identity Request.
    pub fn start(&mut self, now: Instant) -> Result<(), EapError> {
        if self.state != PtState::Created {
            return Err(EapError::Unexpected {
                expected: "start once",
                got: "a second start",
            });
        }
        self.current_id = self.rng.array::<1>()?[0];
        let req = Packet::Request {
            identifier: self.current_id,
            body: Body::Identity(&[]),
        }
        .to_vec();
        self.send_request(now, req);
        Ok(())
    }

    /// The identity from the Identity Response (empty before).
    pub fn identity(&self) -> &[u8] {
        &self.identity
    }

    /// Whether the conversation is over.
    pub fn is_finished(&self) -> bool {
        self.state == PtState::Done
    }

    /// The next action; call until `None` after every other call.
    pub fn poll_action(&mut self) -> Option<PassThroughAction> {
        self.actions.pop_front()
    }

    /// When [`PassThrough::handle_timeout`] must be called next. The time the backend takes is
    /// the caller's business (its RADIUS client has its own timers): while waiting for the
    /// backend there is no deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.retransmit.deadline
    }

    /// Retransmits the outstanding Request to the peer, or fails after the last one.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.retransmit.on_timeout(now, &self.config) {
            Some(Ok(req)) => self.actions.push_back(PassThroughAction::Send(req)),
            Some(Err(())) => self.finish(PassThroughOutcome::Failure(AuthFailure::Timeout), None),
            None => {}
        }
    }

    /// Processes one EAP packet from the peer: a Response to the outstanding Request goes to the
    /// backend; anything else is discarded with the reason.
    pub fn handle_packet(&mut self, _now: Instant, packet: &[u8]) -> Result<(), EapError> {
        if self.is_finished() {
            return Err(EapError::Finished);
        }
        let p = Packet::parse(packet)?;
        let Packet::Response { identifier, body } = &p else {
            return Err(EapError::Unexpected {
                expected: "Response",
                got: "Request, Success or Failure",
            });
        };
        if self.state != PtState::AwaitPeer || *identifier != self.current_id {
            return Err(EapError::Unexpected {
                expected: "Response to the outstanding Request",
                got: "another Identifier, or a Response while the backend decides",
            });
        }
        if let Body::Identity(id) = body
            && self.identity.is_empty()
        {
            self.identity = id.to_vec();
        }
        self.retransmit.stop();
        self.state = PtState::AwaitBackend;
        self.actions
            .push_back(PassThroughAction::ToBackend(packet.to_vec()));
        Ok(())
    }

    fn expect_backend(&self) -> Result<(), EapError> {
        match self.state {
            PtState::AwaitBackend => Ok(()),
            PtState::Done => Err(EapError::Finished),
            _ => Err(EapError::Unexpected {
                expected: "a peer Response before a backend answer",
                got: "a backend answer",
            }),
        }
    }

    /// The backend's next Request (RADIUS Access-Challenge): an EAP Request, relayed to the peer
    /// and retransmitted as needed. Anything but a Request is refused and changes nothing.
    pub fn backend_request(&mut self, now: Instant, packet: &[u8]) -> Result<(), EapError> {
        self.expect_backend()?;
        let Packet::Request { identifier, .. } = Packet::parse(packet)? else {
            return Err(EapError::Unexpected {
                expected: "Request from the backend",
                got: "Response, Success or Failure",
            });
        };
        self.current_id = identifier;
        self.send_request(now, packet.to_vec());
        Ok(())
    }

    /// The backend accepted the peer (RADIUS Access-Accept). `packet` is the EAP Success it
    /// carried, if any (otherwise one is built with the Identifier of the last Response); `msk`
    /// the key it delivered.
    pub fn backend_accept(
        &mut self,
        packet: Option<&[u8]>,
        msk: Option<SecretBytes>,
    ) -> Result<(), EapError> {
        self.expect_backend()?;
        let success = self.final_packet(packet, Code::Success)?;
        let identity = self.identity.clone();
        self.finish(PassThroughOutcome::Success { identity, msk }, Some(success));
        Ok(())
    }

    /// The backend rejected the peer (RADIUS Access-Reject). `packet` is the EAP Failure it
    /// carried, if any (otherwise one is built).
    pub fn backend_reject(&mut self, packet: Option<&[u8]>) -> Result<(), EapError> {
        self.expect_backend()?;
        let failure = self.final_packet(packet, Code::Failure)?;
        self.finish(
            PassThroughOutcome::Failure(AuthFailure::Rejected),
            Some(failure),
        );
        Ok(())
    }

    /// The backend could not be reached (every RADIUS server timed out): fail without sending
    /// anything to the peer (RFC 4137 aaaTimeout).
    pub fn backend_timeout(&mut self) -> Result<(), EapError> {
        self.expect_backend()?;
        self.finish(
            PassThroughOutcome::Failure(AuthFailure::BackendTimeout),
            None,
        );
        Ok(())
    }

    fn final_packet(&self, packet: Option<&[u8]>, code: Code) -> Result<Vec<u8>, EapError> {
        let Some(p) = packet else {
            let built = match code {
                Code::Success => Packet::Success {
                    identifier: self.current_id,
                },
                _ => Packet::Failure {
                    identifier: self.current_id,
                },
            };
            return Ok(built.to_vec());
        };
        if Packet::parse(p)?.code() != code {
            return Err(EapError::Unexpected {
                expected: if code == Code::Success {
                    "Success from the backend"
                } else {
                    "Failure from the backend"
                },
                got: "another Code",
            });
        }
        Ok(p.to_vec())
    }

    fn send_request(&mut self, now: Instant, packet: Vec<u8>) {
        self.retransmit
            .arm(now, self.config.retransmit_timeout, packet.clone());
        self.state = PtState::AwaitPeer;
        self.actions.push_back(PassThroughAction::Send(packet));
    }

    fn finish(&mut self, outcome: PassThroughOutcome, packet: Option<Vec<u8>>) {
        self.retransmit.stop();
        self.state = PtState::Done;
        if let Some(p) = packet {
            self.actions.push_back(PassThroughAction::Send(p));
        }
        self.actions.push_back(PassThroughAction::Finished(outcome));
    }
}
