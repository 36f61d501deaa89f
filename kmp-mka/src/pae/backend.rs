//! The AAA backend of a pass-through authenticator (RFC 4137 §6 / §7), as seen by a KMP ID 1
//! session.
//!
//! The session contract has no hook for a third party, so the factory holds one
//! [`Backend`] (a trait object shared by all sessions) and each pass-through session talks to
//! it synchronously, keyed by its (local, peer) pair:
//!
//! - every EAP Response from the supplicant is handed over with [`Backend::submit`] (RFC 4137
//!   `aaaEapResp`); the call must not block: a RADIUS runtime queues an Access-Request and
//!   returns;
//! - while an answer is due the session asks [`Backend::poll`] on every call it gets
//!   (`handle_datagram`, `handle_timeout`) and sets its `poll_timeout` to
//!   [`super::PaeConfig::backend_poll`] from now, so a runtime that does nothing special still
//!   sees the answer within that interval; a runtime that knows an answer arrived calls
//!   `handle_timeout(now)` on the session at once (an early call is harmless);
//! - [`Backend::abandon`] tells the backend the conversation is over (finished or deleted), so
//!   it can drop its RADIUS state for the pair.
//!
//! The backend owns its own retransmission and failover (the RADIUS client does) and reports
//! giving up as [`BackendAnswer::Timeout`]; the session keeps no timer of its own for it.
//!
//! The RADIUS implementation is `super::radius_backend::RadiusBackend` (cargo feature
//! `radius`), built from the `[radius]` table of the PAE configuration; it is driven by these
//! polls (decision B6).

use kmp_api::addr::ExtendedAddress;
use kmp_api::session::SecretBytes;

/// Which conversation a backend call belongs to: the authenticator's own address (the NAS
/// port) and the supplicant's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BackendKey {
    /// The authenticator (this node).
    pub local: ExtendedAddress,
    /// The supplicant.
    pub peer: ExtendedAddress,
}

/// What the backend decided about the last submitted Response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendAnswer {
    /// The next EAP Request for the supplicant (RADIUS Access-Challenge).
    Request(Vec<u8>),
    /// The supplicant is authenticated (Access-Accept): the EAP Success it carried, if any, and
    /// the MSK (MS-MPPE-Recv-Key ‖ MS-MPPE-Send-Key, decision A1).
    Accept {
        /// The EAP Success packet, if the backend sent one.
        eap: Option<Vec<u8>>,
        /// The MSK; without one no PMK can be made and the session fails.
        msk: Option<SecretBytes>,
    },
    /// The supplicant is rejected (Access-Reject), with the EAP Failure it carried, if any.
    Reject(Option<Vec<u8>>),
    /// No server answered.
    Timeout,
}

/// An AAA backend (a RADIUS client in a runtime actor, or a test double) that decides for
/// pass-through authenticator sessions.
pub trait Backend: Send + Sync {
    /// The supplicant's EAP Response for conversation `key`; the backend answers later through
    /// [`Backend::poll`]. Must not block.
    fn submit(&self, key: BackendKey, eap_response: &[u8]);

    /// The answer to the last submitted Response of `key`, once it is there (taken: each
    /// answer is returned once).
    fn poll(&self, key: BackendKey) -> Option<BackendAnswer>;

    /// The conversation `key` has ended; forget it. The default does nothing.
    fn abandon(&self, key: BackendKey) {
        let _ = key;
    }
}
