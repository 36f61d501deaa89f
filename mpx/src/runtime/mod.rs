//! The actor runtime (feature `runtime`, actix): the MPX actor, the PIB actor and one KMP host
//! per KMP ID, wired to a radio driver.
//!
//! ```text
//!  driver ──RadioRx/RadioTxDone──▶ MpxActor ──KmpDatagram──▶ KmpHost[KMP ID] ──▶ sessions
//!    ▲                               │  ▲                         │   │
//!    └────────── RadioTx ────────────┘  └── MpxData (request) ────┘   │ InstallKeys
//!                 Pib read handles ◀──── PibActor ◀───────────────────┘ (durable, then
//!                                      (owns the store)                  KMP-FINISHED)
//! ```
//!
//! All actors take time from a [`Clock`]: the system clock for real radios, or a
//! [`VirtualClock`] that a simulator advances (see [`clock`]).

pub mod clock;
pub mod radio;

pub use clock::{Clock, TimerSlot, VirtualClock, Wake, virtual_time_system};
pub use radio::{FrameTap, MacPort, RadioDriver, RadioRx, RadioTx, RadioTxDone};
pub mod kmp_host;
pub mod mpx_actor;
pub mod pib_actor;
pub mod routing_keys;

pub use kmp_host::{
    GetHostStats, HostCounters, HostStats, KmpAccept, KmpCreate, KmpDelete, KmpEvent, KmpHost,
    KmpHostConfig, TxObserver,
};
pub use mpx_actor::{
    GetMpxStats, KmpDatagram, KmpPurge, MpxActor, MpxActorConfig, MpxActorCounters, MpxConfirm,
    MpxData, MpxIndication, MpxPurge, MpxStats, RegisterKmp, Subscribe,
};
pub use pib_actor::{
    ClosePib, DeleteSa, GetPib, InsertSa, InstallKeys, KeyLogSink, Maintain, PibActor, RekeySa,
    RemoveKeys, RevokeSa, SetDevice, SetIdentity, SetSecurityLevel,
};
pub use routing_keys::{
    DeleteRoutingSa, GenerateRoutingSa, GetRoutingSa, InsertRoutingSa, RekeyRoutingSa,
    RevokeRoutingSa, RoutingKeyError, RoutingKeyEvent, RoutingKeyTable, RoutingProtocol,
    SubscribeRoutingKeys,
};
