//! Interop with FreeRADIUS 3.2.1 over loopback UDP (the blocking binding): EAP-MD5
//! (EAP-Response/Identity → Access-Challenge with EAP-Request/MD5-Challenge and State →
//! EAP-Response/MD5-Challenge computed here → Access-Accept with EAP-Success), a wrong password
//! (Access-Reject with EAP-Failure), and failover from a silent server to FreeRADIUS.
//!
//! FreeRADIUS runs with `require_message_authenticator = yes` for our client, so it checks the
//! Message-Authenticator we put first, and every reply we accept carried a valid one (the
//! client drops replies without it). EAP-MD5 derives no keys, so the MS-MPPE key decryption is
//! checked another way: the `files` module gives the user fixed MS-MPPE-Recv-Key and
//! MS-MPPE-Send-Key reply attributes, which FreeRADIUS encrypts (RFC 2548) with the secret and
//! our Request Authenticator; the MSK we decrypt must be exactly Recv ‖ Send as configured.
//!
//! Every test re-runs itself (this same binary, `--exact NAME`) under `unshare -n` in a fresh
//! network namespace that has only `lo`, so FreeRADIUS's wildcard listeners touch nothing
//! outside and tests run in parallel. Its configuration is a private copy of
//! `/etc/freeradius/3.0` with our `eap` module file, `clients.conf` and users; it runs as
//! `freeradius -X -d <dir>` (netns-test's `freeradius`) and is killed when its guard drops
//! (also on a panic); the outer test kills the whole process group when its time limit passes.
//! Root (or CAP_SYS_ADMIN + CAP_NET_ADMIN) is needed: without it the tests fail and say so.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use kmp_api::crypto::SecretBytes;
use kmp_api::crypto::hmac::md5_parts;
use netns_test::freeradius::{self, FreeRadius};
use radius::udp::UdpClient;
use radius::{AccessRequest, ClientConfig, Reply, ServerConfig};

const INNER: &str = "RADIUS_FREERADIUS_INNER";
const SECRET: &[u8] = b"kmp-radius-interop-secret";
const USER: &str = "eapuser";
const PASSWORD: &str = "md5-password";
const TEST_LIMIT: Duration = Duration::from_secs(40);
/// What the users file gives the user: MS-MPPE-Recv-Key 01..20, Send-Key 65..84.
fn recv_key() -> Vec<u8> {
    (1..=32).collect()
}
fn send_key() -> Vec<u8> {
    (101..=132).collect()
}

/// Runs `body` inside a private lo-only network namespace (see the module docs).
fn in_netns(name: &str, body: impl FnOnce()) {
    let iso = netns_test::Isolation {
        marker: INNER,
        setup: "ip link set lo up",
        limit: TEST_LIMIT,
        what: "these FreeRADIUS interop tests",
    };
    netns_test::run_isolated(name, &iso, body);
}

/// One `freeradius -X` in the current namespace with a private configuration (netns-test);
/// killed on drop.
fn start_freeradius(name: &str) -> FreeRadius {
    assert!(
        freeradius::installed(),
        "FreeRADIUS is not installed (scripts/test.sh installs it)"
    );
    freeradius::Config::new(freeradius::work_dir("radius-fr", name))
        // Only EAP-MD5.
        .file(
            "mods-enabled/eap",
            "eap {\n\tdefault_eap_type = md5\n\ttimer_expire = 60\n\
             \tignore_unknown_eap_types = no\n\tcisco_accounting_username_bug = no\n\
             \tmax_sessions = 64\n\tmd5 {\n\t}\n}\n",
        )
        // Our client, Message-Authenticator required on every request.
        .file(
            "clients.conf",
            format!(
                "client loopback {{\n\tipaddr = 127.0.0.1\n\tsecret = {}\n\
                 \trequire_message_authenticator = yes\n}}\n",
                std::str::from_utf8(SECRET).unwrap()
            ),
        )
        // The user, with fixed MS-MPPE keys, a Class and a Session-Timeout in the reply.
        .append(
            "mods-config/files/authorize",
            format!(
                "\n{USER}\tCleartext-Password := \"{PASSWORD}\"\n\
                 \tMS-MPPE-Recv-Key = 0x{},\n\tMS-MPPE-Send-Key = 0x{},\n\
                 \tClass = 0x{},\n\tSession-Timeout = 3600\n",
                hex::encode(recv_key()),
                hex::encode(send_key()),
                hex::encode(b"class-1"),
            ),
        )
        .start()
}

