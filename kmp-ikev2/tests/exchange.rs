//! IKEv2 exchanges between our initiator and our responder through the session contract:
//! PSK success with link keys that pair up, wrong PSK, no common proposal, INVALID_KE_PAYLOAD
//! retry, cookies, retransmission and replay, tampering, delete.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use kmp_api::session::{
    Action, FailureReason, KeyDirection, KeyInstall, KeyRemoval, KeySelector, KmpFactory,
    KmpSession, Outcome, Role, SessionContext,
};
use kmp_api::{Duration, ExtendedAddress, Instant, KmpId, RngHandle};
use kmp_ikev2::config::Ikev2Config;
use kmp_ikev2::session::Ikev2Factory;

const I: ExtendedAddress = ExtendedAddress([0x02, 0, 0, 0, 0, 0, 0, 0x01]);
const R: ExtendedAddress = ExtendedAddress([0x02, 0, 0, 0, 0, 0, 0, 0x02]);

fn factory(toml: &str) -> Arc<dyn KmpFactory> {
    Arc::new(Ikev2Factory::new(Ikev2Config::from_toml(toml).unwrap()).unwrap())
}

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

#[derive(Default)]
struct Side {
    installs: Vec<KeyInstall>,
    outcomes: Vec<Outcome>,
    removals: usize,
    removed: Vec<KeyRemoval>,
    sent: Vec<Vec<u8>>,
}

/// Drains a session's actions: sends go to `wire`, the rest is recorded.
fn drain(s: &mut dyn KmpSession, side: &mut Side, wire: &mut Vec<Vec<u8>>) {
    while let Some(a) = s.poll_action() {
        match a {
            Action::Send(p) => {
                side.sent.push(p.clone());
                wire.push(p);
            }
            Action::InstallKeys(k) => side.installs.push(k),
            Action::RemoveKeys(r) => {
                side.removals += 1;
                side.removed.push(r);
            }
            Action::Finished(o) => side.outcomes.push(o),
        }
    }
}

struct Pair {
    rf: Arc<dyn KmpFactory>,
    i: Box<dyn KmpSession>,
    r: Option<Box<dyn KmpSession>>,
    is: Side,
    rs: Side,
    now: Instant,
    /// Responder sessions the factory made (cookie-only ones included).
    responders_made: usize,
    open_responders: usize,
}

impl Pair {
    fn new(ic: &str, rc: &str) -> Pair {
        let i = factory(ic)
            .new_initiator(ctx(I, R, Role::Initiator, 1, 0))
            .unwrap();
        Pair {
            rf: factory(rc),
            i,
            r: None,
            is: Side::default(),
            rs: Side::default(),
            now: Instant::ZERO,
            responders_made: 0,
            open_responders: 0,
        }
    }

    fn start(&mut self) -> Vec<Vec<u8>> {
        self.i.start(self.now).unwrap();
        let mut w = vec![];
        drain(self.i.as_mut(), &mut self.is, &mut w);
        w
    }

    /// Delivers one PDU to the responder (creating it as the runtime would); returns replies.
    fn deliver_to_r(&mut self, pdu: &[u8]) -> Vec<Vec<u8>> {
        if self.r.as_ref().is_none_or(|r| r.is_closed()) {
            self.responders_made += 1;
            let c = ctx(
                R,
                I,
                Role::Responder,
                2 + self.responders_made as u64,
                self.open_responders,
            );
            match self.rf.new_responder(c, pdu) {
                Ok(s) => self.r = Some(s),
                Err(_) => return vec![],
            }
        }
        let r = self.r.as_mut().unwrap();
        let _ = r.handle_datagram(self.now, pdu);
        let mut w = vec![];
        drain(r.as_mut(), &mut self.rs, &mut w);
        w
    }

    fn deliver_to_i(&mut self, pdu: &[u8]) -> Vec<Vec<u8>> {
        let _ = self.i.handle_datagram(self.now, pdu);
        let mut w = vec![];
        drain(self.i.as_mut(), &mut self.is, &mut w);
        w
    }

    /// Runs the exchange to its end with a perfect link.
    fn run(&mut self) {
        let mut to_r = self.start();
        for _ in 0..20 {
            let mut to_i = vec![];
            for p in to_r.drain(..) {
                to_i.extend(self.deliver_to_r(&p));
            }
            for p in to_i {
                to_r.extend(self.deliver_to_i(&p));
            }
            if to_r.is_empty() {
                break;
            }
        }
    }
}

fn success(side: &Side) -> bool {
    matches!(side.outcomes.as_slice(), [Outcome::Success(_)])
}

fn failure(side: &Side) -> Option<FailureReason> {
    match side.outcomes.as_slice() {
        [Outcome::Failure(f)] => Some(f.clone()),
        _ => None,
    }
}

const PSK: &str = "psk = \"a shared secret for the test\"\n";

#[test]
fn psk_exchange_installs_directional_link_keys_that_pair_up() {
    let mut p = Pair::new(PSK, PSK);
    p.run();
    assert!(success(&p.is), "{:?}", p.is.outcomes);
    assert!(success(&p.rs), "{:?}", p.rs.outcomes);
    // IKE_SA_INIT and IKE_AUTH: two requests, two responses.
    assert_eq!(p.is.sent.len(), 2);
    assert_eq!(p.rs.sent.len(), 2);
    let (ik, rk) = (&p.is.installs[0], &p.rs.installs[0]);
    assert_eq!(ik.owner, KmpId::Ikev2);
    assert_eq!(ik.peer, R);
    assert_eq!(rk.peer, I);
    let key = |k: &KeyInstall, d| {
        k.link_keys
            .iter()
            .find(|l| l.direction == d)
            .unwrap()
            .key
            .expose()
            .to_vec()
    };
    assert_eq!(
        key(ik, KeyDirection::Transmit),
        key(rk, KeyDirection::Receive)
    );
    assert_eq!(
        key(ik, KeyDirection::Receive),
        key(rk, KeyDirection::Transmit)
    );
    assert_ne!(
        key(ik, KeyDirection::Transmit),
        key(ik, KeyDirection::Receive)
    );
    assert_eq!(key(ik, KeyDirection::Transmit).len(), 16);
    // The child SA's SPIs are stored with the keys, the same on both sides.
    assert_eq!(ik.upper_layer_sas[0].sa_id, rk.upper_layer_sas[0].sa_id);
    assert_eq!(ik.upper_layer_sas[0].sa_id.len(), 8);
}

