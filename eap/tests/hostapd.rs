//! Interop with hostapd 2.10's EAP-PSK server: our peer, our pass-through authenticator and the
//! `radius` crate's client against hostapd running as a RADIUS server (`driver=none`) on
//! loopback.
//!
//! The MSK hostapd derives comes back in the Access-Accept as MS-MPPE-Recv-Key ‖
//! MS-MPPE-Send-Key; it must equal the MSK of our peer. A wrong PSK must end in
//! Access-Reject with EAP-Failure, and our peer must fail.
//!
//! hostapd is started per test from a private configuration in a temporary directory, on a UDP
//! port picked free just before, and killed when its guard drops (also on a panic). The tests
//! need `/usr/sbin/hostapd` (Debian package `hostapd`); without it they fail and say so.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{HOSTAPD, Hostapd, PSK, USER};
use eap::authenticator::{AuthFailure, PassThroughOutcome};
use eap::peer::{Peer, PeerConfig, PeerFailure, PeerOutcome};
use eap::psk::PskPeer;
use kmp_api::crypto::Key128;
use kmp_api::rng::RngHandle;
use kmp_api::time::Instant;

const SECRET: &[u8] = b"eap-hostapd-interop";

fn start_hostapd() -> Hostapd {
    assert!(
        std::path::Path::new(HOSTAPD).exists(),
        "{HOSTAPD} is missing: install the Debian package hostapd"
    );
    Hostapd::start(
        SECRET,
        &format!(
            "\"{}\" PSK {}\n",
            String::from_utf8_lossy(USER),
            hex::encode(PSK)
        ),
        "server_id=hostapd.example\n",
    )
}

/// Runs our peer through our pass-through authenticator to hostapd; returns the outcomes.
fn run(psk: [u8; 16]) -> (PeerOutcome, PassThroughOutcome, Hostapd) {
    let hostapd = start_hostapd();
    let peer = Peer::new(
        PeerConfig::new(USER.to_vec()),
        vec![Box::new(PskPeer::new(USER.to_vec(), Key128::new(psk)))],
        RngHandle::os(),
        Instant::ZERO,
    );
    let outcomes =
        common::drive_pass_through(hostapd.port, SECRET, b"kmp-eap-test", peer, 20, &|| {
            hostapd.log()
        });
    match outcomes {
        (Some(p), Some(a)) => (p, a, hostapd),
        (peer_outcome, pt_outcome) => panic!(
            "no outcome: peer {peer_outcome:?}, authenticator {pt_outcome:?}\n{}",
            hostapd.log()
        ),
    }
}

#[test]
fn our_peer_against_hostapd_eap_psk_server() {
    let (peer, pt, hostapd) = run(PSK);
    let PeerOutcome::Success {
        keys: Some(keys), ..
    } = peer
    else {
        panic!("peer failed: {peer:?}\n{}", hostapd.log());
    };
    let PassThroughOutcome::Success {
        identity,
        msk: Some(msk),
    } = pt
    else {
        panic!("authenticator failed: {pt:?}\n{}", hostapd.log());
    };
    assert_eq!(identity, USER);
    assert_eq!(msk, keys.msk, "hostapd's MSK differs from ours");
    let log = hostapd.log();
    assert!(
        log.contains("EAP-PSK: MAC_P"),
        "hostapd did not run EAP-PSK:\n{log}"
    );
    // hostapd logs the Session-Id it derived; it must be ours.
    hostapd.assert_logged_session_id(&keys);
}

#[test]
fn wrong_psk_is_rejected_by_hostapd() {
    let (peer, pt, hostapd) = run(*b"not the real psk");
    assert_eq!(
        peer,
        PeerOutcome::Failure(PeerFailure::Rejected),
        "{}",
        hostapd.log()
    );
    assert_eq!(pt, PassThroughOutcome::Failure(AuthFailure::Rejected));
    assert!(hostapd.log().contains("EAP-PSK: Invalid MAC_P"));
}
