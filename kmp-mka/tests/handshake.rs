//! The 4-way and group-key handshakes between our authenticator and our supplicant through the
//! session contract: success with matching keys, GTK rekey, wrong PMK, replay, bad MIC,
//! malformed frames, retransmission, garbage.

#![allow(clippy::unwrap_used)]

mod support;

use kmp_api::security::KeyIdentifier;
use kmp_api::session::{
    FailureReason, KeyScope, KmpFactory, KmpSession, Outcome, Role, SecretBytes, SessionContext,
};
use kmp_api::{Duration, ExtendedAddress, Instant, RngHandle};
use kmp_mka::handshake::{Gtk, GtkSet, HandshakeConfig, HandshakeFactory, PaeRole, PmkCache};
use proptest::prelude::*;
use support::{Side, drain};

const AUTH: ExtendedAddress = ExtendedAddress([2, 0, 0, 0, 0, 0, 0, 1]);
const SUPP: ExtendedAddress = ExtendedAddress([2, 0, 0, 0, 0, 0, 0, 2]);

fn ctx(local: ExtendedAddress, peer: ExtendedAddress, role: Role, seed: u64) -> SessionContext {
    SessionContext {
        local,
        peer,
        role,
        rng: RngHandle::seeded(seed),
        now: Instant::ZERO,
        open_responder_sessions: 0,
    }
}

struct Net {
    a6: HandshakeFactory,
    a7: HandshakeFactory,
    s6: HandshakeFactory,
    s7: HandshakeFactory,
}

fn gtk(id: u8, b: u8) -> Gtk {
    Gtk {
        key_id: id,
        key: SecretBytes::new(vec![b; 16]),
        lifetime_secs: 3600,
    }
}

fn net(auth_pmk: [u8; 32], supp_pmk: [u8; 32], extra: &str) -> Net {
    let cfg = |pmk: [u8; 32]| {
        let mut c =
            HandshakeConfig::from_toml(&format!("retransmit_ms = 100\nmax_retries = 2\n{extra}"))
                .unwrap();
        c.pmk = Some(SecretBytes::from_slice(&pmk));
        c
    };
    let gtks = GtkSet::new();
    let mut ac = cfg(auth_pmk);
    ac.gtks = vec![gtk(0, 0x11)];
    let (a6, a7) = HandshakeFactory::pair(ac, PmkCache::new(), gtks).unwrap();
    let (s6, s7) = HandshakeFactory::pair(cfg(supp_pmk), PmkCache::new(), GtkSet::new()).unwrap();
    Net { a6, a7, s6, s7 }
}

/// Runs one handshake to its end, delivering every message unless `drop` says otherwise.
fn run(
    af: &HandshakeFactory,
    sf: &HandshakeFactory,
    mut drop: impl FnMut(usize, &[u8]) -> bool,
) -> (Side, Side) {
    let mut a = af
        .new_initiator(ctx(AUTH, SUPP, Role::Initiator, 1))
        .unwrap();
    let mut s: Option<Box<dyn KmpSession>> = None;
    let (mut asd, mut ssd) = (Side::default(), Side::default());
    let mut now = Instant::ZERO;
    a.start(now).unwrap();
    let mut to_s = drain(a.as_mut(), &mut asd);
    let mut n = 0;
    for _ in 0..50 {
        let mut to_a = vec![];
        for p in to_s.drain(..) {
            n += 1;
            if drop(n, &p) {
                continue;
            }
            if s.is_none() {
                match sf.new_responder(ctx(SUPP, AUTH, Role::Responder, 2), &p) {
                    Ok(x) => s = Some(x),
                    Err(_) => continue,
                }
            }
            let sess = s.as_mut().unwrap();
            let _ = sess.handle_datagram(now, &p);
            to_a.extend(drain(sess.as_mut(), &mut ssd));
        }
        for p in to_a {
            n += 1;
            if drop(n, &p) {
                continue;
            }
            let _ = a.handle_datagram(now, &p);
            to_s.extend(drain(a.as_mut(), &mut asd));
        }
        if to_s.is_empty() {
            let next = [a.poll_timeout(), s.as_ref().and_then(|s| s.poll_timeout())]
                .into_iter()
                .flatten()
                .min();
            let Some(t) = next else { break };
            now = t;
            a.handle_timeout(now);
            to_s.extend(drain(a.as_mut(), &mut asd));
            if let Some(x) = s.as_mut() {
                x.handle_timeout(now);
                drain(x.as_mut(), &mut ssd);
            }
        }
    }
    (asd, ssd)
}

fn success(side: &Side) -> bool {
    matches!(side.outcomes.as_slice(), [Outcome::Success(_)])
}

