//! The EAP peer state machine, after RFC 4137 §4.
//!
//! ```text
//! handle_packet(now, eap)   // every EAP packet from the authenticator
//! handle_timeout(now)       // when poll_timeout() has passed (RFC 4137 idleWhile)
//! poll_timeout()            // next deadline
//! poll_action()             // drain until None: Send, Notification, Finished
//! ```
//!
//! What it does, in RFC 4137 terms:
//! - An Identity Request before a method is selected is answered with the configured identity.
//! - The first Request for a method (GET_METHOD) selects it if one of the configured methods
//!   implements it; otherwise the peer answers with a Legacy Nak (or an Expanded Nak to an
//!   Expanded Type) listing the configured methods in preference order, [`EapType::NONE`] (or
//!   Vendor-Id 0, Vendor-Type 0) if there is none. Once a method is selected, Requests for other
//!   methods are discarded.
//! - A Request with the Identifier of the last one answered (`lastId`) is a retransmission: the
//!   cached Response is sent again and the method does not see it.
//! - Notification Requests are answered with an empty Notification Response at any time and
//!   reported as [`PeerAction::Notification`]; they do not change the method state.
//! - Success and Failure are accepted only with the Identifier of the last answered Request and
//!   by the RECEIVED-state rules of RFC 4137 §4.5:
//!   - Success when the method's decision is not FAIL → [`PeerOutcome::Success`];
//!   - Success when the decision is FAIL and the method state is not CONT → Failure (this
//!     covers a Success before any method ran, e.g. right after Identity: the peer never
//!     accepts an unauthenticated Success);
//!   - Failure when the method state is not CONT and the decision is not UNCOND_SUCC →
//!     Failure;
//!   - everything else (Success or Failure while the method is in CONT, Failure after the method
//!     decided UNCOND_SUCC, another Identifier) is discarded.
//! - A method that ends with DONE/FAIL and no response fails the peer at once (hostapd's
//!   reading of the METHOD → FAILURE transition).
//! - Without a packet for `idle_timeout` after the last Response, the peer fails (idleWhile).

use std::collections::VecDeque;

use kmp_api::rng::RngHandle;
use kmp_api::time::{Duration, Instant};

use crate::EapError;
use crate::method::{Decision, MethodContext, MethodKeys, MethodState, PeerMethod};
use crate::wire::{Body, EapType, ExpandedType, MethodId, Packet};

/// Peer configuration.
#[derive(Debug, Clone)]
pub struct PeerConfig {
    /// The identity sent in the Identity Response (an NAI, RFC 7542).
    pub identity: Vec<u8>,
    /// RFC 4137 ClientTimeout: how long after a Response (or after creation) the peer waits for
    /// the next packet before failing; `None` waits for ever (the lower layer decides).
    pub idle_timeout: Option<Duration>,
}

impl PeerConfig {
    /// `identity` with the RFC 4137 suggested ClientTimeout of 60 seconds.
    pub fn new(identity: impl Into<Vec<u8>>) -> PeerConfig {
        PeerConfig {
            identity: identity.into(),
            idle_timeout: Some(Duration::from_secs(60)),
        }
    }
}

/// Why the peer failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PeerFailure {
    /// The authenticator sent Failure.
    Rejected,
    /// The authenticator sent Success but the method had not authenticated it.
    UnauthenticatedSuccess,
    /// The method failed (e.g. the server's proof was wrong).
    MethodFailed(MethodId),
    /// No packet within the idle timeout.
    Timeout,
}

/// How the conversation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerOutcome {
    /// EAP Success after a method that allowed it.
    Success {
        /// The method that ran.
        method: MethodId,
        /// Its keys, if it derives keys.
        keys: Option<MethodKeys>,
    },
    /// Failure.
    Failure(PeerFailure),
}

/// What the peer wants done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerAction {
    /// Send this EAP packet to the authenticator.
    Send(Vec<u8>),
    /// The authenticator sent a Notification with this (displayable) text.
    Notification(Vec<u8>),
    /// The conversation is over; nothing more will be sent.
    Finished(PeerOutcome),
}

