//! EAP (RFC 3748): the packet codec, peer and authenticator state machines in the spirit of
//! RFC 4137, and the methods EAP-TLS (RFC 5216, RFC 9190), EAP-PSK (RFC 4764) and EAP-pwd
//! (RFC 5931); sans-IO, shared by IEEE 802.1X (`kmp-mka`) and PANA.
//!
//! - [`wire`]: the packet codec.
//! - [`method`]: the interface every method implements ([`method::PeerMethod`],
//!   [`method::ServerMethod`]).
//! - [`peer`]: the peer state machine (RFC 4137 §4).
//! - [`authenticator`]: the standalone authenticator (RFC 4137 §5) and the pass-through
//!   authenticator that relays to an AAA backend such as a RADIUS client.
//! - [`psk`]: EAP-PSK (RFC 4764).
//!
//! All state machines are sans-IO: packets and time come in as arguments, what must be sent and
//! the outcome come out of `poll_action()`, deadlines out of `poll_timeout()`.

#![forbid(unsafe_code)]

pub mod authenticator;
pub mod method;
pub mod peer;
pub mod psk;
pub mod pwd;
pub mod tls;
pub mod wire;

/// Why a state machine did not use a packet or an input. None of these ends the conversation:
/// the packet is discarded (RFC 4137's DISCARD) and the state machine waits for the next one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EapError {
    /// The packet does not parse.
    #[error(transparent)]
    Wire(#[from] wire::WireError),
    /// The packet parses but is not acceptable now (what was expected, in words).
    #[error("unexpected EAP packet: expected {expected}, got {got}")]
    Unexpected {
        /// What the state machine waits for.
        expected: &'static str,
        /// What came.
        got: &'static str,
    },
    /// The method ignored the packet (RFC 4137 `ignore`).
    #[error("method ignored the packet: {0}")]
    Method(#[from] method::MethodError),
    /// The conversation is over; nothing more is accepted.
    #[error("EAP conversation already finished")]
    Finished,
    /// Randomness was not available (the first Identifier).
    #[error(transparent)]
    Rng(#[from] kmp_api::rng::RngError),
}