fn freeradius_addr() -> SocketAddr {
    "127.0.0.1:1812".parse().unwrap()
}

fn server(addr: SocketAddr) -> ServerConfig {
    ServerConfig {
        addr,
        secret: SecretBytes::from_slice(SECRET),
    }
}

/// A client with `retransmit_ms` between transmissions and two transmissions per server.
fn client(servers: Vec<ServerConfig>, retransmit_ms: u64) -> UdpClient {
    let mut config = ClientConfig::new(servers, b"kmp-radius-test");
    config.retransmit_timeout = kmp_api::Duration::from_millis(retransmit_ms);
    config.max_transmissions = 2;
    config.framed_mtu = Some(1200);
    UdpClient::bind("127.0.0.1:0", config).unwrap()
}

/// EAP-Response/Identity (RFC 3748 §5.1) with EAP Identifier `id`.
fn identity_response(id: u8) -> Vec<u8> {
    let mut eap = vec![2, id, 0, 0, 1];
    eap.extend_from_slice(USER.as_bytes());
    let len = u16::try_from(eap.len()).unwrap();
    eap[2..4].copy_from_slice(&len.to_be_bytes());
    eap
}

/// The EAP-Response/MD5-Challenge to an EAP-Request/MD5-Challenge (RFC 3748 §5.4):
/// Value = MD5(Identifier ‖ password ‖ challenge) (RFC 1994 §4.1).
fn md5_response(request: &[u8], password: &str) -> Vec<u8> {
    assert!(request.len() >= 6, "short EAP request {request:02x?}");
    assert_eq!(request[0], 1, "not an EAP-Request: {request:02x?}");
    assert_eq!(request[4], 4, "not MD5-Challenge: {request:02x?}");
    let size = usize::from(request[5]);
    let challenge = &request[6..6 + size];
    let id = request[1];
    let value = md5_parts(&[&[id], password.as_bytes(), challenge]).unwrap();
    let mut eap = vec![2, id, 0, 22, 4, 16];
    eap.extend_from_slice(&value);
    eap
}

/// Identity, then the MD5 answer with `password`; the final reply.
fn eap_md5(udp: &mut UdpClient, password: &str) -> Reply {
    let limit = Duration::from_secs(10);
    let first = udp
        .exchange(
            AccessRequest {
                user_name: USER.as_bytes().to_vec(),
                eap_message: identity_response(7),
                calling_station_id: Some(b"02-15-09-00-00-01".to_vec()),
                called_station_id: Some(b"02-15-09-00-00-02".to_vec()),
                state: None,
            },
            limit,
        )
        .unwrap();
    let Reply::Challenge(ch) = first else {
        panic!("expected Access-Challenge, got {first:?}");
    };
    let state = ch.state.expect("FreeRADIUS sends State with its challenge");
    udp.exchange(
        AccessRequest {
            user_name: USER.as_bytes().to_vec(),
            eap_message: md5_response(&ch.eap_message, password),
            calling_station_id: Some(b"02-15-09-00-00-01".to_vec()),
            called_station_id: Some(b"02-15-09-00-00-02".to_vec()),
            state: Some(state),
        },
        limit,
    )
    .unwrap()
}

