//! The interface between the EAP state machines and the authentication methods, after the
//! peer and authenticator method interfaces of RFC 4137 §4.4 and §5.4.
//!
//! A method sees only its own type-data (the octets after the Type, or after the Vendor-Type of
//! an Expanded Type) and produces the type-data of the next packet; the state machine ([`crate::peer::Peer`],
//! [`crate::authenticator::Authenticator`]) owns the EAP header, Identifiers, duplicate
//! detection, retransmission, Nak, Success and Failure. One method object serves one
//! authentication: the state machines take fresh instances for every conversation.
//!
//! The interface fits methods of any length:
//! - EAP-PSK: two round trips; the server's first request comes from [`ServerMethod::start`],
//!   each [`ServerMethod::process`] gives the next request or the verdict.
//! - EAP-TLS: many round trips, with fragmentation and fragment acknowledgements. Each
//!   fragment (and each empty ACK) is one request/response pair, so a TLS method keeps its
//!   reassembly buffer and outgoing fragment queue in its own state and answers each call with
//!   the next fragment; the state machine never looks inside.
//! - EAP-pwd: three exchanges (ID, Commit, Confirm), the same shape as EAP-PSK.
//!
//! Methods whose integrity check covers the EAP header (EAP-PSK's PCHANNEL authenticates the
//! first 22 octets of the packet) rebuild it with [`crate::wire::header`] from the Identifiers
//! in the [`MethodContext`] and the length of the type-data.
//!
//! Keys are exported once, when the method has succeeded ([`PeerMethod::keys`],
//! [`ServerMethod::keys`]): MSK and EMSK of 64 octets each and the Session-Id (RFC 5247 §1.4).

use kmp_api::rng::{RngError, RngHandle};
use kmp_api::session::SecretBytes;
use kmp_api::time::Instant;

use crate::wire::MethodId;

/// Length of the MSK and of the EMSK (RFC 3748 §7.10: at least 64 octets; every method here
/// exports exactly 64).
pub const MSK_LEN: usize = 64;

/// What a method gets besides the type-data.
#[derive(Debug, Clone, Copy)]
pub struct MethodContext<'a> {
    /// Randomness for nonces and keys.
    pub rng: &'a RngHandle,
    /// The time of the call (certificate validity checks).
    pub now: Instant,
    /// The Identifier of the packet being processed: the Request on the peer, the Response on
    /// the server. For [`ServerMethod::start`] it equals `out_identifier`.
    pub in_identifier: u8,
    /// The Identifier of the packet the method's output will be sent in: on the peer the
    /// Request's (a Response echoes it), on the server the next Request's.
    pub out_identifier: u8,
}

/// RFC 4137 §4.1 `methodState` as reported by a peer method after each request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MethodState {
    /// The method needs more requests; an EAP Success or Failure now would be premature and is
    /// silently discarded.
    Cont,
    /// The method may go on, but the authenticator may also end it now with Success or Failure
    /// (depending on [`Decision`]).
    MayCont,
    /// The method is over; only Success or Failure may follow.
    Done,
}

/// RFC 4137 §4.1 `decision`: what the peer accepts as the end of the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    /// Only a Failure is acceptable; a Success is treated as a Failure (unless the method is
    /// in [`MethodState::Cont`]).
    Fail,
    /// A Success is acceptable, so is a Failure.
    CondSucc,
    /// A Success is expected; a Failure is ignored (the peer accepts success regardless).
    UncondSucc,
}

/// The answer of a peer method to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStep {
    /// The type-data of the response to send, or `None` to send nothing (only meaningful with
    /// [`MethodState::Done`] and [`Decision::Fail`]: the peer then fails at once, RFC 4137
    /// §4.5 METHOD → FAILURE, as hostapd does when no final response is built).
    pub response: Option<Vec<u8>>,
    /// The method state after this request.
    pub state: MethodState,
    /// The decision after this request.
    pub decision: Decision,
}