#[test]
fn every_configured_proposal_works() {
    for prop in [
        "aes128ccm8-prfsha256-ecp256",
        "aes128ccm16-prfsha256-ecp256",
        "aes128gcm16-prfsha256-ecp256",
        "aes128-sha256-prfsha256-ecp256",
        "aes128ccm8-prfaes128cmac-ecp256",
        "aes128gcm16-prfsha256-modp2048",
    ] {
        for child in ["aes128ccm8", "aes128gcm16", "aes128-sha256"] {
            let c = format!("{PSK}ike_proposals = [\"{prop}\"]\nchild_proposals = [\"{child}\"]\n");
            let mut p = Pair::new(&c, &c);
            p.run();
            assert!(
                success(&p.is) && success(&p.rs),
                "{prop} / {child}: {:?} {:?}",
                p.is.outcomes,
                p.rs.outcomes
            );
        }
    }
}

#[test]
fn wrong_psk_fails_with_authentication_failed_and_installs_nothing() {
    let mut p = Pair::new(PSK, "psk = \"another secret\"\n");
    p.run();
    assert_eq!(failure(&p.rs), Some(FailureReason::AuthenticationFailed));
    assert_eq!(failure(&p.is), Some(FailureReason::AuthenticationFailed));
    assert!(p.is.installs.is_empty() && p.rs.installs.is_empty());
}

#[test]
fn no_common_proposal_is_no_proposal_chosen() {
    let mut p = Pair::new(
        &format!("{PSK}ike_proposals = [\"aes128ccm8-prfsha256-ecp256\"]"),
        &format!("{PSK}ike_proposals = [\"aes128gcm16-prfsha256-ecp256\"]"),
    );
    p.run();
    assert_eq!(failure(&p.is), Some(FailureReason::NegotiationFailed));
    assert_eq!(failure(&p.rs), Some(FailureReason::NegotiationFailed));
    // And for the child SA.
    let mut p = Pair::new(
        &format!("{PSK}child_proposals = [\"aes128ccm8\"]"),
        &format!("{PSK}child_proposals = [\"aes128gcm16\"]"),
    );
    p.run();
    assert_eq!(failure(&p.is), Some(FailureReason::NegotiationFailed));
    assert_eq!(failure(&p.rs), Some(FailureReason::NegotiationFailed));
    assert!(p.is.installs.is_empty() && p.rs.installs.is_empty());
}

#[test]
fn invalid_ke_payload_makes_the_initiator_retry_with_the_requested_group() {
    let mut p = Pair::new(
        &format!(
            "{PSK}ike_proposals = [\"aes128ccm8-prfsha256-ecp256\", \"aes128ccm8-prfsha256-modp2048\"]"
        ),
        &format!("{PSK}ike_proposals = [\"aes128ccm8-prfsha256-modp2048\"]"),
    );
    p.run();
    assert!(
        success(&p.is) && success(&p.rs),
        "{:?} {:?}",
        p.is.outcomes,
        p.rs.outcomes
    );
    // INIT (ecp256), INIT (modp2048), AUTH.
    assert_eq!(p.is.sent.len(), 3);
    // A group the initiator did not configure ends the exchange.
    let mut p = Pair::new(
        PSK,
        &format!("{PSK}ike_proposals = [\"aes128ccm8-prfsha256-modp2048\"]"),
    );
    p.run();
    assert_eq!(failure(&p.is), Some(FailureReason::NegotiationFailed));
}

#[test]
fn cookies_are_demanded_above_the_threshold_and_echoed() {
    let rc = format!("{PSK}half_open_cookie_threshold = 0\n");
    let mut p = Pair::new(PSK, &rc);
    p.run();
    assert!(
        success(&p.is) && success(&p.rs),
        "{:?} {:?}",
        p.is.outcomes,
        p.rs.outcomes
    );
    // The first responder was the stateless cookie answer; the second one ran the exchange.
    assert_eq!(p.responders_made, 2);
    assert_eq!(p.is.sent.len(), 3);
    // A wrong cookie gets another cookie, never a session.
    let mut p = Pair::new(PSK, &rc);
    let first = p.start();
    let cookie_reply = p.deliver_to_r(&first[0]);
    assert_eq!(cookie_reply.len(), 1);
    let mut forged = first[0].clone();
    // Same request without a cookie again: still only a cookie.
    let again = p.deliver_to_r(&forged);
    assert_eq!(again, cookie_reply);
    forged.truncate(10);
    assert!(p.deliver_to_r(&forged).is_empty());
    assert!(p.rs.outcomes.is_empty() && p.rs.installs.is_empty());
}

