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

use std::net::UdpSocket;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use eap::authenticator::{AuthAction, AuthOutcome, Authenticator, AuthenticatorConfig};
use eap::psk::PskServer;
use kmp_api::crypto::Key128;
use kmp_api::rng::RngHandle;
use kmp_api::time::Instant;
use radius::wire::{
    self, Attribute, Code, MS_MPPE_RECV_KEY, MS_MPPE_SEND_KEY, Packet, Repr, VendorSpecific,
};

const EAPOL_TEST: &str = "/usr/bin/eapol_test";
const SECRET: &[u8] = b"eap-eapol-test-interop";
const USER: &[u8] = b"node-1@example";
const PSK: [u8; 16] = *b"0123456789abcdef";

/// Serves one EAP conversation on `socket` with our authenticator; returns its outcome.
fn serve(socket: &UdpSocket) -> AuthOutcome {
    let mut auth = Authenticator::new(
        AuthenticatorConfig::default(),
        vec![Box::new(PskServer::new(
            b"kmp.example".to_vec(),
            Arc::new(|id: &[u8]| (id == USER).then(|| Key128::new(PSK))),
        ))],
        RngHandle::os(),
    );
    let mut started = false;
    let mut buf = vec![0u8; wire::MAX_LEN];
    socket
        .set_read_timeout(Some(StdDuration::from_secs(20)))
        .unwrap();
    let mut round = 0u8;
    loop {
        let (n, from) = socket
            .recv_from(&mut buf)
            .expect("no Access-Request in time");
        let bytes = &buf[..n];
        let packet = Packet::new_checked(bytes).unwrap();
        let request = Repr::parse(&packet).unwrap();
        assert_eq!(request.code, Code::AccessRequest);
        if wire::verify_message_authenticator(bytes, &request.authenticator, SECRET).is_err() {
            continue;
        }
        let eap_in = request.eap_message().unwrap_or_default();
        let now = Instant::ZERO;
        let _ = if started {
            auth.handle_packet(now, &eap_in)
        } else {
            started = true;
            auth.start_backend(now, &eap_in)
        };
        let (mut eap_out, mut outcome) = (None, None);
        while let Some(act) = auth.poll_action() {
            match act {
                AuthAction::Send(p) => eap_out = Some(p),
                AuthAction::Finished(o) => outcome = Some(o),
            }
        }
        round = round.wrapping_add(1);
        let code = match &outcome {
            None => Code::AccessChallenge,
            Some(AuthOutcome::Success { .. }) => Code::AccessAccept,
            Some(AuthOutcome::Failure(_)) => Code::AccessReject,
        };
        let mut reply = Repr {
            code,
            identifier: request.identifier,
            authenticator: request.authenticator,
            attributes: Vec::new(),
        };
        if let Some(eap) = &eap_out {
            reply.push_eap_message(eap);
        }
        if code == Code::AccessChallenge {
            reply.attributes.push(Attribute::State(vec![b's', round]));
        }
        if let Some(AuthOutcome::Success {
            keys: Some(keys), ..
        }) = &outcome
        {
            let msk = keys.msk.expose();
            for (vendor_type, key, salt) in [
                (MS_MPPE_RECV_KEY, &msk[..32], [0x01, round]),
                (MS_MPPE_SEND_KEY, &msk[32..], [0x02, round]),
            ] {
                let value =
                    wire::encrypt_mppe_key(key, salt, SECRET, &request.authenticator).unwrap();
                reply
                    .attributes
                    .push(Attribute::VendorSpecific(VendorSpecific::microsoft(
                        vendor_type,
                        &value,
                    )));
            }
        }
        reply
            .attributes
            .push(Attribute::MessageAuthenticator([0; 16]));
        let mut out = reply.to_bytes().unwrap();
        wire::sign_response(&mut out, &request.authenticator, SECRET).unwrap();
        socket.send_to(&out, from).unwrap();
        if let Some(o) = outcome {
            return o;
        }
    }
}

/// Runs eapol_test with `psk` against our server; returns its output and our outcome.
fn run(psk: [u8; 16]) -> (Output, AuthOutcome) {
    assert!(
        std::path::Path::new(EAPOL_TEST).exists(),
        "{EAPOL_TEST} is missing: install the Debian package eapoltest"
    );
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("eapol_test.conf");
    std::fs::write(
        &conf,
        format!(
            "network={{\n  key_mgmt=IEEE8021X\n  eap=PSK\n  identity=\"{}\"\n  password={}\n}}\n",
            String::from_utf8_lossy(USER),
            hex::encode(psk)
        ),
    )
    .unwrap();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = socket.local_addr().unwrap().port();
    std::thread::scope(|s| {
        let server = s.spawn(|| serve(&socket));
        let output = Command::new(EAPOL_TEST)
            .arg("-c")
            .arg(&conf)
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-t",
                "15",
                "-r",
                "0",
            ])
            .arg("-s")
            .arg(String::from_utf8_lossy(SECRET).as_ref())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let outcome = server.join().unwrap_or_else(|_| {
            panic!(
                "our server failed; eapol_test said:\n{}",
                String::from_utf8_lossy(&output.stdout)
            )
        });
        (output, outcome)
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
    // eapol_test compared its MSK with the MPPE keys we sent.
    assert!(
        stdout.contains("MPPE keys OK: 1  mismatch: 0"),
        "eapol_test did not confirm the MSK:\n{stdout}"
    );
    // It prints the Session-Id it derived; it must be ours.
    let sid = hex::encode(&keys.session_id);
    assert!(
        stdout.replace(' ', "").contains(&sid),
        "eapol_test's Session-Id is not {sid}:\n{stdout}"
    );
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
