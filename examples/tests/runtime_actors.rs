//! The runtime actors one by one, on the simulated medium in virtual time: the session table
//! bound under a flood of first messages, routing of unknown KMP IDs and Multiplex IDs, keys
//! durable before KMP-FINISHED, KMP-DELETE and KMP-PURGE.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use actix::{Actor, Addr, Context, Handler};
use examples::sim::{NodeSpec, SIM_PAN, SimNode, node_address, spawn_node};
use kmp_api::addr::{Address, AddressingMode};
use kmp_api::primitives::{
    KmpCreateRequest, KmpDeleteRequest, KmpHandle, KmpPurgeRequest, KmpStatus, MpxDataRequest,
    MpxHandle,
};
use kmp_api::security::SecurityParams;
use kmp_api::session::{Action, KmpFactory, KmpSession, Outcome, Role, SessionContext};
use kmp_api::{
    Duration, ExtendedAddress, Instant, KmpId, MultiplexId, Oui, RngHandle, SessionError,
};
use mpx::pib::Pib;
use mpx::runtime::{
    GetHostStats, GetMpxStats, GetPib, KmpCreate, KmpDelete, KmpEvent, KmpHostConfig, KmpPurge,
    MacPort, RadioDriver, RadioRx, RadioTx, RadioTxDone, virtual_time_system,
};
use mpx::service::{MpxConfig, MpxService};
use radio_drivers::sim::{MediumConfig, SimAddress, SimNetwork};

const SINK_KMP: KmpId = KmpId::VendorSpecific(Oui([0xaa, 0xbb, 0xcc]));

/// A KMP whose sessions accept every PDU and never finish: each one holds a table slot.
struct SinkFactory;

struct SinkSession {
    peer: ExtendedAddress,
    role: Role,
}

impl KmpSession for SinkSession {
    fn kmp_id(&self) -> KmpId {
        SINK_KMP
    }
    fn role(&self) -> Role {
        self.role
    }
    fn peer(&self) -> ExtendedAddress {
        self.peer
    }
    fn start(&mut self, _: Instant) -> Result<(), SessionError> {
        Ok(())
    }
    fn handle_datagram(&mut self, _: Instant, _: &[u8]) -> Result<(), SessionError> {
        Ok(())
    }
    fn handle_timeout(&mut self, _: Instant) {}
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
    fn poll_action(&mut self) -> Option<Action> {
        None
    }
    fn is_closed(&self) -> bool {
        false
    }
}

impl KmpFactory for SinkFactory {
    fn kmp_id(&self) -> KmpId {
        SINK_KMP
    }
    fn new_initiator(&self, ctx: SessionContext) -> Result<Box<dyn KmpSession>, SessionError> {
        Ok(Box::new(SinkSession {
            peer: ctx.peer,
            role: Role::Initiator,
        }))
    }
    fn new_responder(
        &self,
        ctx: SessionContext,
        _: &[u8],
    ) -> Result<Box<dyn KmpSession>, SessionError> {
        Ok(Box::new(SinkSession {
            peer: ctx.peer,
            role: Role::Responder,
        }))
    }
}

/// Collects KMP events; on a KMP-FINISHED success that names peer P it looks, at that very
/// moment, into the PIB registered for P with [`Watch`] and records how many keys for P it
/// holds.
#[derive(Default)]
struct Collector {
    events: Arc<Mutex<Vec<KmpEvent>>>,
    watch: Vec<(ExtendedAddress, Pib)>,
    keys_at_finish: Arc<Mutex<Vec<usize>>>,
}

#[derive(actix::Message)]
#[rtype(result = "()")]
struct Watch(ExtendedAddress, Pib);

impl Handler<Watch> for Collector {
    type Result = ();
    fn handle(&mut self, w: Watch, _: &mut Context<Self>) {
        self.watch.push((w.0, w.1));
    }
}

impl Actor for Collector {
    type Context = Context<Self>;
}

impl Handler<KmpEvent> for Collector {
    type Result = ();
    fn handle(&mut self, ev: KmpEvent, _: &mut Context<Self>) {
        if let KmpEvent::Finished(f) = &ev
            && matches!(f.outcome, Outcome::Success(_))
            && let Some((peer, pib)) = self.watch.iter().find(|(p, _)| *p == f.peer)
        {
            let n = pib
                .keys()
                .iter()
                .filter(|k| k.installed_for == *peer && k.owner == KmpId::Dragonfly)
                .count();
            self.keys_at_finish.lock().unwrap().push(n);
        }
        self.events.lock().unwrap().push(ev);
    }
}