#[test]
fn lost_messages_are_retransmitted_with_backoff_and_answered_from_cache() {
    let cfg = format!("{PSK}retransmit_ms = 500\nmax_retransmits = 3\n");
    let mut p = Pair::new(&cfg, &cfg);
    let init = p.start();
    let lost_response = p.deliver_to_r(&init[0]);
    // The response is lost: after 500 ms the initiator sends the same request again.
    assert_eq!(
        p.i.poll_timeout(),
        Some(Instant::ZERO + Duration::from_millis(500))
    );
    p.now = Instant::ZERO + Duration::from_millis(500);
    p.i.handle_timeout(p.now);
    let mut w = vec![];
    drain(p.i.as_mut(), &mut p.is, &mut w);
    assert_eq!(w, init, "a retransmission repeats the request");
    // Back-off doubles.
    assert_eq!(
        p.i.poll_timeout(),
        Some(p.now + Duration::from_millis(1000))
    );
    // The responder answers the duplicate with the same response.
    let again = p.deliver_to_r(&w[0]);
    assert_eq!(again, lost_response);
    let auth = p.deliver_to_i(&again[0]);
    // IKE_AUTH response lost too, then the retransmitted request is answered from cache with
    // no second install.
    let resp1 = p.deliver_to_r(&auth[0]);
    let resp2 = p.deliver_to_r(&auth[0]);
    assert_eq!(resp1, resp2);
    assert_eq!(p.rs.installs.len(), 1);
    p.deliver_to_i(&resp2[0]);
    assert!(success(&p.is) && success(&p.rs));
    // An old IKE_SA_INIT request replayed at the established responder is rejected.
    assert!(p.deliver_to_r(&init[0]).is_empty());
    assert_eq!(p.rs.installs.len(), 1);
}

#[test]
fn retransmissions_run_out_into_a_timeout() {
    let cfg = format!("{PSK}retransmit_ms = 100\nmax_retransmits = 2\n");
    let mut p = Pair::new(&cfg, &cfg);
    p.start();
    for _ in 0..10 {
        let Some(t) = p.i.poll_timeout() else { break };
        p.now = t;
        p.i.handle_timeout(t);
        let mut w = vec![];
        drain(p.i.as_mut(), &mut p.is, &mut w);
    }
    assert_eq!(failure(&p.is), Some(FailureReason::Timeout { attempts: 3 }));
    assert_eq!(p.is.sent.len(), 3);
    // 100 + 200 + 400 ms.
    assert_eq!(p.now, Instant::ZERO + Duration::from_millis(700));
}

#[test]
fn a_tampered_ike_auth_is_dropped_and_the_genuine_one_still_works() {
    let mut p = Pair::new(PSK, PSK);
    let init = p.start();
    let resp = p.deliver_to_r(&init[0]);
    let auth = p.deliver_to_i(&resp[0]);
    for pos in [28 + 4, auth[0].len() / 2, auth[0].len() - 1] {
        let mut bad = auth[0].clone();
        bad[pos] ^= 0x01;
        assert!(
            p.deliver_to_r(&bad).is_empty(),
            "tampered at {pos} was answered"
        );
    }
    // Truncations never panic and are never answered.
    for n in 0..auth[0].len() {
        assert!(p.deliver_to_r(&auth[0][..n]).is_empty());
    }
    let ok = p.deliver_to_r(&auth[0]);
    p.deliver_to_i(&ok[0]);
    assert!(success(&p.is) && success(&p.rs));
}

#[test]
fn delete_tells_the_peer_which_removes_its_keys() {
    let mut p = Pair::new(PSK, PSK);
    p.run();
    assert!(success(&p.rs));
    p.i.delete(p.now);
    let mut w = vec![];
    drain(p.i.as_mut(), &mut p.is, &mut w);
    assert_eq!(w.len(), 1, "one INFORMATIONAL with a Delete");
    assert_eq!(p.is.removals, 1);
    let reply = p.deliver_to_r(&w[0]);
    assert_eq!(reply.len(), 1, "the delete is answered");
    assert_eq!(p.rs.removals, 1);
    assert!(p.r.as_ref().unwrap().is_closed());
    assert!(p.i.is_closed());
}

#[test]
fn garbage_never_panics_and_never_creates_a_responder() {
    let rf = factory(PSK);
    for len in 0u8..64 {
        let junk: Vec<u8> = (0..len)
            .map(|i: u8| i.wrapping_mul(37).wrapping_add(11))
            .collect();
        assert!(
            rf.new_responder(ctx(R, I, Role::Responder, 5, 0), &junk)
                .is_err()
        );
    }
    // A response, or a request with another exchange type, is no first message.
    let mut p = Pair::new(PSK, PSK);
    let init = p.start();
    let resp = p.deliver_to_r(&init[0]);
    assert!(
        rf.new_responder(ctx(R, I, Role::Responder, 6, 0), &resp[0])
            .is_err()
    );
}

const RKMP: &str = "psk = \"a shared secret for the test\"\nprofile = \"rkmp\"\n";

/// The RKMP profile: renumbered exchanges, no traffic selectors, the child SA becomes a
/// routing-protocol SA (under the RKMP SA) instead of link keys.
#[test]
fn rkmp_profile_establishes_a_routing_sa_under_its_rkmp_sa() {
    let mut p = Pair::new(RKMP, RKMP);
    assert_eq!(p.rf.kmp_id(), kmp_ikev2::config::RKMP_KMP_ID);
    p.run();
    assert!(
        success(&p.is) && success(&p.rs),
        "{:?} {:?}",
        p.is.outcomes,
        p.rs.outcomes
    );
    // RKMP_SA_INIT is exchange type 240 on the wire (octet 18 of the header), RKMP_SA_AUTH 241.
    assert_eq!(p.is.sent[0][18], 240);
    assert_eq!(p.is.sent[1][18], 241);
    assert_eq!(p.rs.sent[0][18], 240);
    let (ik, rk) = (&p.is.installs[0], &p.rs.installs[0]);
    assert!(ik.link_keys.is_empty() && rk.link_keys.is_empty());
    assert_eq!(ik.owner, kmp_ikev2::config::RKMP_KMP_ID);
    let find = |k: &KeyInstall, kind: &str| {
        k.upper_layer_sas
            .iter()
            .find(|s| s.kind == kind)
            .unwrap()
            .clone()
    };
    let (i_parent, i_routing) = (find(ik, "rkmp-sa"), find(ik, "rkmp-routing"));
    let (r_parent, r_routing) = (find(rk, "rkmp-sa"), find(rk, "rkmp-routing"));
    assert_eq!(i_parent.sa_id, r_parent.sa_id);
    assert_eq!(i_routing.sa_id, r_routing.sa_id);
    // Routing protocol 1 (RPL) first, then the child SA's SPIs.
    assert_eq!(&i_routing.sa_id[..2], &[0, 1]);
    assert_eq!(i_routing.sa_id.len(), 10);
    assert_eq!(i_routing.parent.as_deref(), Some(i_parent.sa_id.as_slice()));
    // Both sides hold the same keys for each direction, and the directions differ.
    let key = |sa: &kmp_api::session::UpperLayerSa, name: &str| {
        sa.keys
            .iter()
            .find(|(n, _)| n == name)
            .unwrap()
            .1
            .expose()
            .to_vec()
    };
    assert_eq!(key(&i_routing, "key-i2r"), key(&r_routing, "key-i2r"));
    assert_eq!(key(&i_routing, "key-r2i"), key(&r_routing, "key-r2i"));
    assert_ne!(key(&i_routing, "key-i2r"), key(&i_routing, "key-r2i"));
    assert_eq!(key(&i_parent, "SK_d"), key(&r_parent, "SK_d"));
}

