//! Property tests of the MPX data service over a simulated lossy link.
//!
//! Two senders send random upper-layer frames to one receiver. A simulated MAC carries each
//! frame with up to three attempts: an attempt may be lost, or reach the receiver while its
//! acknowledgment is lost (the receiver then sees the frame again: a duplicate); after three
//! unacknowledged attempts the status is `NoAck`. The senders' frames interleave in random
//! order, and within one node's queue the first two frames may swap. Senders may retry a
//! failed frame as a new request. Full frames are never duplicated: rejecting a retransmitted
//! full frame is the receiving MAC's job (same source and DSN), not MPX's.
//!
//! Properties, per distinct (sender, upper-layer frame): the receiver delivers it byte-equal at
//! least as often as it was confirmed `Success` and at most as often as it was requested, so
//! never twice for one request and never a frame nobody sent; every request gets exactly one
//! confirm; reassembly memory never exceeds `max_buffered_octets`.

// The simulation helpers are test code: a panic is how they report a broken property.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, VecDeque};

use kmp_api::addr::{Address, AddressingMode, ExtendedAddress, PanId};
use kmp_api::id::MultiplexId;
use kmp_api::primitives::{MacStatus, MpxDataRequest, MpxHandle};
use kmp_api::security::SecurityParams;
use kmp_api::time::{Duration, Instant};
use mpx::service::{MpxConfig, MpxEvent, MpxService, Transmit, TransmitKind};
use mpx::wire::{FcsLen, Frame, FrameRepr, ParseOptions};
use proptest::prelude::*;

const RECEIVER: usize = 0;
const PAN: PanId = PanId(0xabcd);
const MAC_ATTEMPTS: usize = 3;
const STEP: Duration = Duration::from_millis(1);
/// A reassembly timeout that never fires during a run (a run lasts well under a minute).
const LONG: Duration = Duration::from_secs(60);

/// xorshift64*: the per-step choices come from one seed so that a failing case replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// True with probability `permille`/1000.
    fn chance(&mut self, permille: u64) -> bool {
        self.next() % 1000 < permille
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(n).unwrap_or(1)).unwrap_or(0)
    }
}

#[derive(Debug, Clone)]
struct Link {
    loss_permille: u64,
    ack_loss_permille: u64,
    dup_permille: u64,
    swap_permille: u64,
    retries: u8,
}

struct Node {
    svc: MpxService,
    addr: ExtendedAddress,
    queue: VecDeque<Transmit>,
}

struct Attempt {
    sender: usize,
    data: Vec<u8>,
    retries_left: u8,
    outcome: Option<MacStatus>,
}

struct Sim {
    nodes: Vec<Node>,
    rng: Rng,
    now: Instant,
    link: Link,
    attempts: Vec<Attempt>,
    /// (sender address, upper-layer frame) for every indication at the receiver.
    delivered: Vec<(Address, Vec<u8>)>,
    max_buffered: usize,
    phy: u16,
    fcs: FcsLen,
}

fn addr(i: usize) -> ExtendedAddress {
    ExtendedAddress::from_u64(0x0200_0000_0000_0001 + u64::try_from(i).unwrap_or(0))
}

/// A frame whose first octets tell sender, frame and attempt apart (when it is long enough).
fn content(sender: usize, frame: usize, attempt: usize, len: usize) -> Vec<u8> {
    let tag = [sender, frame, attempt].map(|v| u8::try_from(v % 256).unwrap_or(0));
    (0..len)
        .map(|i| match tag.get(i) {
            Some(t) => *t,
            None => u8::try_from((i * 31 + frame) % 256).unwrap_or(0),
        })
        .collect()
}

impl Sim {
    fn new(
        seed: u64,
        link: Link,
        phy: u16,
        fcs: FcsLen,
        max_buffered: usize,
        timeout: Duration,
    ) -> Sim {
        let nodes = (0..3)
            .map(|i| {
                let mut c = MpxConfig::new(addr(i), PAN);
                c.max_phy_packet_size = phy;
                c.fcs_len = fcs;
                c.max_buffered_octets = max_buffered;
                c.reassembly_timeout = timeout;
                c.initial_dsn = u8::try_from(i * 80).unwrap_or(0);
                Node {
                    svc: MpxService::new(c).unwrap(),
                    addr: addr(i),
                    queue: VecDeque::new(),
                }
            })
            .collect();
        Sim {
            nodes,
            rng: Rng(seed | 1),
            now: Instant::from_micros(1_000_000),
            link,
            attempts: Vec::new(),
            delivered: Vec::new(),
            max_buffered,
            phy,
            fcs,
        }
    }

