//! Helpers shared by the integration tests: driving our peer against our authenticator, a
//! minimal RADIUS server around our authenticator (for `eapol_test`), running `eapol_test`,
//! hostapd as a RADIUS server, and our peer through our pass-through authenticator and the
//! `radius` client to a RADIUS server.
//!
//! Each test binary compiles this module on its own and uses only part of it.

#![allow(dead_code)]

use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, Output, Stdio};
use std::time::Duration as StdDuration;

use eap::authenticator::{
    AuthAction, AuthOutcome, Authenticator, AuthenticatorConfig, PassThrough, PassThroughAction,
    PassThroughOutcome,
};
use eap::method::MethodKeys;
use eap::peer::{Peer, PeerAction, PeerOutcome};
use kmp_api::crypto::SecretBytes;
use kmp_api::rng::RngHandle;
use kmp_api::time::Instant;
use netns_test::hostapd;
use radius::udp::UdpClient;
use radius::wire::{self, Code, EapServerDecision, Packet, Repr};
use radius::{AccessRequest, ClientConfig, Reply, ServerConfig};

pub(crate) const USER: &[u8] = b"node-1@example";
pub(crate) const PSK: [u8; 16] = *b"0123456789abcdef";
pub(crate) const HOSTAPD: &str = hostapd::PROGRAM;
pub(crate) const EAPOL_TEST: &str = "/usr/bin/eapol_test";

// ---------------------------------------------------------------------------------------------
// Our peer against our authenticator.

#[derive(Default)]
pub(crate) struct Run {
    pub to_peer: Vec<Vec<u8>>,
    pub to_auth: Vec<Vec<u8>>,
    pub peer_outcome: Option<PeerOutcome>,
    pub auth_outcome: Option<AuthOutcome>,
}

/// Moves packets both ways until neither side has anything to send. `tamper` may change each
/// packet to the peer (index, packet); `drop_to_auth(i)` drops the i-th packet from the peer.
pub(crate) fn exchange_with(
    a: &mut Authenticator,
    p: &mut Peer,
    now: Instant,
    mut tamper: impl FnMut(usize, &mut Vec<u8>),
    mut drop_to_auth: impl FnMut(usize) -> bool,
    run: &mut Run,
) {
    loop {
        let mut progressed = false;
        while let Some(act) = a.poll_action() {
            progressed = true;
            match act {
                AuthAction::Send(mut pkt) => {
                    tamper(run.to_peer.len(), &mut pkt);
                    run.to_peer.push(pkt.clone());
                    let _ = p.handle_packet(now, &pkt);
                }
                AuthAction::Finished(o) => run.auth_outcome = Some(o),
            }
        }
        while let Some(act) = p.poll_action() {
            progressed = true;
            match act {
                PeerAction::Send(pkt) => {
                    let n = run.to_auth.len();
                    run.to_auth.push(pkt.clone());
                    if !drop_to_auth(n) {
                        let _ = a.handle_packet(now, &pkt);
                    }
                }
                PeerAction::Notification(_) => {}
                PeerAction::Finished(o) => run.peer_outcome = Some(o),
            }
        }
        if !progressed {
            return;
        }
    }
}

pub(crate) fn keys_of(o: &Option<PeerOutcome>) -> MethodKeys {
    match o {
        Some(PeerOutcome::Success { keys: Some(k), .. }) => k.clone(),
        other => panic!("peer did not succeed: {other:?}"),
    }
}