#[test]
fn rkmp_and_ikev2_do_not_mix_and_routing_protocols_must_agree() {
    // An IKEv2 IKE_SA_INIT is no RKMP_SA_INIT, and the other way round.
    let mut p = Pair::new(PSK, RKMP);
    let init = p.start();
    assert!(p.deliver_to_r(&init[0]).is_empty());
    assert!(p.rs.outcomes.is_empty() && p.responders_made == 1 && p.r.is_none());
    let mut p = Pair::new(RKMP, PSK);
    let init = p.start();
    assert!(p.deliver_to_r(&init[0]).is_empty());
    // Another routing protocol: no SA.
    let mut p = Pair::new(RKMP, &format!("{RKMP}routing_protocol = 2\n"));
    p.run();
    assert_eq!(failure(&p.is), Some(FailureReason::NegotiationFailed));
    assert_eq!(failure(&p.rs), Some(FailureReason::NegotiationFailed));
    assert!(p.is.installs.is_empty() && p.rs.installs.is_empty());
    // Configurable exchange types, both sides alike.
    let c = format!("{RKMP}rkmp_exchange_types = [250, 251, 252]\n");
    let mut p = Pair::new(&c, &c);
    p.run();
    assert!(success(&p.is) && success(&p.rs));
    assert_eq!(p.is.sent[0][18], 250);
    // Bad configurations.
    for bad in [
        format!("{RKMP}rkmp_exchange_types = [34, 241, 242]\n"),
        format!("{RKMP}rkmp_exchange_types = [240, 240, 242]\n"),
        format!("{PSK}routing_protocol = 1\n"),
        format!("{PSK}profile = \"ipsec\"\n"),
    ] {
        assert!(Ikev2Config::from_toml(&bad).is_err(), "{bad}");
    }
}

// ----- CREATE_CHILD_SA rekeys, liveness (DECISIONS I10–I12) -----

impl Pair {
    /// Delivers PDUs both ways until the link is quiet.
    fn pump(&mut self, mut to_r: Vec<Vec<u8>>, mut to_i: Vec<Vec<u8>>) {
        for _ in 0..20 {
            for p in std::mem::take(&mut to_r) {
                to_i.extend(self.deliver_to_r(&p));
            }
            for p in std::mem::take(&mut to_i) {
                to_r.extend(self.deliver_to_i(&p));
            }
            if to_r.is_empty() && to_i.is_empty() {
                break;
            }
        }
    }

    /// Moves time on and runs both sides' timers; returns what they sent (to R, to I).
    fn advance(&mut self, secs: u64) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
        self.now += Duration::from_secs(secs);
        let (mut to_r, mut to_i) = (vec![], vec![]);
        self.i.handle_timeout(self.now);
        drain(self.i.as_mut(), &mut self.is, &mut to_r);
        if let Some(r) = self.r.as_mut() {
            r.handle_timeout(self.now);
            drain(r.as_mut(), &mut self.rs, &mut to_i);
        }
        (to_r, to_i)
    }

    fn tick(&mut self, secs: u64) {
        let (a, b) = self.advance(secs);
        self.pump(a, b);
    }
}

fn link_key(k: &KeyInstall, d: KeyDirection) -> Vec<u8> {
    k.link_keys
        .iter()
        .find(|l| l.direction == d)
        .unwrap()
        .key
        .expose()
        .to_vec()
}

fn message_id(raw: &[u8]) -> u32 {
    u32::from_be_bytes(raw[20..24].try_into().unwrap())
}

/// The exchange type octet of a message.
fn exchange(raw: &[u8]) -> u8 {
    raw[18]
}

const CREATE_CHILD_SA: u8 = 36;
const INFORMATIONAL: u8 = 37;

fn removed_sa(side: &Side) -> Vec<Vec<u8>> {
    side.removed
        .iter()
        .filter_map(|r| match &r.which {
            KeySelector::UpperLayerSa {
                sa_id,
                revoke_children: false,
            } => Some(sa_id.clone()),
            _ => None,
        })
        .collect()
}

/// Both sides hold the second install's keys, paired up, different from the first's; the old
/// child SA's record is removed on both sides and nothing else.
fn assert_child_rekeyed(p: &Pair) {
    assert_eq!(p.is.installs.len(), 2, "{:?}", p.is.outcomes);
    assert_eq!(p.rs.installs.len(), 2);
    let (i_old, i_new) = (&p.is.installs[0], &p.is.installs[1]);
    let (r_old, r_new) = (&p.rs.installs[0], &p.rs.installs[1]);
    for d in [KeyDirection::Transmit, KeyDirection::Receive] {
        assert_ne!(link_key(i_old, d), link_key(i_new, d));
    }
    assert_eq!(
        link_key(i_new, KeyDirection::Transmit),
        link_key(r_new, KeyDirection::Receive)
    );
    assert_eq!(
        link_key(i_new, KeyDirection::Receive),
        link_key(r_new, KeyDirection::Transmit)
    );
    // The new link keys replace the old in the PIB (same lookup, device and direction).
    assert_eq!(i_new.link_keys[0].lookup, i_old.link_keys[0].lookup);
    let (old_id, new_id) = (
        &i_old.upper_layer_sas[0].sa_id,
        &i_new.upper_layer_sas[0].sa_id,
    );
    assert_ne!(old_id, new_id);
    assert_eq!(new_id, &r_new.upper_layer_sas[0].sa_id);
    assert_eq!(&r_old.upper_layer_sas[0].sa_id, old_id);
    assert_eq!(removed_sa(&p.is), vec![old_id.clone()]);
    assert_eq!(removed_sa(&p.rs), vec![old_id.clone()]);
    assert_eq!(p.is.removals, 1);
    assert_eq!(p.rs.removals, 1);
    assert!(!p.i.is_closed() && !p.r.as_ref().unwrap().is_closed());
}

