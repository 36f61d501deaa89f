//! EAP-pwd (RFC 5931): our peer against our server through the EAP state machines (keys and
//! Session-Id agree, also with fragmentation), wrong password, tampered and invalid commits and
//! confirms, reflection, out-of-order and garbage input; and interop with independent
//! implementations of the Dragonfly core: wpa_supplicant's EAP-pwd peer (`eapol_test`) against
//! our server, and our peer against hostapd's EAP-pwd server (RADIUS server mode) and against
//! FreeRADIUS 3.2's rlm_eap_pwd (a private configuration on a free loopback port). Each checks
//! the MSK (MS-MPPE keys), a wrong password, and fragmentation in both directions.
//!
//! The interop helpers (RADIUS server around our authenticator, eapol_test and hostapd runners,
//! pass-through driver) are shared with `eapol_test.rs` and `hostapd.rs` in `common`. The
//! interop tests print a note and pass when the program is not installed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::{Run, USER, auth_keys_of, keys_of};

use eap::authenticator::{AuthFailure, AuthOutcome, Authenticator, AuthenticatorConfig};
use eap::method::{
    Decision, MethodContext, MethodError, MethodState, PeerMethod, PeerStep, ServerMethod,
    ServerStep,
};
use eap::peer::{Peer, PeerConfig, PeerFailure, PeerOutcome};
use eap::pwd::{PwdPeer, PwdServer, PwdStore};
use eap::wire::{EapType, MethodId};
use kmp_api::crypto::hmac::hmac_sha256;
use kmp_api::rng::RngHandle;
use kmp_api::session::SecretBytes;
use kmp_api::time::{Duration, Instant};
use proptest::prelude::*;

const PASSWORD: &[u8] = b"correct horse battery staple";
const PWD: MethodId = MethodId::Legacy(EapType::PWD);
/// The order of P-256.
const ORDER: &str = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";

fn store() -> Arc<dyn PwdStore> {
    Arc::new(|id: &[u8]| (id == USER).then(|| SecretBytes::from_slice(PASSWORD)))
}

fn server(frag: usize) -> PwdServer {
    PwdServer::with_fragment_size(b"aaa.example".to_vec(), store(), frag).unwrap()
}

fn pwd_peer(id: &[u8], password: &[u8], frag: usize) -> PwdPeer {
    PwdPeer::with_fragment_size(id.to_vec(), SecretBytes::from_slice(password), frag).unwrap()
}

fn peer(method: PwdPeer, seed: u64) -> Peer {
    Peer::new(
        PeerConfig::new(USER.to_vec()),
        vec![Box::new(method)],
        RngHandle::seeded(seed),
        Instant::ZERO,
    )
}

fn authenticator(method: PwdServer, seed: u64) -> Authenticator {
    Authenticator::new(
        AuthenticatorConfig::default(),
        vec![Box::new(method)],
        RngHandle::seeded(seed),
    )
}

/// Moves packets both ways until neither side has anything to send; `tamper` may change each
/// packet to the peer (index, packet).
fn exchange(
    a: &mut Authenticator,
    p: &mut Peer,
    now: Instant,
    tamper: impl FnMut(usize, &mut Vec<u8>),
    run: &mut Run,
) {
    common::exchange_with(a, p, now, tamper, |_| false, run);
}

/// The EAP-pwd type-data of an EAP Request/Response (after Code, Id, Length, Type).
fn type_data(pkt: &[u8]) -> &[u8] {
    assert_eq!(pkt[4], 52, "not an EAP-pwd packet: {pkt:02x?}");
    &pkt[5..]
}

