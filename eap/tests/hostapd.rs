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

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration as StdDuration;

use eap::authenticator::{
    AuthFailure, AuthenticatorConfig, PassThrough, PassThroughAction, PassThroughOutcome,
};
use eap::peer::{Peer, PeerAction, PeerConfig, PeerFailure, PeerOutcome};
use eap::psk::PskPeer;
use kmp_api::crypto::{Key128, SecretBytes};
use kmp_api::rng::RngHandle;
use kmp_api::time::Instant;
use radius::udp::UdpClient;
use radius::{AccessRequest, ClientConfig, Reply, ServerConfig};

const HOSTAPD: &str = "/usr/sbin/hostapd";
const SECRET: &[u8] = b"eap-hostapd-interop";
const USER: &[u8] = b"node-1@example";
const PSK: [u8; 16] = *b"0123456789abcdef";

struct Hostapd {
    child: Child,
    log: PathBuf,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Hostapd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Hostapd {
    fn start() -> Hostapd {
        assert!(
            std::path::Path::new(HOSTAPD).exists(),
            "{HOSTAPD} is missing: install the Debian package hostapd"
        );
        let dir = tempfile::tempdir().unwrap();
        let port = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let p = |name: &str| dir.path().join(name);
        std::fs::write(
            p("clients"),
            format!("127.0.0.1/32 {}\n", String::from_utf8_lossy(SECRET)),
        )
        .unwrap();
        std::fs::write(
            p("eap_user"),
            format!(
                "\"{}\" PSK {}\n",
                String::from_utf8_lossy(USER),
                hex::encode(PSK)
            ),
        )
        .unwrap();
        std::fs::write(
            p("hostapd.conf"),
            format!(
                "driver=none\ninterface=lo\nlogger_stdout=-1\nlogger_stdout_level=0\n\
                 radius_server_clients={}\nradius_server_auth_port={port}\n\
                 eap_server=1\neap_user_file={}\nserver_id=hostapd.example\n",
                p("clients").display(),
                p("eap_user").display()
            ),
        )
        .unwrap();
        let log = p("hostapd.log");
        let child = Command::new(HOSTAPD)
            .arg("-dd")
            .arg(p("hostapd.conf"))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let h = Hostapd {
            child,
            log,
            port,
            _dir: dir,
        };
        for _ in 0..100 {
            if h.log().contains("Setup of interface done") {
                return h;
            }
            std::thread::sleep(StdDuration::from_millis(50));
        }
        panic!("hostapd did not start:\n{}", h.log());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Runs our peer through our pass-through authenticator to hostapd; returns the outcomes.
fn run(psk: [u8; 16]) -> (PeerOutcome, PassThroughOutcome, Hostapd) {
    let hostapd = Hostapd::start();
    let server = ServerConfig {
        addr: SocketAddr::from(([127, 0, 0, 1], hostapd.port)),
        secret: SecretBytes::from_slice(SECRET),
    };
    let mut radius = UdpClient::bind(
        "127.0.0.1:0",
        ClientConfig::new(vec![server], b"kmp-eap-test"),
    )
    .unwrap();
    let mut pt = PassThrough::new(AuthenticatorConfig::default(), RngHandle::os());
    let mut peer = Peer::new(
        PeerConfig::new(USER.to_vec()),
        vec![Box::new(PskPeer::new(USER.to_vec(), Key128::new(psk)))],
        RngHandle::os(),
        Instant::ZERO,
    );
    let now = Instant::ZERO;
    pt.start(now).unwrap();
    let mut state = None;
    let (mut peer_outcome, mut pt_outcome) = (None, None);
    for _ in 0..20 {
        while let Some(act) = pt.poll_action() {
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
                        Err(e) => panic!("RADIUS exchange failed: {e}\n{}", hostapd.log()),
                    }
                }
                PassThroughAction::Finished(o) => pt_outcome = Some(o),
            }
        }
        while let Some(act) = peer.poll_action() {
            match act {
                PeerAction::Send(pkt) => pt.handle_packet(now, &pkt).unwrap(),
                PeerAction::Finished(o) => peer_outcome = Some(o),
                PeerAction::Notification(_) => {}
            }
        }
        if let (Some(p), Some(a)) = (&peer_outcome, &pt_outcome) {
            return (p.clone(), a.clone(), hostapd);
        }
    }
    panic!(
        "no outcome: peer {peer_outcome:?}, authenticator {pt_outcome:?}\n{}",
        hostapd.log()
    );
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