#[test]
fn initiator_rekeys_the_child_sa_and_deletes_the_old_one() {
    for extra in ["", "pfs = true\n"] {
        let ic = format!("{PSK}rekey_child_after_secs = 100\n{extra}");
        let mut p = Pair::new(&ic, PSK);
        p.run();
        assert!(success(&p.is) && success(&p.rs));
        assert_eq!(
            p.i.poll_timeout(),
            Some(Instant::ZERO + Duration::from_secs(100))
        );
        p.tick(100);
        assert_child_rekeyed(&p);
        // CREATE_CHILD_SA (message 2), then INFORMATIONAL Delete of the old child (3).
        let sent: Vec<(u8, u32)> = p.is.sent[2..]
            .iter()
            .map(|m| (exchange(m), message_id(m)))
            .collect();
        assert_eq!(
            sent,
            vec![(CREATE_CHILD_SA, 2), (INFORMATIONAL, 3)],
            "{extra}"
        );
        assert_eq!(p.rs.sent.len(), 4);
        // The next rekey comes a period later, and works again.
        p.tick(100);
        assert_eq!(p.is.installs.len(), 3);
        assert_eq!(
            link_key(&p.is.installs[2], KeyDirection::Transmit),
            link_key(&p.rs.installs[2], KeyDirection::Receive)
        );
    }
}

#[test]
fn responder_rekeys_the_child_sa_and_deletes_the_old_one() {
    let rc = format!("{PSK}rekey_child_after_secs = 50\n");
    let mut p = Pair::new(PSK, &rc);
    p.run();
    p.tick(50);
    assert_child_rekeyed(&p);
    // The responder's requests have their own message IDs, from 0.
    let sent: Vec<(u8, u32, bool)> = p.rs.sent[2..]
        .iter()
        .map(|m| (exchange(m), message_id(m), m[19] & 0x20 != 0))
        .collect();
    assert_eq!(
        sent,
        vec![(CREATE_CHILD_SA, 0, false), (INFORMATIONAL, 1, false)]
    );
    // The IKE SA still works: the initiator's delete (its message 2) is honoured.
    p.i.delete(p.now);
    let mut w = vec![];
    drain(p.i.as_mut(), &mut p.is, &mut w);
    assert_eq!(message_id(&w[0]), 2);
    p.deliver_to_r(&w[0]);
    assert!(p.r.as_ref().unwrap().is_closed());
}

#[test]
fn ike_sa_rekey_moves_to_new_spis_and_message_ids_restart() {
    let ic = format!("{PSK}rekey_ike_after_secs = 100\nrekey_child_after_secs = 150\n");
    let mut p = Pair::new(&ic, PSK);
    p.run();
    let old_spi_i = p.is.sent[0][..8].to_vec();
    let old_spi_r = p.rs.sent[0][8..16].to_vec();
    p.tick(100);
    // CREATE_CHILD_SA (2) and Delete of the old IKE SA (3), both on the old SA.
    let sent: Vec<(u8, u32)> = p.is.sent[2..]
        .iter()
        .map(|m| (exchange(m), message_id(m)))
        .collect();
    assert_eq!(sent, vec![(CREATE_CHILD_SA, 2), (INFORMATIONAL, 3)]);
    assert!(p.is.sent[2..].iter().all(|m| m[..8] == old_spi_i[..]));
    // No keys change, none are removed.
    assert_eq!((p.is.installs.len(), p.rs.installs.len()), (1, 1));
    assert_eq!((p.is.removals, p.rs.removals), (0, 0));
    // The child SA, rekeyed 50 s later, uses the new IKE SA (new SPIs, message ID 0) and its
    // SK_d: both sides still derive the same keys.
    p.tick(50);
    let m = &p.is.sent[4];
    assert_eq!((exchange(m), message_id(m)), (CREATE_CHILD_SA, 0));
    assert_ne!(m[..8], old_spi_i[..]);
    assert_ne!(m[8..16], old_spi_r[..]);
    assert_child_rekeyed(&p);
    // A further INFORMATIONAL (delete) on the new SA: message 2 after the rekey and its delete.
    p.i.delete(p.now);
    let mut w = vec![];
    drain(p.i.as_mut(), &mut p.is, &mut w);
    assert_eq!((exchange(&w[0]), message_id(&w[0])), (INFORMATIONAL, 2));
    let reply = p.deliver_to_r(&w[0]);
    assert_eq!(reply.len(), 1);
    assert!(p.r.as_ref().unwrap().is_closed());
}

