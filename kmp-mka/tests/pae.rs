//! The KMP ID 1 PAEs through the session contract: EAP-PSK and EAP-TLS (1.2, 1.3) joins
//! followed by the 4-way handshake over the same PMK cache (the Wi-SUN join in one process),
//! failures that leave the cache empty, lost frames, garbage, MKA after EAP, and the
//! pass-through authenticator with a fake AAA backend.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use eap::authenticator::{AuthAction, AuthOutcome, Authenticator, AuthenticatorConfig};
use eap::psk::PskServer;
use eap::tls::{TlsConfig, TlsVersions};
use kmp_api::crypto::Key128;
use kmp_api::id::KmpId;
use kmp_api::security::KeyIdentifier;
use kmp_api::session::{
    Action, FailureReason, KeyInstall, KeyRemoval, KeyScope, KmpFactory, KmpSession, Outcome, Role,
    SessionContext,
};
use kmp_api::{Duration, ExtendedAddress, Instant, RngHandle};
use kmp_mka::handshake::{PaeRole, PmkCache};
use kmp_mka::pae::{
    Backend, BackendAnswer, BackendKey, MethodProvider, MkaSettings, PaeConfig, PaeFactory,
    PskProvider, SakScope, StartFrame, TlsProvider,
};
use proptest::prelude::*;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256, date_time_ymd,
};
use support::four_way;

const BR: ExtendedAddress = ExtendedAddress([2, 0, 0, 0, 0, 0, 0, 1]);
const NODE: ExtendedAddress = ExtendedAddress([2, 0, 0, 0, 0, 0, 0, 2]);
const PSK: [u8; 16] = [0x5a; 16];

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

// ---- test PKI ----

struct Identity {
    chain: String,
    key: String,
}

struct Pki {
    root: String,
    rogue_root: String,
    server: Identity,
    client: Identity,
}

fn ca(cn: &str) -> (CertificateParams, KeyPair) {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.not_before = date_time_ymd(2025, 1, 1);
    p.not_after = date_time_ymd(2045, 1, 1);
    (p, KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap())
}

fn end_entity(name: &str, issuer: &Issuer<'_, &KeyPair>) -> Identity {
    let mut p = CertificateParams::new(vec![name.to_string()]).unwrap();
    p.distinguished_name.push(DnType::CommonName, name);
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.not_before = date_time_ymd(2025, 1, 1);
    p.not_after = date_time_ymd(2045, 1, 1);
    let k = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    Identity {
        chain: p.signed_by(&k, issuer).unwrap().pem(),
        key: k.serialize_pem(),
    }
}

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let (rp, rk) = ca("PAE Test Root");
        let root = rp.self_signed(&rk).unwrap().pem();
        let issuer = Issuer::from_params(&rp, &rk);
        let (gp, gk) = ca("Rogue Root");
        let rogue_root = gp.self_signed(&gk).unwrap().pem();
        Pki {
            root,
            rogue_root,
            server: end_entity("br.pan.example", &issuer),
            client: end_entity("node-2.pan.example", &issuer),
        }
    })
}

fn tls(id: &Identity, anchors: &str, versions: TlsVersions) -> Arc<dyn MethodProvider> {
    let mut c =
        TlsConfig::from_pem(id.chain.as_bytes(), id.key.as_bytes(), anchors.as_bytes()).unwrap();
    c.versions = versions;
    c.fragment_size = 300;
    Arc::new(TlsProvider::new(&c).unwrap())
}

fn psk(id: &str, key: [u8; 16]) -> Arc<dyn MethodProvider> {
    Arc::new(PskProvider::new(id, Key128::new(key)))
}

fn config(role: PaeRole, methods: Vec<Arc<dyn MethodProvider>>) -> PaeConfig {
    let mut c = PaeConfig::new(role, "node-2", methods);
    c.authenticator.retransmit_timeout = Duration::from_millis(300);
    c.authenticator.max_retransmissions = 3;
    c.start_retransmit = Duration::from_millis(500);
    c.idle_timeout = Some(Duration::from_secs(10));
    c
}

// ---- driver ----

#[derive(Default, Debug)]
struct Side {
    installs: Vec<KeyInstall>,
    removals: Vec<KeyRemoval>,
    outcomes: Vec<Outcome>,
    sent: Vec<Vec<u8>>,
    errors: usize,
}

