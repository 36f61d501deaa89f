//! `cargo bench -p kmp-ikev2`: complete in-process IKEv2 exchanges (IKE_SA_INIT + IKE_AUTH,
//! PSK, group 19, AES-CCM-8 with PRF HMAC-SHA2-256, the child SA whose keys become link keys),
//! initiator and responder through the session contract (messages encoded, encrypted, parsed,
//! AUTH computed and verified, keys derived and handed out), next to the crypto floor measured
//! in the same run: the same cryptographic operations done directly through `kmp_ikev2::crypto`
//! (two P-256 key generations and two ECDH derivations, two IKE SA key schedules, four PSK AUTH
//! computations, two SK seals and two SK opens of IKE_AUTH-sized payloads, two child KEYMATs).
//! The same again without the child SA (group `ikev2_psk_p256_ccm8_childless`: the initiator
//! has `childless = "force"` and no child proposals, RFC 6023; the floor has no KEYMAT), which
//! is the exchange `ike-load bench` measures against strongSwan.
//! `ratio = floor / exchange` is printed at the end for both; the target is ≥ 0.8.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Instant as WallClock;

use criterion::{Criterion, criterion_group, criterion_main};

use kmp_api::addr::ExtendedAddress;
use kmp_api::rng::RngHandle;
use kmp_api::session::{Action, KmpFactory, KmpSession, Outcome, Role, SessionContext};
use kmp_api::time::Instant;
use kmp_ikev2::config::Ikev2Config;
use kmp_ikev2::crypto::{
    DhGroup, EncrAlg, IntegAlg, PrfAlg, SkCipher, child_keymat, derive_ike_sa_keys, psk_auth,
};
use kmp_ikev2::session::Ikev2Factory;

const A: ExtendedAddress = ExtendedAddress([2, 0, 0, 0, 0, 0, 0, 0xa]);
const B: ExtendedAddress = ExtendedAddress([2, 0, 0, 0, 0, 0, 0, 0xb]);
const CONFIG: &str = "psk = \"benchmark pre-shared key\"\n\
                      ike_proposals = [\"aes128ccm8-prfsha256-ecp256\"]\n\
                      child_proposals = [\"aes128ccm8\"]\n";
const CHILDLESS_INITIATOR: &str = "psk = \"benchmark pre-shared key\"\n\
                                   ike_proposals = [\"aes128ccm8-prfsha256-ecp256\"]\n\
                                   childless = \"force\"\nchild_proposals = []\n";

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

fn drain(s: &mut dyn KmpSession) -> (Vec<Vec<u8>>, bool) {
    let mut out = Vec::new();
    let mut ok = false;
    while let Some(a) = s.poll_action() {
        match a {
            Action::Send(p) => out.push(p),
            Action::Finished(Outcome::Success(_)) => ok = true,
            Action::Finished(o) => panic!("exchange failed: {o:?}"),
            _ => {}
        }
    }
    (out, ok)
}

fn exchange(fi: &Ikev2Factory, fr: &Ikev2Factory, rng: &RngHandle) {
    let now = Instant::ZERO;
    let mut i = fi.new_initiator(ctx(A, B, Role::Initiator, rng)).unwrap();
    i.start(now).unwrap();
    let (init, _) = drain(i.as_mut());
    let mut r = fr
        .new_responder(ctx(B, A, Role::Responder, rng), &init[0])
        .unwrap();
    r.handle_datagram(now, &init[0]).unwrap();
    let (init_resp, _) = drain(r.as_mut());
    i.handle_datagram(now, &init_resp[0]).unwrap();
    let (auth, _) = drain(i.as_mut());
    r.handle_datagram(now, &auth[0]).unwrap();
    let (auth_resp, r_ok) = drain(r.as_mut());
    i.handle_datagram(now, &auth_resp[0]).unwrap();
    let (_, i_ok) = drain(i.as_mut());
    assert!(i_ok && r_ok);
}