#[test]
fn end_to_end_keys_and_session_id_agree() {
    let mut a = authenticator(server(1000), 1);
    let mut p = peer(pwd_peer(USER, PASSWORD, 1000), 2);
    a.start(Instant::ZERO).unwrap();
    let mut run = Run::default();
    exchange(&mut a, &mut p, Instant::ZERO, |_, _| {}, &mut run);
    let (kp, ka) = (keys_of(&run.peer_outcome), auth_keys_of(&run.auth_outcome));
    assert_eq!(kp, ka);
    assert_eq!(kp.msk.len(), 64);
    assert_eq!(kp.emsk.len(), 64);
    assert_ne!(kp.msk, kp.emsk);
    // Identity, ID, Commit, Confirm, Success; Identity, ID, Commit, Confirm.
    assert_eq!(run.to_peer.len(), 5);
    assert_eq!(run.to_auth.len(), 4);
    let id_req = type_data(&run.to_peer[1]);
    assert_eq!(id_req[0], 0x01);
    assert_eq!(&id_req[1..5], &[0, 19, 1, 1]);
    assert_eq!(id_req[9], 0, "prep none");
    assert_eq!(&id_req[10..], b"aaa.example");
    let id_resp = type_data(&run.to_auth[1]);
    assert_eq!(&id_resp[..10], &id_req[..10], "suite and token echoed");
    assert_eq!(&id_resp[10..], USER);
    // Commit = Element (64) || Scalar (32).
    let commit_s = type_data(&run.to_peer[2]);
    let commit_p = type_data(&run.to_auth[2]);
    assert_eq!((commit_s[0], commit_s.len()), (0x02, 97));
    assert_eq!((commit_p[0], commit_p.len()), (0x02, 97));
    assert_eq!(type_data(&run.to_peer[3]).len(), 33);
    assert_eq!(type_data(&run.to_auth[3]).len(), 33);
    // Session-Id = 52 || H(ciphersuite || scalar_p || scalar_s), H = HMAC-SHA256(0^32, ·),
    // recomputed from the wire.
    let mut msg = vec![0, 19, 1, 1];
    msg.extend_from_slice(&commit_p[65..]);
    msg.extend_from_slice(&commit_s[65..]);
    let mut sid = vec![52];
    sid.extend_from_slice(&hmac_sha256(&[0; 32], &msg).unwrap());
    assert_eq!(kp.session_id, sid);
    assert!(a.is_finished() && p.is_finished());
}

#[test]
fn fragmented_messages_are_reassembled() {
    // A 300-octet identity makes both PWD-IDs long; 40-octet fragments split the commits too.
    let long_id: Vec<u8> = b"node-1@"
        .iter()
        .copied()
        .chain(std::iter::repeat_n(b'x', 293))
        .collect();
    let id = long_id.clone();
    let store: Arc<dyn PwdStore> =
        Arc::new(move |i: &[u8]| (i == id).then(|| SecretBytes::from_slice(PASSWORD)));
    let srv = PwdServer::with_fragment_size(vec![b's'; 200], store, 40).unwrap();
    let mut a = authenticator(srv, 3);
    let mut p = peer(pwd_peer(&long_id, PASSWORD, 40), 4);
    a.start(Instant::ZERO).unwrap();
    let mut run = Run::default();
    exchange(&mut a, &mut p, Instant::ZERO, |_, _| {}, &mut run);
    assert_eq!(keys_of(&run.peer_outcome), auth_keys_of(&run.auth_outcome));
    for pkt in run.to_peer.iter().chain(&run.to_auth) {
        assert!(pkt.len() <= 5 + 40, "a packet exceeds the fragment size");
    }
    let firsts = run
        .to_peer
        .iter()
        .chain(&run.to_auth)
        .filter(|p| p.len() > 5 && p[4] == 52 && p[5] & 0xc0 == 0xc0)
        .count();
    assert_eq!(firsts, 4, "both PWD-IDs and both commits are fragmented");
    let acks = run
        .to_peer
        .iter()
        .chain(&run.to_auth)
        .filter(|p| p.len() == 6 && p[4] == 52)
        .count();
    // ID request 209 octets: 1 + ceil(172/39) = 6 fragments, 5 ACKs; ID response 309: 1 +
    // ceil(272/39) = 8, 7 ACKs; each commit 96: 1 + ceil(59/39) = 3, 2 ACKs.
    assert_eq!(acks, 5 + 7 + 2 + 2);
}

#[test]
fn wrong_password_fails_both_sides() {
    let mut a = authenticator(server(1000), 5);
    let mut p = peer(pwd_peer(USER, b"wrong password", 1000), 6);
    a.start(Instant::ZERO).unwrap();
    let mut run = Run::default();
    exchange(&mut a, &mut p, Instant::ZERO, |_, _| {}, &mut run);
    // The server confirms first: the peer sees the mismatch, fails and sends nothing.
    assert_eq!(
        run.peer_outcome,
        Some(PeerOutcome::Failure(PeerFailure::MethodFailed(PWD)))
    );
    assert_eq!(run.to_auth.len(), 3, "no PWD-Confirm response");
    assert_eq!(run.auth_outcome, None);
    // The server never succeeds: it retransmits its confirm and times out.
    let mut now = Instant::ZERO;
    while let Some(t) = a.poll_timeout() {
        now = t;
        a.handle_timeout(now);
        exchange(&mut a, &mut p, now, |_, _| {}, &mut run);
    }
    assert_eq!(
        run.auth_outcome,
        Some(AuthOutcome::Failure(AuthFailure::Timeout))
    );
    assert!(now > Instant::ZERO + Duration::from_secs(10));
}

