//! The routing protocol's key table (the RKMP design's interface, after the KARP crypto key
//! table of RFC 7210): routing-protocol SAs per neighbour, kept in the PIB store next to the
//! link keys as upper-layer SAs of the routing KMP.
//!
//! | RKMP design | here |
//! |---|---|
//! | `getSA` (routing protocol asks for key material for a neighbour) | [`GetRoutingSa`] (read handle, no store access) |
//! | `generateSA` (routing protocol asks the KMP to make one) | [`GenerateRoutingSa`] → KMP-CREATE.request to the routing KMP's host |
//! | `insertSA` | [`InsertRoutingSa`] |
//! | `rekeySA` (replace an equivalent SA) | [`RekeyRoutingSa`]: the new SA is durable before the one it replaces is deleted, so the neighbour is never without a key |
//! | `delete` | [`DeleteRoutingSa`] |
//! | `RP_revokeSA` (every child SA of a failed parent revoked, the routing protocol told) | [`RevokeRoutingSa`] → [`RoutingKeyEvent::Revoked`] to every subscriber |
//!
//! An SA serves one routing protocol, named by a 16-bit identifier (project-defined values:
//! [`RoutingProtocol`]); its `sa_id` starts with that identifier (big-endian), followed by
//! whatever the KMP uses to name the SA (RKMP: the child SA's SPIs), and its `kind` is
//! [`ROUTING_SA_KIND`].

use actix::{
    Actor, ActorFutureExt, Addr, Context, Handler, Message, MessageResult, Recipient,
    ResponseActFuture, WrapFuture,
};
use kmp_api::addr::PanId;
use kmp_api::primitives::{KmpCreateRequest, KmpHandle};
use kmp_api::session::UpperLayerSa;
use kmp_api::{ExtendedAddress, KmpId};

use super::kmp_host::{KmpCreate, KmpHost};
use super::pib_actor::{DeleteSa, InsertSa, PibActor, RevokeSa};
use crate::pib::{Pib, PibError, StoredSa};

/// The `kind` of routing-protocol SAs.
pub const ROUTING_SA_KIND: &str = "rkmp-routing";

/// A routing protocol an SA serves (16-bit, project-defined; see DECISIONS.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoutingProtocol(pub u16);

impl RoutingProtocol {
    /// RPL (RFC 6550).
    pub const RPL: RoutingProtocol = RoutingProtocol(1);
    /// MPL (RFC 7731).
    pub const MPL: RoutingProtocol = RoutingProtocol(2);
    /// AODVv2 / LOADng-style reactive routing.
    pub const REACTIVE: RoutingProtocol = RoutingProtocol(3);

    /// Whether `sa` serves this routing protocol.
    pub fn serves(self, sa: &UpperLayerSa) -> bool {
        sa.kind == ROUTING_SA_KIND && sa.sa_id.get(..2) == Some(&self.0.to_be_bytes()[..])
    }

    /// An `sa_id` for this routing protocol: the identifier then `rest`.
    pub fn sa_id(self, rest: &[u8]) -> Vec<u8> {
        let mut id = self.0.to_be_bytes().to_vec();
        id.extend_from_slice(rest);
        id
    }
}

/// What the key table tells the routing protocol.
#[derive(Debug, Clone, PartialEq, Eq, Message)]
#[rtype(result = "()")]
pub enum RoutingKeyEvent {
    /// RP_revokeSA: these SAs with `neighbour` are gone (a parent SA failed or was revoked).
    Revoked {
        /// The neighbour.
        neighbour: ExtendedAddress,
        /// The revoked SAs' ids.
        sa_ids: Vec<Vec<u8>>,
    },
}

/// getSA: the newest SA serving `protocol` with `neighbour`, if any (expired ones excluded).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "Option<StoredSa>")]
pub struct GetRoutingSa {
    /// The neighbour.
    pub neighbour: ExtendedAddress,
    /// The routing protocol.
    pub protocol: RoutingProtocol,
}

/// generateSA: asks the routing KMP to establish an SA with `neighbour` (KMP-CREATE.request
/// with `handle`; the outcome arrives at the host's application as usual).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "Result<(), RoutingKeyError>")]
pub struct GenerateRoutingSa {
    /// The neighbour.
    pub neighbour: ExtendedAddress,
    /// Its PAN.
    pub neighbour_pan: PanId,
    /// The KMP-CREATE handle.
    pub handle: KmpHandle,
}