/// The EAP peer for one conversation.
pub struct Peer {
    config: PeerConfig,
    methods: Vec<Box<dyn PeerMethod>>,
    rng: RngHandle,
    selected: Option<usize>,
    /// `None` is RFC 4137 NONE (no method ran yet).
    method_state: Option<MethodState>,
    decision: Decision,
    last_id: Option<u8>,
    last_response: Option<Vec<u8>>,
    idle_deadline: Option<Instant>,
    finished: bool,
    actions: VecDeque<PeerAction>,
}

impl Peer {
    /// A peer offering `methods` (fresh instances, in order of preference) as `config.identity`.
    /// `now` starts the idle timer.
    pub fn new(
        config: PeerConfig,
        methods: Vec<Box<dyn PeerMethod>>,
        rng: RngHandle,
        now: Instant,
    ) -> Peer {
        let idle_deadline = config.idle_timeout.and_then(|d| now.checked_add(d));
        Peer {
            config,
            methods,
            rng,
            selected: None,
            method_state: None,
            decision: Decision::Fail,
            last_id: None,
            last_response: None,
            idle_deadline,
            finished: false,
            actions: VecDeque::new(),
        }
    }

    /// Whether the conversation is over.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// The selected method, once a Request for a configured method arrived.
    pub fn selected_method(&self) -> Option<MethodId> {
        self.selected.map(|i| self.methods[i].method_id())
    }

    /// The next action; call until `None` after every `handle_*` call.
    pub fn poll_action(&mut self) -> Option<PeerAction> {
        self.actions.pop_front()
    }