#[test]
fn unknown_identity_fails_at_the_server() {
    let mut a = authenticator(server(1000), 7);
    let mut p = peer(pwd_peer(b"someone-else", PASSWORD, 1000), 8);
    a.start(Instant::ZERO).unwrap();
    let mut run = Run::default();
    exchange(&mut a, &mut p, Instant::ZERO, |_, _| {}, &mut run);
    assert_eq!(
        run.auth_outcome,
        Some(AuthOutcome::Failure(AuthFailure::MethodFailed(PWD)))
    );
    assert_eq!(
        run.peer_outcome,
        Some(PeerOutcome::Failure(PeerFailure::Rejected))
    );
}

// ---------------------------------------------------------------------------------------------
// The methods driven directly.

fn ctx(rng: &RngHandle) -> MethodContext<'_> {
    MethodContext {
        rng,
        now: Instant::ZERO,
        in_identifier: 1,
        out_identifier: 1,
    }
}

fn resp(step: PeerStep) -> Vec<u8> {
    assert_eq!(
        (step.state, step.decision),
        (MethodState::MayCont, Decision::Fail)
    );
    step.response.expect("a response")
}

fn req(step: ServerStep) -> Vec<u8> {
    match step {
        ServerStep::Request(r) => r,
        other => panic!("expected a request, got {other:?}"),
    }
}

fn failed(step: &PeerStep) -> bool {
    step.response.is_none() && step.state == MethodState::Done && step.decision == Decision::Fail
}

/// A server and a peer after the PWD-ID exchange; returns the server's commit request.
fn after_id(rng: &RngHandle) -> (PwdServer, PwdPeer, Vec<u8>) {
    let mut s = server(1000);
    let mut p = pwd_peer(USER, PASSWORD, 1000);
    let id_req = s.start(&ctx(rng), USER).unwrap();
    let id_resp = resp(p.process(&ctx(rng), &id_req).unwrap());
    let commit = req(s.process(&ctx(rng), &id_resp).unwrap());
    (s, p, commit)
}

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

/// Commit type-data with `element` and `scalar` replaced.
fn commit_with(element: &[u8], scalar: &[u8]) -> Vec<u8> {
    let mut v = vec![0x02];
    v.extend_from_slice(element);
    v.extend_from_slice(scalar);
    v
}

/// Element/scalar pairs that must be refused: scalar 0, 1, the order, above it; element
/// (0, 0) (how the point at infinity would look), off the curve, a coordinate ≥ p.
fn bad_commits(valid: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    let (element, scalar) = (&valid[1..65], &valid[65..]);
    let mut one = vec![0; 32];
    one[31] = 1;
    let mut off = element.to_vec();
    off[63] ^= 1;
    let mut big_x = element.to_vec();
    big_x[..32].copy_from_slice(&[0xff; 32]);
    vec![
        ("scalar 0", commit_with(element, &[0; 32])),
        ("scalar 1", commit_with(element, &one)),
        ("scalar = order", commit_with(element, &h(ORDER))),
        ("scalar > order", commit_with(element, &[0xff; 32])),
        ("element (0,0)", commit_with(&[0; 64], scalar)),
        ("element off the curve", commit_with(&off, scalar)),
        ("element x >= p", commit_with(&big_x, scalar)),
    ]
}

#[test]
fn peer_refuses_invalid_server_commits() {
    let rng = RngHandle::seeded(10);
    let (_, p0, commit) = after_id(&rng);
    drop(p0);
    for (what, bad) in bad_commits(&commit) {
        let (_, mut p, _) = after_id(&rng);
        let step = p.process(&ctx(&rng), &bad).unwrap();
        assert!(failed(&step), "{what}: {step:?}");
        assert!(p.keys().is_none());
    }
}