#[test]
fn four_way_success_matching_keys_and_gtk() {
    let n = net([7; 32], [7; 32], "");
    let (a, s) = run(&n.a6, &n.s6, |_, _| false);
    assert!(
        success(&a) && success(&s),
        "{:?} {:?}",
        a.outcomes,
        s.outcomes
    );
    assert_eq!(a.sent.len(), 2);
    assert_eq!(s.sent.len(), 2);
    let ak = &a.installs[0].link_keys;
    let sk = &s.installs[0].link_keys;
    assert_eq!(ak.len(), 1);
    assert_eq!(ak[0].scope, KeyScope::Pairwise(SUPP));
    assert_eq!(sk[0].scope, KeyScope::Pairwise(AUTH));
    assert_eq!(ak[0].key, sk[0].key, "both ends hold the same TK");
    assert_eq!(ak[0].lookup, KeyIdentifier::Implicit);
    assert_eq!(sk[1].scope, KeyScope::Group);
    assert_eq!(sk[1].lookup, KeyIdentifier::Index(1));
    assert_eq!(sk[1].key.expose(), &[0x11; 16]);
    assert_eq!(sk[1].lifetime, Some(Duration::from_secs(3600)));
    // Message 1 looks like the Wi-SUN example: v3 Key, Key Information 0x008a, PMKID KDE.
    assert_eq!(&a.sent[0][..2], &[3, 3]);
    assert_eq!(&a.sent[0][5..7], &[0x00, 0x8a]);
    assert_eq!(&a.sent[0][99..105], &[0xdd, 0x14, 0x00, 0x0f, 0xac, 0x04]);
}

#[test]
fn group_key_handshake_rekeys() {
    let n = net([7; 32], [7; 32], "network_name = \"wisun\"");
    let (a, s) = run(&n.a6, &n.s6, |_, _| false);
    assert!(success(&a) && success(&s));
    n.a7.gtks().insert(gtk(1, 0x22)).unwrap();
    let (a, s) = run(&n.a7, &n.s7, |_, _| false);
    assert!(
        success(&a) && success(&s),
        "{:?} {:?}",
        a.outcomes,
        s.outcomes
    );
    assert!(a.installs.is_empty());
    let k = &s.installs[0].link_keys;
    assert_eq!(k.len(), 1);
    assert_eq!(k[0].lookup, KeyIdentifier::Index(2));
    assert_eq!(k[0].scope, KeyScope::Group);
    // The GAK, not the GTK, with a network name configured.
    assert_eq!(
        k[0].key,
        kmp_mka::handshake::keys::wisun_gak(b"wisun", &[0x22; 16])
    );
}

#[test]
fn wrong_pmk_fails_on_both_sides_and_installs_nothing() {
    let n = net([7; 32], [8; 32], "");
    let (a, s) = run(&n.a6, &n.s6, |_, _| false);
    assert_eq!(
        s.outcomes,
        vec![Outcome::Failure(FailureReason::AuthenticationFailed)]
    );
    assert!(matches!(a.outcomes.as_slice(), [Outcome::Failure(_)]));
    assert!(a.installs.is_empty() && s.installs.is_empty());
    // Without the PMKID in message 1 the supplicant answers and the authenticator sees bad MICs.
    let n = net([7; 32], [8; 32], "send_pmkid = false");
    let (a, s) = run(&n.a6, &n.s6, |_, _| false);
    assert_eq!(
        a.outcomes,
        vec![Outcome::Failure(FailureReason::AuthenticationFailed)]
    );
    assert!(matches!(
        s.outcomes.as_slice(),
        [Outcome::Failure(FailureReason::Timeout { .. })]
    ));
    assert!(a.installs.is_empty() && s.installs.is_empty());
}

#[test]
fn lost_messages_are_retransmitted() {
    for lost in 1..=4 {
        let n = net([7; 32], [7; 32], "");
        let (a, s) = run(&n.a6, &n.s6, |i, _| i == lost);
        assert!(
            success(&a) && success(&s),
            "lost {lost}: {:?} {:?}",
            a.outcomes,
            s.outcomes
        );
        assert_eq!(s.installs.len(), 1, "lost {lost}: keys installed once");
    }
    // Everything lost: the authenticator gives up after its retries.
    let n = net([7; 32], [7; 32], "");
    let (a, _) = run(&n.a6, &n.s6, |_, _| true);
    assert_eq!(
        a.outcomes,
        vec![Outcome::Failure(FailureReason::Timeout { attempts: 3 })]
    );
}

