//! The sans-IO session contract every KMP implements.
//!
//! A KMP instance is a state machine fed from outside. The runtime (a `KmpHost` actor, a test,
//! a simulator or a plugin loader) drives it like this:
//!
//! ```text
//! start(now)                          // KMP-CREATE.request on the initiator
//! handle_datagram(now, pdu) -> Result // a reassembled KMP PDU from the peer (KMP ID removed)
//! handle_timeout(now)                 // the deadline from poll_timeout() has passed
//! poll_timeout() -> Option<Instant>   // next deadline (retransmission, lifetime, rekey)
//! poll_action() -> Option<Action>     // drain until None after every call above
//! ```
//!
//! The session never does I/O and never reads a clock. Everything it wants done comes out as an
//! [`Action`]; the keys it produced come out as a [`KeyInstall`], and the runtime makes them
//! durable in the PIB *before* it reports the [`Outcome`] to the application.

use core::fmt;
use std::borrow::Cow;

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::addr::ExtendedAddress;
use crate::crypto::CryptoError;
use crate::id::KmpId;
use crate::primitives::MacStatus;
use crate::rng::{RngError, RngHandle};
use crate::security::{KeyIdentifier, SecurityLevel};
use crate::time::{Duration, Instant};

/// Which side of the exchange a session plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Created by KMP-CREATE.request: sends the first message.
    Initiator,
    /// Created by KMP-CREATE.indication: answers the first message from a peer.
    Responder,
}

/// What a factory needs to make one session.
#[derive(Debug, Clone)]
pub struct SessionContext {
    /// Our own EUI-64.
    pub local: ExtendedAddress,
    /// The peer's EUI-64.
    pub peer: ExtendedAddress,
    /// Initiator or responder.
    pub role: Role,
    /// Randomness for nonces, scalars and keys.
    pub rng: RngHandle,
    /// Time of creation.
    pub now: Instant,
    /// Responder sessions of this KMP that are open right now (for anti-clogging decisions).
    pub open_responder_sessions: usize,
}

/// A secret octet string, zeroized when dropped. Its `Debug` output never shows the content.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    /// Takes ownership of `bytes`.
    pub fn new(bytes: Vec<u8>) -> SecretBytes {
        SecretBytes(bytes)
    }

    /// Copies `bytes`.
    pub fn from_slice(bytes: &[u8]) -> SecretBytes {
        SecretBytes(bytes.to_vec())
    }

    /// The secret octets.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Length in octets.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes({} octets)", self.0.len())
    }
}

/// Which frames a link key protects, relative to the peer of the session that made it.
///
/// The three pairwise models of the 6TSCH security framework map onto this: one key per sender
/// (K_ij = K_i: the sender's key is installed `Transmit` at the sender and `Receive` at every
/// neighbour), a shared pairwise key (K_ij = K_ji: `Both`), directional pairwise keys
/// (K_ij != K_ji: one key `Transmit`, another `Receive`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyDirection {
    /// Used to protect frames we send and to unprotect frames we receive.
    Both,
    /// Only to protect frames we send.
    Transmit,
    /// Only to unprotect frames we receive.
    Receive,
}

/// Who a link key belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyScope {
    /// A pairwise key with one peer device.
    Pairwise(ExtendedAddress),
    /// A group (network, broadcast) key, found by key index / key source.
    Group,
}

/// One 802.15.4 link key a KMP hands to the PIB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkKey {
    /// The 128-bit AES key.
    pub key: SecretBytes,
    /// How frames name this key: mode 0 (implicit, looked up by device) for pairwise keys, modes
    /// 1–3 (key index, key source) for group keys.
    pub lookup: KeyIdentifier,
    /// Pairwise with one device, or a group key.
    pub scope: KeyScope,
    /// Direction of use.
    pub direction: KeyDirection,
    /// Lowest security level frames under this key may use; the PIB's security-level table may
    /// ask for more.
    pub min_security_level: SecurityLevel,
    /// How long the key is valid from installation; `None` until removed.
    pub lifetime: Option<Duration>,
}

/// A security association above the link layer (an RKMP routing-protocol SA, an AMIKEY crypto
/// session, an IKE/child SA) stored in the PIB store under its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpperLayerSa {
    /// Identifier chosen by the KMP (SPI, CS ID, …), unique per owner and peer.
    pub sa_id: Vec<u8>,
    /// What kind of SA this is, for reports (`"rkmp-routing"`, `"amikey-cs"`, …). A `Cow` so
    /// KMPs name it without allocating and the store can hand back what it read.
    pub kind: Cow<'static, str>,
    /// Named key material (`"SK_ei"`, `"TEK"`, …).
    pub keys: Vec<(Cow<'static, str>, SecretBytes)>,
    /// Validity from installation.
    pub lifetime: Option<Duration>,
    /// The SA this one was derived from, if any; revoking the parent revokes this one.
    pub parent: Option<Vec<u8>>,
}

