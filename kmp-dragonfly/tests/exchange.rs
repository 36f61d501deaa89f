//! Two Dragonfly sessions talking through the public session contract, on virtual time, with
//! loss, wrong passwords, group negotiation and anti-clogging.

// Test helpers outside #[test] functions may unwrap: a failure is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use kmp_api::addr::ExtendedAddress;
use kmp_api::rng::RngHandle;
use kmp_api::session::{
    Action, FailureReason, KeyInstall, KeyScope, KmpFactory, KmpSession, Outcome, Role,
    SessionContext, SessionError,
};
use kmp_api::time::{Duration, Instant};
use kmp_api::{KmpId, Registry};
use kmp_dragonfly::config::DragonflyConfig;
use kmp_dragonfly::group::GroupId;
use kmp_dragonfly::pwe::PweMethod;
use kmp_dragonfly::session::DragonflyFactory;
use kmp_dragonfly::wire::{MessageRepr, RejectStatus};

const A: ExtendedAddress = ExtendedAddress([2, 0, 0, 0, 0, 0, 0, 0xa]);
const B: ExtendedAddress = ExtendedAddress([2, 0, 0, 0, 0, 0, 0, 0xb]);

fn ctx(
    local: ExtendedAddress,
    peer: ExtendedAddress,
    role: Role,
    seed: u64,
    open: usize,
) -> SessionContext {
    SessionContext {
        local,
        peer,
        role,
        rng: RngHandle::seeded(seed),
        now: Instant::ZERO,
        open_responder_sessions: open,
    }
}

fn factory(config: DragonflyConfig) -> DragonflyFactory {
    DragonflyFactory::new(config, &RngHandle::seeded(99)).unwrap()
}

#[derive(Default)]
struct Side {
    installs: Vec<KeyInstall>,
    outcome: Option<Outcome>,
    sent: Vec<Vec<u8>>,
}

/// Drains a session's actions into `side`, returning the PDUs it sent.
fn drain(s: &mut dyn KmpSession, side: &mut Side) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(a) = s.poll_action() {
        match a {
            Action::Send(p) => {
                side.sent.push(p.clone());
                out.push(p);
            }
            Action::InstallKeys(k) => side.installs.push(k),
            Action::RemoveKeys(_) => {}
            Action::Finished(o) => {
                assert!(side.outcome.is_none(), "finished twice");
                side.outcome = Some(o);
            }
        }
    }
    out
}

struct Run {
    a: Side,
    b: Side,
}

/// Runs an exchange. `drop` decides, per (sender is A, message index), whether a PDU is lost.
fn run(ca: DragonflyConfig, cb: DragonflyConfig, mut drop: impl FnMut(bool, usize) -> bool) -> Run {
    let fa = factory(ca);
    let fb = factory(cb);
    let mut a = fa.new_initiator(ctx(A, B, Role::Initiator, 1, 0)).unwrap();
    let mut b: Option<Box<dyn KmpSession>> = None;
    let (mut sa, mut sb) = (Side::default(), Side::default());
    let mut errors = Vec::new();
    let mut now = Instant::ZERO;
    a.start(now).unwrap();
    let mut to_b = drain(a.as_mut(), &mut sa);
    let mut to_a: Vec<Vec<u8>> = Vec::new();
    let (mut ia, mut ib) = (0usize, 0usize);
    for _ in 0..200 {
        for p in std::mem::take(&mut to_b) {
            ia += 1;
            if drop(true, ia - 1) {
                continue;
            }
            // As the host does: a closed responder is dropped, the next commit makes a new one.
            if b.as_ref().is_some_and(|s| s.is_closed()) {
                b = None;
            }
            let s = match &mut b {
                Some(s) => s,
                None => {
                    let s = fb
                        .new_responder(ctx(B, A, Role::Responder, 2, 0), &p)
                        .unwrap();
                    b.insert(s)
                }
            };
            if let Err(e) = s.handle_datagram(now, &p) {
                errors.push(e.to_string());
            }
            to_a.extend(drain(s.as_mut(), &mut sb));
        }
        for p in std::mem::take(&mut to_a) {
            ib += 1;
            if drop(false, ib - 1) {
                continue;
            }
            if let Err(e) = a.handle_datagram(now, &p) {
                errors.push(format!("initiator: {e}"));
            }
            to_b.extend(drain(a.as_mut(), &mut sa));
        }
        if to_a.is_empty() && to_b.is_empty() {
            // Advance virtual time to the next deadline of either side.
            let next = [a.poll_timeout(), b.as_ref().and_then(|s| s.poll_timeout())]
                .into_iter()
                .flatten()
                .min();
            let Some(t) = next else { break };
            now = t;
            a.handle_timeout(now);
            to_b.extend(drain(a.as_mut(), &mut sa));
            if let Some(s) = &mut b {
                s.handle_timeout(now);
                to_a.extend(drain(s.as_mut(), &mut sb));
            }
        }
        if a.is_closed() && b.as_ref().is_none_or(|s| s.is_closed()) {
            break;
        }
    }
    // Hostile input aside, a run produces few dropped inputs (repeats answered, nothing looping).
    assert!(errors.len() < 10, "responder errors: {errors:?}");
    Run { a: sa, b: sb }
}

