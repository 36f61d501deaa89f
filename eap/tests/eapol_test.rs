//! Interop with wpa_supplicant 2.10's EAP-PSK peer (`eapol_test`): our EAP-PSK server in our
//! authenticator, started as a backend (RFC 4137 §6) behind a minimal RADIUS server in this
//! test, built on the `radius` crate's codec.
//!
//! The RADIUS server answers each Access-Request with an Access-Challenge carrying the next
//! Request and a State, and ends with Access-Accept (EAP-Success and our MSK as
//! MS-MPPE-Recv-Key ‖ MS-MPPE-Send-Key) or Access-Reject (EAP-Failure); every reply carries a
//! Message-Authenticator and requests without a valid one are dropped. `eapol_test` compares
//! the MSK it derived with the MPPE keys we send and fails on a mismatch. A wrong PSK must fail
//! on both sides.
//!
//! The tests need `/usr/bin/eapol_test` (Debian package `eapoltest`); without it they fail and
//! say so.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Output;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use common::{EAPOL_TEST, PSK, USER};
use eap::authenticator::{AuthOutcome, Authenticator, AuthenticatorConfig};
use eap::psk::PskServer;
use kmp_api::crypto::Key128;
use kmp_api::rng::RngHandle;

const SECRET: &[u8] = b"eap-eapol-test-interop";

/// Runs eapol_test with `psk` against our server; returns its output and our outcome.
fn run(psk: [u8; 16]) -> (Output, AuthOutcome) {
    assert!(
        std::path::Path::new(EAPOL_TEST).exists(),
        "{EAPOL_TEST} is missing: install the Debian package eapoltest"
    );
    let network = format!(
        "  key_mgmt=IEEE8021X\n  eap=PSK\n  identity=\"{}\"\n  password={}\n",
        String::from_utf8_lossy(USER),
        hex::encode(psk)
    );
    common::run_eapol_test(&network, SECRET, 15, |socket| {
        let auth = Authenticator::new(
            AuthenticatorConfig::default(),
            vec![Box::new(PskServer::new(
                b"kmp.example".to_vec(),
                Arc::new(|id: &[u8]| (id == USER).then(|| Key128::new(PSK))),
            ))],
            RngHandle::os(),
        );
        common::serve_radius(
            socket,
            SECRET,
            auth,
            StdDuration::from_secs(20),
            [0x01, 0x02],
        )
        .expect("no Access-Request in time")
    })
}

#[test]
fn wpa_supplicant_peer_against_our_eap_psk_server() {
    let (output, outcome) = run(PSK);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let AuthOutcome::Success {
        identity,
        keys: Some(keys),
        ..
    } = outcome
    else {
        panic!("our server failed: {outcome:?}\n{stdout}");
    };
    assert_eq!(identity, USER);
    assert!(output.status.success(), "eapol_test failed:\n{stdout}");
    common::assert_eapol_test_keys(&stdout, &keys);
}

#[test]
fn wrong_psk_fails_on_both_sides_with_wpa_supplicant() {
    let (output, outcome) = run(*b"not the real psk");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        matches!(outcome, AuthOutcome::Failure(_)),
        "our server accepted a wrong PSK: {outcome:?}"
    );
    assert!(!output.status.success(), "eapol_test succeeded:\n{stdout}");
    assert!(stdout.contains("EAP-FAILURE") || stdout.contains("CTRL-EVENT-EAP-FAILURE"));
}