    /// When [`Peer::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.finished {
            None
        } else {
            self.idle_deadline
        }
    }

    /// Fails the peer if the idle deadline has passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(d) = self.poll_timeout()
            && now >= d
        {
            self.finish(PeerOutcome::Failure(PeerFailure::Timeout));
        }
    }

    /// Processes one EAP packet from the authenticator. An `Err` says why it was discarded; the
    /// conversation goes on.
    pub fn handle_packet(&mut self, now: Instant, packet: &[u8]) -> Result<(), EapError> {
        if self.finished {
            return Err(EapError::Finished);
        }
        match Packet::parse(packet)? {
            Packet::Response { .. } => Err(EapError::Unexpected {
                expected: "Request, Success or Failure",
                got: "Response",
            }),
            Packet::Success { identifier } => self.rx_success(identifier),
            Packet::Failure { identifier } => self.rx_failure(identifier),
            Packet::Request { identifier, body } => {
                if Some(identifier) == self.last_id {
                    // RETRANSMIT: the same Response again, the method does not see it.
                    if let Some(resp) = &self.last_response {
                        self.actions.push_back(PeerAction::Send(resp.clone()));
                        return Ok(());
                    }
                }
                self.rx_request(now, identifier, body)
            }
        }
    }

    fn rx_success(&mut self, identifier: u8) -> Result<(), EapError> {
        if Some(identifier) != self.last_id {
            return Err(EapError::Unexpected {
                expected: "Success with the last Identifier",
                got: "another Identifier",
            });
        }
        if self.decision != Decision::Fail {
            let method = self.selected.map(|i| self.methods[i].method_id());
            let keys = self.selected.and_then(|i| self.methods[i].keys());
            match method {
                Some(method) => self.finish(PeerOutcome::Success { method, keys }),
                None => self.finish(PeerOutcome::Failure(PeerFailure::UnauthenticatedSuccess)),
            }
            Ok(())
        } else if self.method_state != Some(MethodState::Cont) {
            self.finish(PeerOutcome::Failure(PeerFailure::UnauthenticatedSuccess));
            Ok(())
        } else {
            Err(EapError::Unexpected {
                expected: "a method Request",
                got: "Success while the method continues",
            })
        }
    }

    fn rx_failure(&mut self, identifier: u8) -> Result<(), EapError> {
        if Some(identifier) != self.last_id {
            return Err(EapError::Unexpected {
                expected: "Failure with the last Identifier",
                got: "another Identifier",
            });
        }
        if self.method_state == Some(MethodState::Cont) {
            return Err(EapError::Unexpected {
                expected: "a method Request",
                got: "Failure while the method continues",
            });
        }
        if self.decision == Decision::UncondSucc {
            return Err(EapError::Unexpected {
                expected: "Success",
                got: "Failure after the method succeeded unconditionally",
            });
        }
        self.finish(PeerOutcome::Failure(PeerFailure::Rejected));
        Ok(())
    }

    fn rx_request(&mut self, now: Instant, id: u8, body: Body<'_>) -> Result<(), EapError> {
        match body {
            Body::Identity(_) => {
                if self.selected.is_some() {
                    return Err(EapError::Unexpected {
                        expected: "a Request of the selected method",
                        got: "Identity",
                    });
                }
                let identity = self.config.identity.clone();
                self.respond(now, id, Body::Identity(&identity));
                Ok(())
            }
            Body::Notification(text) => {
                self.actions
                    .push_back(PeerAction::Notification(text.to_vec()));
                self.respond(now, id, Body::Notification(&[]));
                Ok(())
            }
            Body::Nak(_) | Body::ExpandedNak(_) => Err(EapError::Unexpected {
                expected: "a Request",
                got: "Nak in a Request",
            }),
            Body::Method { method, data } => {
                let index = match self.selected {
                    Some(i) if self.methods[i].method_id() == method => i,
                    Some(_) => {
                        return Err(EapError::Unexpected {
                            expected: "a Request of the selected method",
                            got: "another method",
                        });
                    }
                    None => match self.methods.iter().position(|m| m.method_id() == method) {
                        Some(i) => i,
                        None => {
                            self.send_nak(now, id, method);
                            return Ok(());
                        }
                    },
                };
                if self.method_state == Some(MethodState::Done) {
                    return Err(EapError::Unexpected {
                        expected: "Success or Failure",
                        got: "a Request after the method finished",
                    });
                }
                let ctx = MethodContext {
                    rng: &self.rng,
                    now,
                    in_identifier: id,
                    out_identifier: id,
                };
                let step = self.methods[index].process(&ctx, data)?;
                self.selected = Some(index);
                self.method_state = Some(step.state);
                self.decision = step.decision;
                match step.response {
                    Some(resp) => self.respond(
                        now,
                        id,
                        Body::Method {
                            method,
                            data: &resp,
                        },
                    ),
                    None if step.state == MethodState::Done && step.decision == Decision::Fail => {
                        self.finish(PeerOutcome::Failure(PeerFailure::MethodFailed(method)));
                    }
                    None => {}
                }
                Ok(())
            }
        }
    }

    fn send_nak(&mut self, now: Instant, id: u8, requested: MethodId) {
        let ours: Vec<MethodId> = self.methods.iter().map(|m| m.method_id()).collect();
        match requested {
            MethodId::Legacy(_) => {
                let mut types: Vec<EapType> = ours
                    .iter()
                    .filter_map(|m| match m {
                        MethodId::Legacy(t) => Some(*t),
                        MethodId::Expanded(_) => None,
                    })
                    .collect();
                if ours.iter().any(|m| matches!(m, MethodId::Expanded(_))) {
                    types.push(EapType::EXPANDED);
                }
                if types.is_empty() {
                    types.push(EapType::NONE);
                }
                self.respond(now, id, Body::Nak(types));
            }
            MethodId::Expanded(_) => {
                let mut types: Vec<ExpandedType> = ours
                    .iter()
                    .filter_map(|m| match m {
                        MethodId::Legacy(t) => ExpandedType::new(ExpandedType::IETF, t.0.into()),
                        MethodId::Expanded(e) => Some(*e),
                    })
                    .collect();
                if types.is_empty() {
                    types.extend(ExpandedType::new(ExpandedType::IETF, 0));
                }
                self.respond(now, id, Body::ExpandedNak(types));
            }
        }
    }

    fn respond(&mut self, now: Instant, id: u8, body: Body<'_>) {
        let packet = Packet::Response {
            identifier: id,
            body,
        }
        .to_vec();
        self.last_id = Some(id);
        self.last_response = Some(packet.clone());
        self.idle_deadline = self.config.idle_timeout.and_then(|d| now.checked_add(d));
        self.actions.push_back(PeerAction::Send(packet));
    }

    fn finish(&mut self, outcome: PeerOutcome) {
        self.finished = true;
        self.actions.push_back(PeerAction::Finished(outcome));
    }
}