fn cfg(password: &[u8]) -> DragonflyConfig {
    DragonflyConfig::with_password(password)
}

fn success(side: &Side) -> Vec<u8> {
    match &side.outcome {
        Some(Outcome::Success(sa)) => sa.session_id.clone(),
        other => panic!("expected success, got {other:?}"),
    }
}

fn link_key(side: &Side) -> Vec<u8> {
    let k = &side.installs.last().unwrap().link_keys[0];
    assert!(matches!(k.scope, KeyScope::Pairwise(_)));
    k.key.expose().to_vec()
}

#[test]
fn both_methods_complete_and_install_equal_keys() {
    for method in [PweMethod::HuntAndPeck, PweMethod::HashToElement] {
        let mut c = cfg(b"correct horse");
        c.method = method;
        let r = run(c.clone(), c, |_, _| false);
        assert_eq!(success(&r.a), success(&r.b), "PMKIDs differ ({method:?})");
        assert_eq!(link_key(&r.a), link_key(&r.b));
        assert_eq!(r.a.installs[0].owner, KmpId::Dragonfly);
        assert_eq!(r.a.installs[0].peer, B);
        assert_eq!(r.b.installs[0].peer, A);
        // Commit, then commit + confirm, then confirm.
        assert_eq!(r.a.sent.len(), 2);
        assert_eq!(r.b.sent.len(), 2);
    }
}

#[test]
fn every_group_profile_and_method() {
    use kmp_dragonfly::pwe::Profile;
    for group in [GroupId::P256, GroupId::P384, GroupId::P521] {
        for profile in [Profile::Ieee80211, Profile::Rfc7664] {
            for method in [PweMethod::HuntAndPeck, PweMethod::HashToElement] {
                let mut c = cfg(b"all the groups");
                c.groups = vec![group];
                c.profile = profile;
                c.method = method;
                let r = run(c.clone(), c, |_, _| false);
                assert_eq!(
                    success(&r.a),
                    success(&r.b),
                    "{group:?} {profile:?} {method:?}"
                );
                assert_eq!(link_key(&r.a), link_key(&r.b));
            }
        }
    }
}

#[test]
fn wrong_password_fails_on_both_sides_and_installs_nothing() {
    let r = run(cfg(b"one"), cfg(b"two"), |_, _| false);
    for side in [&r.a, &r.b] {
        assert_eq!(
            side.outcome,
            Some(Outcome::Failure(FailureReason::AuthenticationFailed))
        );
        assert!(side.installs.is_empty());
    }
}

#[test]
fn lost_messages_are_retransmitted() {
    // Lose A's first commit, B's first confirm and A's first confirm.
    let r = run(cfg(b"pw"), cfg(b"pw"), |from_a, i| {
        i == 1 || (from_a && i == 0)
    });
    assert_eq!(success(&r.a), success(&r.b));
    assert_eq!(link_key(&r.a), link_key(&r.b));
}

#[test]
fn a_silent_peer_times_out_after_the_retries() {
    let r = run(cfg(b"pw"), cfg(b"pw"), |from_a, _| from_a);
    match r.a.outcome {
        Some(Outcome::Failure(FailureReason::Timeout { attempts })) => assert_eq!(attempts, 4),
        other => panic!("{other:?}"),
    }
    // Initial commit plus three retransmissions.
    assert_eq!(r.a.sent.len(), 4);
}

