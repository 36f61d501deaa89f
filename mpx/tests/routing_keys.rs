//! The routing protocol's key table over the PIB actor: getSA, insertSA, rekeySA (new before
//! old goes), delete, RP_revokeSA with the routing protocol told, and refusals.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::borrow::Cow;
use std::sync::{Arc, Mutex};

use actix::{Actor, Context, Handler};
use kmp_api::primitives::KmpHandle;
use kmp_api::session::{SecretBytes, UpperLayerSa};
use kmp_api::{ExtendedAddress, Instant, KmpId, PanId};
use mpx::pib::{PibConfig, PibStore};
use mpx::runtime::routing_keys::ROUTING_SA_KIND;
use mpx::runtime::{
    Clock, DeleteRoutingSa, GenerateRoutingSa, GetRoutingSa, InsertRoutingSa, PibActor,
    RekeyRoutingSa, RevokeRoutingSa, RoutingKeyError, RoutingKeyEvent, RoutingKeyTable,
    RoutingProtocol, SubscribeRoutingKeys,
};

const N: ExtendedAddress = ExtendedAddress([0x02, 0, 0, 0, 0, 0, 0, 0x42]);

fn sa(protocol: RoutingProtocol, spi: u8, parent: Option<Vec<u8>>, key: u8) -> UpperLayerSa {
    UpperLayerSa {
        sa_id: protocol.sa_id(&[spi; 8]),
        kind: Cow::Borrowed(ROUTING_SA_KIND),
        keys: vec![(
            Cow::Borrowed("routing-key"),
            SecretBytes::new(vec![key; 16]),
        )],
        lifetime: None,
        parent,
    }
}

#[derive(Default)]
struct Rp(Arc<Mutex<Vec<RoutingKeyEvent>>>);
impl Actor for Rp {
    type Context = Context<Self>;
}
impl Handler<RoutingKeyEvent> for Rp {
    type Result = ();
    fn handle(&mut self, e: RoutingKeyEvent, _: &mut Context<Self>) {
        self.0.lock().unwrap().push(e);
    }
}

#[actix::test]
async fn the_routing_key_table_over_the_pib() {
    let store = PibStore::in_memory(PibConfig::default(), Instant::ZERO).unwrap();
    let pib_actor = PibActor::new(store, Clock::System);
    let pib = pib_actor.pib();
    let pib_addr = pib_actor.start();
    let table = RoutingKeyTable::new(KmpId::Ikev2, pib, pib_addr, None, Clock::System).start();
    let events = Arc::new(Mutex::new(Vec::new()));
    let rp = Rp(events.clone()).start();
    table
        .send(SubscribeRoutingKeys(rp.clone().recipient()))
        .await
        .unwrap();

    let rpl = RoutingProtocol::RPL;
    // getSA on nothing.
    assert!(
        table
            .send(GetRoutingSa {
                neighbour: N,
                protocol: rpl
            })
            .await
            .unwrap()
            .is_none()
    );
    // insertSA: a parent, a child of it, and an MPL SA.
    let parent = sa(rpl, 1, None, 0xa1);
    let parent_id = parent.sa_id.clone();
    table
        .send(InsertRoutingSa {
            neighbour: N,
            sa: parent,
        })
        .await
        .unwrap()
        .unwrap();
    let got = table
        .send(GetRoutingSa {
            neighbour: N,
            protocol: rpl,
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.sa.keys[0].1.expose(), &[0xa1; 16]);
    table
        .send(InsertRoutingSa {
            neighbour: N,
            sa: sa(RoutingProtocol::MPL, 9, None, 0xb1),
        })
        .await
        .unwrap()
        .unwrap();
    // A child of the parent serving RPL too (e.g. a per-instance key).
    let child = sa(rpl, 2, Some(parent_id.clone()), 0xa2);
    let child_id = child.sa_id.clone();
    table
        .send(InsertRoutingSa {
            neighbour: N,
            sa: child,
        })
        .await
        .unwrap()
        .unwrap();

    // rekeySA: a new RPL SA replaces both RPL SAs; MPL's stays.
    let new = sa(rpl, 3, None, 0xa3);
    let new_id = new.sa_id.clone();
    let mut replaced = table
        .send(RekeyRoutingSa {
            neighbour: N,
            sa: new,
        })
        .await
        .unwrap()
        .unwrap();
    replaced.sort();
    let mut want = vec![parent_id.clone(), child_id.clone()];
    want.sort();
    assert_eq!(replaced, want);
    let got = table
        .send(GetRoutingSa {
            neighbour: N,
            protocol: rpl,
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.sa.sa_id, new_id);
    assert!(
        table
            .send(GetRoutingSa {
                neighbour: N,
                protocol: RoutingProtocol::MPL
            })
            .await
            .unwrap()
            .is_some()
    );

    // RP_revokeSA: a parent with two generations below it; all go, the RP is told.
    let p = sa(rpl, 4, Some(new_id.clone()), 0xa4);
    let p_id = p.sa_id.clone();
    table
        .send(InsertRoutingSa {
            neighbour: N,
            sa: p,
        })
        .await
        .unwrap()
        .unwrap();
    table
        .send(InsertRoutingSa {
            neighbour: N,
            sa: sa(rpl, 5, Some(p_id.clone()), 0xa5),
        })
        .await
        .unwrap()
        .unwrap();
    let mut revoked = table
        .send(RevokeRoutingSa {
            neighbour: N,
            sa_id: new_id.clone(),
        })
        .await
        .unwrap()
        .unwrap();
    revoked.sort();
    assert_eq!(revoked.len(), 3, "{revoked:?}");
    assert!(
        table
            .send(GetRoutingSa {
                neighbour: N,
                protocol: rpl
            })
            .await
            .unwrap()
            .is_none()
    );
    // Let the subscriber's mailbox run.
    rp.send(RoutingKeyEvent::Revoked {
        neighbour: N,
        sa_ids: vec![],
    })
    .await
    .unwrap();
    let ev = events.lock().unwrap().clone();
    assert!(
        matches!(&ev[0], RoutingKeyEvent::Revoked { neighbour, sa_ids } if *neighbour == N && sa_ids.len() == 3)
    );

    // delete.
    let mpl_id = RoutingProtocol::MPL.sa_id(&[9; 8]);
    assert!(
        table
            .send(DeleteRoutingSa {
                neighbour: N,
                sa_id: mpl_id.clone()
            })
            .await
            .unwrap()
            .unwrap()
    );
    assert!(
        !table
            .send(DeleteRoutingSa {
                neighbour: N,
                sa_id: mpl_id
            })
            .await
            .unwrap()
            .unwrap()
    );

    // Refusals.
    let mut wrong = sa(rpl, 6, None, 0);
    wrong.kind = Cow::Borrowed("ikev2-child");
    assert_eq!(
        table
            .send(InsertRoutingSa {
                neighbour: N,
                sa: wrong
            })
            .await
            .unwrap(),
        Err(RoutingKeyError::NotRoutingSa("kind"))
    );
    let mut short = sa(rpl, 6, None, 0);
    short.sa_id = vec![1];
    assert!(
        table
            .send(RekeyRoutingSa {
                neighbour: N,
                sa: short
            })
            .await
            .unwrap()
            .is_err()
    );
    assert_eq!(
        table
            .send(GenerateRoutingSa {
                neighbour: N,
                neighbour_pan: PanId(1),
                handle: KmpHandle(1)
            })
            .await
            .unwrap(),
        Err(RoutingKeyError::NoKmp)
    );
}
