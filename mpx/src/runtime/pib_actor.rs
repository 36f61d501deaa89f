//! The PIB actor: the only writer of the security tables and their store.
//!
//! Every write is a message handled to completion (durable in the store) before its reply is
//! sent, so a KMP host that waits for the reply of [`InstallKeys`] knows the keys are durable
//! before it reports KMP-FINISHED. The data path never messages this actor: it reads the
//! tables through the [`Pib`] handle ([`GetPib`]).
//!
//! The actor also runs the store's maintenance ([`PibStore::maintain`]): outgoing frame counter
//! reservations, incoming counter checkpoints and expiry, at the store's own deadlines and
//! whenever the data path asks with [`Maintain`]. It reserves a first counter block when it
//! starts, so frames can be protected at once.

use std::sync::Arc;

use actix::{Actor, Context, Handler, Message, MessageResult};
use kmp_api::security::KeyIdentifier;
use kmp_api::session::{KeyInstall, KeyRemoval, KeyScope, SecretBytes, UpperLayerSa};
use kmp_api::{ExtendedAddress, KmpId};

use super::clock::{Clock, TimerSlot, Wake};
use crate::pib::{
    DeviceDescriptor, InstallReceipt, MaintenanceReport, OwnIdentity, Pib, PibError, PibStore,
    RemovalReceipt, SecurityLevelDescriptor,
};

/// Receives every link key the PIB installs: the hook for an explicit, opt-in debugging key
/// log (e.g. `radio_drivers::pcap::KeyLogWriter`). Nothing is logged unless one is set.
pub trait KeyLogSink: Send + Sync + 'static {
    /// A 16-octet link key was installed for `peer` (pairwise) or for everyone (group),
    /// found by `lookup` in frames.
    fn key_installed(&self, key: &[u8], lookup: KeyIdentifier, scope: KeyScope);
}

/// Installs a KMP's keys and SAs (all or none); the reply comes once they are durable.
#[derive(Debug, Message)]
#[rtype(result = "Result<InstallReceipt, PibError>")]
pub struct InstallKeys(pub KeyInstall);

/// Removes keys and SAs a KMP installed.
#[derive(Debug, Message)]
#[rtype(result = "Result<RemovalReceipt, PibError>")]
pub struct RemoveKeys(pub KeyRemoval);

/// Sets our own addresses (the CCM* nonce source).
#[derive(Debug, Message)]
#[rtype(result = "Result<(), PibError>")]
pub struct SetIdentity(pub OwnIdentity);

/// Adds or replaces a device descriptor.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), PibError>")]
pub struct SetDevice(pub DeviceDescriptor);

/// Adds or replaces a security-level descriptor.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), PibError>")]
pub struct SetSecurityLevel(pub SecurityLevelDescriptor);

/// Runs maintenance now (the data path sends it when [`Pib::needs_maintenance`] says so).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "Result<MaintenanceReport, PibError>")]
pub struct Maintain;

/// A read handle on the tables.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "Pib")]
pub struct GetPib;

/// Inserts an upper-layer SA (routing-protocol keys, crypto sessions) under its KMP.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), PibError>")]
pub struct InsertSa {
    /// The KMP that owns it.
    pub owner: KmpId,
    /// The peer.
    pub peer: ExtendedAddress,
    /// The SA.
    pub sa: UpperLayerSa,
}

/// Replaces the keys of an upper-layer SA.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), PibError>")]
pub struct RekeySa {
    /// The KMP that owns it.
    pub owner: KmpId,
    /// The peer.
    pub peer: ExtendedAddress,
    /// Its id.
    pub sa_id: Vec<u8>,
    /// The new keys by name.
    pub keys: Vec<(std::borrow::Cow<'static, str>, SecretBytes)>,
}

/// Deletes one upper-layer SA; the reply says whether it existed.
#[derive(Debug, Message)]
#[rtype(result = "Result<bool, PibError>")]
pub struct DeleteSa {
    /// The KMP that owns it.
    pub owner: KmpId,
    /// The peer.
    pub peer: ExtendedAddress,
    /// Its id.
    pub sa_id: Vec<u8>,
}

/// Revokes an SA and every SA derived from it (a failed parent SA); replies with their ids.
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<Vec<u8>>, PibError>")]
pub struct RevokeSa {
    /// The KMP that owns it.
    pub owner: KmpId,
    /// The peer.
    pub peer: ExtendedAddress,
    /// Its id.
    pub sa_id: Vec<u8>,
}

/// Closes the store cleanly (a later open sees a clean shutdown) and stops the actor.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "Result<(), PibError>")]
pub struct ClosePib;

/// Owns a [`PibStore`]; see the [module docs](self).
pub struct PibActor {
    store: Option<PibStore>,
    pib: Pib,
    clock: Clock,
    timer: TimerSlot,
    key_log: Option<Arc<dyn KeyLogSink>>,
}

impl std::fmt::Debug for PibActor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PibActor")
            .field("open", &self.store.is_some())
            .field("key_log", &self.key_log.is_some())
            .finish_non_exhaustive()
    }
}

impl PibActor {
    /// An actor over an opened store.
    pub fn new(store: PibStore, clock: Clock) -> PibActor {
        let pib = store.pib();
        PibActor {
            store: Some(store),
            pib,
            clock,
            timer: TimerSlot::new(),
            key_log: None,
        }
    }

    /// Reports every installed link key to `sink` (debugging key log; opt-in).
    pub fn with_key_log(mut self, sink: Arc<dyn KeyLogSink>) -> PibActor {
        self.key_log = Some(sink);
        self
    }