#[test]
fn server_refuses_invalid_and_reflected_peer_commits() {
    let rng = RngHandle::seeded(11);
    let (_, mut p, commit) = after_id(&rng);
    let peer_commit = resp(p.process(&ctx(&rng), &commit).unwrap());
    for (what, bad) in bad_commits(&peer_commit) {
        let (mut s, _, _) = after_id(&rng);
        assert_eq!(
            s.process(&ctx(&rng), &bad).unwrap(),
            ServerStep::Failure,
            "{what}"
        );
        assert!(s.keys().is_none());
        assert!(s.process(&ctx(&rng), &bad).is_err(), "done after failing");
    }
    // Reflection: the server's own commit, its own element with another valid scalar, its
    // own scalar with another valid element.
    for what in ["commit", "element", "scalar"] {
        let (mut s, mut p, own) = after_id(&rng);
        let theirs = resp(p.process(&ctx(&rng), &own).unwrap());
        let bad = match what {
            "commit" => own.clone(),
            "element" => commit_with(&own[1..65], &theirs[65..]),
            _ => commit_with(&theirs[1..65], &own[65..]),
        };
        assert_eq!(
            s.process(&ctx(&rng), &bad).unwrap(),
            ServerStep::Failure,
            "reflected {what}"
        );
    }
}

#[test]
fn tampered_commits_and_confirms_fail() {
    let rng = RngHandle::seeded(12);
    // A changed (still valid) server scalar: the commit is accepted, the confirm cannot match.
    let (mut s, mut p, mut commit) = after_id(&rng);
    commit[96] ^= 1;
    let c = resp(p.process(&ctx(&rng), &commit).unwrap());
    let confirm = req(s.process(&ctx(&rng), &c).unwrap());
    assert!(failed(&p.process(&ctx(&rng), &confirm).unwrap()));

    // A changed peer scalar: the server's confirm is computed over it, the peer refuses it.
    let (mut s, mut p, commit) = after_id(&rng);
    let mut c = resp(p.process(&ctx(&rng), &commit).unwrap());
    c[96] ^= 1;
    let confirm = req(s.process(&ctx(&rng), &c).unwrap());
    assert!(failed(&p.process(&ctx(&rng), &confirm).unwrap()));

    // A changed server confirm.
    let (mut s, mut p, commit) = after_id(&rng);
    let c = resp(p.process(&ctx(&rng), &commit).unwrap());
    let mut confirm = req(s.process(&ctx(&rng), &c).unwrap());
    confirm[5] ^= 0x80;
    assert!(failed(&p.process(&ctx(&rng), &confirm).unwrap()));

    // A changed peer confirm.
    let (mut s, mut p, commit) = after_id(&rng);
    let c = resp(p.process(&ctx(&rng), &commit).unwrap());
    let confirm = req(s.process(&ctx(&rng), &c).unwrap());
    let step = p.process(&ctx(&rng), &confirm).unwrap();
    assert_eq!(
        (step.state, step.decision),
        (MethodState::Done, Decision::UncondSucc)
    );
    let mut cp = step.response.unwrap();
    cp[32] ^= 1;
    assert_eq!(s.process(&ctx(&rng), &cp).unwrap(), ServerStep::Failure);
    assert!(s.keys().is_none());
    assert!(p.keys().is_some());
}

#[test]
fn id_mismatches_fail() {
    let rng = RngHandle::seeded(13);
    // The peer refuses another group, random function, PRF or preparation.
    for (i, v) in [(2usize, 20u8), (3, 2), (4, 2), (9, 1)] {
        let mut s = server(1000);
        let mut id_req = s.start(&ctx(&rng), USER).unwrap();
        id_req[i] = v;
        let mut p = pwd_peer(USER, PASSWORD, 1000);
        assert!(
            failed(&p.process(&ctx(&rng), &id_req).unwrap()),
            "octet {i}"
        );
    }
    // The server refuses a changed suite or token in the response.
    for i in [2usize, 3, 4, 5, 8, 9] {
        let mut s = server(1000);
        let id_req = s.start(&ctx(&rng), USER).unwrap();
        let mut p = pwd_peer(USER, PASSWORD, 1000);
        let mut id_resp = resp(p.process(&ctx(&rng), &id_req).unwrap());
        id_resp[i] ^= 1;
        assert_eq!(
            s.process(&ctx(&rng), &id_resp).unwrap(),
            ServerStep::Failure,
            "octet {i}"
        );
    }
}