    fn request(&mut self, sender: usize, data: Vec<u8>, retries_left: u8) {
        let handle = MpxHandle(u32::try_from(self.attempts.len()).unwrap());
        let req = MpxDataRequest {
            src_addr_mode: AddressingMode::Extended,
            dst_pan: PAN,
            dst_addr: Address::Extended(addr(RECEIVER)),
            multiplex_id: MultiplexId::Kmp,
            upper_layer_frame: data.clone(),
            handle,
            ack_tx: true,
            seq_num_suppressed: false,
            pan_id_suppressed: true,
            security: SecurityParams::NONE,
        };
        self.nodes[sender].svc.request(self.now, req).unwrap();
        self.attempts.push(Attempt {
            sender,
            data,
            retries_left,
            outcome: None,
        });
    }

    fn node_of(&self, a: Address) -> Option<usize> {
        self.nodes
            .iter()
            .position(|n| Address::Extended(n.addr) == a)
    }

    fn deliver(&mut self, to: usize, t: &Transmit) {
        let f = Frame::new_checked(&t.frame[..], self.fcs).unwrap();
        let opts = ParseOptions {
            check_fcs: true,
            unprotected: true,
        };
        let repr = FrameRepr::parse_with(&f, opts).unwrap();
        self.nodes[to].svc.receive(self.now, &repr, 0x80);
    }

    /// One frame through the simulated MAC: returns its transmit status.
    fn carry(&mut self, from: usize, t: &Transmit) -> MacStatus {
        let to = self.node_of(t.dst).unwrap();
        assert_ne!(to, from);
        let may_duplicate = !matches!(t.kind, TransmitKind::FullFrame { .. });
        let mut reached = false;
        for _ in 0..MAC_ATTEMPTS {
            if self.rng.chance(self.link.loss_permille) {
                continue;
            }
            if !reached || may_duplicate {
                self.deliver(to, t);
            }
            reached = true;
            if !self.rng.chance(self.link.ack_loss_permille) {
                if may_duplicate && self.rng.chance(self.link.dup_permille) {
                    self.deliver(to, t);
                }
                return MacStatus::Success;
            }
        }
        MacStatus::NoAck
    }

    /// Collects transmits and events until a pass finds none: a confirm can issue a retry
    /// request whose frames only the next pass sees.
    fn drain(&mut self) {
        while self.drain_once() {}
    }

    /// One pass over every node; whether anything came out.
    fn drain_once(&mut self) -> bool {
        let mut progressed = false;
        for i in 0..self.nodes.len() {
            while let Some(t) = self.nodes[i].svc.poll_transmit(self.now) {
                assert!(
                    t.frame.len() <= usize::from(self.phy),
                    "frame over the PHY limit"
                );
                self.nodes[i].queue.push_back(t);
                progressed = true;
            }
            while let Some(e) = self.nodes[i].svc.poll_event() {
                progressed = true;
                match e {
                    MpxEvent::Indication(ind) => {
                        assert_eq!(i, RECEIVER, "only the receiver gets data");
                        self.delivered.push((ind.src_addr, ind.upper_layer_frame));
                    }
                    MpxEvent::Confirm(c) => {
                        let idx = usize::try_from(c.handle.0).unwrap();
                        let a = &mut self.attempts[idx];
                        assert_eq!(a.sender, i);
                        assert_eq!(a.outcome, None, "one confirm per request");
                        a.outcome = Some(c.status);
                        if c.status != MacStatus::Success && a.retries_left > 0 {
                            let (sender, left) = (a.sender, a.retries_left - 1);
                            let len = a.data.len();
                            let n = self.attempts.len();
                            self.request(sender, content(sender, n, n, len), left);
                        }
                    }
                }
            }
        }
        progressed
    }

    fn check_bounds(&self) {
        for n in &self.nodes {
            assert!(n.svc.buffered_octets() <= self.max_buffered);
            assert!(n.svc.active_reassemblies() <= n.svc.config().max_concurrent_reassemblies);
        }
    }

    /// Runs until every queue is empty and every request is confirmed.
    fn run(&mut self) {
        for _ in 0..200_000 {
            self.drain();
            self.check_bounds();
            let busy: Vec<usize> = (0..self.nodes.len())
                .filter(|&i| !self.nodes[i].queue.is_empty())
                .collect();
            if busy.is_empty() {
                return;
            }
            let from = busy[self.rng.below(busy.len())];
            let q = &mut self.nodes[from].queue;
            let pick = usize::from(q.len() >= 2 && self.rng.chance(self.link.swap_permille));
            let t = q.remove(pick).unwrap();
            let status = self.carry(from, &t);
            self.nodes[from]
                .svc
                .handle_tx_status(self.now, t.token, status);
            self.now += STEP;
            for n in &mut self.nodes {
                if n.svc.poll_timeout().is_some_and(|d| d <= self.now) {
                    n.svc.handle_timeout(self.now);
                }
            }
        }
        panic!("simulation did not settle");
    }