    /// The read handle (also available before the actor starts).
    pub fn pib(&self) -> Pib {
        self.pib.clone()
    }

    fn store(&mut self) -> Result<&mut PibStore, PibError> {
        self.store
            .as_mut()
            .ok_or_else(|| PibError::Invalid("the PIB store is closed".into()))
    }

    fn maintain(&mut self, ctx: &mut Context<Self>) -> Result<MaintenanceReport, PibError> {
        let now = self.clock.now();
        let r = self.store().and_then(|s| s.maintain(now));
        match &r {
            Ok(rep) if rep.counter_exhausted => {
                tracing::error!(
                    "outgoing frame counter space exhausted: every key must be replaced"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "PIB maintenance failed"),
        }
        self.rearm(ctx);
        r
    }

    fn rearm(&mut self, ctx: &mut Context<Self>) {
        let next = self.store.as_ref().and_then(PibStore::poll_timeout);
        let clock = self.clock.clone();
        self.timer.set(&clock, ctx, next);
    }
}

impl Actor for PibActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Reserve the first block of outgoing counters before any frame needs one.
        let _ = self.maintain(ctx);
    }
}

impl Handler<Wake> for PibActor {
    type Result = ();
    fn handle(&mut self, _: Wake, ctx: &mut Context<Self>) {
        self.timer.fired(self.clock.now());
        let due = self
            .store
            .as_ref()
            .and_then(PibStore::poll_timeout)
            .is_some_and(|t| t <= self.clock.now());
        if due || self.pib.needs_maintenance() {
            let _ = self.maintain(ctx);
        } else {
            self.rearm(ctx);
        }
    }
}

impl Handler<InstallKeys> for PibActor {
    type Result = Result<InstallReceipt, PibError>;
    fn handle(&mut self, msg: InstallKeys, ctx: &mut Context<Self>) -> Self::Result {
        let now = self.clock.now();
        let receipt = self.store()?.install_keys(&msg.0, now)?;
        if let Some(log) = &self.key_log {
            for lk in &msg.0.link_keys {
                log.key_installed(lk.key.expose(), lk.lookup, lk.scope);
            }
        }
        tracing::debug!(owner = %msg.0.owner, peer = %msg.0.peer, keys = receipt.key_refs.len(), "keys installed");
        self.rearm(ctx);
        Ok(receipt)
    }
}

impl Handler<RemoveKeys> for PibActor {
    type Result = Result<RemovalReceipt, PibError>;
    fn handle(&mut self, msg: RemoveKeys, _: &mut Context<Self>) -> Self::Result {
        self.store()?.remove_keys(&msg.0)
    }
}

impl Handler<SetIdentity> for PibActor {
    type Result = Result<(), PibError>;
    fn handle(&mut self, msg: SetIdentity, _: &mut Context<Self>) -> Self::Result {
        self.store()?.set_own_identity(msg.0)
    }
}

impl Handler<SetDevice> for PibActor {
    type Result = Result<(), PibError>;
    fn handle(&mut self, msg: SetDevice, _: &mut Context<Self>) -> Self::Result {
        self.store()?.set_device(msg.0)
    }
}

impl Handler<SetSecurityLevel> for PibActor {
    type Result = Result<(), PibError>;
    fn handle(&mut self, msg: SetSecurityLevel, _: &mut Context<Self>) -> Self::Result {
        self.store()?.set_security_level(msg.0)
    }
}

impl Handler<Maintain> for PibActor {
    type Result = Result<MaintenanceReport, PibError>;
    fn handle(&mut self, _: Maintain, ctx: &mut Context<Self>) -> Self::Result {
        self.maintain(ctx)
    }
}

impl Handler<GetPib> for PibActor {
    type Result = MessageResult<GetPib>;
    fn handle(&mut self, _: GetPib, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.pib.clone())
    }
}

impl Handler<InsertSa> for PibActor {
    type Result = Result<(), PibError>;
    fn handle(&mut self, msg: InsertSa, _: &mut Context<Self>) -> Self::Result {
        let now = self.clock.now();
        self.store()?
            .insert_upper_layer_sa(msg.owner, msg.peer, msg.sa, now)
    }
}

impl Handler<RekeySa> for PibActor {
    type Result = Result<(), PibError>;
    fn handle(&mut self, msg: RekeySa, _: &mut Context<Self>) -> Self::Result {
        let now = self.clock.now();
        self.store()?
            .rekey_upper_layer_sa(msg.owner, msg.peer, &msg.sa_id, msg.keys, now)
    }
}

impl Handler<DeleteSa> for PibActor {
    type Result = Result<bool, PibError>;
    fn handle(&mut self, msg: DeleteSa, _: &mut Context<Self>) -> Self::Result {
        self.store()?
            .delete_upper_layer_sa(msg.owner, msg.peer, &msg.sa_id)
    }
}

impl Handler<RevokeSa> for PibActor {
    type Result = Result<Vec<Vec<u8>>, PibError>;
    fn handle(&mut self, msg: RevokeSa, _: &mut Context<Self>) -> Self::Result {
        self.store()?
            .revoke_upper_layer_sa(msg.owner, msg.peer, &msg.sa_id)
    }
}

impl Handler<ClosePib> for PibActor {
    type Result = Result<(), PibError>;
    fn handle(&mut self, _: ClosePib, ctx: &mut Context<Self>) -> Self::Result {
        use actix::ActorContext;
        ctx.stop();
        match self.store.take() {
            Some(s) => s.close(),
            None => Ok(()),
        }
    }
}