/// Keys a KMP hands to the PIB. The runtime persists them before it acknowledges the install
/// or reports KMP-FINISHED.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInstall {
    /// The KMP that produced them.
    pub owner: KmpId,
    /// The peer of the session.
    pub peer: ExtendedAddress,
    /// 802.15.4 link keys.
    pub link_keys: Vec<LinkKey>,
    /// Upper-layer SAs.
    pub upper_layer_sas: Vec<UpperLayerSa>,
}

/// Which keys to remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySelector {
    /// Every key and SA the owner installed for the peer.
    All,
    /// The link key with this lookup identifier.
    LinkKey(KeyIdentifier),
    /// One upper-layer SA; with `revoke_children`, every SA derived from it too.
    UpperLayerSa {
        /// Its identifier.
        sa_id: Vec<u8>,
        /// Also remove the SAs whose parent it is.
        revoke_children: bool,
    },
}

/// A request to remove keys (rekey, lifetime end, KMP-DELETE).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRemoval {
    /// The KMP that installed them.
    pub owner: KmpId,
    /// The peer they belong to.
    pub peer: ExtendedAddress,
    /// Which of them.
    pub which: KeySelector,
}

/// What a successful KMP established, reported in KMP-FINISHED.indication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EstablishedSa {
    /// The peer.
    pub peer: ExtendedAddress,
    /// A public session identifier (PMKID, IKE SPIs, HIT pair, …) for logs and management.
    pub session_id: Vec<u8>,
    /// How long the SA lives; the session asks for a rekey through `poll_timeout`.
    pub lifetime: Option<Duration>,
    /// Number of link keys and SAs the session handed to the PIB.
    pub keys_installed: usize,
}

/// Why a KMP failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureReason {
    /// The peer could not prove its identity or the credentials differ (wrong password, bad
    /// signature, failed confirm).
    AuthenticationFailed,
    /// Retransmissions ran out or the exchange took too long.
    Timeout {
        /// Messages sent in the last state before giving up.
        attempts: u32,
    },
    /// The peer refused (with the protocol's own reason code).
    RejectedByPeer {
        /// Protocol-specific status code.
        code: u32,
    },
    /// No common algorithm, group or profile.
    NegotiationFailed,
    /// The peer broke the protocol.
    ProtocolViolation(String),
    /// KMP-DELETE.request ended the session.
    Deleted,
    /// A resource limit (sessions, memory) stopped it.
    ResourceExhausted,
    /// The link failed (no ack from the peer).
    Link(MacStatus),
    /// An internal error (RNG failure, crypto library error).
    Internal(String),
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailureReason::AuthenticationFailed => f.write_str("authentication failed"),
            FailureReason::Timeout { attempts } => write!(f, "timeout after {attempts} attempts"),
            FailureReason::RejectedByPeer { code } => write!(f, "rejected by peer (code {code})"),
            FailureReason::NegotiationFailed => f.write_str("negotiation failed"),
            FailureReason::ProtocolViolation(s) => write!(f, "protocol violation: {s}"),
            FailureReason::Deleted => f.write_str("deleted"),
            FailureReason::ResourceExhausted => f.write_str("resource exhausted"),
            FailureReason::Link(s) => write!(f, "link failure: {s:?}"),
            FailureReason::Internal(s) => write!(f, "internal error: {s}"),
        }
    }
}

/// The result carried by KMP-FINISHED.indication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The KMP authenticated the peer and its keys are installed.
    Success(EstablishedSa),
    /// The KMP failed; nothing it produced is installed.
    Failure(FailureReason),
}

/// Something a session wants the runtime to do. Drain with [`KmpSession::poll_action`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this KMP PDU to the peer (the runtime adds the KMP ID prefix and the MPX framing).
    Send(Vec<u8>),
    /// Hand these keys to the PIB.
    InstallKeys(KeyInstall),
    /// Remove these keys from the PIB.
    RemoveKeys(KeyRemoval),
    /// KMP-FINISHED: the session has ended (for this exchange) with this outcome. A session that
    /// keeps an SA alive (rekeying, lifetime) may still produce actions afterwards.
    Finished(Outcome),
}