#[test]
fn eap_md5_accept_with_mppe_keys() {
    in_netns("eap_md5_accept_with_mppe_keys", || {
        let fr = start_freeradius("accept");
        let mut udp = client(vec![server(freeradius_addr())], 300);
        let reply = eap_md5(&mut udp, PASSWORD);
        let Reply::Accept(acc) = reply else {
            panic!("expected Access-Accept, got {reply:?}\n{}", fr.log());
        };
        let success = acc.eap_message.expect("EAP-Success in the Access-Accept");
        assert_eq!(success[0], 3, "EAP-Success: {success:02x?}");
        let msk = acc.msk.expect("MS-MPPE keys in the Access-Accept");
        assert_eq!(msk.expose(), [recv_key(), send_key()].concat());
        assert_eq!(acc.class, vec![b"class-1".to_vec()]);
        assert_eq!(acc.session_timeout, Some(3600));
        let n = udp.client().counters();
        assert_eq!((n.challenges, n.accepts, n.dropped()), (1, 1, 0));
        // FreeRADIUS checked our Message-Authenticator (it would drop the request otherwise).
        let log = fr.log();
        for l in log.lines().filter(|l| l.contains("Message-Authenticator")) {
            println!("freeradius: {l}");
        }
        // Each of our two requests, as FreeRADIUS received it, with our (non-zero) value; its
        // replies show the zero placeholder it signs over.
        let ours = log
            .lines()
            .filter(|l| l.contains("Message-Authenticator = 0x") && !l.ends_with(&"0".repeat(32)))
            .count();
        assert_eq!(ours, 2, "{log}");
    });
}

#[test]
fn eap_md5_wrong_password_is_rejected() {
    in_netns("eap_md5_wrong_password_is_rejected", || {
        let fr = start_freeradius("reject");
        // FreeRADIUS holds an Access-Reject back for `reject_delay` (1 s by default) and
        // discards our retransmissions meanwhile: wait longer than that.
        let mut udp = client(vec![server(freeradius_addr())], 2000);
        let reply = eap_md5(&mut udp, "not-the-password");
        let Reply::Reject(rej) = reply else {
            panic!("expected Access-Reject, got {reply:?}\n{}", fr.log());
        };
        let failure = rej.eap_message.expect("EAP-Failure in the Access-Reject");
        assert_eq!(failure[0], 4, "EAP-Failure: {failure:02x?}");
        assert_eq!(udp.client().counters().dropped(), 0);
    });
}

#[test]
fn failover_from_a_silent_server_to_freeradius() {
    in_netns("failover_from_a_silent_server_to_freeradius", || {
        let _fr = start_freeradius("failover");
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut udp = client(
            vec![
                server(silent.local_addr().unwrap()),
                server(freeradius_addr()),
            ],
            300,
        );
        let reply = eap_md5(&mut udp, PASSWORD);
        assert!(matches!(reply, Reply::Accept(_)), "{reply:?}");
        let n = udp.client().counters();
        // The first request failed over once; the second went straight to FreeRADIUS.
        assert_eq!((n.failovers, n.retransmissions, n.accepts), (1, 1, 1));
        assert!(
            !udp.client()
                .server_alive(0, kmp_api::Instant::from_micros(0))
        );
    });
}

#[test]
fn wrong_secret_gets_no_reply() {
    in_netns("wrong_secret_gets_no_reply", || {
        let fr = start_freeradius("secret");
        let mut config = ClientConfig::new(
            vec![ServerConfig {
                addr: freeradius_addr(),
                secret: SecretBytes::from_slice(b"not-the-secret"),
            }],
            b"kmp-radius-test",
        );
        config.retransmit_timeout = kmp_api::Duration::from_millis(200);
        config.max_transmissions = 1;
        let mut udp = UdpClient::bind("127.0.0.1:0", config).unwrap();
        let err = udp
            .exchange(
                AccessRequest {
                    user_name: USER.as_bytes().to_vec(),
                    eap_message: identity_response(1),
                    ..AccessRequest::default()
                },
                Duration::from_secs(5),
            )
            .unwrap_err();
        assert!(
            matches!(
                err,
                radius::udp::UdpError::Request(radius::RequestError::NoResponse { .. })
            ),
            "{err:?}"
        );
        // FreeRADIUS refused the request because our Message-Authenticator did not verify.
        let log = fr.log();
        assert!(
            log.contains("invalid Message-Authenticator"),
            "freeradius log:\n{log}"
        );
    });
}
