//! The pass-through authenticator PAE end to end: our supplicant PAE (KMP ID 1 sessions, driven
//! in this process) ↔ our authenticator PAE in pass-through mode with the RADIUS backend
//! (`kmp_mka::pae::RadiusBackend`, configured from the PAE TOML's `[radius]` table) ↔ a real
//! RADIUS server over loopback UDP:
//!
//! - FreeRADIUS 3.2 (`freeradius -X`): EAP-TLS with TLS 1.2 and TLS 1.3, with each of our TLS
//!   engines (rustls, OpenSSL's libssl) on the supplicant (ECDSA P-256 certificates made here
//!   with rcgen) and EAP-pwd (our supplicant Naks FreeRADIUS's TLS
//!   proposal for pwd); a client certificate from an untrusted CA ends in Access-Reject and a
//!   failed supplicant; a wrong EAP-pwd password fails the supplicant at FreeRADIUS's confirm
//!   (it then stays silent, so no Access-Reject comes and the authenticator times out);
//!   failover from a dead first server to FreeRADIUS as the second.
//! - hostapd 2.10 as a RADIUS server (`driver=none`, its internal EAP server): EAP-PSK, and a
//!   wrong PSK (Access-Reject).
//! - A silent server: the backend gives up (`BackendAnswer::Timeout`) and the authenticator
//!   fails with a clear error.
//!
//! After KMP ID 1 succeeds on both sides, the 4-way handshake (KMP ID 6) runs between the two
//! with the PMK from each side's MSK: the supplicant's from its EAP method, the authenticator's
//! from the MS-MPPE keys in the Access-Accept. It completing with the same TK on both ends is
//! the proof that the MSKs agree.
//!
//! FreeRADIUS runs with `require_message_authenticator = yes` for our client, and the backend
//! drops any reply without a valid Message-Authenticator (none is dropped here).
//!
//! Every test with a daemon re-runs itself (`--exact NAME`) under `unshare -n` in a fresh
//! network namespace with only `lo` (netns-test), so the daemons' sockets touch nothing outside
//! and tests run in parallel: root (CAP_SYS_ADMIN + CAP_NET_ADMIN) is needed. A test whose
//! daemon is not installed prints a note and passes (scripts/test.sh installs them).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use kmp_api::session::{FailureReason, Outcome};
use kmp_mka::handshake::{PaeRole, PmkCache};
use kmp_mka::pae::{PaeConfig, PaeFactory, RadiusBackend};
use netns_test::{freeradius, hostapd};
use support::{BR, NODE, Side, both, check_joined, join};

const INNER: &str = "KMP_MKA_PASS_THROUGH_INNER";
const SECRET: &str = "kmp-pass-through-secret";
const FREERADIUS: &str = freeradius::PROGRAM;
const HOSTAPD: &str = hostapd::PROGRAM;
const PWD_USER: &str = "pwd-node";
const PWD_PASSWORD: &str = "dragonfly-password";
const PSK_USER: &str = "psk-node";
const PSK_HEX: &str = "000102030405060708090a0b0c0d0e0f";
const JOIN_LIMIT: Duration = Duration::from_secs(30);

/// Runs `body` in a private lo-only network namespace, or prints a note when `program` is not
/// installed.
fn in_netns(name: &str, program: &str, body: impl FnOnce()) {
    if !Path::new(program).exists() {
        println!("{program} is not installed; {name} skipped (scripts/test.sh installs it)");
        return;
    }
    let iso = netns_test::Isolation {
        marker: INNER,
        setup: "ip link set lo up",
        limit: Duration::from_secs(60),
        what: "the pass-through interop tests",
    };
    netns_test::run_isolated(name, &iso, body);
}

/// A directory freeradius (which drops to its own user) can read: not a 0700 temporary one.
fn work_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kmp-pt-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    support::write_pki(&dir);
    // Test keys, thrown away with the directory: readable by the daemon's user.
    for f in ["server.key", "client.key", "rogue-client.key"] {
        let _ = Command::new("chmod").arg("644").arg(dir.join(f)).status();
    }
    dir
}

// ---- FreeRADIUS ----