/// The answer of a server method to one response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerStep {
    /// Send another request with this type-data.
    Request(Vec<u8>),
    /// The peer is authenticated: send Success; [`ServerMethod::keys`] now returns the keys.
    Success,
    /// Authentication failed: send Failure.
    Failure,
}

/// Why a method could not use a packet, or could not work at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MethodError {
    /// The type-data is malformed or not what the method expects now (RFC 4137 `ignore`): the
    /// packet is silently discarded and the method state is unchanged.
    #[error("invalid method message: {0}")]
    Invalid(&'static str),
    /// A call out of order (e.g. `process` after the method finished).
    #[error("method called in the wrong state: {0}")]
    WrongState(&'static str),
    /// Randomness was not available.
    #[error(transparent)]
    Rng(#[from] RngError),
    /// A cryptographic primitive failed (not an authentication failure, which the method
    /// reports through its state).
    #[error("crypto: {0}")]
    Crypto(#[from] kmp_api::crypto::CryptoError),
    /// A method-specific failure with a message (TLS alerts, certificate errors).
    #[error("{0}")]
    Other(String),
}

/// The keying material of a successful method (RFC 5247 §1.4).
#[derive(Clone, PartialEq, Eq)]
pub struct MethodKeys {
    /// Master Session Key, 64 octets.
    pub msk: SecretBytes,
    /// Extended Master Session Key, 64 octets.
    pub emsk: SecretBytes,
    /// The Session-Id: the method Type followed by method-specific data (RFC 5247 Appendix
    /// A). Not secret (EAP-TLS and EAP-PSK build it from public nonces), so a plain vector.
    pub session_id: Vec<u8>,
}

impl core::fmt::Debug for MethodKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MethodKeys")
            .field("msk", &self.msk)
            .field("emsk", &self.emsk)
            .field("session_id", &self.session_id)
            .finish()
    }
}

/// The peer side of an EAP method (RFC 4137 §4.4: `check`, `process`, `buildResp`, `isKeyAvailable`,
/// `getKey` folded into two calls).
///
/// The peer state machine calls [`PeerMethod::process`] for every new request of this method
/// (retransmitted requests are answered from its cache and never reach the method), sends the
/// response it returns, and decides Success and Failure from the returned [`MethodState`] and
/// [`Decision`] by the rules of RFC 4137 §4.5.
pub trait PeerMethod: Send {
    /// The method this object implements (its Type in requests, its entry in a Nak).
    fn method_id(&self) -> MethodId;

    /// Processes the type-data of a request and returns the response.
    ///
    /// An `Err` means RFC 4137 `ignore`: the request is discarded, nothing is sent, and the
    /// method must be left exactly as before the call (so that a valid request may follow).
    fn process(&mut self, ctx: &MethodContext<'_>, request: &[u8])
    -> Result<PeerStep, MethodError>;

    /// The keys, once the method has reached [`MethodState::Done`] with a decision other than
    /// [`Decision::Fail`]; `None` before and on failure.
    fn keys(&self) -> Option<MethodKeys>;
}

/// The server (authenticator or EAP server) side of an EAP method (RFC 4137 §5.4: `init`,
/// `buildReq`, `check`, `process`, `isDone`, `getKey`).
pub trait ServerMethod: Send {
    /// The method this object implements.
    fn method_id(&self) -> MethodId;

    /// Starts the method for a peer that gave `identity` in the Identity exchange (empty if
    /// there was none) and returns the type-data of the first request. Called once.
    fn start(&mut self, ctx: &MethodContext<'_>, identity: &[u8]) -> Result<Vec<u8>, MethodError>;

    /// Processes the type-data of a response to the last request.
    ///
    /// An `Err` means RFC 4137 `ignore`: the response is discarded, the method state must be
    /// unchanged, and the authenticator keeps retransmitting the last request.
    fn process(
        &mut self,
        ctx: &MethodContext<'_>,
        response: &[u8],
    ) -> Result<ServerStep, MethodError>;

    /// The keys, once [`ServerMethod::process`] returned [`ServerStep::Success`].
    fn keys(&self) -> Option<MethodKeys>;
}