impl Handler<RadioRx> for Collector {
    type Result = ();
    fn handle(&mut self, _: RadioRx, _: &mut Context<Self>) {}
}

impl Handler<RadioTxDone> for Collector {
    type Result = ();
    fn handle(&mut self, _: RadioTxDone, _: &mut Context<Self>) {}
}

fn node(
    net: &SimNetwork,
    index: usize,
    factory: Arc<dyn KmpFactory>,
    host: KmpHostConfig,
    app: &Addr<Collector>,
) -> SimNode {
    spawn_node(NodeSpec {
        index,
        pos: (index as f64, 0.0),
        net,
        factory,
        host,
        keylog: None,
        compress_small_mux_id: true,
        initial_dsn: 0,
        rng: RngHandle::seeded(index as u64),
        app: app.clone().recipient(),
        tx_observer: None,
    })
    .unwrap()
}

/// A complete frame from `src` to the gateway carrying `upper` on `mux`, unsecured.
fn forged_frame(src: ExtendedAddress, mux: MultiplexId, upper: Vec<u8>) -> Vec<u8> {
    let mut cfg = MpxConfig::new(src, SIM_PAN);
    cfg.compress_small_mux_id = true;
    let mut svc = MpxService::new(cfg).unwrap();
    svc.request(
        Instant::ZERO,
        MpxDataRequest {
            src_addr_mode: AddressingMode::Extended,
            dst_pan: SIM_PAN,
            dst_addr: Address::Extended(node_address(0)),
            multiplex_id: mux,
            upper_layer_frame: upper,
            handle: MpxHandle(1),
            ack_tx: false,
            seq_num_suppressed: false,
            pan_id_suppressed: true,
            security: SecurityParams::NONE,
        },
    )
    .unwrap();
    svc.poll_transmit(Instant::ZERO).unwrap().frame
}

fn kmp_frame(src: ExtendedAddress, kmp: KmpId, pdu: &[u8]) -> Vec<u8> {
    let mut upper = vec![0u8; kmp.prefix_len()];
    kmp.emit_prefix(&mut upper).unwrap();
    upper.extend_from_slice(pdu);
    forged_frame(src, MultiplexId::Kmp, upper)
}

/// An attacker's radio: frames straight onto the medium.
fn attacker(net: &SimNetwork, app: &Addr<Collector>) -> radio_drivers::sim::SimRadio {
    let mut r = net.add_radio(
        (0.0, 5.0),
        SimAddress {
            ext: ExtendedAddress([0xee; 8]),
            short: None,
            pan: SIM_PAN,
        },
    );
    r.attach(MacPort {
        rx: app.clone().recipient(),
        tx_done: app.clone().recipient(),
    });
    r
}

fn send_raw(r: &mut radio_drivers::sim::SimRadio, token: u64, frame: Vec<u8>) {
    r.transmit(RadioTx {
        token,
        frame,
        ack_request: false,
        dst_pan: None,
        dst: Address::Extended(node_address(0)),
    });
}

fn deadline() -> Instant {
    Instant::ZERO + Duration::from_secs(600)
}

#[test]
fn a_flood_of_first_messages_fills_only_the_bounded_session_table() {
    virtual_time_system().unwrap().block_on(async {
        let net = SimNetwork::new(MediumConfig::default(), Default::default());
        let app = Collector::default().start();
        let mut host = KmpHostConfig::new(node_address(0));
        host.max_sessions = 64;
        host.max_responder_sessions = 16;
        let gw = node(&net, 0, Arc::new(SinkFactory), host, &app);
        let mut evil = attacker(&net, &app);
        for i in 0..1000u64 {
            let mut forged = [0x42u8; 8];
            forged[..8].copy_from_slice(&(0x4200_0000_0000_0000 | i).to_be_bytes());
            send_raw(
                &mut evil,
                i,
                kmp_frame(ExtendedAddress(forged), SINK_KMP, b"hello"),
            );
        }
        net.run(|| false, deadline()).await;
        let stats = gw.host.send(GetHostStats).await.unwrap();
        assert_eq!(stats.sessions, 16, "{stats:?}");
        assert_eq!(stats.open_responders, 16);
        assert_eq!(stats.counters.responders_created, 16);
        assert_eq!(stats.counters.rx_table_full, 1000 - 16, "{stats:?}");
        let mpx = gw.mpx.send(GetMpxStats).await.unwrap();
        assert_eq!(mpx.actor.rx_kmp_datagrams, 1000, "{mpx:?}");
        // One KMP-CREATE.indication per admitted responder, nothing else.
        let events = app.send(TakeEvents).await.unwrap();
        assert_eq!(events.len(), 16);
        assert!(
            events
                .iter()
                .all(|e| matches!(e, KmpEvent::CreateIndication(_)))
        );
    });
}