#[test]
fn replayed_message_3_and_bad_mic_are_rejected() {
    let n = net([7; 32], [7; 32], "");
    let mut a =
        n.a6.new_initiator(ctx(AUTH, SUPP, Role::Initiator, 1))
            .unwrap();
    let (mut asd, mut ssd) = (Side::default(), Side::default());
    a.start(Instant::ZERO).unwrap();
    let m1 = drain(a.as_mut(), &mut asd).remove(0);
    let mut s =
        n.s6.new_responder(ctx(SUPP, AUTH, Role::Responder, 2), &m1)
            .unwrap();
    s.handle_datagram(Instant::ZERO, &m1).unwrap();
    let m2 = drain(s.as_mut(), &mut ssd).remove(0);
    // A message 2 with a flipped MIC bit is refused; the real one goes through.
    let mut bad = m2.clone();
    bad[90] ^= 1;
    assert!(a.handle_datagram(Instant::ZERO, &bad).is_err());
    a.handle_datagram(Instant::ZERO, &m2).unwrap();
    let m3 = drain(a.as_mut(), &mut asd).remove(0);
    let mut bad3 = m3.clone();
    bad3[20] ^= 1;
    assert!(s.handle_datagram(Instant::ZERO, &bad3).is_err());
    s.handle_datagram(Instant::ZERO, &m3).unwrap();
    drain(s.as_mut(), &mut ssd);
    assert_eq!(ssd.installs.len(), 1);
    // The same message 3 again: stale replay counter, no new message 4, nothing reinstalled.
    assert!(s.handle_datagram(Instant::ZERO, &m3).is_err());
    assert!(drain(s.as_mut(), &mut ssd).is_empty());
    // A replayed message 1 with an old counter is refused too.
    assert!(s.handle_datagram(Instant::ZERO, &m1).is_err());
    assert_eq!(ssd.installs.len(), 1);
    // Truncated and oversize frames are malformed.
    assert!(
        s.handle_datagram(Instant::ZERO, &m3[..m3.len() - 1])
            .is_err()
    );
    let mut long = m3.clone();
    long.push(0);
    assert!(s.handle_datagram(Instant::ZERO, &long).is_err());
    assert!(
        n.s6.new_responder(ctx(SUPP, AUTH, Role::Responder, 2), &m1[..40])
            .is_err()
    );
    assert!(
        n.s6.new_responder(ctx(SUPP, AUTH, Role::Responder, 2), &m3)
            .is_err()
    );
}

#[test]
fn pmk_from_the_cache_fills_like_kmp_id_1() {
    let cache_a = PmkCache::new();
    let cache_s = PmkCache::new();
    let msk = [9u8; 64];
    cache_a
        .insert_from_msk(AUTH, SUPP, PaeRole::Authenticator, &msk)
        .unwrap();
    cache_s
        .insert_from_msk(SUPP, AUTH, PaeRole::Supplicant, &msk)
        .unwrap();
    let mut c = HandshakeConfig::with_pmk(None);
    c.gtks = vec![gtk(3, 0x33)];
    let (a6, _) = HandshakeFactory::pair(c, cache_a.clone(), GtkSet::new()).unwrap();
    let (s6, _) = HandshakeFactory::pair(
        HandshakeConfig::with_pmk(None),
        cache_s.clone(),
        GtkSet::new(),
    )
    .unwrap();
    let (a, s) = run(&a6, &s6, |_, _| false);
    assert!(success(&a) && success(&s));
    assert_eq!(s.installs[0].link_keys[1].lookup, KeyIdentifier::Index(4));
    assert!(cache_a.get(AUTH, SUPP).unwrap().ptk.is_some());
    assert_eq!(
        cache_a.get(AUTH, SUPP).unwrap().replay_counter,
        cache_s.get(SUPP, AUTH).unwrap().replay_counter
    );
    // No PMK at all: the authenticator fails at once.
    let (lone, _) = HandshakeFactory::pair(
        HandshakeConfig::with_pmk(None),
        PmkCache::new(),
        GtkSet::new(),
    )
    .unwrap();
    let mut x = lone
        .new_initiator(ctx(AUTH, SUPP, Role::Initiator, 1))
        .unwrap();
    assert!(x.start(Instant::ZERO).is_err());
    let mut side = Side::default();
    drain(x.as_mut(), &mut side);
    assert_eq!(
        side.outcomes,
        vec![Outcome::Failure(FailureReason::AuthenticationFailed)]
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn garbage_never_panics(pdus in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 1..5)) {
        let n = net([7; 32], [7; 32], "");
        let mut a = n.a6.new_initiator(ctx(AUTH, SUPP, Role::Initiator, 1)).unwrap();
        a.start(Instant::ZERO).unwrap();
        let mut side = Side::default();
        drain(a.as_mut(), &mut side);
        for p in &pdus {
            let _ = a.handle_datagram(Instant::ZERO, p);
            let _ = n.s6.new_responder(ctx(SUPP, AUTH, Role::Responder, 2), p);
            let _ = n.s7.new_responder(ctx(SUPP, AUTH, Role::Responder, 2), p);
        }
        drain(a.as_mut(), &mut side);
        prop_assert!(side.installs.is_empty());
        let _ = &n.a7;
    }
}