#[test]
fn group_negotiation_moves_to_a_common_group() {
    let mut ca = cfg(b"pw");
    ca.groups = vec![GroupId::P384, GroupId::P256];
    let cb = cfg(b"pw");
    let r = run(ca, cb, |_, _| false);
    assert_eq!(success(&r.a), success(&r.b));
    let first = MessageRepr::parse_bytes(&r.b.sent[0]).unwrap();
    assert!(matches!(
        first,
        MessageRepr::Reject {
            status: RejectStatus::UnsupportedGroup,
            ..
        }
    ));
    let mut ca = cfg(b"pw");
    ca.groups = vec![GroupId::P384];
    let r = run(ca, cfg(b"pw"), |_, _| false);
    assert_eq!(
        r.a.outcome,
        Some(Outcome::Failure(FailureReason::NegotiationFailed))
    );
}

#[test]
fn anti_clogging_token_when_busy() {
    let mut cb = cfg(b"pw");
    cb.anti_clogging_threshold = 4;
    let fa = factory(cfg(b"pw"));
    let fb = factory(cb);
    let mut a = fa.new_initiator(ctx(A, B, Role::Initiator, 1, 0)).unwrap();
    let mut sa = Side::default();
    a.start(Instant::ZERO).unwrap();
    let commit = drain(a.as_mut(), &mut sa).pop().unwrap();
    // Busy responder: a token comes back and nothing is kept.
    let mut busy = fb
        .new_responder(ctx(B, A, Role::Responder, 2, 4), &commit)
        .unwrap();
    busy.handle_datagram(Instant::ZERO, &commit).unwrap();
    let mut sb = Side::default();
    let token = drain(busy.as_mut(), &mut sb).pop().unwrap();
    assert!(busy.is_closed());
    assert!(matches!(
        MessageRepr::parse_bytes(&token).unwrap(),
        MessageRepr::Token { .. }
    ));
    a.handle_datagram(Instant::ZERO, &token).unwrap();
    let commit2 = drain(a.as_mut(), &mut sa).pop().unwrap();
    assert!(matches!(
        MessageRepr::parse_bytes(&commit2).unwrap(),
        MessageRepr::Commit { token: Some(_), .. }
    ));
    // With the token the busy responder takes the commit.
    let mut b = fb
        .new_responder(ctx(B, A, Role::Responder, 2, 4), &commit2)
        .unwrap();
    b.handle_datagram(Instant::ZERO, &commit2).unwrap();
    let replies = drain(b.as_mut(), &mut sb);
    assert_eq!(replies.len(), 2);
    // A forged token is answered with a fresh token again.
    let mut forged = commit2.clone();
    forged[5] ^= 1;
    let mut f = fb
        .new_responder(ctx(B, A, Role::Responder, 2, 4), &forged)
        .unwrap();
    let mut sf = Side::default();
    let out = drain(f.as_mut(), &mut sf);
    assert!(matches!(
        MessageRepr::parse_bytes(&out[0]).unwrap(),
        MessageRepr::Token { .. }
    ));
}

#[test]
fn group_key_delivery() {
    let mut ca = cfg(b"pw");
    ca.expect_group_key = true;
    let mut cb = cfg(b"pw");
    cb.group_key = Some(([0x5a; 16], 3, 3600));
    let r = run(ca, cb, |_, _| false);
    assert_eq!(success(&r.a), success(&r.b));
    let keys = &r.a.installs[0].link_keys;
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[1].key.expose(), &[0x5a; 16]);
    assert_eq!(keys[1].scope, KeyScope::Group);
    assert_eq!(keys[1].lifetime, Some(Duration::from_secs(3600)));
}