/// `freeradius -X` (netns-test) with a private copy of the system configuration: one site on
/// 127.0.0.1:1812, an `eap` module with EAP-TLS (our test CA and server certificate, TLS 1.2
/// up to `tls_max`) and EAP-pwd (group 19, passwords from a listener-less virtual server with
/// `files`), our client with `require_message_authenticator = yes`, no reject delay; killed
/// (and `dir` removed) on drop.
struct FreeRadius;

impl FreeRadius {
    const ADDR: &str = "127.0.0.1:1812";

    fn start(dir: &Path, tls_max: &str) -> freeradius::FreeRadius {
        let d = dir.display();
        freeradius::Config::new(dir)
            .radiusd_line("reject_delay =", "\treject_delay = 0")
            .clear_sites_enabled()
            .file(
                "sites-enabled/kmp-test",
                "server kmp-test {\n\tlisten {\n\t\ttype = auth\n\t\tipaddr = 127.0.0.1\n\
                 \t\tport = 1812\n\t}\n\tauthorize {\n\t\teap {\n\t\t\tok = return\n\t\t}\n\t}\n\
                 \tauthenticate {\n\t\teap\n\t}\n}\n\
                 server pwd-inner {\n\tauthorize {\n\t\tfiles\n\t}\n\tauthenticate {\n\t}\n}\n",
            )
            .file(
                "mods-enabled/eap",
                format!(
                    "eap {{\n\tdefault_eap_type = tls\n\ttimer_expire = 60\n\
                     \tignore_unknown_eap_types = no\n\tcisco_accounting_username_bug = no\n\
                     \tmax_sessions = 64\n\
                     \ttls-config tls-common {{\n\t\tprivate_key_file = {d}/server.key\n\
                     \t\tcertificate_file = {d}/server.pem\n\t\tca_file = {d}/ca.pem\n\
                     \t\tcipher_list = \"DEFAULT\"\n\t\tecdh_curve = \"prime256v1\"\n\
                     \t\ttls_min_version = \"1.2\"\n\t\ttls_max_version = \"{tls_max}\"\n\
                     \t\tcache {{\n\t\t\tenable = no\n\t\t}}\n\t\tverify {{\n\t\t}}\n\t}}\n\
                     \ttls {{\n\t\ttls = tls-common\n\t}}\n\
                     \tpwd {{\n\t\tgroup = 19\n\t\tserver_id = freeradius.example\n\
                     \t\tfragment_size = 1020\n\t\tvirtual_server = \"pwd-inner\"\n\t}}\n}}\n"
                ),
            )
            .file(
                "clients.conf",
                format!(
                    "client loopback {{\n\tipaddr = 127.0.0.1\n\tsecret = {SECRET}\n\
                     \trequire_message_authenticator = yes\n}}\n"
                ),
            )
            .file(
                "mods-config/files/authorize",
                format!("\"{PWD_USER}\"\tCleartext-Password := \"{PWD_PASSWORD}\"\n"),
            )
            .start()
    }
}

// ---- hostapd ----

/// hostapd as a RADIUS server (`driver=none`, netns-test) on 127.0.0.1:18121 with EAP-PSK
/// for [`PSK_USER`]; killed (and `dir` removed) on drop.
struct Hostapd;

impl Hostapd {
    const PORT: u16 = 18121;
    const ADDR: &str = "127.0.0.1:18121";

    fn start(dir: &Path) -> hostapd::Hostapd {
        hostapd::Config::new(dir, SECRET, format!("\"{PSK_USER}\" PSK {PSK_HEX}\n"))
            .port(Self::PORT)
            .server_id("hostapd.example")
            .start()
    }
}

// ---- our two PAEs ----

/// The authenticator's PAE section: pass-through to `servers` (addresses, all with
/// [`SECRET`]).
fn authenticator_toml(servers: &[&str], retransmit_ms: u64) -> String {
    let mut t = format!(
        "role = \"authenticator\"\nretransmit_ms = 1000\nbackend_poll_ms = 5\n\
         [radius]\nnas_identifier = \"kmp-br-1\"\nbind = \"127.0.0.1:0\"\n\
         retransmit_ms = {retransmit_ms}\nmax_transmissions = 2\nframed_mtu = 1200\n"
    );
    for s in servers {
        t.push_str(&format!(
            "[[radius.servers]]\naddr = \"{s}\"\nsecret = \"{SECRET}\"\n"
        ));
    }
    t
}