/// The crypto floor of one exchange.
struct Floor {
    rng: RngHandle,
    ni: Vec<u8>,
    nr: Vec<u8>,
    init_msg: Vec<u8>,
    payload: Vec<u8>,
    aad: Vec<u8>,
    id: Vec<u8>,
    /// Whether the exchange makes a child SA (its KEYMAT is part of the floor).
    child: bool,
}

impl Floor {
    fn new(rng: &RngHandle, child: bool) -> Floor {
        Floor {
            rng: rng.clone(),
            ni: vec![1; 32],
            nr: vec![2; 32],
            // An IKE_SA_INIT message (what AUTH signs) and an IKE_AUTH plaintext, sized as ours.
            init_msg: vec![3; 184],
            payload: vec![4; 160],
            aad: vec![5; 32],
            id: vec![11, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0xa],
            child,
        }
    }

    fn run(&self) {
        let g = DhGroup::Ecp256;
        let (di, dr) = (
            g.generate(&self.rng).unwrap(),
            g.generate(&self.rng).unwrap(),
        );
        let (pi, pr) = (di.public(), dr.public());
        let si = di.shared(&pr).unwrap();
        let sr = dr.shared(&pi).unwrap();
        let spis = ([1u8; 8], [2u8; 8]);
        for s in [&si, &sr] {
            let keys = derive_ike_sa_keys(
                PrfAlg::HmacSha256,
                EncrAlg::AesCcm8,
                IntegAlg::None,
                &self.ni,
                &self.nr,
                s.expose(),
                &spis.0,
                &spis.1,
            )
            .unwrap();
            // Each side computes its own AUTH and checks the peer's.
            for _ in 0..2 {
                black_box(
                    psk_auth(
                        PrfAlg::HmacSha256,
                        b"benchmark pre-shared key",
                        &self.init_msg,
                        &self.nr,
                        keys.sk_pi.expose(),
                        &self.id,
                    )
                    .unwrap(),
                );
            }
            // One IKE_AUTH sealed by this side, opened by the other.
            let c =
                SkCipher::new(EncrAlg::AesCcm8, IntegAlg::None, keys.sk_ei.expose(), &[]).unwrap();
            let body = c.seal(&self.aad, &self.payload, &self.rng).unwrap();
            black_box(c.open(&self.aad, &body).unwrap());
            if !self.child {
                continue;
            }
            black_box(
                child_keymat(
                    PrfAlg::HmacSha256,
                    keys.sk_d.expose(),
                    None,
                    &self.ni,
                    &self.nr,
                    38,
                )
                .unwrap(),
            );
        }
    }
}

fn bench(c: &mut Criterion) {
    let rng = RngHandle::os();
    let factory = |toml: &str| Ikev2Factory::new(Ikev2Config::from_toml(toml).unwrap()).unwrap();
    let responder = factory(CONFIG);
    let cases = [
        (
            "ikev2_psk_p256_ccm8",
            factory(CONFIG),
            Floor::new(&rng, true),
        ),
        (
            "ikev2_psk_p256_ccm8_childless",
            factory(CHILDLESS_INITIATOR),
            Floor::new(&rng, false),
        ),
    ];
    for (name, initiator, floor) in &cases {
        let mut g = c.benchmark_group(*name);
        g.sample_size(30);
        g.bench_function("exchange", |b| {
            b.iter(|| exchange(initiator, &responder, &rng))
        });
        g.bench_function("crypto_floor", |b| b.iter(|| floor.run()));
        g.finish();
    }
    for (name, initiator, floor) in &cases {
        let n = 300;
        let (mut te, mut tf) = (std::time::Duration::ZERO, std::time::Duration::ZERO);
        for _ in 0..n {
            let t = WallClock::now();
            exchange(initiator, &responder, &rng);
            te += t.elapsed();
            let t = WallClock::now();
            floor.run();
            tf += t.elapsed();
        }
        let (pe, pf) = (te / n, tf / n);
        println!(
            "{name}: exchange {pe:?} ({:.0}/s, both sides in one thread), crypto floor {pf:?}, ratio floor/exchange = {:.3}",
            1.0 / pe.as_secs_f64(),
            pf.as_secs_f64() / pe.as_secs_f64()
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