#[test]
fn responder_rekeys_the_ike_sa_and_becomes_its_initiator() {
    let rc = format!("{PSK}rekey_ike_after_secs = 30\n");
    let ic = format!("{PSK}dpd_secs = 20\n");
    let mut p = Pair::new(&ic, &rc);
    p.run();
    p.tick(30);
    let m = &p.rs.sent[2];
    assert_eq!((exchange(m), message_id(m)), (CREATE_CHILD_SA, 0));
    // The initiator's liveness check runs on the new IKE SA, where it is the responder:
    // I flag clear, message ID 0, answered (at 50 s, before the responder's next rekey at 60).
    p.tick(20);
    let dpd = p.is.sent.last().unwrap().clone();
    assert_eq!((exchange(&dpd), message_id(&dpd)), (INFORMATIONAL, 0));
    assert_eq!(dpd[19] & 0x08, 0, "I flag clear on the new SA");
    let old_spis = &p.rs.sent[0][..16];
    assert_ne!(dpd[..8], old_spis[..8]);
    assert_ne!(dpd[8..16], old_spis[8..16]);
    let answer = p.rs.sent.last().unwrap();
    assert_eq!((exchange(answer), message_id(answer)), (INFORMATIONAL, 0));
    assert_eq!(
        answer[19] & 0x28,
        0x28,
        "a response from the new SA's initiator"
    );
    assert_eq!((p.is.removals, p.rs.removals), (0, 0));
    assert!(!p.i.is_closed());
}

#[test]
fn a_replayed_rekey_request_is_answered_from_cache_not_applied_twice() {
    let ic = format!("{PSK}rekey_child_after_secs = 100\n");
    let mut p = Pair::new(&ic, PSK);
    p.run();
    let (to_r, _) = p.advance(100);
    assert_eq!(to_r.len(), 1);
    let first = p.deliver_to_r(&to_r[0]);
    let again = p.deliver_to_r(&to_r[0]);
    assert_eq!(first, again, "the cached response");
    assert_eq!(p.rs.installs.len(), 2, "installed once");
    assert_eq!(p.rs.removals, 1);
    // The initiator takes the answer once; a duplicate answer is no response it waits for.
    p.pump(vec![], first.clone());
    assert_child_rekeyed(&p);
    p.pump(vec![], first);
    assert_eq!(p.is.installs.len(), 2);
}

#[test]
fn liveness_check_with_a_silent_peer_removes_the_keys_and_closes() {
    let ic = format!("{PSK}dpd_secs = 10\n");
    let mut p = Pair::new(&ic, PSK);
    p.run();
    // With an answering peer the check is quiet.
    p.tick(10);
    assert_eq!(exchange(p.is.sent.last().unwrap()), INFORMATIONAL);
    assert_eq!(p.is.sent.len(), 3);
    assert_eq!(p.is.removals, 0);
    // Now the peer is gone: the check and its retransmissions (1, 2, 4, 8, 16, 32 s) go
    // unanswered, then the keys go.
    let (sent, _) = p.advance(10);
    assert_eq!(sent.len(), 1);
    let mut retransmits = 0;
    for _ in 0..200 {
        let (s, _) = p.advance(1);
        retransmits += s.len();
        if p.i.is_closed() {
            break;
        }
    }
    assert_eq!(retransmits, 5);
    assert!(p.i.is_closed());
    assert_eq!(p.is.removed.len(), 1);
    assert_eq!(p.is.removed[0].which, KeySelector::All);
    assert_eq!(
        p.is.outcomes.len(),
        1,
        "the earlier success stays the only outcome"
    );
}

#[test]
fn rkmp_child_rekey_replaces_the_routing_sa_under_the_same_parent() {
    let ic = format!("{RKMP}rekey_child_after_secs = 100\n");
    let mut p = Pair::new(&ic, RKMP);
    p.run();
    p.tick(100);
    assert_eq!(p.is.installs.len(), 2);
    assert_eq!(p.rs.installs.len(), 2);
    // Routing-protocol SA exchange type 242 on the wire.
    assert_eq!(exchange(&p.is.sent[2]), 242);
    let old = p.is.installs[0]
        .upper_layer_sas
        .iter()
        .find(|s| s.kind == "rkmp-routing")
        .unwrap()
        .clone();
    let parent = p.is.installs[0]
        .upper_layer_sas
        .iter()
        .find(|s| s.kind == "rkmp-sa")
        .unwrap()
        .sa_id
        .clone();
    let (i_new, r_new) = (&p.is.installs[1], &p.rs.installs[1]);
    assert!(i_new.link_keys.is_empty());
    assert_eq!(i_new.upper_layer_sas.len(), 1);
    let (i_sa, r_sa) = (&i_new.upper_layer_sas[0], &r_new.upper_layer_sas[0]);
    assert_eq!(i_sa.kind, "rkmp-routing");
    assert_eq!(i_sa.parent.as_deref(), Some(parent.as_slice()));
    assert_eq!(i_sa.sa_id, r_sa.sa_id);
    assert_ne!(i_sa.sa_id, old.sa_id);
    assert_eq!(&i_sa.sa_id[..2], &[0, 1]);
    assert_eq!(i_sa.keys, r_sa.keys);
    assert_ne!(i_sa.keys, old.keys);
    assert_eq!(removed_sa(&p.is), vec![old.sa_id.clone()]);
    assert_eq!(removed_sa(&p.rs), vec![old.sa_id]);
}

#[test]
fn rkmp_ike_sa_rekey_moves_the_routing_sa_under_the_new_rkmp_sa() {
    let ic = format!("{RKMP}rekey_ike_after_secs = 100\n");
    let mut p = Pair::new(&ic, RKMP);
    p.run();
    p.tick(100);
    for side in [&p.is, &p.rs] {
        assert_eq!(side.installs.len(), 2);
        let old_parent = &side.installs[0].upper_layer_sas[0];
        let new = &side.installs[1].upper_layer_sas;
        assert_eq!(new[0].kind, "rkmp-sa");
        assert_ne!(new[0].sa_id, old_parent.sa_id);
        assert_ne!(new[0].keys, old_parent.keys, "a new SK_d");
        assert_eq!(new[1].kind, "rkmp-routing");
        assert_eq!(new[1].sa_id, side.installs[0].upper_layer_sas[1].sa_id);
        assert_eq!(new[1].parent.as_ref(), Some(&new[0].sa_id));
        assert_eq!(removed_sa(side), vec![old_parent.sa_id.clone()]);
    }
    assert_eq!(
        p.is.installs[1].upper_layer_sas,
        p.rs.installs[1].upper_layer_sas
    );
}