/// A pass-through authenticator factory from `toml`, and its backend (for the counters).
fn authenticator(toml: &str) -> (PaeFactory, Arc<RadiusBackend>) {
    let cfg = PaeConfig::from_toml(toml).unwrap();
    let backend = Arc::new(RadiusBackend::bind(cfg.radius.as_ref().unwrap()).unwrap());
    let f = PaeFactory::pass_through(cfg, PmkCache::new(), Arc::clone(&backend) as _).unwrap();
    (f, backend)
}

/// The supplicant: `identity`, one method from its TOML `table` (e.g. `[pwd] …`).
fn supplicant(identity: &str, method: &str, table: &str) -> PaeFactory {
    let cfg = PaeConfig::from_toml(&format!(
        "role = \"supplicant\"\nidentity = \"{identity}\"\nmethods = [\"{method}\"]\n\
         idle_timeout_secs = 20\n{table}"
    ))
    .unwrap();
    assert_eq!(cfg.role, PaeRole::Supplicant);
    PaeFactory::new(cfg, PmkCache::new()).unwrap()
}

/// The EAP-TLS supplicant's `[tls]` table: `client` certificate and key, our CA, `versions`,
/// the TLS `engine` (eap's `TlsEngine`: "rustls" or "openssl").
fn tls_table(dir: &Path, client: &str, versions: &str, engine: &str) -> String {
    let d = dir.display();
    format!(
        "[tls]\ncert_chain = \"{d}/{client}.pem\"\nkey = \"{d}/{client}.key\"\n\
         ca = \"{d}/ca.pem\"\nversions = \"{versions}\"\nexpected_peer_name = \"server.test\"\n\
         engine = \"{engine}\"\n"
    )
}

fn tls_supplicant(dir: &Path, client: &str, versions: &str, engine: &str) -> PaeFactory {
    supplicant(
        "client.test",
        "tls",
        &tls_table(dir, client, versions, engine),
    )
}

fn pwd_supplicant(password: &str) -> PaeFactory {
    supplicant(
        PWD_USER,
        "pwd",
        &format!("[pwd]\nid = \"{PWD_USER}\"\npassword = \"{password}\"\n"),
    )
}

/// A join that must succeed, proven by the 4-way handshake; checks the backend's counters.
fn joined(bf: &PaeFactory, nf: &PaeFactory, backend: &RadiusBackend, log: &dyn Fn() -> String) {
    let (br, node) = join(bf, nf, JOIN_LIMIT, both);
    assert!(
        matches!(br.outcomes.as_slice(), [Outcome::Success(_)]),
        "authenticator: {br:?}\nnode: {node:?}\n{}",
        log()
    );
    check_joined(&br, &node, bf.pmk_cache(), nf.pmk_cache());
    let (c, r) = backend.with_core(|c| (*c.counters(), *c.radius_counters()));
    println!("backend counters {c:?}\nradius client counters {r:?}");
    assert_eq!(c.accepts, 1);
    assert!(c.challenges >= 2, "{c:?}");
    // Every reply carried a valid Message-Authenticator and Response Authenticator (a late
    // duplicate answer to a retransmission, on a loaded machine, is dropped as unknown).
    assert_eq!(
        r.missing_message_authenticator
            + r.bad_message_authenticator
            + r.bad_response_authenticator,
        0,
        "{r:?}"
    );
    assert_eq!(
        backend.with_core(|c| c.conversations()),
        0,
        "conversation left"
    );
}