/// insertSA.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), RoutingKeyError>")]
pub struct InsertRoutingSa {
    /// The neighbour.
    pub neighbour: ExtendedAddress,
    /// The SA (`kind` must be [`ROUTING_SA_KIND`], `sa_id` must start with its protocol).
    pub sa: UpperLayerSa,
}

/// rekeySA: installs `sa` and then removes every other SA serving the same routing protocol
/// with the neighbour.
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<Vec<u8>>, RoutingKeyError>")]
pub struct RekeyRoutingSa {
    /// The neighbour.
    pub neighbour: ExtendedAddress,
    /// The new SA.
    pub sa: UpperLayerSa,
}

/// delete.
#[derive(Debug, Message)]
#[rtype(result = "Result<bool, RoutingKeyError>")]
pub struct DeleteRoutingSa {
    /// The neighbour.
    pub neighbour: ExtendedAddress,
    /// The SA.
    pub sa_id: Vec<u8>,
}

/// RP_revokeSA: revokes `sa_id` and every SA derived from it; the subscribers are told.
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<Vec<u8>>, RoutingKeyError>")]
pub struct RevokeRoutingSa {
    /// The neighbour.
    pub neighbour: ExtendedAddress,
    /// The failed parent SA.
    pub sa_id: Vec<u8>,
}

/// Subscribes to [`RoutingKeyEvent`]s.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct SubscribeRoutingKeys(pub Recipient<RoutingKeyEvent>);

/// Why a key-table call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RoutingKeyError {
    /// The SA is not a routing-protocol SA (`kind`, or an `sa_id` shorter than 2 octets).
    #[error("not a routing-protocol SA: {0}")]
    NotRoutingSa(&'static str),
    /// The PIB refused or failed.
    #[error("PIB: {0}")]
    Pib(String),
    /// No routing KMP host is attached.
    #[error("no routing KMP host")]
    NoKmp,
    /// An actor is gone.
    #[error("{0} is gone")]
    Gone(&'static str),
}

impl From<PibError> for RoutingKeyError {
    fn from(e: PibError) -> Self {
        RoutingKeyError::Pib(e.to_string())
    }
}

fn check(sa: &UpperLayerSa) -> Result<RoutingProtocol, RoutingKeyError> {
    if sa.kind != ROUTING_SA_KIND {
        return Err(RoutingKeyError::NotRoutingSa("kind"));
    }
    match sa.sa_id.get(..2) {
        Some(p) => Ok(RoutingProtocol(u16::from_be_bytes([p[0], p[1]]))),
        None => Err(RoutingKeyError::NotRoutingSa("sa_id shorter than 2 octets")),
    }
}

/// The key table; see the [module docs](self).
pub struct RoutingKeyTable {
    owner: KmpId,
    pib: Pib,
    pib_actor: Addr<PibActor>,
    host: Option<Addr<KmpHost>>,
    clock: super::Clock,
    subscribers: Vec<Recipient<RoutingKeyEvent>>,
}

impl std::fmt::Debug for RoutingKeyTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoutingKeyTable")
            .field("owner", &self.owner)
            .field("subscribers", &self.subscribers.len())
            .finish_non_exhaustive()
    }
}

impl RoutingKeyTable {
    /// A table for the SAs of the routing KMP `owner`, stored through `pib_actor`, read
    /// through `pib`; `host` (the routing KMP's host) serves generateSA.
    pub fn new(
        owner: KmpId,
        pib: Pib,
        pib_actor: Addr<PibActor>,
        host: Option<Addr<KmpHost>>,
        clock: super::Clock,
    ) -> RoutingKeyTable {
        RoutingKeyTable {
            owner,
            pib,
            pib_actor,
            host,
            clock,
            subscribers: Vec::new(),
        }
    }
}

impl Actor for RoutingKeyTable {
    type Context = Context<Self>;
}

impl Handler<GetRoutingSa> for RoutingKeyTable {
    type Result = MessageResult<GetRoutingSa>;
    fn handle(&mut self, m: GetRoutingSa, _: &mut Context<Self>) -> Self::Result {
        let now = self.clock.now();
        let newest = self
            .pib
            .upper_layer_sas(self.owner, m.neighbour)
            .into_iter()
            .filter(|s| m.protocol.serves(&s.sa) && !s.is_expired(now))
            .max_by_key(|s| s.installed_at);
        MessageResult(newest)
    }
}

impl Handler<GenerateRoutingSa> for RoutingKeyTable {
    type Result = Result<(), RoutingKeyError>;
    fn handle(&mut self, m: GenerateRoutingSa, _: &mut Context<Self>) -> Self::Result {
        let host = self.host.as_ref().ok_or(RoutingKeyError::NoKmp)?;
        host.do_send(KmpCreate(KmpCreateRequest {
            kmp_id: self.owner,
            peer: m.neighbour,
            peer_pan: m.neighbour_pan,
            handle: m.handle,
        }));
        Ok(())
    }
}