pub(crate) fn auth_keys_of(o: &Option<AuthOutcome>) -> MethodKeys {
    match o {
        Some(AuthOutcome::Success { keys: Some(k), .. }) => k.clone(),
        other => panic!("authenticator did not succeed: {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// A minimal RADIUS server around our authenticator, and eapol_test against it.

/// Serves one EAP conversation on `socket` with `auth`, started as a backend (RFC 4137 §6),
/// behind a minimal RADIUS server with `secret`: an Access-Challenge with the next Request and
/// a State per Access-Request, then Access-Accept (EAP-Success and the MSK as
/// MS-MPPE-Recv-Key ‖ MS-MPPE-Send-Key, salts starting with `salt_tags`) or Access-Reject
/// (EAP-Failure); every reply carries a Message-Authenticator and requests without a valid one
/// are dropped. `None` if no Access-Request came within `read_timeout` before an outcome.
pub(crate) fn serve_radius(
    socket: &UdpSocket,
    secret: &[u8],
    mut auth: Authenticator,
    read_timeout: StdDuration,
    salt_tags: [u8; 2],
) -> Option<AuthOutcome> {
    let mut started = false;
    let mut buf = vec![0u8; wire::MAX_LEN];
    socket.set_read_timeout(Some(read_timeout)).unwrap();
    let mut round = 0u8;
    loop {
        let Ok((n, from)) = socket.recv_from(&mut buf) else {
            return None;
        };
        let bytes = &buf[..n];
        let packet = Packet::new_checked(bytes).unwrap();
        let request = Repr::parse(&packet).unwrap();
        assert_eq!(request.code, Code::AccessRequest);
        if wire::verify_message_authenticator(bytes, &request.authenticator, secret).is_err() {
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
        let state = [b's', round];
        let decision = match &outcome {
            None => EapServerDecision::Challenge { state: &state },
            Some(AuthOutcome::Success { keys, .. }) => EapServerDecision::Accept {
                msk: keys.as_ref().map(|k| k.msk.expose()),
                salts: [[salt_tags[0], round], [salt_tags[1], round]],
            },
            Some(AuthOutcome::Failure(_)) => EapServerDecision::Reject,
        };
        let out = wire::eap_server_reply(&request, secret, eap_out.as_deref(), decision).unwrap();
        socket.send_to(&out, from).unwrap();
        if let Some(o) = outcome {
            return Some(o);
        }
    }
}

/// Runs `eapol_test` with one `network={…}` block (its body `network`), RADIUS `secret` and a
/// `timeout` in seconds against `serve`, which gets a fresh loopback socket in a thread of its
/// own; returns eapol_test's output and what `serve` returned. A panic in `serve` fails with
/// eapol_test's output.
pub(crate) fn run_eapol_test<T: Send>(
    network: &str,
    secret: &[u8],
    timeout: u32,
    serve: impl FnOnce(&UdpSocket) -> T + Send,
) -> (Output, T) {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("eapol_test.conf");
    std::fs::write(&conf, format!("network={{\n{network}}}\n")).unwrap();
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
                &timeout.to_string(),
                "-r",
                "0",
            ])
            .arg("-s")
            .arg(String::from_utf8_lossy(secret).as_ref())
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

/// Checks that eapol_test confirmed the MSK from our MPPE keys and printed our Session-Id.
pub(crate) fn assert_eapol_test_keys(stdout: &str, keys: &MethodKeys) {
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

// ---------------------------------------------------------------------------------------------
// hostapd as a RADIUS server.

/// hostapd as a RADIUS server (`driver=none`, netns-test) on a free loopback port, from a
/// private configuration in a temporary directory; killed when dropped (also on a panic).
/// Its `port` and `log()` are the harness guard's.
pub(crate) struct Hostapd(hostapd::Hostapd);

impl std::ops::Deref for Hostapd {
    type Target = hostapd::Hostapd;

    fn deref(&self) -> &hostapd::Hostapd {
        &self.0
    }
}

impl Hostapd {
    /// Starts hostapd accepting 127.0.0.1 with `secret`, with `eap_user` as its EAP user file
    /// and `extra_conf` (lines) appended to its configuration.
    pub(crate) fn start(secret: &[u8], eap_user: &str, extra_conf: &str) -> Hostapd {
        let dir = tempfile::tempdir().unwrap().keep();
        Hostapd(
            hostapd::Config::new(dir, secret, eap_user)
                .lines(extra_conf)
                .start(),
        )
    }

    /// Checks that hostapd logged `keys`' Session-Id (as the hex dump of its debug log).
    pub(crate) fn assert_logged_session_id(&self, keys: &MethodKeys) {
        let log = self.log();
        let sid = hex::encode(&keys.session_id);
        let spaced: String = sid
            .as_bytes()
            .chunks(2)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            log.contains(&spaced),
            "hostapd's Session-Id is not {sid}:\n{log}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Our peer through our pass-through authenticator to a RADIUS server.

/// Our `peer` through our pass-through authenticator and the `radius` client (NAS-Identifier
/// `nas_id`) to the RADIUS server on 127.0.0.1:`port` with `secret`, for at most `rounds`
/// rounds or until nothing moves; `log` shows the server's log on a RADIUS failure. Returns
/// the outcomes reached.
pub(crate) fn drive_pass_through(
    port: u16,
    secret: &[u8],
    nas_id: &[u8],
    mut peer: Peer,
    rounds: usize,
    log: &dyn Fn() -> String,
) -> (Option<PeerOutcome>, Option<PassThroughOutcome>) {
    let server = ServerConfig {
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        secret: SecretBytes::from_slice(secret),
    };
    let mut radius =
        UdpClient::bind("127.0.0.1:0", ClientConfig::new(vec![server], nas_id)).unwrap();
    let mut pt = PassThrough::new(AuthenticatorConfig::default(), RngHandle::os());
    let now = Instant::ZERO;
    pt.start(now).unwrap();
    let mut state = None;
    let (mut peer_outcome, mut pt_outcome) = (None, None);
    for _ in 0..rounds {
        let mut progressed = false;
        while let Some(act) = pt.poll_action() {
            progressed = true;
            match act {
                PassThroughAction::Send(pkt) => {
                    let _ = peer.handle_packet(now, &pkt);
                }
                PassThroughAction::ToBackend(resp) => {
                    let request = AccessRequest {
                        user_name: pt.identity().to_vec(),
                        eap_message: resp,
                        state: state.take(),
                        ..AccessRequest::default()
                    };
                    match radius.exchange(request, StdDuration::from_secs(10)) {
                        Ok(Reply::Challenge(c)) => {
                            state = c.state;
                            pt.backend_request(now, &c.eap_message).unwrap();
                        }
                        Ok(Reply::Accept(a)) => {
                            pt.backend_accept(a.eap_message.as_deref(), a.msk).unwrap();
                        }
                        Ok(Reply::Reject(r)) => {
                            pt.backend_reject(r.eap_message.as_deref()).unwrap()
                        }
                        Err(e) => panic!("RADIUS exchange failed: {e}\n{}", log()),
                    }
                }
                PassThroughAction::Finished(o) => pt_outcome = Some(o),
            }
        }
        while let Some(act) = peer.poll_action() {
            progressed = true;
            match act {
                PeerAction::Send(pkt) => pt.handle_packet(now, &pkt).unwrap(),
                PeerAction::Finished(o) => peer_outcome = Some(o),
                PeerAction::Notification(_) => {}
            }
        }
        if peer_outcome.is_some() && pt_outcome.is_some() {
            break;
        }
        if !progressed {
            break;
        }
    }
    (peer_outcome, pt_outcome)
}