/// A join the RADIUS server rejects: Access-Reject, both PAEs fail, nothing cached.
fn rejected(
    bf: &PaeFactory,
    nf: &PaeFactory,
    backend: &RadiusBackend,
    log: &dyn Fn() -> String,
) -> Side {
    let (br, node) = join(bf, nf, JOIN_LIMIT, both);
    assert_eq!(
        br.outcomes,
        vec![Outcome::Failure(FailureReason::AuthenticationFailed)],
        "node {node:?}\n{}",
        log()
    );
    assert!(
        matches!(node.outcomes.as_slice(), [Outcome::Failure(_)]),
        "{node:?}"
    );
    assert!(bf.pmk_cache().get(BR, NODE).is_none());
    assert!(nf.pmk_cache().get(NODE, BR).is_none());
    assert_eq!(backend.with_core(|c| c.counters().rejects), 1);
    node
}

// ---- FreeRADIUS ----

fn freeradius_tls(name: &str, version: &str, engine: &str) {
    in_netns(name, FREERADIUS, || {
        let dir = work_dir(name);
        let fr = FreeRadius::start(&dir, version);
        let (bf, backend) = authenticator(&authenticator_toml(&[FreeRadius::ADDR], 2000));
        let nf = tls_supplicant(&dir, "client", version, engine);
        joined(&bf, &nf, &backend, &|| fr.log());
        let log = fr.log();
        assert!(
            log.contains("eap_tls"),
            "FreeRADIUS did not run EAP-TLS:\n{log}"
        );
        // FreeRADIUS checked our Message-Authenticator on every request.
        assert!(!log.contains("invalid Message-Authenticator"), "{log}");
        for l in log.lines().filter(|l| l.contains("eap_tls: (TLS) send")) {
            println!("freeradius: {l}");
        }
        // The version FreeRADIUS negotiated: its server flight in that version.
        let want = if version == "1.3" {
            "eap_tls: (TLS) send TLS 1.3 Handshake, Finished"
        } else {
            "eap_tls: (TLS) send TLS 1.2 Handshake, ServerKeyExchange"
        };
        assert!(log.contains(want), "no {want:?}:\n{log}");
    });
}

#[test]
fn freeradius_eap_tls12_then_four_way() {
    freeradius_tls("freeradius_eap_tls12_then_four_way", "1.2", "rustls");
}

#[test]
fn freeradius_eap_tls13_then_four_way() {
    freeradius_tls("freeradius_eap_tls13_then_four_way", "1.3", "rustls");
}

#[test]
fn freeradius_eap_tls12_openssl_engine_then_four_way() {
    freeradius_tls(
        "freeradius_eap_tls12_openssl_engine_then_four_way",
        "1.2",
        "openssl",
    );
}

#[test]
fn freeradius_eap_tls13_openssl_engine_then_four_way() {
    freeradius_tls(
        "freeradius_eap_tls13_openssl_engine_then_four_way",
        "1.3",
        "openssl",
    );
}

/// `[tls] engine` names one of the two engines (the PEM files here are real, so only the
/// engine is wrong).
#[test]
fn unknown_tls_engine_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    support::write_pki(dir.path());
    let t = format!(
        "role = \"supplicant\"\nmethods = [\"tls\"]\n{}",
        tls_table(dir.path(), "client", "1.2", "gnutls")
    );
    let e = PaeConfig::from_toml(&t).unwrap_err().to_string();
    assert!(e.contains("tls.engine"), "{e}");
    let ok = t.replace("gnutls", "openssl");
    assert!(PaeConfig::from_toml(&ok).is_ok());
}

#[test]
fn freeradius_untrusted_client_certificate_is_rejected() {
    let name = "freeradius_untrusted_client_certificate_is_rejected";
    in_netns(name, FREERADIUS, || {
        let dir = work_dir(name);
        let fr = FreeRadius::start(&dir, "1.2");
        let (bf, backend) = authenticator(&authenticator_toml(&[FreeRadius::ADDR], 2000));
        let nf = tls_supplicant(&dir, "rogue-client", "1.2", "rustls");
        rejected(&bf, &nf, &backend, &|| fr.log());
    });
}

#[test]
fn freeradius_eap_pwd_then_four_way() {
    let name = "freeradius_eap_pwd_then_four_way";
    in_netns(name, FREERADIUS, || {
        let dir = work_dir(name);
        let fr = FreeRadius::start(&dir, "1.2");
        let (bf, backend) = authenticator(&authenticator_toml(&[FreeRadius::ADDR], 2000));
        // FreeRADIUS proposes TLS first; our supplicant Naks it for pwd.
        joined(&bf, &pwd_supplicant(PWD_PASSWORD), &backend, &|| fr.log());
        assert!(fr.log().contains("eap_pwd"), "{}", fr.log());
    });
}

