//! The supplicant and authenticator PAEs (IEEE 802.1X-2020 clause 12) carried as KMP ID 1: EAP
//! in EAPOL EAP-Packet frames, optionally followed by MKA in EAPOL-MKA frames, as sans-IO
//! [`PaeSession`]s made by a [`PaeFactory`] (registered with `inventory` as `"8021x"`).
//!
//! # Framing
//!
//! The KMP PDU is a bare EAPOL PDU (mpx-wire-format.md §5, §7): no Ethernet header, Protocol
//! Version 3 by default as Wi-SUN sends it ([`PaeConfig::eapol_version`]); versions 1–3 are
//! accepted.
//!
//! # Who starts, in Wi-SUN order
//!
//! - A node (supplicant) starts with KMP-CREATE.request: its initiator session sends the
//!   Wi-SUN EAPOL-Key *request* ([`crate::handshake::KeyRequest`], PMKID and PTKID KDEs when it
//!   holds a PMKSA for the border router) or, configurably, an EAPOL-Start, and resends it every
//!   [`PaeConfig::start_retransmit`] until an EAP Request arrives
//!   ([`PaeConfig::start_attempts`] frames in all, then `Timeout`).
//! - The border router (authenticator) gets that frame from an unknown peer: the runtime calls
//!   [`KmpFactory::new_responder`], which accepts only an EAPOL-Start or an EAPOL-Key request
//!   for an authenticator factory, and the session answers the frame with
//!   EAP-Request/Identity. Repeated starts while EAP runs are absorbed (EAP retransmits on its
//!   own timer). The authenticator always runs EAP on a key request, also when the PMKID is one
//!   it knows: a runtime that wants to skip EAP for a known PMKID decodes the request itself
//!   ([`crate::handshake::KeyRequest::parse`]) before creating a KMP ID 1 session and starts
//!   KMP ID 6 (or 7) instead.
//! - A border router may also start on its own (KMP-CREATE.request on the authenticator): its
//!   initiator session sends EAP-Request/Identity, and the node's supplicant factory makes the
//!   responder session from that EAP Request (a supplicant factory accepts nothing else).
//!
//! The factory's [`PaeConfig::role`] says which PAE both kinds of session play, so a node never
//! becomes an authenticator because some neighbour sent it an EAPOL-Start.
//!
//! # Handoff to the 4-way handshake
//!
//! On EAP success both sides put PMK = MSK\[0..32\] into the shared [`PmkCache`] for (local,
//! peer) in their PAE role *before* they report KMP-FINISHED, and finish with
//! `Outcome::Success` with `keys_installed: 0` and the PMKID as `session_id`: the link keys come
//! from the 4-way handshake. The runtime (or the application on KMP-FINISHED) then starts KMP
//! ID 6 with KMP-CREATE.request on the authenticator; the [`crate::handshake::HandshakeFactory`]
//! built over the same cache finds the PMK (decision H7). On failure nothing is put in the cache.
//!
//! # MKA after EAP (`mka = true`)
//!
//! Both sides derive the CAK and CKN from the MSK and the EAP Session-Id
//! ([`crate::mka::CakKeys::from_eap`], the two EUI-64s as the addresses, 128-bit) and run an
//! MKA participant in the same session over EAPOL-MKA frames (ICV per decision M1, SCI per M2).
//! The authenticator has Key Server Priority 16 and the supplicant 32 unless configured, so the
//! authenticator is key server. Each SAK is handed to the PIB when MKA puts it into
//! transmission (`SakTransmit`): key identifier **mode 1, key index
//! [`MkaSettings::key_index_base`] + AN** (default base 5, so indices 5–8, clear of Wi-SUN's GTK
//! indices 1–4; the 2-bit AN changes with every new SAK, so the latest and the old key are told
//! apart during a rollover; the 32-bit KN does not fit an 802.15.4 key identifier and is only in
//! MKA), scope pairwise with the peer by default (the CA of an EAP-derived CAK has exactly two
//! members) or group ([`MkaSettings::key_scope`]), direction both. The first SAK in
//! transmission finishes the session with `Success` (`keys_installed: 1`, the CKN as
//! `session_id`); the session stays open for MKA (Hello, rekeys): a retired SAK is removed
//! (`RemoveKeys` by its key identifier), and when the peer is lost the session removes all
//! its keys and closes. MKA with a pass-through authenticator is refused (RADIUS gives no EAP
//! Session-Id).
//!
//! # Pass-through
//!
//! [`PaeFactory::pass_through`] makes authenticator sessions that relay EAP to an AAA server
//! through a [`Backend`] the factory holds (see [`backend`]). With a `[radius]` table in the
//! configuration, [`PaeFactory::new`] (and so the registered `"8021x"` factory) builds that
//! backend itself: a RADIUS client on one UDP socket (`radius_backend`, cargo feature
//! `radius`, on by default).