/// Error returned when a session rejects input. The input is dropped; the session's state is
/// unchanged unless the variant says otherwise. The runtime counts these by [`SessionError::kind`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The PDU does not parse.
    #[error("malformed PDU: {0}")]
    Malformed(String),
    /// A well-formed message that this state does not expect.
    #[error("unexpected message: expected {expected}, got {got}")]
    UnexpectedMessage {
        /// What the state expected.
        expected: &'static str,
        /// What came.
        got: String,
    },
    /// A check on the content failed (MIC, signature, confirm, scalar range).
    #[error("verification failed: {0}")]
    VerificationFailed(&'static str),
    /// The session refuses (policy, resource limit, anti-clogging).
    #[error("refused: {0}")]
    Refused(String),
    /// The session has ended and takes no more input.
    #[error("session has finished")]
    Finished,
    /// Randomness failed.
    #[error(transparent)]
    Rng(#[from] RngError),
    /// A crypto primitive failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// Configuration of the factory or session is unusable.
    #[error("configuration: {0}")]
    Config(String),
    /// A dynamically loaded plugin failed at the ABI boundary (a caught panic, a status this
    /// host does not know).
    #[error("plugin: {0}")]
    Plugin(String),
}

impl SessionError {
    /// A stable short name for counters and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            SessionError::Malformed(_) => "malformed",
            SessionError::UnexpectedMessage { .. } => "unexpected_message",
            SessionError::VerificationFailed(_) => "verification_failed",
            SessionError::Refused(_) => "refused",
            SessionError::Finished => "finished",
            SessionError::Rng(_) => "rng",
            SessionError::Crypto(_) => "crypto",
            SessionError::Config(_) => "config",
            SessionError::Plugin(_) => "plugin",
        }
    }
}

/// One running instance of a KMP with one peer.
///
/// Contract for the caller: after every call of `start`, `handle_datagram`, `handle_timeout`,
/// `handle_link_failure` or `delete`, call `poll_action` until it returns `None`, then ask
/// `poll_timeout` again. Methods take `now` and never read a clock.
pub trait KmpSession: Send {
    /// The KMP this session speaks.
    fn kmp_id(&self) -> KmpId;

    /// Initiator or responder.
    fn role(&self) -> Role;

    /// The peer.
    fn peer(&self) -> ExtendedAddress;

    /// Starts the exchange (initiators; KMP-CREATE.request). Responders return `Ok(())` and wait.
    fn start(&mut self, now: Instant) -> Result<(), SessionError>;

    /// Processes one reassembled KMP PDU from the peer, the KMP ID prefix removed.
    fn handle_datagram(&mut self, now: Instant, pdu: &[u8]) -> Result<(), SessionError>;

    /// Called once `now` has reached the instant [`KmpSession::poll_timeout`] returned.
    fn handle_timeout(&mut self, now: Instant);

    /// The next instant at which [`KmpSession::handle_timeout`] must be called, if any.
    fn poll_timeout(&self) -> Option<Instant>;

    /// The next action, or `None` when there is nothing (more) to do.
    fn poll_action(&mut self) -> Option<Action>;

    /// A PDU this session sent could not be delivered (the MPX-DATA.confirm status). The default
    /// ignores it and lets retransmission timers handle the loss.
    fn handle_link_failure(&mut self, now: Instant, status: MacStatus) {
        let _ = (now, status);
    }

    /// KMP-DELETE.request: end the session. The default does nothing beyond what the runtime
    /// does itself (drop the session and the keys it owns); sessions that must tell the peer
    /// (a delete notification) override it and emit the `Send`.
    fn delete(&mut self, now: Instant) {
        let _ = now;
    }

    /// Whether the session has finished and holds nothing that still needs it (no SA to
    /// rekey); the runtime may then drop it.
    fn is_closed(&self) -> bool;
}

/// Makes sessions of one KMP. One factory serves every peer; it holds the KMP's configuration
/// and credentials.
pub trait KmpFactory: Send + Sync {
    /// The KMP ID it serves.
    fn kmp_id(&self) -> KmpId;

    /// A session for KMP-CREATE.request towards `ctx.peer`.
    fn new_initiator(&self, ctx: SessionContext) -> Result<Box<dyn KmpSession>, SessionError>;

    /// A session for the first PDU from an unknown peer (KMP-CREATE.indication). The factory may
    /// look at `first_pdu` to refuse cheaply (not a first message, anti-clogging); it must not
    /// process it: the runtime passes it to [`KmpSession::handle_datagram`] next.
    fn new_responder(
        &self,
        ctx: SessionContext,
        first_pdu: &[u8],
    ) -> Result<Box<dyn KmpSession>, SessionError>;
}