/// A wrong EAP-pwd password: our supplicant finds FreeRADIUS's Confirm_s wrong and fails
/// without answering (RFC 5931; wpa_supplicant does the same), so FreeRADIUS never decides and
/// sends no Access-Reject; the authenticator fails when its retransmissions of that confirm
/// to the supplicant run out. Nothing is cached on either side.
#[test]
fn freeradius_wrong_pwd_password_fails() {
    let name = "freeradius_wrong_pwd_password_fails";
    in_netns(name, FREERADIUS, || {
        let dir = work_dir(name);
        let fr = FreeRadius::start(&dir, "1.2");
        let toml = authenticator_toml(&[FreeRadius::ADDR], 2000)
            .replace("retransmit_ms = 1000\n", "retransmit_ms = 200\n");
        let (bf, backend) = authenticator(&toml);
        let nf = pwd_supplicant("not-the-password");
        let (br, node) = join(&bf, &nf, JOIN_LIMIT, both);
        assert_eq!(
            node.outcomes,
            vec![Outcome::Failure(FailureReason::AuthenticationFailed)],
            "{}",
            fr.log()
        );
        assert!(
            matches!(
                br.outcomes.as_slice(),
                [Outcome::Failure(FailureReason::Timeout { .. })]
            ),
            "{br:?}"
        );
        assert!(bf.pmk_cache().get(BR, NODE).is_none());
        assert!(nf.pmk_cache().get(NODE, BR).is_none());
        let c = backend.with_core(|c| *c.counters());
        assert_eq!((c.accepts, c.rejects), (0, 0), "{c:?}");
        assert_eq!(
            backend.with_core(|c| c.conversations()),
            0,
            "conversation left"
        );
        assert!(!fr.log().contains("Sent Access-Accept"), "{}", fr.log());
    });
}

#[test]
fn failover_from_a_dead_server_to_freeradius() {
    let name = "failover_from_a_dead_server_to_freeradius";
    in_netns(name, FREERADIUS, || {
        let dir = work_dir(name);
        let fr = FreeRadius::start(&dir, "1.2");
        // Nothing listens on the first server's port.
        let dead = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let (bf, backend) = authenticator(&authenticator_toml(
            &[&dead.to_string(), FreeRadius::ADDR],
            500,
        ));
        joined(&bf, &pwd_supplicant(PWD_PASSWORD), &backend, &|| fr.log());
        let r = backend.with_core(|c| *c.radius_counters());
        // The first Access-Request went twice to the dead server, then to FreeRADIUS; the
        // dead one is held down, so the rest went straight to FreeRADIUS.
        // (A FreeRADIUS slower than 500 ms on a loaded machine adds retransmissions to it.)
        assert_eq!(r.failovers, 1, "{r:?}");
        assert!(r.retransmissions >= 1, "{r:?}");
        let now = backend.now();
        assert!(!backend.with_core(|c| c.server_alive(0, now)));
        assert!(backend.with_core(|c| c.server_alive(1, now)));
    });
}

// ---- hostapd ----

#[test]
fn hostapd_eap_psk_then_four_way() {
    let name = "hostapd_eap_psk_then_four_way";
    in_netns(name, HOSTAPD, || {
        let dir = work_dir(name);
        let h = Hostapd::start(&dir);
        // The registered factory path: PaeFactory::new builds the RADIUS backend from [radius].
        let cfg = PaeConfig::from_toml(&authenticator_toml(&[Hostapd::ADDR], 2000)).unwrap();
        let bf = PaeFactory::new(cfg, PmkCache::new()).unwrap();
        let nf = supplicant(
            PSK_USER,
            "psk",
            &format!("[psk]\nid = \"{PSK_USER}\"\npsk_hex = \"{PSK_HEX}\"\n"),
        );
        let (br, node) = join(&bf, &nf, JOIN_LIMIT, both);
        assert!(
            matches!(br.outcomes.as_slice(), [Outcome::Success(_)]),
            "authenticator: {br:?}\nnode: {node:?}\n{}",
            h.log()
        );
        check_joined(&br, &node, bf.pmk_cache(), nf.pmk_cache());
        assert!(h.log().contains("EAP-PSK: MAC_P"), "{}", h.log());
    });
}