    /// Checks the delivery properties; `strict` adds "confirmed Success ⇒ delivered".
    fn check(&mut self, strict: bool) {
        let mut sent: BTreeMap<(Address, Vec<u8>), (usize, usize)> = BTreeMap::new();
        for a in &self.attempts {
            let outcome = a.outcome.expect("every request is confirmed");
            let e = sent
                .entry((Address::Extended(addr(a.sender)), a.data.clone()))
                .or_default();
            if outcome == MacStatus::Success {
                e.0 += 1;
            } else {
                e.1 += 1;
            }
        }
        let mut got: BTreeMap<(Address, Vec<u8>), usize> = BTreeMap::new();
        for d in self.delivered.drain(..) {
            *got.entry(d).or_default() += 1;
        }
        for (key, n) in &got {
            let (ok, failed) = sent.get(key).copied().unwrap_or_default();
            assert!(
                *n <= ok + failed,
                "delivered {n} times, requested {}",
                ok + failed
            );
        }
        if strict {
            // With ample memory and no timeouts, nothing may make the receiver drop a running
            // reassembly: duplicates must be recognised as such.
            let r = self.nodes[RECEIVER].svc.counters();
            assert_eq!((r.rx_out_of_order, r.reassembly_evicted), (0, 0), "{r:?}");
            for n in &self.nodes[1..] {
                assert_eq!(n.svc.counters().tx_peer_aborts, 0);
            }
            for (key, (ok, _)) in &sent {
                let n = got.get(key).copied().unwrap_or(0);
                assert!(n >= *ok, "confirmed Success {ok} times, delivered {n}");
            }
        }
        // Whatever is left (reassemblies whose abort was lost) goes at the timeout.
        let later = self.now + Duration::from_secs(3600);
        for n in &mut self.nodes {
            n.svc.handle_timeout(later);
            assert_eq!(n.svc.active_reassemblies(), 0);
            assert_eq!(n.svc.buffered_octets(), 0);
            assert_eq!(n.svc.pending_requests(), 0);
            assert_eq!(n.svc.counters().tx_internal_errors, 0);
        }
    }
}

fn link() -> impl Strategy<Value = Link> {
    (0u64..300, 0u64..300, 0u64..200, 0u64..300, 0u8..3).prop_map(
        |(loss_permille, ack_loss_permille, dup_permille, swap_permille, retries)| Link {
            loss_permille,
            ack_loss_permille,
            dup_permille,
            swap_permille,
            retries,
        },
    )
}

fn run_case(
    seed: u64,
    link: Link,
    phy: u16,
    fcs: FcsLen,
    max_buffered: usize,
    timeout: Duration,
    frames: &[Vec<usize>; 2],
) -> Sim {
    let mut sim = Sim::new(seed, link.clone(), phy, fcs, max_buffered, timeout);
    for (s, lens) in frames.iter().enumerate() {
        let sender = s + 1;
        for &len in lens {
            let n = sim.attempts.len();
            sim.request(sender, content(sender, n, 0, len), link.retries);
        }
    }
    sim.run();
    sim
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// 127-octet PHY, frames up to 4000 octets (up to 42 fragments), generous memory.
    #[test]
    fn lossy_link_delivers_each_frame_at_most_once_and_success_means_delivered(
        seed in any::<u64>(),
        link in link(),
        fcs in prop_oneof![Just(FcsLen::Two), Just(FcsLen::Four)],
        a in prop::collection::vec(1usize..=4000, 1..5),
        b in prop::collection::vec(1usize..=4000, 0..5),
    ) {
        let mut sim = run_case(seed, link, 127, fcs, 256 * 1024, LONG, &[a, b]);
        sim.check(true);
    }

    /// Reassembly memory stays within a tight bound at every step, whatever arrives, also when
    /// reassemblies time out in the middle of a transfer.
    #[test]
    fn tight_memory_bound_holds_at_every_step(
        seed in any::<u64>(),
        link in link(),
        bound in 1000usize..6000,
        timeout_ms in 5u64..2000,
        a in prop::collection::vec(1usize..=8000, 1..5),
        b in prop::collection::vec(1usize..=8000, 1..5),
    ) {
        let timeout = Duration::from_millis(timeout_ms);
        let mut sim = run_case(seed, link, 127, FcsLen::Two, bound, timeout, &[a, b]);
        sim.check(false);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// 2047-octet SUN PHY with frames up to the 65535-octet wire limit.
    #[test]
    fn sun_phy_carries_frames_up_to_65535_octets(
        seed in any::<u64>(),
        link in link(),
        a in prop::collection::vec(prop_oneof![1usize..=4000, 30_000usize..=65_535], 1..3),
        b in prop::collection::vec(1usize..=65_535, 0..2),
    ) {
        let mut sim = run_case(seed, link, 2047, FcsLen::Four, 256 * 1024, LONG, &[a, b]);
        sim.check(true);
    }
}