impl Handler<InsertRoutingSa> for RoutingKeyTable {
    type Result = ResponseActFuture<Self, Result<(), RoutingKeyError>>;
    fn handle(&mut self, m: InsertRoutingSa, _: &mut Context<Self>) -> Self::Result {
        if let Err(e) = check(&m.sa) {
            return Box::pin(actix::fut::ready(Err(e)));
        }
        let fut = self.pib_actor.send(InsertSa {
            owner: self.owner,
            peer: m.neighbour,
            sa: m.sa,
        });
        Box::pin(fut.into_actor(self).map(|r, _, _| match r {
            Ok(r) => r.map_err(RoutingKeyError::from),
            Err(_) => Err(RoutingKeyError::Gone("the PIB actor")),
        }))
    }
}

impl Handler<RekeyRoutingSa> for RoutingKeyTable {
    type Result = ResponseActFuture<Self, Result<Vec<Vec<u8>>, RoutingKeyError>>;
    fn handle(&mut self, m: RekeyRoutingSa, _: &mut Context<Self>) -> Self::Result {
        let protocol = match check(&m.sa) {
            Ok(p) => p,
            Err(e) => return Box::pin(actix::fut::ready(Err(e))),
        };
        let new_id = m.sa.sa_id.clone();
        let replaced: Vec<Vec<u8>> = self
            .pib
            .upper_layer_sas(self.owner, m.neighbour)
            .into_iter()
            .filter(|s| protocol.serves(&s.sa) && s.sa.sa_id != new_id)
            .map(|s| s.sa.sa_id)
            .collect();
        let (owner, neighbour, pib) = (self.owner, m.neighbour, self.pib_actor.clone());
        let insert = self.pib_actor.send(InsertSa {
            owner,
            peer: neighbour,
            sa: m.sa,
        });
        Box::pin(
            async move {
                insert
                    .await
                    .map_err(|_| RoutingKeyError::Gone("the PIB actor"))??;
                // The new SA is durable; only now do the ones it replaces go.
                for id in &replaced {
                    pib.send(DeleteSa {
                        owner,
                        peer: neighbour,
                        sa_id: id.clone(),
                    })
                    .await
                    .map_err(|_| RoutingKeyError::Gone("the PIB actor"))??;
                }
                Ok(replaced)
            }
            .into_actor(self),
        )
    }
}

impl Handler<DeleteRoutingSa> for RoutingKeyTable {
    type Result = ResponseActFuture<Self, Result<bool, RoutingKeyError>>;
    fn handle(&mut self, m: DeleteRoutingSa, _: &mut Context<Self>) -> Self::Result {
        let fut = self.pib_actor.send(DeleteSa {
            owner: self.owner,
            peer: m.neighbour,
            sa_id: m.sa_id,
        });
        Box::pin(fut.into_actor(self).map(|r, _, _| match r {
            Ok(r) => r.map_err(RoutingKeyError::from),
            Err(_) => Err(RoutingKeyError::Gone("the PIB actor")),
        }))
    }
}

impl Handler<RevokeRoutingSa> for RoutingKeyTable {
    type Result = ResponseActFuture<Self, Result<Vec<Vec<u8>>, RoutingKeyError>>;
    fn handle(&mut self, m: RevokeRoutingSa, _: &mut Context<Self>) -> Self::Result {
        let neighbour = m.neighbour;
        let fut = self.pib_actor.send(RevokeSa {
            owner: self.owner,
            peer: neighbour,
            sa_id: m.sa_id,
        });
        Box::pin(fut.into_actor(self).map(move |r, act, _| {
            let ids = r
                .map_err(|_| RoutingKeyError::Gone("the PIB actor"))?
                .map_err(RoutingKeyError::from)?;
            if !ids.is_empty() {
                tracing::info!(%neighbour, revoked = ids.len(), "routing SAs revoked");
                for s in &act.subscribers {
                    s.do_send(RoutingKeyEvent::Revoked {
                        neighbour,
                        sa_ids: ids.clone(),
                    });
                }
            }
            Ok(ids)
        }))
    }
}

impl Handler<SubscribeRoutingKeys> for RoutingKeyTable {
    type Result = ();
    fn handle(&mut self, m: SubscribeRoutingKeys, _: &mut Context<Self>) {
        self.subscribers.push(m.0);
    }
}