#[test]
fn hostapd_wrong_psk_is_rejected() {
    let name = "hostapd_wrong_psk_is_rejected";
    in_netns(name, HOSTAPD, || {
        let dir = work_dir(name);
        let h = Hostapd::start(&dir);
        let (bf, backend) = authenticator(&authenticator_toml(&[Hostapd::ADDR], 2000));
        let nf = supplicant(
            PSK_USER,
            "psk",
            &format!(
                "[psk]\nid = \"{PSK_USER}\"\npsk_hex = \"{}\"\n",
                "11".repeat(16)
            ),
        );
        rejected(&bf, &nf, &backend, &|| h.log());
        assert!(h.log().contains("EAP-PSK: Invalid MAC_P"), "{}", h.log());
    });
}

// ---- no server ----

/// A server that never answers: after two transmissions the backend answers `Timeout` and the
/// authenticator fails with "the AAA backend did not answer"; nothing is cached. (No daemon,
/// so no namespace: the silent socket is ours, on loopback.)
#[test]
fn silent_server_fails_the_authenticator() {
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr: SocketAddr = silent.local_addr().unwrap();
    let (bf, backend) = authenticator(&authenticator_toml(&[&addr.to_string()], 100));
    let nf = pwd_supplicant(PWD_PASSWORD);
    let (br, node) = join(&bf, &nf, Duration::from_secs(10), |b, _| {
        !b.outcomes.is_empty()
    });
    match br.outcomes.as_slice() {
        [Outcome::Failure(FailureReason::Internal(why))] => {
            assert!(why.contains("did not answer"), "{why}");
        }
        other => panic!("expected an Internal failure, got {other:?}"),
    }
    // The supplicant saw only the Identity Request: nothing more came.
    assert!(node.outcomes.is_empty(), "{node:?}");
    assert!(bf.pmk_cache().get(BR, NODE).is_none());
    let (c, r) = backend.with_core(|c| (*c.counters(), *c.radius_counters()));
    assert_eq!((c.no_answer, r.no_response, r.retransmissions), (1, 1, 1));
    // Both transmissions reached the silent server (the identical datagram twice).
    silent.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 4096];
    let mut got = vec![];
    while let Ok((n, _)) = silent.recv_from(&mut buf) {
        got.push(buf[..n].to_vec());
    }
    assert_eq!(got.len(), 2);
    assert_eq!(got[0], got[1]);
}

/// The runtime's route: the registered `"8021x"` factory made from a PAE section with a
/// `[radius]` table is a pass-through authenticator with its own RADIUS backend (here to a
/// silent server: its authenticator sessions fail with the backend timeout); a supplicant
/// section with `[radius]` is refused.
#[test]
fn registered_factory_builds_the_radius_backend() {
    use kmp_api::id::KmpId;
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    let reg = kmp_api::registry::Registry::from_inventory().unwrap();
    let r = reg.lookup(KmpId::Ieee8021xMka).unwrap();
    let factory = r.make_factory(&authenticator_toml(&[&addr], 50)).unwrap();
    assert_eq!(factory.kmp_id(), KmpId::Ieee8021xMka);
    let toml = authenticator_toml(&[&addr], 50).replace("\"authenticator\"", "\"supplicant\"");
    let e = r.make_factory(&toml).err().expect("refused").to_string();
    assert!(e.contains("authenticator"), "{e}");
    // The registered factory drives a session to the backend timeout like a built one.
    let nf = pwd_supplicant(PWD_PASSWORD);
    let (br, _) = support::join_with(factory.as_ref(), &nf, Duration::from_secs(10), |b, _| {
        !b.outcomes.is_empty()
    });
    assert!(
        matches!(
            br.outcomes.as_slice(),
            [Outcome::Failure(FailureReason::Internal(_))]
        ),
        "{br:?}"
    );
}
