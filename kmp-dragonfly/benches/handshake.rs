//! `cargo bench -p kmp-dragonfly`: complete Dragonfly handshakes (initiator + responder in one
//! process, through the session contract: PDUs encoded and parsed, keys derived, link keys
//! handed out) next to the crypto floor measured in the same run: the same number of
//! password-element derivations (two, one per side), scalar multiplications (six) and point
//! additions (two) done directly, the PWE by the crate's `derive_pwe` and the point arithmetic
//! by OpenSSL. `ratio = floor / handshake` is printed at the end; the target is ≥ 0.8.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Instant as WallClock;

use criterion::{Criterion, criterion_group, criterion_main};
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcPoint};
use openssl::nid::Nid;

use kmp_api::addr::ExtendedAddress;
use kmp_api::rng::RngHandle;
use kmp_api::session::{Action, KmpFactory, KmpSession, Outcome, Role, SessionContext};
use kmp_api::time::Instant;
use kmp_dragonfly::config::DragonflyConfig;
use kmp_dragonfly::group::{Group, GroupId};
use kmp_dragonfly::pwe::{Profile, PweMethod, derive_pwe};
use kmp_dragonfly::session::DragonflyFactory;

const A: ExtendedAddress = ExtendedAddress([2, 0, 0, 0, 0, 0, 0, 0xa]);
const B: ExtendedAddress = ExtendedAddress([2, 0, 0, 0, 0, 0, 0, 0xb]);
const PASSWORD: &[u8] = b"benchmark password";

fn ctx(
    local: ExtendedAddress,
    peer: ExtendedAddress,
    role: Role,
    rng: &RngHandle,
) -> SessionContext {
    SessionContext {
        local,
        peer,
        role,
        rng: rng.clone(),
        now: Instant::ZERO,
        open_responder_sessions: 0,
    }
}

/// Moves `Send`s out of `s`; returns them and whether it finished successfully.
fn drain(s: &mut dyn KmpSession) -> (Vec<Vec<u8>>, bool) {
    let mut out = Vec::new();
    let mut ok = false;
    while let Some(a) = s.poll_action() {
        match a {
            Action::Send(p) => out.push(p),
            Action::Finished(Outcome::Success(_)) => ok = true,
            Action::Finished(o) => panic!("handshake failed: {o:?}"),
            _ => {}
        }
    }
    (out, ok)
}

fn handshake(fa: &DragonflyFactory, fb: &DragonflyFactory, rng: &RngHandle) {
    let now = Instant::ZERO;
    let mut a = fa.new_initiator(ctx(A, B, Role::Initiator, rng)).unwrap();
    a.start(now).unwrap();
    let (to_b, _) = drain(a.as_mut());
    let mut b = fb
        .new_responder(ctx(B, A, Role::Responder, rng), &to_b[0])
        .unwrap();
    b.handle_datagram(now, &to_b[0]).unwrap();
    let (to_a, _) = drain(b.as_mut());
    let mut a_ok = false;
    let mut to_b = Vec::new();
    for p in &to_a {
        a.handle_datagram(now, p).unwrap();
        let (out, ok) = drain(a.as_mut());
        to_b.extend(out);
        a_ok |= ok;
    }
    let mut b_ok = false;
    for p in &to_b {
        b.handle_datagram(now, p).unwrap();
        b_ok |= drain(b.as_mut()).1;
    }
    assert!(a_ok && b_ok);
}

/// The crypto floor of one handshake: two PWE derivations, six scalar multiplications and two
/// point additions on the group.
struct Floor {
    group: Group,
    ec: EcGroup,
    method: PweMethod,
    scalars: [BigNum; 6],
    /// A point standing in for the PWE in the arithmetic (made once, outside the timing).
    point: EcPoint,
    ctx: BigNumContext,
}

impl Floor {
    fn new(method: PweMethod) -> Floor {
        let ec = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        let mut order = BigNum::new().unwrap();
        let mut ctx = BigNumContext::new().unwrap();
        ec.order(&mut order, &mut ctx).unwrap();
        let scalars = std::array::from_fn(|_| {
            let mut k = BigNum::new().unwrap();
            order.rand_range(&mut k).unwrap();
            k
        });
        let mut seed = BigNum::new().unwrap();
        order.rand_range(&mut seed).unwrap();
        let mut point = EcPoint::new(&ec).unwrap();
        point
            .mul2(&ec, ec.generator_opt().unwrap(), &seed, &mut ctx)
            .unwrap();
        Floor {
            group: Group::new(GroupId::P256).unwrap(),
            ec,
            method,
            scalars,
            point,
            ctx,
        }
    }

    fn run(&mut self) {
        for (x, y) in [(&A.0, &B.0), (&B.0, &A.0)] {
            black_box(
                derive_pwe(
                    &self.group,
                    Profile::Ieee80211,
                    self.method,
                    PASSWORD,
                    x,
                    y,
                    None,
                )
                .unwrap(),
            );
        }
        let ctx = &mut self.ctx;
        let pwe = &self.point;
        // Per side: element = mask·PWE; k = rand·(peer_scalar·PWE + peer_element).
        for side in 0..2 {
            let s = &self.scalars[side * 3..side * 3 + 3];
            let mut element = EcPoint::new(&self.ec).unwrap();
            element.mul2(&self.ec, pwe, &s[0], ctx).unwrap();
            let mut t = EcPoint::new(&self.ec).unwrap();
            t.mul2(&self.ec, pwe, &s[1], ctx).unwrap();
            let mut sum = EcPoint::new(&self.ec).unwrap();
            sum.add(&self.ec, &t, &element, ctx).unwrap();
            let mut k = EcPoint::new(&self.ec).unwrap();
            k.mul2(&self.ec, &sum, &s[2], ctx).unwrap();
            black_box(k);
        }
    }
}

fn factory(method: PweMethod) -> DragonflyFactory {
    let mut c = DragonflyConfig::with_password(PASSWORD);
    c.method = method;
    DragonflyFactory::new(c, &RngHandle::os()).unwrap()
}

fn bench(c: &mut Criterion) {
    let rng = RngHandle::os();
    let mut g = c.benchmark_group("dragonfly_p256");
    g.sample_size(30);
    for (name, method) in [
        ("h2e", PweMethod::HashToElement),
        ("hnp", PweMethod::HuntAndPeck),
    ] {
        let (fa, fb) = (factory(method), factory(method));
        g.bench_function(format!("handshake_{name}"), |b| {
            b.iter(|| handshake(&fa, &fb, &rng))
        });
        let mut floor = Floor::new(method);
        g.bench_function(format!("crypto_floor_{name}"), |b| b.iter(|| floor.run()));
        // The ratio over one longer, interleaved measurement in this run.
        let n = 200;
        let (mut th, mut tf) = (std::time::Duration::ZERO, std::time::Duration::ZERO);
        for _ in 0..n {
            let t = WallClock::now();
            handshake(&fa, &fb, &rng);
            th += t.elapsed();
            let t = WallClock::now();
            floor.run();
            tf += t.elapsed();
        }
        let per_h = th / n;
        let per_f = tf / n;
        println!(
            "dragonfly_p256/{name}: handshake {per_h:?} ({:.0}/s), crypto floor {per_f:?}, ratio floor/handshake = {:.3}",
            1.0 / per_h.as_secs_f64(),
            per_f.as_secs_f64() / per_h.as_secs_f64()
        );
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