#[test]
fn simultaneous_child_rekeys_end_in_exactly_one() {
    // RFC 7296 §2.8.1, simplified (DECISIONS I13): the request with the lower nonce loses.
    for seed_shift in 0..6u64 {
        let c = format!("{PSK}rekey_child_after_secs = 100\n");
        let mut p = Pair::new(&c, &c);
        // Vary the nonces between runs: a fresh initiator with another seed.
        p.i = factory(&c)
            .new_initiator(ctx(I, R, Role::Initiator, 10 + seed_shift, 0))
            .unwrap();
        p.run();
        let (to_r, to_i) = p.advance(100);
        assert_eq!((to_r.len(), to_i.len()), (1, 1), "both rekey at once");
        p.pump(to_r, to_i);
        assert_child_rekeyed(&p);
        // The next rekeys are a period later, again both at once, again one wins.
        p.tick(100);
        assert_eq!((p.is.installs.len(), p.rs.installs.len()), (3, 3));
        assert_eq!(
            link_key(&p.is.installs[2], KeyDirection::Transmit),
            link_key(&p.rs.installs[2], KeyDirection::Receive)
        );
    }
}

/// Whether an unencrypted message (IKE_SA_INIT) carries the notify.
fn has_notify(raw: &[u8], t: u16) -> bool {
    let msg = kmp_ikev2::wire::Message::parse(raw).unwrap();
    msg.payloads
        .iter()
        .any(|p| matches!(p, kmp_ikev2::wire::Payload::Notify(n) if n.notify_type == t))
}

const CHILDLESS_IKEV2_SUPPORTED: u16 = 16418;

fn outcome_keys(side: &Side) -> usize {
    match side.outcomes.as_slice() {
        [Outcome::Success(sa)] => sa.keys_installed,
        o => panic!("not one success: {o:?}"),
    }
}

#[test]
fn childless_force_without_child_proposals_makes_an_ike_sa_only() {
    let ic = format!("{PSK}childless = \"force\"\nchild_proposals = []\n");
    let mut p = Pair::new(&ic, PSK);
    p.run();
    assert_eq!(outcome_keys(&p.is), 0);
    assert_eq!(outcome_keys(&p.rs), 0);
    assert!(p.is.installs.is_empty() && p.rs.installs.is_empty());
    // RFC 6023: announced in both IKE_SA_INIT messages; IKE_SA_INIT and IKE_AUTH only.
    assert!(has_notify(&p.is.sent[0], CHILDLESS_IKEV2_SUPPORTED));
    assert!(has_notify(&p.rs.sent[0], CHILDLESS_IKEV2_SUPPORTED));
    assert_eq!((p.is.sent.len(), p.rs.sent.len()), (2, 2));
    // The IKE_AUTH request is the shorter by the SA and TS payloads a child would add.
    let mut q = Pair::new(PSK, PSK);
    q.run();
    assert!(p.is.sent[1].len() + 60 < q.is.sent[1].len());
    // Without `force` the initiator does not announce it; the responder always does (as
    // strongSwan: its initiator never announces, it only reads the response).
    assert!(!has_notify(&q.is.sent[0], CHILDLESS_IKEV2_SUPPORTED));
    assert!(has_notify(&q.rs.sent[0], CHILDLESS_IKEV2_SUPPORTED));
    // The IKE SA works: a delete is answered and closes both sides.
    p.i.delete(p.now);
    let mut w = vec![];
    drain(p.i.as_mut(), &mut p.is, &mut w);
    assert_eq!(p.deliver_to_r(&w[0]).len(), 1);
    assert!(p.r.as_ref().unwrap().is_closed() && p.i.is_closed());
}

#[test]
fn childless_force_makes_the_child_sa_with_create_child_sa_and_only_then_succeeds() {
    for pfs in [false, true] {
        let ic = format!("{PSK}childless = \"force\"\npfs = {pfs}\n");
        let mut p = Pair::new(&ic, PSK);
        p.run();
        assert_eq!(outcome_keys(&p.is), 3, "pfs {pfs}");
        // The responder's join ended with the IKE SA; the child came after.
        assert_eq!(outcome_keys(&p.rs), 0);
        assert_eq!(p.is.sent.len(), 3);
        assert_eq!(exchange(&p.is.sent[2]), CREATE_CHILD_SA);
        assert_eq!(message_id(&p.is.sent[2]), 2);
        assert_eq!((p.is.installs.len(), p.rs.installs.len()), (1, 1));
        let (ik, rk) = (&p.is.installs[0], &p.rs.installs[0]);
        assert_eq!(
            link_key(ik, KeyDirection::Transmit),
            link_key(rk, KeyDirection::Receive)
        );
        assert_eq!(
            link_key(ik, KeyDirection::Receive),
            link_key(rk, KeyDirection::Transmit)
        );
        assert_eq!(ik.upper_layer_sas[0].sa_id, rk.upper_layer_sas[0].sa_id);
        assert!(p.is.removals == 0 && p.rs.removals == 0);
    }
}

#[test]
fn childless_force_fails_against_a_responder_that_never_allows_it() {
    let ic = format!("{PSK}childless = \"force\"\n");
    let mut p = Pair::new(&ic, &format!("{PSK}childless = \"never\"\n"));
    p.run();
    assert_eq!(failure(&p.is), Some(FailureReason::NegotiationFailed));
    assert!(!has_notify(&p.rs.sent[0], CHILDLESS_IKEV2_SUPPORTED));
    assert!(p.is.installs.is_empty() && p.rs.installs.is_empty());
    assert_eq!(p.is.sent.len(), 1, "no IKE_AUTH");
}