#[test]
fn unknown_kmp_ids_multiplex_ids_and_garbage_are_counted_and_dropped() {
    virtual_time_system().unwrap().block_on(async {
        let net = SimNetwork::new(MediumConfig::default(), Default::default());
        let app = Collector::default().start();
        let gw = node(
            &net,
            0,
            Arc::new(SinkFactory),
            KmpHostConfig::new(node_address(0)),
            &app,
        );
        let mut evil = attacker(&net, &app);
        let src = ExtendedAddress([7; 8]);
        // IKEv2 (KMP ID 3): no host serves it here.
        send_raw(&mut evil, 1, kmp_frame(src, KmpId::Ikev2, b"ike"));
        // Another vendor's OUI under KMP ID 255.
        send_raw(
            &mut evil,
            2,
            kmp_frame(src, KmpId::VendorSpecific(Oui([1, 2, 3])), b"x"),
        );
        // A Multiplex ID nobody subscribed to, unsecured: below the required level.
        send_raw(
            &mut evil,
            3,
            forged_frame(src, MultiplexId::EtherType(0x88b6), b"data".to_vec()),
        );
        // A KMP frame with no KMP ID at all.
        send_raw(&mut evil, 4, forged_frame(src, MultiplexId::Kmp, vec![]));
        // A frame whose FCS is wrong.
        let mut bad = kmp_frame(src, SINK_KMP, b"ok");
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        send_raw(&mut evil, 5, bad);
        // And one good frame, which is routed.
        send_raw(&mut evil, 6, kmp_frame(src, SINK_KMP, b"ok"));
        net.run(|| false, deadline()).await;
        let s = gw.mpx.send(GetMpxStats).await.unwrap();
        assert_eq!(s.actor.rx_unknown_kmp, 2, "{s:?}");
        assert_eq!(s.actor.rx_insecure_upper_layer, 1, "{s:?}");
        assert_eq!(s.actor.rx_bad_kmp_prefix, 1, "{s:?}");
        assert_eq!(s.actor.rx_kmp_datagrams, 1, "{s:?}");
        // The bad FCS never reached the MPX actor: the simulated radio drops it like hardware.
        assert_eq!(net.stats().malformed, 1);
        assert_eq!(s.actor.rx_malformed, 0);
        let h = gw.host.send(GetHostStats).await.unwrap();
        assert_eq!(h.counters.rx_datagrams, 1);
        assert_eq!(h.sessions, 1);
    });
}

fn dragonfly(config: &str) -> Arc<dyn KmpFactory> {
    kmp_api::Registry::from_inventory()
        .unwrap()
        .lookup(KmpId::Dragonfly)
        .expect("examples links kmp-dragonfly")
        .make_factory(config)
        .unwrap()
}

const GW: &str = "password = \"actor test\"\n";
const NODE: &str = "password = \"actor test\"\n";