fn drain(s: &mut dyn KmpSession, side: &mut Side) -> Vec<Vec<u8>> {
    let mut out = vec![];
    while let Some(a) = s.poll_action() {
        match a {
            Action::Send(p) => {
                side.sent.push(p.clone());
                out.push(p);
            }
            Action::InstallKeys(k) => side.installs.push(k),
            Action::RemoveKeys(r) => side.removals.push(r),
            Action::Finished(o) => side.outcomes.push(o),
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    ToBr,
    ToNode,
}

/// The state after [`run_sessions`]: both sides' records and sessions, and the virtual time.
struct Joined {
    br: Side,
    b: Option<Box<dyn KmpSession>>,
    now: Instant,
}

fn run(
    br_factory: &PaeFactory,
    node_factory: &PaeFactory,
    node_first: bool,
    drop: impl FnMut(usize, Dir, &[u8]) -> bool,
) -> (Side, Side) {
    let (j, node) = run_sessions(br_factory, node_factory, node_first, drop);
    (j.br, node)
}

/// Runs a join to its end. `node_first`: the node's initiator session starts (Wi-SUN);
/// otherwise the border router's. `drop(n, dir, pdu)` loses the n-th frame (1-based).
fn run_sessions(
    br_factory: &PaeFactory,
    node_factory: &PaeFactory,
    node_first: bool,
    mut drop: impl FnMut(usize, Dir, &[u8]) -> bool,
) -> (Joined, Side) {
    let (mut br, mut node) = (Side::default(), Side::default());
    let mut b: Option<Box<dyn KmpSession>> = None;
    let mut n: Option<Box<dyn KmpSession>> = None;
    let mut now = Instant::ZERO;
    let mut queue: Vec<(Dir, Vec<u8>)> = vec![];
    if node_first {
        let mut s = node_factory
            .new_initiator(ctx(NODE, BR, Role::Initiator, 2))
            .unwrap();
        s.start(now).unwrap();
        queue.extend(
            drain(s.as_mut(), &mut node)
                .into_iter()
                .map(|p| (Dir::ToBr, p)),
        );
        n = Some(s);
    } else {
        let mut s = br_factory
            .new_initiator(ctx(BR, NODE, Role::Initiator, 1))
            .unwrap();
        s.start(now).unwrap();
        queue.extend(
            drain(s.as_mut(), &mut br)
                .into_iter()
                .map(|p| (Dir::ToNode, p)),
        );
        b = Some(s);
    }
    let mut count = 0;
    for _ in 0..2000 {
        if !queue.is_empty() {
            for (dir, p) in std::mem::take(&mut queue) {
                count += 1;
                if drop(count, dir, &p) {
                    continue;
                }
                let (slot, side, factory, local, peer, seed, back) = match dir {
                    Dir::ToBr => (&mut b, &mut br, br_factory, BR, NODE, 1, Dir::ToNode),
                    Dir::ToNode => (&mut n, &mut node, node_factory, NODE, BR, 2, Dir::ToBr),
                };
                if slot.is_none() {
                    match factory.new_responder(ctx(local, peer, Role::Responder, seed), &p) {
                        Ok(s) => *slot = Some(s),
                        Err(_) => continue,
                    }
                }
                let s = slot.as_mut().unwrap();
                if s.handle_datagram(now, &p).is_err() {
                    side.errors += 1;
                }
                queue.extend(drain(s.as_mut(), side).into_iter().map(|p| (back, p)));
            }
            continue;
        }
        if !br.outcomes.is_empty() && !node.outcomes.is_empty() {
            break;
        }
        let next = [
            b.as_ref().and_then(|s| s.poll_timeout()),
            n.as_ref().and_then(|s| s.poll_timeout()),
        ]
        .into_iter()
        .flatten()
        .min();
        let Some(t) = next else { break };
        now = t;
        if let Some(s) = b.as_mut() {
            s.handle_timeout(now);
            queue.extend(
                drain(s.as_mut(), &mut br)
                    .into_iter()
                    .map(|p| (Dir::ToNode, p)),
            );
        }
        if let Some(s) = n.as_mut() {
            s.handle_timeout(now);
            queue.extend(
                drain(s.as_mut(), &mut node)
                    .into_iter()
                    .map(|p| (Dir::ToBr, p)),
            );
        }
    }
    (Joined { br, b, now }, node)
}

fn pae_pair(
    br_methods: Vec<Arc<dyn MethodProvider>>,
    node_methods: Vec<Arc<dyn MethodProvider>>,
    tweak: impl Fn(&mut PaeConfig),
) -> (PaeFactory, PaeFactory) {
    let mut bc = config(PaeRole::Authenticator, br_methods);
    let mut nc = config(PaeRole::Supplicant, node_methods);
    tweak(&mut bc);
    tweak(&mut nc);
    (
        PaeFactory::new(bc, PmkCache::new()).unwrap(),
        PaeFactory::new(nc, PmkCache::new()).unwrap(),
    )
}

fn success_pmkid(side: &Side) -> Vec<u8> {
    match side.outcomes.as_slice() {
        [Outcome::Success(sa)] => {
            assert_eq!(sa.keys_installed, 0);
            sa.session_id.clone()
        }
        other => panic!("expected one success, got {other:?}"),
    }
}

/// A full join: EAP, then the 4-way handshake with the PMK EAP produced.
fn join(br_methods: Vec<Arc<dyn MethodProvider>>, node_methods: Vec<Arc<dyn MethodProvider>>) {
    let (bf, nf) = pae_pair(br_methods, node_methods, |_| {});
    let (br, node) = run(&bf, &nf, true, |_, _, _| false);
    // The node opened with the Wi-SUN key request (EAPOL v3, type Key).
    assert_eq!(&node.sent[0][..2], &[3, 3]);
    // Every EAP frame went out as EAPOL v3 EAP-Packet.
    assert!(br.sent.iter().all(|p| p[..2] == [3, 0]));
    let (bid, nid) = (success_pmkid(&br), success_pmkid(&node));
    let be = bf.pmk_cache().get(BR, NODE).unwrap();
    let ne = nf.pmk_cache().get(NODE, BR).unwrap();
    assert_eq!(be.pmk, ne.pmk, "both PAEs derived the same PMK");
    assert_eq!(be.pmkid.to_vec(), bid);
    assert_eq!(ne.pmkid.to_vec(), nid);
    assert_eq!(be.role, PaeRole::Authenticator);
    assert_eq!(ne.role, PaeRole::Supplicant);
    assert!(br.installs.is_empty() && node.installs.is_empty());
    let tk = four_way(bf.pmk_cache(), nf.pmk_cache());
    assert_eq!(tk.len(), 16);
}

#[test]
fn psk_join_then_four_way() {
    join(vec![psk("br", PSK)], vec![psk("node-2", PSK)]);
}

#[test]
fn rejoin_key_request_names_the_pmksa_and_ptk() {
    let (bf, nf) = pae_pair(vec![psk("br", PSK)], vec![psk("node-2", PSK)], |_| {});
    let (_, first) = run(&bf, &nf, true, |_, _, _| false);
    // A first join: the key request carries no KDE (nothing cached yet).
    let r = kmp_mka::handshake::KeyRequest::parse(&first.sent[0])
        .unwrap()
        .unwrap();
    assert_eq!((r.pmkid, r.ptkid), (None, None));
    four_way(bf.pmk_cache(), nf.pmk_cache());
    let entry = nf.pmk_cache().get(NODE, BR).unwrap();
    // The node joins again (Wi-SUN: after a reboot of the border router, say): its key request
    // names the PMKSA and the PTK it holds, so an authenticator could skip EAP.
    let mut s = nf.new_initiator(ctx(NODE, BR, Role::Initiator, 5)).unwrap();
    s.start(Instant::ZERO).unwrap();
    let mut side = Side::default();
    let sent = drain(s.as_mut(), &mut side);
    let r = kmp_mka::handshake::KeyRequest::parse(&sent[0])
        .unwrap()
        .unwrap();
    assert_eq!(r.pmkid, Some(entry.pmkid));
    let ptk = entry.ptk.as_ref().unwrap();
    assert_eq!(
        r.ptkid,
        Some(kmp_mka::handshake::keys::ptkid(ptk, BR, NODE).unwrap())
    );
    // Our authenticator runs EAP anyway and the new PMKSA replaces the old one.
    let (br, node) = run(&bf, &nf, true, |_, _, _| false);
    assert_eq!(success_pmkid(&br), success_pmkid(&node));
    // (Same seeds, same PMK here; but the PMKSA is a new one: no PTK, no replay counter.)
    let fresh = nf.pmk_cache().get(NODE, BR).unwrap();
    assert!(fresh.ptk.is_none() && fresh.replay_counter.is_none());
    four_way(bf.pmk_cache(), nf.pmk_cache());
}

#[test]
fn tls12_join_then_four_way() {
    let p = pki();
    join(
        vec![tls(&p.server, &p.root, TlsVersions::Tls12)],
        vec![tls(&p.client, &p.root, TlsVersions::Tls12)],
    );
}

#[test]
fn tls13_join_then_four_way_after_nak() {
    let p = pki();
    // The border router proposes PSK first; the node only does TLS and Naks it.
    join(
        vec![psk("br", PSK), tls(&p.server, &p.root, TlsVersions::Tls13)],
        vec![tls(&p.client, &p.root, TlsVersions::Both)],
    );
}

#[test]
fn wrong_psk_fails_and_caches_nothing() {
    let (bf, nf) = pae_pair(
        vec![psk("br", PSK)],
        vec![psk("node-2", [0x11; 16])],
        |_| {},
    );
    let (br, node) = run(&bf, &nf, true, |_, _, _| false);
    assert_eq!(
        br.outcomes,
        vec![Outcome::Failure(FailureReason::AuthenticationFailed)]
    );
    assert_eq!(node.outcomes.len(), 1);
    assert!(matches!(node.outcomes[0], Outcome::Failure(_)));
    assert!(bf.pmk_cache().get(BR, NODE).is_none());
    assert!(nf.pmk_cache().get(NODE, BR).is_none());
}

#[test]
fn untrusted_server_certificate_fails_and_caches_nothing() {
    let p = pki();
    let (bf, nf) = pae_pair(
        vec![tls(&p.server, &p.root, TlsVersions::Both)],
        vec![tls(&p.client, &p.rogue_root, TlsVersions::Both)],
        |_| {},
    );
    let (br, node) = run(&bf, &nf, true, |_, _, _| false);
    assert!(
        matches!(
            node.outcomes.as_slice(),
            [Outcome::Failure(FailureReason::AuthenticationFailed)]
        ),
        "{:?}",
        node.outcomes
    );
    assert!(
        matches!(br.outcomes.as_slice(), [Outcome::Failure(_)]),
        "{:?}",
        br.outcomes
    );
    assert!(bf.pmk_cache().get(BR, NODE).is_none());
    assert!(nf.pmk_cache().get(NODE, BR).is_none());
}

#[test]
fn lost_frames_are_retransmitted() {
    let p = pki();
    let (bf, nf) = pae_pair(
        vec![tls(&p.server, &p.root, TlsVersions::Tls13)],
        vec![tls(&p.client, &p.root, TlsVersions::Tls13)],
        |_| {},
    );
    let (clean, _) = run(&bf, &nf, true, |_, _, _| false);
    // Lose the first key request, then a Request to the node and a Response to the border router.
    let (bf, nf) = pae_pair(
        vec![tls(&p.server, &p.root, TlsVersions::Tls13)],
        vec![tls(&p.client, &p.root, TlsVersions::Tls13)],
        |_| {},
    );
    let (br, node) = run(&bf, &nf, true, |n, _, _| n == 1 || n == 4 || n == 7);
    success_pmkid(&br);
    success_pmkid(&node);
    assert!(
        br.sent.len() > clean.sent.len(),
        "the border router retransmitted"
    );
    // The node sent its key request twice.
    assert!(node.sent.iter().filter(|p| p[1] == 3).count() >= 2);
    four_way(bf.pmk_cache(), nf.pmk_cache());
}

#[test]
fn silent_node_times_out_the_authenticator() {
    let (bf, nf) = pae_pair(vec![psk("br", PSK)], vec![psk("node-2", PSK)], |_| {});
    let (br, node) = run(&bf, &nf, true, |_, dir, _| dir == Dir::ToNode);
    assert_eq!(
        br.outcomes,
        vec![Outcome::Failure(FailureReason::Timeout { attempts: 4 })]
    );
    // Identity Request and three retransmissions.
    assert_eq!(br.sent.len(), 4);
    // The node gave up after its start attempts: every key request went unanswered… but the
    // border router answered the first, so the node waits for EAP until its idle timeout.
    assert!(matches!(
        node.outcomes.as_slice(),
        [Outcome::Failure(FailureReason::Timeout { .. })]
    ));
    assert!(bf.pmk_cache().get(BR, NODE).is_none());
}

#[test]
fn unanswered_start_frames_time_out() {
    let (bf, nf) = pae_pair(vec![psk("br", PSK)], vec![psk("node-2", PSK)], |c| {
        c.start = StartFrame::EapolStart;
    });
    let (_, node) = run(&bf, &nf, true, |_, dir, _| dir == Dir::ToBr);
    assert_eq!(
        node.outcomes,
        vec![Outcome::Failure(FailureReason::Timeout { attempts: 3 })]
    );
    assert_eq!(node.sent.len(), 3);
    assert!(node.sent.iter().all(|p| p == &[3, 1, 0, 0]), "EAPOL-Start");
}

#[test]
fn eapol_start_and_authenticator_initiated_joins() {
    let (bf, nf) = pae_pair(vec![psk("br", PSK)], vec![psk("node-2", PSK)], |c| {
        c.start = StartFrame::EapolStart;
        c.eapol_version = kmp_mka::eapol::ProtocolVersion::V2004;
    });
    let (br, node) = run(&bf, &nf, true, |_, _, _| false);
    assert_eq!(node.sent[0], vec![2, 1, 0, 0]);
    assert_eq!(success_pmkid(&br), success_pmkid(&node));
    // The border router starts: EAP-Request/Identity makes the node's responder session.
    let (bf, nf) = pae_pair(vec![psk("br", PSK)], vec![psk("node-2", PSK)], |_| {});
    let (br, node) = run(&bf, &nf, false, |_, _, _| false);
    assert_eq!(success_pmkid(&br), success_pmkid(&node));
    four_way(bf.pmk_cache(), nf.pmk_cache());
}

#[test]
fn responders_accept_only_first_frames_of_their_role() {
    let (bf, nf) = pae_pair(vec![psk("br", PSK)], vec![psk("node-2", PSK)], |_| {});
    let start = [3, 1, 0, 0];
    let identity_request = [3, 0, 0, 5, 1, 7, 0, 5, 1];
    let key_request = kmp_mka::handshake::KeyRequest::default().to_pdu().unwrap();
    let c = |role| ctx(BR, NODE, role, 1);
    assert!(bf.new_responder(c(Role::Responder), &start).is_ok());
    assert!(bf.new_responder(c(Role::Responder), &key_request).is_ok());
    assert!(
        bf.new_responder(c(Role::Responder), &identity_request)
            .is_err()
    );
    assert!(
        nf.new_responder(c(Role::Responder), &identity_request)
            .is_ok()
    );
    assert!(nf.new_responder(c(Role::Responder), &start).is_err());
    assert!(nf.new_responder(c(Role::Responder), &key_request).is_err());
    assert!(bf.new_responder(c(Role::Responder), &[3, 1, 0]).is_err());
    assert_eq!(bf.kmp_id(), KmpId::Ieee8021xMka);
}

// ---- MKA after EAP ----

fn mka_settings(scope: SakScope) -> MkaSettings {
    MkaSettings {
        key_scope: scope,
        ..MkaSettings::default()
    }
}

#[test]
fn mka_after_eap_installs_matching_saks() {
    for scope in [SakScope::Pairwise, SakScope::Group] {
        let (bf, nf) = pae_pair(vec![psk("br", PSK)], vec![psk("node-2", PSK)], |c| {
            c.mka = Some(mka_settings(scope));
        });
        let (br, node) = run(&bf, &nf, true, |_, _, _| false);
        for side in [&br, &node] {
            match side.outcomes.as_slice() {
                [Outcome::Success(sa)] => {
                    assert_eq!(sa.keys_installed, 1);
                    assert_eq!(sa.session_id.len(), 16, "the CKN");
                }
                other => panic!("{other:?}"),
            }
            assert_eq!(side.installs.len(), 1);
            // MKPDUs went out as EAPOL-MKA.
            assert!(side.sent.iter().any(|p| p[1] == 5));
        }
        let bk = &br.installs[0].link_keys[0];
        let nk = &node.installs[0].link_keys[0];
        assert_eq!(bk.key, nk.key, "both ends hold the same SAK");
        assert_eq!(bk.key.len(), 16);
        assert_eq!(bk.lookup, nk.lookup);
        assert!(matches!(bk.lookup, KeyIdentifier::Index(5..=8)));
        match scope {
            SakScope::Pairwise => {
                assert_eq!(bk.scope, KeyScope::Pairwise(NODE));
                assert_eq!(nk.scope, KeyScope::Pairwise(BR));
            }
            SakScope::Group => {
                assert_eq!(bk.scope, KeyScope::Group);
                assert_eq!(nk.scope, KeyScope::Group);
            }
        }
        assert_eq!(br.installs[0].owner, KmpId::Ieee8021xMka);
        // The PMK is cached too.
        assert!(bf.pmk_cache().get(BR, NODE).is_some());
    }
}

#[test]
fn mka_peer_loss_removes_the_keys_and_closes() {
    let (bf, nf) = pae_pair(vec![psk("br", PSK)], vec![psk("node-2", PSK)], |c| {
        c.mka = Some(mka_settings(SakScope::Pairwise));
    });
    let (mut j, node) = run_sessions(&bf, &nf, true, |_, _, _| false);
    assert!(matches!(node.outcomes.as_slice(), [Outcome::Success(_)]));
    assert!(matches!(j.br.outcomes.as_slice(), [Outcome::Success(_)]));
    let b = j.b.as_mut().unwrap();
    assert!(!b.is_closed(), "MKA keeps the session open");
    // The node goes silent: after the MKA Life Time the border router drops the CA.
    for _ in 0..20 {
        let Some(t) = b.poll_timeout() else { break };
        j.now = t;
        b.handle_timeout(j.now);
        drain(b.as_mut(), &mut j.br);
    }
    assert!(b.is_closed());
    assert!(
        j.br.removals
            .iter()
            .any(|r| r.which == kmp_api::session::KeySelector::All && r.peer == NODE),
        "{:?}",
        j.br.removals
    );
    assert!(b.handle_datagram(j.now, &[3, 1, 0, 0]).is_err());
}

#[test]
fn mka_frames_before_eap_success_are_refused() {
    let (bf, _) = pae_pair(vec![psk("br", PSK)], vec![psk("node-2", PSK)], |c| {
        c.mka = Some(mka_settings(SakScope::Pairwise));
    });
    let mut b = bf
        .new_responder(ctx(BR, NODE, Role::Responder, 1), &[3, 1, 0, 0])
        .unwrap();
    b.handle_datagram(Instant::ZERO, &[3, 1, 0, 0]).unwrap();
    let mut side = Side::default();
    drain(b.as_mut(), &mut side);
    assert!(
        b.handle_datagram(Instant::ZERO, &[3, 5, 0, 2, 1, 2])
            .is_err()
    );
    assert!(side.installs.is_empty());
}

#[test]
fn mka_that_never_agrees_times_out() {
    // The border router does not run MKA: it finishes after EAP; the node waits for a SAK.
    let (bf, _) = pae_pair(vec![psk("br", PSK)], vec![psk("n", PSK)], |_| {});
    let mut nc = config(PaeRole::Supplicant, vec![psk("node-2", PSK)]);
    nc.mka = Some(MkaSettings {
        establish_timeout: Duration::from_secs(9),
        ..MkaSettings::default()
    });
    let nf = PaeFactory::new(nc, PmkCache::new()).unwrap();
    let (br, node) = run(&bf, &nf, true, |_, _, _| false);
    success_pmkid(&br);
    assert_eq!(
        node.outcomes,
        vec![Outcome::Failure(FailureReason::Timeout { attempts: 1 })]
    );
    assert!(node.installs.is_empty());
    // The node's MKPDUs went unanswered (the border router's session is closed).
    assert!(node.sent.iter().filter(|p| p[1] == 5).count() >= 2);
}

#[test]
fn logoff_ends_the_authenticator() {
    let (bf, _) = pae_pair(vec![psk("br", PSK)], vec![psk("n", PSK)], |_| {});
    let start = [3, 1, 0, 0];
    let mut b = bf
        .new_responder(ctx(BR, NODE, Role::Responder, 1), &start)
        .unwrap();
    let mut side = Side::default();
    b.handle_datagram(Instant::ZERO, &start).unwrap();
    assert_eq!(drain(b.as_mut(), &mut side).len(), 1, "Identity Request");
    // A second Start while EAP runs is absorbed.
    b.handle_datagram(Instant::ZERO, &start).unwrap();
    assert!(drain(b.as_mut(), &mut side).is_empty());
    b.handle_datagram(Instant::ZERO, &[3, 2, 0, 0]).unwrap();
    drain(b.as_mut(), &mut side);
    assert_eq!(
        side.outcomes,
        vec![Outcome::Failure(FailureReason::RejectedByPeer { code: 2 })]
    );
    assert!(b.is_closed() && b.poll_timeout().is_none());
}

// ---- pass-through ----

/// A fake AAA backend: our own EAP server (EAP-PSK) behind it, answering synchronously, as a
/// RADIUS server with an EAP module would. `silent` makes it never answer (a dead server),
/// `timeout` makes it report that every server timed out.
#[derive(Default)]
struct FakeBackend {
    psk: Option<[u8; 16]>,
    timeout: bool,
    servers: Mutex<HashMap<BackendKey, Authenticator>>,
    answers: Mutex<HashMap<BackendKey, BackendAnswer>>,
    submitted: Mutex<usize>,
    abandoned: Mutex<Vec<BackendKey>>,
}

impl Backend for FakeBackend {
    fn submit(&self, key: BackendKey, eap_response: &[u8]) {
        *self.submitted.lock().unwrap() += 1;
        if self.timeout {
            self.answers
                .lock()
                .unwrap()
                .insert(key, BackendAnswer::Timeout);
            return;
        }
        let mut servers = self.servers.lock().unwrap();
        let now = Instant::ZERO;
        let server = match servers.entry(key) {
            std::collections::hash_map::Entry::Occupied(o) => {
                let s = o.into_mut();
                s.handle_packet(now, eap_response).unwrap();
                s
            }
            std::collections::hash_map::Entry::Vacant(v) => {
                let psk = Key128::new(self.psk.unwrap());
                let store = Arc::new(move |_: &[u8]| Some(psk.clone()));
                let mut s = Authenticator::new(
                    AuthenticatorConfig::default(),
                    vec![Box::new(PskServer::new("aaa", store))],
                    RngHandle::seeded(99),
                );
                s.start_backend(now, eap_response).unwrap();
                v.insert(s)
            }
        };
        let mut last = None;
        let mut answer = None;
        while let Some(a) = server.poll_action() {
            match a {
                AuthAction::Send(p) => last = Some(p),
                AuthAction::Finished(AuthOutcome::Success { keys, .. }) => {
                    answer = Some(BackendAnswer::Accept {
                        eap: last.take(),
                        msk: keys.map(|k| k.msk),
                    });
                }
                AuthAction::Finished(AuthOutcome::Failure(_)) => {
                    answer = Some(BackendAnswer::Reject(last.take()));
                }
            }
        }
        let answer = answer.or(last.map(BackendAnswer::Request)).unwrap();
        self.answers.lock().unwrap().insert(key, answer);
    }

    fn poll(&self, key: BackendKey) -> Option<BackendAnswer> {
        self.answers.lock().unwrap().remove(&key)
    }

    fn abandon(&self, key: BackendKey) {
        self.abandoned.lock().unwrap().push(key);
    }
}

fn pass_through_pair(backend: Arc<FakeBackend>, node_psk: [u8; 16]) -> (PaeFactory, PaeFactory) {
    let bc = config(PaeRole::Authenticator, vec![]);
    let nc = config(PaeRole::Supplicant, vec![psk("node-2", node_psk)]);
    (
        PaeFactory::pass_through(bc, PmkCache::new(), backend).unwrap(),
        PaeFactory::new(nc, PmkCache::new()).unwrap(),
    )
}

#[test]
fn pass_through_join_then_four_way() {
    let backend = Arc::new(FakeBackend {
        psk: Some(PSK),
        ..FakeBackend::default()
    });
    let (bf, nf) = pass_through_pair(Arc::clone(&backend), PSK);
    let (br, node) = run(&bf, &nf, true, |_, _, _| false);
    assert_eq!(success_pmkid(&br), success_pmkid(&node));
    // Identity, PSK #2 and #4 went to the backend.
    assert_eq!(*backend.submitted.lock().unwrap(), 3);
    assert_eq!(
        backend.abandoned.lock().unwrap().as_slice(),
        &[BackendKey {
            local: BR,
            peer: NODE
        }]
    );
    four_way(bf.pmk_cache(), nf.pmk_cache());
}

#[test]
fn pass_through_reject_and_timeout() {
    let backend = Arc::new(FakeBackend {
        psk: Some(PSK),
        ..FakeBackend::default()
    });
    let (bf, nf) = pass_through_pair(backend, [0x11; 16]);
    let (br, node) = run(&bf, &nf, true, |_, _, _| false);
    assert_eq!(
        br.outcomes,
        vec![Outcome::Failure(FailureReason::AuthenticationFailed)]
    );
    assert!(matches!(node.outcomes.as_slice(), [Outcome::Failure(_)]));
    assert!(bf.pmk_cache().get(BR, NODE).is_none());

    let backend = Arc::new(FakeBackend {
        timeout: true,
        ..FakeBackend::default()
    });
    let (bf, nf) = pass_through_pair(backend, PSK);
    let (br, _) = run(&bf, &nf, true, |_, _, _| false);
    assert!(
        matches!(
            br.outcomes.as_slice(),
            [Outcome::Failure(FailureReason::Internal(_))]
        ),
        "{:?}",
        br.outcomes
    );
    assert!(bf.pmk_cache().get(BR, NODE).is_none());
}

#[test]
fn pass_through_refuses_supplicants_and_mka() {
    let b: Arc<dyn Backend> = Arc::new(FakeBackend::default());
    let nc = config(PaeRole::Supplicant, vec![psk("n", PSK)]);
    assert!(PaeFactory::pass_through(nc, PmkCache::new(), Arc::clone(&b)).is_err());
    let mut bc = config(PaeRole::Authenticator, vec![]);
    bc.mka = Some(MkaSettings::default());
    assert!(PaeFactory::pass_through(bc, PmkCache::new(), b).is_err());
    assert!(PaeFactory::new(config(PaeRole::Authenticator, vec![]), PmkCache::new()).is_err());
}

// ---- registration and TOML ----

#[test]
fn registered_as_8021x_and_configured_from_toml_with_pem_files() {
    let reg = kmp_api::registry::Registry::from_inventory().unwrap();
    let r = reg.lookup(KmpId::Ieee8021xMka).unwrap();
    assert_eq!(r.name, "8021x");
    let f = r
        .make_factory(
            "role = \"authenticator\"\nmethods = [\"psk\"]\n\
             [psk]\nid = \"br\"\npsk_hex = \"5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a\"\n",
        )
        .unwrap();
    assert_eq!(f.kmp_id(), KmpId::Ieee8021xMka);
    assert!(r.make_factory("methods = [\"tls\"]").is_err());

    // EAP-TLS from PEM files named in the TOML, both sides.
    let p = pki();
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    };
    let root = write("root.pem", &p.root);
    let section = |role: &str, id: &Identity, tag: &str| {
        let chain = write(&format!("{tag}.chain.pem"), &id.chain);
        let key = write(&format!("{tag}.key.pem"), &id.key);
        PaeConfig::from_toml(&format!(
            "role = \"{role}\"\nidentity = \"node-2\"\nmethods = [\"tls\"]\n\
             retransmit_ms = 300\n\
             [tls]\ncert_chain = {chain:?}\nkey = {key:?}\nca = {root:?}\nversions = \"1.3\"\n\
             fragment_size = 500\n"
        ))
        .unwrap()
    };
    let bf = PaeFactory::new(section("authenticator", &p.server, "br"), PmkCache::new()).unwrap();
    let nf = PaeFactory::new(section("supplicant", &p.client, "node"), PmkCache::new()).unwrap();
    let (br, node) = run(&bf, &nf, true, |_, _, _| false);
    assert_eq!(success_pmkid(&br), success_pmkid(&node));
    // Fragments of at most 500 octets of type-data: no PDU much above that.
    assert!(br.sent.iter().all(|p| p.len() <= 500 + 4 + 5));
}

// ---- garbage ----

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn garbage_never_panics(frames in proptest::collection::vec(
        proptest::collection::vec(any::<u8>(), 0..80), 1..8)
    ) {
        let (bf, nf) = pae_pair(vec![psk("br", PSK)], vec![psk("node-2", PSK)], |c| {
            c.mka = Some(MkaSettings::default());
        });
        let mut side = Side::default();
        let mut sessions: Vec<Box<dyn KmpSession>> = vec![
            bf.new_initiator(ctx(BR, NODE, Role::Initiator, 1)).unwrap(),
            nf.new_initiator(ctx(NODE, BR, Role::Initiator, 2)).unwrap(),
        ];
        for f in [&bf, &nf] {
            if let Ok(s) = f.new_responder(ctx(BR, NODE, Role::Responder, 3), &frames[0]) {
                sessions.push(s);
            }
        }
        for s in sessions.iter_mut() {
            let _ = s.start(Instant::ZERO);
            drain(s.as_mut(), &mut side);
            for (i, f) in frames.iter().enumerate() {
                let now = Instant::from_micros(u64::try_from(i).unwrap() * 700_000);
                // Valid EAPOL headers around the garbage reach the EAP and MKA parsers too.
                let mut framed = vec![3, (f.first().copied().unwrap_or(0)) % 6, 0, 0];
                framed[2..4].copy_from_slice(&u16::try_from(f.len()).unwrap().to_be_bytes());
                framed.extend_from_slice(f);
                let _ = s.handle_datagram(now, f);
                let _ = s.handle_datagram(now, &framed);
                s.handle_timeout(now);
                drain(s.as_mut(), &mut side);
            }
        }
        prop_assert!(side.installs.is_empty());
        prop_assert!(bf.pmk_cache().get(BR, NODE).is_none());
    }
}