#[test]
fn malformed_and_out_of_order_messages_are_ignored() {
    let rng = RngHandle::seeded(14);
    let (mut s, mut p, commit) = after_id(&rng);
    // Wrong lengths, wrong exchange, unknown exchange: ignored, state kept.
    for bad in [
        &commit[..96],
        &[&commit[..], &[0][..]].concat()[..],
        &[0x03; 33][..],
        &[0x01, 0, 19, 1, 1][..],
        &[0x05, 1, 2][..],
        &[][..],
    ] {
        assert!(
            matches!(p.process(&ctx(&rng), bad), Err(MethodError::Invalid(_))),
            "{bad:02x?}"
        );
    }
    let c = resp(p.process(&ctx(&rng), &commit).unwrap());
    for bad in [&c[..50], &[0x03; 33][..], &[0x01; 20][..]] {
        assert!(s.process(&ctx(&rng), bad).is_err());
    }
    let confirm = req(s.process(&ctx(&rng), &c).unwrap());
    assert!(p.process(&ctx(&rng), &confirm[..32]).is_err());
    let cp = p.process(&ctx(&rng), &confirm).unwrap().response.unwrap();
    assert!(s.process(&ctx(&rng), &cp[..20]).is_err());
    assert_eq!(s.process(&ctx(&rng), &cp).unwrap(), ServerStep::Success);
    assert_eq!(s.keys(), p.keys());
    assert!(s.keys().is_some());
    assert_eq!(s.peer_identity(), Some(USER));
    assert_eq!(p.server_identity(), Some(&b"aaa.example"[..]));
    // Nothing after the end.
    assert!(matches!(
        s.process(&ctx(&rng), &cp),
        Err(MethodError::WrongState(_))
    ));
    assert!(matches!(
        p.process(&ctx(&rng), &confirm),
        Err(MethodError::WrongState(_))
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Arbitrary type-data at every stage of both roles: never a panic, never keys.
    #[test]
    fn garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..200), stage in 0u8..3) {
        let rng = RngHandle::seeded(15);
        let (mut s, mut p, commit) = after_id(&rng);
        let mut data = data;
        if stage > 0 && !data.is_empty() {
            // Mostly well-framed commits/confirms with random content.
            data[0] = stage + 1;
        }
        match stage {
            0 => {
                let mut fresh = pwd_peer(USER, PASSWORD, 1000);
                let _ = fresh.process(&ctx(&rng), &data);
                let mut srv = server(1000);
                let _ = srv.process(&ctx(&rng), &data);
                srv.start(&ctx(&rng), USER).unwrap();
                let _ = srv.process(&ctx(&rng), &data);
                prop_assert!(fresh.keys().is_none() && srv.keys().is_none());
            }
            1 => {
                let _ = p.process(&ctx(&rng), &data);
                let _ = s.process(&ctx(&rng), &data);
                prop_assert!(p.keys().is_none() && s.keys().is_none());
            }
            _ => {
                let c = resp(p.process(&ctx(&rng), &commit).unwrap());
                let confirm = req(s.process(&ctx(&rng), &c).unwrap());
                let _ = s.process(&ctx(&rng), &data);
                let step = p.process(&ctx(&rng), &data);
                prop_assert!(s.keys().is_none());
                // Only the real confirm (a 2^-256 chance) would give keys.
                if step.is_ok() {
                    prop_assert!(p.keys().is_none());
                } else {
                    let _ = p.process(&ctx(&rng), &confirm).unwrap();
                    prop_assert!(p.keys().is_some());
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Interop: wpa_supplicant's EAP-pwd peer (eapol_test) against our server.

mod eapol_test {
    use std::process::Output;
    use std::time::Duration as StdDuration;

    use eap::authenticator::{AuthOutcome, Authenticator, AuthenticatorConfig};
    use kmp_api::rng::RngHandle;

    use super::common::{self, EAPOL_TEST};
    use super::{PASSWORD, USER, server};

    const SECRET: &[u8] = b"eap-pwd-eapol-test-interop";

    /// Runs eapol_test (EAP-pwd with `password`) against our server behind the RADIUS server
    /// in `common`, both with `fragment_size`, or `None` if eapol_test is not installed. Our
    /// outcome is `None` if the peer stopped answering before one.
    fn run(password: &[u8], fragment_size: usize) -> Option<(Output, Option<AuthOutcome>)> {
        if !std::path::Path::new(EAPOL_TEST).exists() {
            eprintln!("{EAPOL_TEST} not installed; skipped");
            return None;
        }
        let network = format!(
            "  key_mgmt=IEEE8021X\n  eap=PWD\n  identity=\"{}\"\n  \
             password=\"{}\"\n  fragment_size={fragment_size}\n",
            String::from_utf8_lossy(USER),
            String::from_utf8_lossy(password)
        );
        Some(common::run_eapol_test(&network, SECRET, 5, |socket| {
            let auth = Authenticator::new(
                AuthenticatorConfig::default(),
                vec![Box::new(server(fragment_size))],
                RngHandle::os(),
            );
            common::serve_radius(
                socket,
                SECRET,
                auth,
                StdDuration::from_secs(8),
                [0x81, 0x82],
            )
        }))
    }

    #[test]
    fn wpa_supplicant_peer_against_our_eap_pwd_server() {
        check_success(1000);
    }

    #[test]
    fn fragments_both_ways_with_wpa_supplicant() {
        // 50-octet fragments split both commits (97 octets) in each direction.
        let Some(stdout) = check_success(50) else {
            return;
        };
        assert!(
            stdout.contains("EAP-pwd: Incoming fragments whose total length = 96")
                && stdout.contains("EAP-pwd: Got an ACK for a fragment"),
            "wpa_supplicant did not fragment both ways:\n{stdout}"
        );
    }

    fn check_success(fragment_size: usize) -> Option<String> {
        let (output, outcome) = run(PASSWORD, fragment_size)?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let Some(AuthOutcome::Success {
            identity,
            keys: Some(keys),
            ..
        }) = outcome
        else {
            panic!("our server failed: {outcome:?}\n{stdout}");
        };
        assert_eq!(identity, USER);
        assert!(output.status.success(), "eapol_test failed:\n{stdout}");
        assert!(
            stdout.contains("EAP-pwd (peer): confirm verified"),
            "wpa_supplicant did not verify our confirm:\n{stdout}"
        );
        common::assert_eapol_test_keys(&stdout, &keys);
        Some(stdout.into_owned())
    }

    #[test]
    fn wrong_password_fails_on_both_sides_with_wpa_supplicant() {
        let Some((output, outcome)) = run(b"not the password", 1000) else {
            return;
        };
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            !matches!(outcome, Some(AuthOutcome::Success { .. })),
            "our server accepted a wrong password: {outcome:?}"
        );
        assert!(!output.status.success(), "eapol_test succeeded:\n{stdout}");
        assert!(
            stdout.contains("EAP-PWD (peer): confirm did not verify"),
            "wpa_supplicant did not refuse our confirm:\n{stdout}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Interop: our peer against hostapd's EAP-pwd server (RADIUS server mode).

mod hostapd {
    use eap::authenticator::PassThroughOutcome;
    use eap::peer::{Peer, PeerConfig, PeerFailure, PeerOutcome};
    use kmp_api::rng::RngHandle;
    use kmp_api::time::Instant;

    use super::common::{self, HOSTAPD, Hostapd};
    use super::{PASSWORD, PWD, USER, pwd_peer};

    const SECRET: &[u8] = b"eap-pwd-hostapd-interop";
    const SERVER_ID: &str = "hostapd.example";

    fn start_hostapd(fragment_size: usize) -> Hostapd {
        Hostapd::start(
            SECRET,
            &format!(
                "\"{}\" PWD \"{}\"\n",
                String::from_utf8_lossy(USER),
                String::from_utf8_lossy(PASSWORD)
            ),
            &format!("server_id={SERVER_ID}\npwd_group=19\nfragment_size={fragment_size}\n"),
        )
    }

    /// Runs our peer through our pass-through authenticator to hostapd; `None` if hostapd is
    /// not installed. The pass-through outcome is `None` if the conversation stopped without
    /// one (our peer failed and sent nothing).
    fn run(
        password: &[u8],
        fragment_size: usize,
    ) -> Option<(PeerOutcome, Option<PassThroughOutcome>, Hostapd)> {
        if !std::path::Path::new(HOSTAPD).exists() {
            eprintln!("{HOSTAPD} not installed; skipped");
            return None;
        }
        let hostapd = start_hostapd(fragment_size);
        let (p, a) = drive(hostapd.port, SECRET, password, fragment_size, &|| {
            hostapd.log()
        });
        Some((p, a, hostapd))
    }

    /// Our peer (with `password` and `fragment_size`) through our pass-through authenticator
    /// and the `radius` client to the RADIUS server on 127.0.0.1:`port`; `log` shows the
    /// server's log on a failure.
    pub(super) fn drive(
        port: u16,
        secret: &[u8],
        password: &[u8],
        fragment_size: usize,
        log: &dyn Fn() -> String,
    ) -> (PeerOutcome, Option<PassThroughOutcome>) {
        let peer = Peer::new(
            PeerConfig::new(USER.to_vec()),
            vec![Box::new(pwd_peer(USER, password, fragment_size))],
            RngHandle::os(),
            Instant::ZERO,
        );
        match common::drive_pass_through(port, secret, b"kmp-eap-pwd-test", peer, 60, log) {
            (Some(p), pt_outcome) => (p, pt_outcome),
            (None, pt_outcome) => panic!("no outcome: authenticator {pt_outcome:?}\n{}", log()),
        }
    }

    fn check_success(fragment_size: usize) -> Option<String> {
        let (peer, pt, hostapd) = run(PASSWORD, fragment_size)?;
        let PeerOutcome::Success {
            keys: Some(keys), ..
        } = peer
        else {
            panic!("peer failed: {peer:?}\n{}", hostapd.log());
        };
        let Some(PassThroughOutcome::Success {
            identity,
            msk: Some(msk),
        }) = pt
        else {
            panic!("authenticator failed: {pt:?}\n{}", hostapd.log());
        };
        assert_eq!(identity, USER);
        assert_eq!(msk, keys.msk, "hostapd's MSK differs from ours");
        let log = hostapd.log();
        assert!(
            log.contains("EAP-pwd (server): confirm verified"),
            "hostapd did not verify our confirm:\n{log}"
        );
        // hostapd logs the Session-Id it derived; it must be ours.
        hostapd.assert_logged_session_id(&keys);
        Some(log)
    }

    #[test]
    fn our_peer_against_hostapd_eap_pwd_server() {
        check_success(1000);
    }

    #[test]
    fn fragments_both_ways_with_hostapd() {
        // 50-octet fragments split both commits (97 octets) in each direction.
        let Some(log) = check_success(50) else {
            return;
        };
        assert!(
            log.contains("EAP-pwd: ACKing a fragment") || log.contains("ACKing a fragment"),
            "hostapd did not reassemble our fragments:\n{log}"
        );
    }

    #[test]
    fn wrong_password_fails_against_hostapd() {
        let Some((peer, pt, hostapd)) = run(b"not the password", 1000) else {
            return;
        };
        assert_eq!(
            peer,
            PeerOutcome::Failure(PeerFailure::MethodFailed(PWD)),
            "{}",
            hostapd.log()
        );
        assert!(
            !matches!(pt, Some(PassThroughOutcome::Success { .. })),
            "hostapd accepted: {pt:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Interop: our peer against FreeRADIUS's EAP-pwd server (rlm_eap_pwd).

mod freeradius {
    use std::net::UdpSocket;

    use eap::authenticator::PassThroughOutcome;
    use eap::peer::{PeerFailure, PeerOutcome};
    use netns_test::freeradius;

    use super::hostapd::drive;
    use super::{PASSWORD, PWD, USER};

    const SECRET: &[u8] = b"eap-pwd-freeradius-interop";

    /// `freeradius -X` (netns-test) with a private copy of the system configuration: one site
    /// listening on 127.0.0.1 on a free port (no other listener), an `eap` module with only
    /// EAP-pwd (group 19) whose passwords come from a listener-less virtual server with
    /// `files`; killed on drop.
    struct FreeRadius {
        daemon: freeradius::FreeRadius,
        port: u16,
    }

    impl FreeRadius {
        fn start(name: &str, fragment_size: usize, server_id: &str) -> Option<FreeRadius> {
            if !freeradius::installed() {
                eprintln!("FreeRADIUS not installed; skipped");
                return None;
            }
            let port = UdpSocket::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let daemon = freeradius::Config::new(freeradius::work_dir("eap-pwd-fr", name))
                .clear_sites_enabled()
                .file(
                    "sites-enabled/pwd-test",
                    format!(
                        "server pwd-test {{\n\tlisten {{\n\t\ttype = auth\n\t\tipaddr = 127.0.0.1\n\
                         \t\tport = {port}\n\t}}\n\tauthorize {{\n\t\teap {{\n\t\t\tok = return\n\
                         \t\t}}\n\t}}\n\tauthenticate {{\n\t\teap\n\t}}\n}}\n\
                         server pwd-inner {{\n\tauthorize {{\n\t\tfiles\n\t}}\n\
                         \tauthenticate {{\n\t}}\n}}\n"
                    ),
                )
                .file(
                    "mods-enabled/eap",
                    format!(
                        "eap {{\n\tdefault_eap_type = pwd\n\ttimer_expire = 60\n\
                         \tignore_unknown_eap_types = no\n\tcisco_accounting_username_bug = no\n\
                         \tmax_sessions = 64\n\tpwd {{\n\t\tgroup = 19\n\
                         \t\tserver_id = {server_id}\n\t\tfragment_size = {fragment_size}\n\
                         \t\tvirtual_server = \"pwd-inner\"\n\t}}\n}}\n"
                    ),
                )
                .file(
                    "clients.conf",
                    format!(
                        "client loopback {{\n\tipaddr = 127.0.0.1\n\tsecret = {}\n}}\n",
                        String::from_utf8_lossy(SECRET)
                    ),
                )
                .file(
                    "mods-config/files/authorize",
                    format!(
                        "\"{}\"\tCleartext-Password := \"{}\"\n",
                        String::from_utf8_lossy(USER),
                        String::from_utf8_lossy(PASSWORD)
                    ),
                )
                .start();
            Some(FreeRadius { daemon, port })
        }

        fn log(&self) -> String {
            self.daemon.log()
        }
    }

    /// A run with FreeRADIUS fragmenting at `fr_fragment_size` and our peer at
    /// `peer_fragment_size`; returns FreeRADIUS's log.
    fn check_success(
        name: &str,
        fr_fragment_size: usize,
        server_id: &str,
        peer_fragment_size: usize,
    ) -> Option<String> {
        let fr = FreeRadius::start(name, fr_fragment_size, server_id)?;
        let (peer, pt) = drive(fr.port, SECRET, PASSWORD, peer_fragment_size, &|| fr.log());
        let PeerOutcome::Success {
            keys: Some(keys), ..
        } = peer
        else {
            panic!("peer failed: {peer:?}\n{}", fr.log());
        };
        let Some(PassThroughOutcome::Success {
            identity,
            msk: Some(msk),
        }) = pt
        else {
            panic!("authenticator failed: {pt:?}\n{}", fr.log());
        };
        assert_eq!(identity, USER);
        assert_eq!(msk, keys.msk, "FreeRADIUS's MSK differs from ours");
        Some(fr.log())
    }

    #[test]
    fn our_peer_against_freeradius_eap_pwd_server() {
        check_success("plain", 1020, "freeradius.example", 1000);
    }

    #[test]
    fn fragments_both_ways_with_freeradius() {
        // FreeRADIUS refuses fragment sizes below 100: a 300-octet server identity makes its
        // PWD-ID request long enough to fragment; our peer splits its PWD-ID response and its
        // commit into 40-octet fragments.
        let long_id = "s".repeat(300);
        let Some(log) = check_success("frag", 100, &long_id, 40) else {
            return;
        };
        // EAP-Messages of header + type + PWD-Exch only: our ACKs of FreeRADIUS's PWD-ID
        // fragments (Response, exchange 1) and its ACKs of our commit fragments (Request,
        // exchange 2).
        let acks = |code: &str, exch: &str| {
            log.lines()
                .filter(|l| l.contains(&format!("EAP-Message = 0x{code}")))
                .filter(|l| l.trim_end().ends_with(&format!("000634{exch}")))
                .count()
        };
        assert!(acks("02", "01") >= 2, "we did not ACK its PWD-ID:\n{log}");
        assert!(acks("01", "02") >= 1, "it did not ACK our commit:\n{log}");
    }

    #[test]
    fn wrong_password_fails_against_freeradius() {
        let Some(fr) = FreeRadius::start("wrong", 1020, "freeradius.example") else {
            return;
        };
        let (peer, pt) = drive(fr.port, SECRET, b"not the password", 1000, &|| fr.log());
        assert_eq!(
            peer,
            PeerOutcome::Failure(PeerFailure::MethodFailed(PWD)),
            "{}",
            fr.log()
        );
        assert!(
            !matches!(pt, Some(PassThroughOutcome::Success { .. })),
            "FreeRADIUS accepted: {pt:?}"
        );
    }
}