#[test]
fn keys_are_durable_before_kmp_finished_and_kmp_delete_removes_them() {
    virtual_time_system().unwrap().block_on(async {
        let net = SimNetwork::new(MediumConfig::default(), Default::default());
        let keys_at_finish = Arc::new(Mutex::new(Vec::new()));
        let events = Arc::new(Mutex::new(Vec::new()));
        let app = Collector {
            events: events.clone(),
            keys_at_finish: keys_at_finish.clone(),
            ..Collector::default()
        }
        .start();
        let gw = node(
            &net,
            0,
            dragonfly(GW),
            KmpHostConfig::new(node_address(0)),
            &app,
        );
        let n = node(
            &net,
            9,
            dragonfly(NODE),
            KmpHostConfig::new(node_address(9)),
            &app,
        );
        let gw_pib = gw.pib.send(GetPib).await.unwrap();
        let node_pib = n.pib.send(GetPib).await.unwrap();
        // A KMP-FINISHED that names peer P comes from the other side: look into its PIB.
        app.send(Watch(node_address(9), gw_pib.clone())).await.unwrap();
        app.send(Watch(node_address(0), node_pib.clone())).await.unwrap();
        n.host.do_send(KmpCreate(KmpCreateRequest {
            kmp_id: KmpId::Dragonfly,
            peer: node_address(0),
            peer_pan: SIM_PAN,
            handle: KmpHandle(7),
        }));
        let k = keys_at_finish.clone();
        net.run(move || k.lock().unwrap().len() == 2, deadline())
            .await;
        // At the moment each side reported KMP-FINISHED, its PIB already held the link key.
        assert_eq!(*keys_at_finish.lock().unwrap(), vec![1, 1]);
        let evs = events.lock().unwrap().clone();
        assert!(evs.iter().any(|e| matches!(e,
            KmpEvent::CreateConfirm(c) if c.handle == KmpHandle(7) && c.status == KmpStatus::Success)));
        assert!(evs.iter().any(|e| matches!(e, KmpEvent::CreateIndication(i) if i.peer == node_address(9))));

        // KMP-DELETE on the node: its keys for the gateway go; an unknown handle is refused.
        let c = n
            .host
            .send(KmpDelete(KmpDeleteRequest {
                handle: KmpHandle(7),
            }))
            .await
            .unwrap();
        assert_eq!(c.status, KmpStatus::Success);
        let c = n
            .host
            .send(KmpDelete(KmpDeleteRequest {
                handle: KmpHandle(12345),
            }))
            .await
            .unwrap();
        assert_eq!(c.status, KmpStatus::InvalidHandle);
        // The removal is a message to the PIB actor: once a later message is answered, it ran.
        n.pib.send(GetPib).await.unwrap();
        assert!(
            node_pib.keys().iter().all(|k| k.installed_for != node_address(0)),
            "{:?}",
            node_pib.keys()
        );
        // The gateway's keys are untouched.
        assert_eq!(
            gw_pib
                .keys()
                .iter()
                .filter(|k| k.installed_for == node_address(9))
                .count(),
            1
        );
    });
}

#[test]
fn kmp_purge_drops_the_queued_datagram_and_the_create_confirm_says_so() {
    virtual_time_system().unwrap().block_on(async {
        let net = SimNetwork::new(MediumConfig::default(), Default::default());
        let events = Arc::new(Mutex::new(Vec::new()));
        let app = Collector {
            events: events.clone(),
            ..Collector::default()
        }
        .start();
        let _gw = node(
            &net,
            0,
            dragonfly(GW),
            KmpHostConfig::new(node_address(0)),
            &app,
        );
        let n = node(
            &net,
            3,
            dragonfly(NODE),
            KmpHostConfig::new(node_address(3)),
            &app,
        );
        n.host
            .send(KmpCreate(KmpCreateRequest {
                kmp_id: KmpId::Dragonfly,
                peer: node_address(0),
                peer_pan: SIM_PAN,
                handle: KmpHandle(1),
            }))
            .await
            .unwrap();
        // The commit is with the MPX actor (queued or on its way to the radio): purge it.
        let c = n
            .mpx
            .send(KmpPurge(KmpPurgeRequest {
                peer: node_address(0),
                kmp_id: Some(KmpId::Dragonfly),
            }))
            .await
            .unwrap();
        assert_eq!(c.purged, 1, "{c:?}");
        assert_eq!(c.status, KmpStatus::Success);
        // Nothing for another peer.
        let c = n
            .mpx
            .send(KmpPurge(KmpPurgeRequest {
                peer: ExtendedAddress([9; 8]),
                kmp_id: None,
            }))
            .await
            .unwrap();
        assert_eq!(c.purged, 0);
        let ev = events.clone();
        net.run(
            move || {
                ev.lock()
                    .unwrap()
                    .iter()
                    .any(|e| matches!(e, KmpEvent::CreateConfirm(_)))
            },
            deadline(),
        )
        .await;
        let evs = events.lock().unwrap().clone();
        assert!(
            evs.iter().any(|e| matches!(e, KmpEvent::CreateConfirm(c)
                if c.handle == KmpHandle(1)
                    && c.status == KmpStatus::TxFailure(kmp_api::primitives::MacStatus::Purged))),
            "{evs:?}"
        );
    });
}

#[derive(actix::Message)]
#[rtype(result = "Vec<KmpEvent>")]
struct TakeEvents;

impl Handler<TakeEvents> for Collector {
    type Result = actix::MessageResult<TakeEvents>;
    fn handle(&mut self, _: TakeEvents, _: &mut Context<Self>) -> Self::Result {
        actix::MessageResult(std::mem::take(&mut *self.events.lock().unwrap()))
    }
}