pub mod backend;
pub mod config;
pub mod methods;
#[cfg(feature = "radius")]
pub mod radius_backend;
pub mod session;

use std::sync::Arc;

use kmp_api::id::KmpId;
use kmp_api::session::{KmpFactory, KmpSession, Role, SessionContext, SessionError};

pub use backend::{Backend, BackendAnswer, BackendKey};
pub use config::{MkaSettings, PaeConfig, RadiusServer, RadiusSettings, SakScope, StartFrame};
pub use methods::{MethodProvider, PskProvider, PwdProvider, TlsProvider};
#[cfg(feature = "radius")]
pub use radius_backend::{BackendCounters, RadiusBackend, RadiusBackendCore};
pub use session::PaeSession;

use crate::handshake::{PaeRole, PmkCache};
use session::Shared;

/// Makes KMP ID 1 sessions: one PAE role, one configuration, one PMK cache.
pub struct PaeFactory {
    shared: Arc<Shared>,
}

impl PaeFactory {
    /// A factory whose sessions put PMKs into `pmks` (share it with the KMP ID 6 / 7 factories,
    /// as [`crate::handshake::HandshakeFactory::pair`] takes it).
    ///
    /// With a `[radius]` table ([`PaeConfig::radius`]) this is a pass-through authenticator
    /// whose backend is a [`RadiusBackend`] bound here (its UDP socket is opened now); that
    /// needs the cargo feature `radius` (default), and is refused without it.
    pub fn new(config: PaeConfig, pmks: PmkCache) -> Result<PaeFactory, SessionError> {
        if let Some(settings) = &config.radius {
            #[cfg(feature = "radius")]
            {
                let backend: Arc<dyn Backend> = Arc::new(RadiusBackend::bind(settings)?);
                return Self::pass_through(config, pmks, backend);
            }
            #[cfg(not(feature = "radius"))]
            {
                let _ = settings;
                return Err(SessionError::Config(
                    "802.1X: [radius] needs kmp-mka built with the cargo feature `radius`".into(),
                ));
            }
        }
        Self::build(config, pmks, None)
    }

    /// An authenticator factory whose sessions relay EAP to `backend` (RFC 4137 pass-through):
    /// the configured methods are not used. Refused for a supplicant configuration and with MKA.
    pub fn pass_through(
        config: PaeConfig,
        pmks: PmkCache,
        backend: Arc<dyn Backend>,
    ) -> Result<PaeFactory, SessionError> {
        if config.role != PaeRole::Authenticator {
            return Err(SessionError::Config(
                "802.1X: pass-through needs role = \"authenticator\"".into(),
            ));
        }
        if config.mka.is_some() {
            return Err(SessionError::Config(
                "802.1X: MKA needs the EAP Session-Id, which a pass-through backend does not give"
                    .into(),
            ));
        }
        Self::build(config, pmks, Some(backend))
    }

    fn build(
        config: PaeConfig,
        pmks: PmkCache,
        backend: Option<Arc<dyn Backend>>,
    ) -> Result<PaeFactory, SessionError> {
        if backend.is_none() && config.methods.is_empty() {
            return Err(SessionError::Config("802.1X: no EAP method".into()));
        }
        Ok(PaeFactory {
            shared: Arc::new(Shared {
                config,
                pmks,
                backend,
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &PaeConfig {
        &self.shared.config
    }

    /// The PMK cache the sessions fill.
    pub fn pmk_cache(&self) -> &PmkCache {
        &self.shared.pmks
    }

    fn session(&self, ctx: SessionContext) -> Result<Box<dyn KmpSession>, SessionError> {
        Ok(Box::new(PaeSession::new(Arc::clone(&self.shared), ctx)?))
    }
}

impl KmpFactory for PaeFactory {
    fn kmp_id(&self) -> KmpId {
        KmpId::Ieee8021xMka
    }

    fn new_initiator(&self, ctx: SessionContext) -> Result<Box<dyn KmpSession>, SessionError> {
        self.session(SessionContext {
            role: Role::Initiator,
            ..ctx
        })
    }

    /// Authenticator: only an EAPOL-Start or an EAPOL-Key request; supplicant: only an EAP
    /// Request.
    fn new_responder(
        &self,
        ctx: SessionContext,
        first_pdu: &[u8],
    ) -> Result<Box<dyn KmpSession>, SessionError> {
        session::check_first_pdu(self.shared.config.role, first_pdu)?;
        self.session(SessionContext {
            role: Role::Responder,
            ..ctx
        })
    }
}

fn make(config: &str) -> Result<Arc<dyn KmpFactory>, SessionError> {
    let cfg = PaeConfig::from_toml(config)?;
    Ok(Arc::new(PaeFactory::new(cfg, PmkCache::global())?))
}

inventory::submit! {
    kmp_api::registry::KmpRegistration::new(KmpId::Ieee8021xMka, "8021x", make)
}
