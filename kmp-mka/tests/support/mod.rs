//! Shared by the PAE integration tests that run on real time: a driver for one supplicant PAE
//! and one authenticator PAE (KMP ID 1) in this process, the 4-way handshake (KMP ID 6) over
//! the PMK caches they filled, and a test PKI (ECDSA P-256) written as PEM files.
//!
//! Each test binary compiles this module on its own and uses only part of it.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::Duration as StdDuration;

use kmp_api::session::{Action, KeyInstall, KmpFactory, KmpSession, Outcome, Role, SessionContext};
use kmp_api::{ExtendedAddress, Instant, RngHandle};
use kmp_mka::handshake::{GtkSet, HandshakeConfig, HandshakeFactory, PmkCache};
use kmp_mka::pae::PaeFactory;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, date_time_ymd,
};

pub(crate) const BR: ExtendedAddress = ExtendedAddress([2, 0, 0, 0, 0, 0, 0, 1]);
pub(crate) const NODE: ExtendedAddress = ExtendedAddress([2, 0, 0, 0, 0, 0, 0, 2]);

pub(crate) fn ctx(
    local: ExtendedAddress,
    peer: ExtendedAddress,
    role: Role,
    now: Instant,
) -> SessionContext {
    SessionContext {
        local,
        peer,
        role,
        rng: RngHandle::os(),
        now,
        open_responder_sessions: 0,
    }
}

/// What one side did.
#[derive(Default, Debug)]
pub(crate) struct Side {
    pub(crate) installs: Vec<KeyInstall>,
    pub(crate) outcomes: Vec<Outcome>,
    pub(crate) sent: Vec<Vec<u8>>,
    pub(crate) errors: Vec<String>,
}

pub(crate) fn drain(s: &mut dyn KmpSession, side: &mut Side) -> Vec<Vec<u8>> {
    let mut out = vec![];
    while let Some(a) = s.poll_action() {
        match a {
            Action::Send(p) => {
                side.sent.push(p.clone());
                out.push(p);
            }
            Action::InstallKeys(k) => side.installs.push(k),
            Action::RemoveKeys(_) => {}
            Action::Finished(o) => side.outcomes.push(o),
        }
    }
    out
}

/// A monotonic clock in project time, from the start of a run.
struct Clock(std::time::Instant);

impl Clock {
    fn now(&self) -> Instant {
        Instant::from_micros(u64::try_from(self.0.elapsed().as_micros()).unwrap())
    }
}

/// Runs a Wi-SUN join on real time: the node's initiator session (supplicant) sends its first
/// frame, the border router's responder session (authenticator, made by `br` from that frame)
/// answers; frames are delivered at once, timers fire when due (the pass-through session's
/// backend polls among them). Ends when `done(br, node)` holds or after `limit`.
pub(crate) fn join(
    br: &PaeFactory,
    node: &PaeFactory,
    limit: StdDuration,
    done: impl Fn(&Side, &Side) -> bool,
) -> (Side, Side) {
    join_with(br, node, limit, done)
}

/// [`join`] with any KMP ID 1 factory as the border router's (e.g. one from the registry).
pub(crate) fn join_with(
    br: &dyn KmpFactory,
    node: &PaeFactory,
    limit: StdDuration,
    done: impl Fn(&Side, &Side) -> bool,
) -> (Side, Side) {
    let clock = Clock(std::time::Instant::now());
    let (mut bs, mut ns) = (Side::default(), Side::default());
    let mut n = node
        .new_initiator(ctx(NODE, BR, Role::Initiator, clock.now()))
        .unwrap();
    n.start(clock.now()).unwrap();
    let mut to_br = drain(n.as_mut(), &mut ns);
    let mut to_node: Vec<Vec<u8>> = vec![];
    let mut b: Option<Box<dyn KmpSession>> = None;
    loop {
        while !to_br.is_empty() || !to_node.is_empty() {
            for p in std::mem::take(&mut to_br) {
                if b.is_none() {
                    match br.new_responder(ctx(BR, NODE, Role::Responder, clock.now()), &p) {
                        Ok(s) => b = Some(s),
                        Err(e) => {
                            bs.errors.push(e.to_string());
                            continue;
                        }
                    }
                }
                let s = b.as_mut().unwrap();
                if let Err(e) = s.handle_datagram(clock.now(), &p) {
                    bs.errors.push(e.to_string());
                }
                to_node.extend(drain(s.as_mut(), &mut bs));
            }
            for p in std::mem::take(&mut to_node) {
                if let Err(e) = n.handle_datagram(clock.now(), &p) {
                    ns.errors.push(e.to_string());
                }
                to_br.extend(drain(n.as_mut(), &mut ns));
            }
        }
        if done(&bs, &ns) || clock.0.elapsed() > limit {
            return (bs, ns);
        }
        let next = [b.as_ref().and_then(|s| s.poll_timeout()), n.poll_timeout()]
            .into_iter()
            .flatten()
            .min();
        let now = clock.now();
        let wait = next.map_or(StdDuration::from_millis(10), |t| {
            StdDuration::from_micros(t.saturating_duration_since(now).as_micros())
        });
        std::thread::sleep(wait.min(StdDuration::from_millis(10)));
        let now = clock.now();
        if let Some(s) = b.as_mut()
            && s.poll_timeout().is_some_and(|t| t <= now)
        {
            s.handle_timeout(now);
            to_node.extend(drain(s.as_mut(), &mut bs));
        }
        if n.poll_timeout().is_some_and(|t| t <= now) {
            n.handle_timeout(now);
            to_br.extend(drain(n.as_mut(), &mut ns));
        }
    }
}