#[test]
fn a_forcing_responder_refuses_an_initiator_that_wants_a_child() {
    let mut p = Pair::new(PSK, &format!("{PSK}childless = \"force\"\n"));
    p.run();
    assert_eq!(failure(&p.is), Some(FailureReason::NegotiationFailed));
    assert_eq!(failure(&p.rs), Some(FailureReason::NegotiationFailed));
    assert!(p.is.installs.is_empty() && p.rs.installs.is_empty());
    // A childless initiator gets through.
    let ic = format!("{PSK}childless = \"force\"\n");
    let mut p = Pair::new(&ic, &format!("{PSK}childless = \"force\"\n"));
    p.run();
    assert!(success(&p.is) && success(&p.rs));
    assert_eq!(p.is.installs.len(), 1);
}

#[test]
fn a_refused_first_child_sa_fails_the_join_and_deletes_the_ike_sa() {
    let ic = format!("{PSK}childless = \"force\"\nchild_proposals = [\"aes128gcm16\"]\n");
    let mut p = Pair::new(&ic, &format!("{PSK}child_proposals = [\"aes128ccm8\"]\n"));
    p.run();
    assert_eq!(failure(&p.is), Some(FailureReason::NegotiationFailed));
    assert!(p.is.installs.is_empty() && p.rs.installs.is_empty());
    // INIT, AUTH, CREATE_CHILD_SA, then the delete of the IKE SA, which the responder honours.
    assert_eq!(p.is.sent.len(), 4);
    assert_eq!(exchange(&p.is.sent[3]), INFORMATIONAL);
    assert!(p.r.as_ref().unwrap().is_closed());
    assert!(p.i.is_closed());
}

#[test]
fn child_proposals_may_be_empty_only_with_childless_force() {
    let err = Ikev2Config::from_toml(&format!("{PSK}child_proposals = []\n")).unwrap_err();
    assert!(err.to_string().contains("childless"), "{err}");
    let err = Ikev2Config::from_toml(&format!("{PSK}childless = \"sometimes\"\n")).unwrap_err();
    assert!(err.to_string().contains("sometimes"), "{err}");
}

/// 6TSCH R2-7/R2-8 (DECISIONS I26): each side sends its broadcast key K_i inside IKE_AUTH; the
/// peer installs it as the receive key of the broadcast frames that side originates (mode 3,
/// key source its EUI-64), and each side installs its own as its transmit key, for itself.
#[test]
fn broadcast_keys_are_exchanged_in_ike_auth_and_installed_per_originator() {
    use kmp_api::security::{KeyIdentifier, KeySource};
    use kmp_api::session::KeyScope;
    let ic = format!("{PSK}broadcast_key = true\n");
    let rc = format!(
        "{PSK}broadcast_key_index = 2\nbroadcast_key_hex = \"000102030405060708090a0b0c0d0e0f\"\n"
    );
    let mut p = Pair::new(&ic, &rc);
    p.run();
    // Two link keys, the child SA's record, the peer's broadcast key; then our own.
    assert_eq!(outcome_keys(&p.is), 5);
    assert_eq!(outcome_keys(&p.rs), 5);
    let group = |side: &Side, peer: ExtendedAddress, d: KeyDirection| -> (KeyIdentifier, Vec<u8>) {
        let k = side
            .installs
            .iter()
            .filter(|k| k.peer == peer)
            .flat_map(|k| &k.link_keys)
            .find(|l| l.scope == KeyScope::Group && l.direction == d)
            .unwrap();
        (k.lookup, k.key.expose().to_vec())
    };
    let r_key = (0u8..16).collect::<Vec<_>>();
    // The initiator receives R's broadcasts with R's key, named by R's EUI-64 and index 2.
    assert_eq!(
        group(&p.is, R, KeyDirection::Receive),
        (
            KeyIdentifier::SourceIndex(KeySource::Eight(R.0), 2),
            r_key.clone()
        )
    );
    // The responder transmits with it, installed for itself.
    assert_eq!(
        group(&p.rs, R, KeyDirection::Transmit),
        (KeyIdentifier::SourceIndex(KeySource::Eight(R.0), 2), r_key)
    );
    // The initiator's random K_i, index 1, the other way round.
    let (lookup, i_key) = group(&p.is, I, KeyDirection::Transmit);
    assert_eq!(lookup, KeyIdentifier::SourceIndex(KeySource::Eight(I.0), 1));
    assert_eq!(
        group(&p.rs, I, KeyDirection::Receive),
        (lookup, i_key.clone())
    );
    assert_ne!(i_key, vec![0; 16]);
    // Deleting the IKE SA removes what was installed for the peer, not our own K_i.
    p.i.delete(p.now);
    let mut w = vec![];
    drain(p.i.as_mut(), &mut p.is, &mut w);
    p.deliver_to_r(&w[0]);
    for (side, peer) in [(&p.is, R), (&p.rs, I)] {
        assert_eq!(side.removed.len(), 1);
        assert_eq!(side.removed[0].peer, peer);
    }
    // A side without broadcast keys neither sends one nor takes the peer's.
    let mut q = Pair::new(PSK, &rc);
    q.run();
    assert_eq!(outcome_keys(&q.is), 3);
    assert_eq!(outcome_keys(&q.rs), 4, "its own K_i, not the peer's");
    assert!(
        q.is.installs
            .iter()
            .all(|k| k.link_keys.iter().all(|l| l.scope != KeyScope::Group))
    );
    // And a responder without them ignores the initiator's.
    let mut q = Pair::new(&ic, PSK);
    q.run();
    assert_eq!(outcome_keys(&q.rs), 3);
    assert_eq!(outcome_keys(&q.is), 4, "its own K_i still goes to its PIB");
}

#[test]
fn broadcast_key_configuration_errors_are_clear() {
    for (toml, says) in [
        ("broadcast_key_index = 3\n", "broadcast_key = true"),
        ("broadcast_key = true\nbroadcast_key_index = 0\n", "1..=255"),
        ("broadcast_key_hex = \"0011\"\n", "16"),
        ("broadcast_key_hex = \"zz\"\n", "not hex"),
    ] {
        let err = Ikev2Config::from_toml(&format!("{PSK}{toml}")).unwrap_err();
        assert!(err.to_string().contains(says), "{toml}: {err}");
    }
}