#[test]
fn hostile_input_is_rejected_with_typed_errors() {
    let fa = factory(cfg(b"pw"));
    let fb = factory(cfg(b"pw"));
    let mut a = fa.new_initiator(ctx(A, B, Role::Initiator, 1, 0)).unwrap();
    let mut sa = Side::default();
    a.start(Instant::ZERO).unwrap();
    let commit = drain(a.as_mut(), &mut sa).pop().unwrap();
    // Reflection: the responder's own commit echoed back to the initiator.
    assert!(matches!(
        a.handle_datagram(Instant::ZERO, &commit),
        Err(SessionError::VerificationFailed(_))
    ));
    // Scalar 0 and 1, element not on the curve.
    for (at, v) in [(4usize, 0u8), (4, 1)] {
        let mut bad = commit.clone();
        bad[at..at + 32].fill(0);
        bad[at + 31] = v;
        assert!(a.handle_datagram(Instant::ZERO, &bad).is_err());
    }
    let mut bad = commit.clone();
    bad[40] ^= 1;
    assert!(a.handle_datagram(Instant::ZERO, &bad).is_err());
    // Garbage and an unexpected confirm.
    assert!(matches!(
        a.handle_datagram(Instant::ZERO, &[1, 2]),
        Err(SessionError::Malformed(_))
    ));
    let confirm = MessageRepr::Confirm {
        group: GroupId::P256,
        send_confirm: 1,
        confirm: &[0; 32],
    }
    .to_vec()
    .unwrap();
    assert!(matches!(
        a.handle_datagram(Instant::ZERO, &confirm),
        Err(SessionError::UnexpectedMessage { .. })
    ));
    // After all that the genuine exchange still works.
    let mut b = fb
        .new_responder(ctx(B, A, Role::Responder, 2, 0), &commit)
        .unwrap();
    let mut sb = Side::default();
    b.handle_datagram(Instant::ZERO, &commit).unwrap();
    for p in drain(b.as_mut(), &mut sb) {
        a.handle_datagram(Instant::ZERO, &p).unwrap();
    }
    for p in drain(a.as_mut(), &mut sa) {
        b.handle_datagram(Instant::ZERO, &p).unwrap();
    }
    drain(b.as_mut(), &mut sb);
    assert_eq!(success(&sa), success(&sb));
    // A responder refuses a first PDU that is not a commit.
    assert!(
        fb.new_responder(ctx(B, A, Role::Responder, 2, 0), &confirm)
            .is_err()
    );
}

#[test]
fn registered_for_kmp_id_5() {
    let r = Registry::from_inventory().unwrap();
    let reg = r.lookup(KmpId::Dragonfly).expect("dragonfly registered");
    assert_eq!(reg.name, "dragonfly");
    let f: Arc<dyn KmpFactory> = reg.make_factory("password = \"pw\"").unwrap();
    assert_eq!(f.kmp_id(), KmpId::Dragonfly);
    assert!(reg.make_factory("").is_err());
}

#[test]
fn a_link_failure_brings_the_retransmission_forward_and_still_counts() {
    let f = factory(cfg(b"pw"));
    let mut a = f.new_initiator(ctx(A, B, Role::Initiator, 1, 0)).unwrap();
    let mut side = Side::default();
    let t0 = Instant::ZERO;
    a.start(t0).unwrap();
    let first = drain(a.as_mut(), &mut side);
    assert_eq!(first.len(), 1);
    let full = a.poll_timeout().unwrap();
    // The MAC gave up on the commit: the retransmission comes after 1/8 of the timeout.
    let t1 = t0 + kmp_api::time::Duration::from_millis(10);
    a.handle_link_failure(t1, kmp_api::primitives::MacStatus::NoAck);
    let early = a.poll_timeout().unwrap();
    assert!(early < full, "{early:?} !< {full:?}");
    assert_eq!(
        early.saturating_duration_since(t1).as_micros(),
        full.saturating_duration_since(t0).as_micros() / 8
    );
    // A purge or a success does not move it.
    a.handle_link_failure(t1, kmp_api::primitives::MacStatus::Purged);
    assert_eq!(a.poll_timeout(), Some(early));
    a.handle_timeout(early);
    assert_eq!(
        drain(a.as_mut(), &mut side),
        first,
        "the commit is sent again"
    );
    // Failures keep bringing retransmissions forward, but they still run out.
    let mut now = early;
    for _ in 0..10 {
        a.handle_link_failure(now, kmp_api::primitives::MacStatus::ChannelAccessFailure);
        let Some(t) = a.poll_timeout() else { break };
        now = t;
        a.handle_timeout(now);
        drain(a.as_mut(), &mut side);
        if side.outcome.is_some() {
            break;
        }
    }
    assert!(matches!(
        side.outcome,
        Some(Outcome::Failure(FailureReason::Timeout { attempts: 4 }))
    ));
    assert_eq!(side.sent.len(), 4);
}