/// Both sides have an outcome.
pub(crate) fn both(b: &Side, n: &Side) -> bool {
    !b.outcomes.is_empty() && !n.outcomes.is_empty()
}

/// The PMKID of a side's single success.
pub(crate) fn success_pmkid(side: &Side) -> Vec<u8> {
    match side.outcomes.as_slice() {
        [Outcome::Success(sa)] => {
            assert_eq!(sa.keys_installed, 0);
            sa.session_id.clone()
        }
        other => panic!(
            "expected one success, got {other:?} (errors {:?})",
            side.errors
        ),
    }
}

/// The 4-way handshake (KMP ID 6) over the caches the EAP run filled, authenticator first;
/// both sides must finish and install the same TK, which they can only if their PMKs (so
/// their MSKs) agree. Returns the TK.
pub(crate) fn four_way(br_cache: &PmkCache, node_cache: &PmkCache) -> Vec<u8> {
    let cfg = || HandshakeConfig::from_toml("retransmit_ms = 100").unwrap();
    let (a6, _) = HandshakeFactory::pair(cfg(), br_cache.clone(), GtkSet::new()).unwrap();
    let (s6, _) = HandshakeFactory::pair(cfg(), node_cache.clone(), GtkSet::new()).unwrap();
    let now = Instant::ZERO;
    let mut a = a6
        .new_initiator(ctx(BR, NODE, Role::Initiator, now))
        .unwrap();
    let (mut asd, mut ssd) = (Side::default(), Side::default());
    a.start(now).unwrap();
    let m1 = drain(a.as_mut(), &mut asd);
    let mut s = s6
        .new_responder(ctx(NODE, BR, Role::Responder, now), &m1[0])
        .unwrap();
    let mut to_s = m1;
    for _ in 0..4 {
        let mut to_a = vec![];
        for p in to_s.drain(..) {
            s.handle_datagram(now, &p).unwrap();
            to_a.extend(drain(s.as_mut(), &mut ssd));
        }
        for p in to_a {
            a.handle_datagram(now, &p).unwrap();
            to_s.extend(drain(a.as_mut(), &mut asd));
        }
    }
    assert!(
        matches!(asd.outcomes.as_slice(), [Outcome::Success(_)]),
        "authenticator 4-way: {asd:?}"
    );
    assert!(
        matches!(ssd.outcomes.as_slice(), [Outcome::Success(_)]),
        "supplicant 4-way: {ssd:?}"
    );
    let ak = &asd.installs[0].link_keys[0];
    let sk = &ssd.installs[0].link_keys[0];
    assert_eq!(ak.key, sk.key, "both ends hold the same TK");
    ak.key.expose().to_vec()
}

/// A join's end: both PAEs succeeded with the same PMKID and PMK, then the 4-way handshake
/// agrees on a TK.
pub(crate) fn check_joined(br: &Side, node: &Side, br_cache: &PmkCache, node_cache: &PmkCache) {
    assert_eq!(success_pmkid(br), success_pmkid(node));
    let be = br_cache.get(BR, NODE).expect("authenticator PMK cached");
    let ne = node_cache.get(NODE, BR).expect("supplicant PMK cached");
    assert_eq!(be.pmk, ne.pmk, "both PAEs derived the same PMK");
    assert_eq!(four_way(br_cache, node_cache).len(), 16);
}

// ---- test PKI ----

/// PEM files: `ca.pem`, `server.pem`/`server.key` (CN server.test, serverAuth),
/// `client.pem`/`client.key` (CN client.test, clientAuth), and `rogue-client.pem`/`.key` from
/// a CA nobody trusts.
pub(crate) fn write_pki(dir: &Path) {
    let ca = |cn: &str| {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        p.not_before = date_time_ymd(2025, 1, 1);
        p.not_after = date_time_ymd(2045, 1, 1);
        let k = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        (p, k)
    };
    let leaf =
        |name: &str, eku: ExtendedKeyUsagePurpose, issuer: &Issuer<'_, &KeyPair>, file: &str| {
            let mut p = CertificateParams::new(vec![name.to_string()]).unwrap();
            p.distinguished_name.push(DnType::CommonName, name);
            p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            p.extended_key_usages = vec![eku];
            p.not_before = date_time_ymd(2025, 1, 1);
            p.not_after = date_time_ymd(2045, 1, 1);
            let k = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
            let cert = p.signed_by(&k, issuer).unwrap();
            std::fs::write(dir.join(format!("{file}.pem")), cert.pem()).unwrap();
            std::fs::write(dir.join(format!("{file}.key")), k.serialize_pem()).unwrap();
        };
    let (rp, rk) = ca("Pass-through Test CA");
    std::fs::write(dir.join("ca.pem"), rp.self_signed(&rk).unwrap().pem()).unwrap();
    let issuer = Issuer::from_params(&rp, &rk);
    leaf(
        "server.test",
        ExtendedKeyUsagePurpose::ServerAuth,
        &issuer,
        "server",
    );
    leaf(
        "client.test",
        ExtendedKeyUsagePurpose::ClientAuth,
        &issuer,
        "client",
    );
    let (gp, gk) = ca("Rogue CA");
    let rogue = Issuer::from_params(&gp, &gk);
    leaf(
        "client.test",
        ExtendedKeyUsagePurpose::ClientAuth,
        &rogue,
        "rogue-client",
    );
}
