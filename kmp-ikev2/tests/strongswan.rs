//! Interop with strongSwan 5.9.8 over loopback UDP (the UDP binding, DECISIONS I8): our
//! initiator against charon as responder with PSK and three IKE proposals (one of them sent
//! straight to port 4500 with the non-ESP marker), a wrong PSK, and the child SA's keys compared
//! with the ones charon derived (its `chd = 4` debug log); and charon as initiator
//! (`swanctl --initiate`, to our port 4500, floating to its NAT-T port for IKE_AUTH) against our
//! responder; both directions again with ECDSA P-256 and RSA-2048 certificates made by rcgen
//! (RFC 7427 signatures, CERTREQ/CERT both ways; charon's log shows it verified our chain and
//! signature). Rekeys and deletes (DECISIONS I10–I12): our timers rekey the child SA and the
//! IKE SA against charon, charon rekeys both (`swanctl --rekey`) against our serving responder,
//! every child SA's keys agree with charon's log, and deletes are honoured both ways.
//! Childless IKE SAs (RFC 6023, DECISIONS I25) both ways: our `childless = "force"` initiator
//! and charon's, each making the child SA with its own CREATE_CHILD_SA. Our default identity,
//! the EUI-64 as ID_KEY_ID, is what charon configured as `@#<hex>` expects.
//! charon runs `kernel-libipsec` (userspace ESP on a TUN device) with `encap = yes`,
//! so its child SA really is INSTALLED.
//!
//! Every test re-runs itself (this same test binary, `--exact NAME`) under `unshare -n` in a
//! fresh network namespace that has only `lo`, so charon's 0.0.0.0 sockets and the TUN device
//! of `kernel-libipsec` touch nothing outside and tests run in parallel. charon runs under
//! `unshare -m` with a tmpfs on /run, a private strongswan.conf (explicit plugin list), a
//! private vici socket and ports 1500/14500; it is killed when its guard drops (also on a
//! panic), and the outer test kills the whole process group when its time limit passes. Root
//! (or CAP_SYS_ADMIN + CAP_NET_ADMIN) is needed: without it the tests fail and say so.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kmp_api::ExtendedAddress;
use kmp_api::session::{FailureReason, KeyDirection, Outcome};
use kmp_ikev2::config::Ikev2Config;
use kmp_ikev2::session::Ikev2Factory;
use kmp_ikev2::udp::{self, LinkIds, Run, UdpEndpoint};

const INNER: &str = "KMP_IKEV2_STRONGSWAN_INNER";
const PSK: &str = "kmp-interop-test-psk-loopback";
/// charon's IKE and NAT-T ports inside the namespace (the standard ones: strongSwan expects the
/// non-ESP marker on every port but 500).
const CHARON_PORT: u16 = 500;
const CHARON_NATT_PORT: u16 = 4500;
/// Outer limit per test: the inner run normally takes about a second.
const TEST_LIMIT: Duration = Duration::from_secs(40);

const US: ExtendedAddress = ExtendedAddress([0x02, 0x15, 0x09, 0, 0, 0, 0, 0x01]);
const CHARON: ExtendedAddress = ExtendedAddress([0x02, 0x15, 0x09, 0, 0, 0, 0, 0x02]);

/// Runs `body` inside a private lo-only network namespace (see the module docs).
fn in_netns(name: &str, body: impl FnOnce()) {
    let iso = netns_test::Isolation {
        marker: INNER,
        setup: "ip link set lo up && ip addr add 10.154.10.1/32 dev lo && ip addr add 10.154.11.1/32 dev lo",
        limit: TEST_LIMIT,
        what: "these strongSwan interop tests",
    };
    netns_test::run_isolated(name, &iso, body);
}

fn charon_binary() -> &'static str {
    ["/usr/lib/ipsec/charon", "/usr/sbin/charon-systemd"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("strongSwan's charon is not installed (scripts/test.sh installs it)")
}

/// One charon daemon in the current namespace; killed on drop.
struct Charon {
    dir: PathBuf,
    child: Child,
    uri: String,
}

struct StrongswanSide<'a> {
    ike_proposal: &'a str,
    esp_proposal: &'a str,
    psk: &'a str,
    /// With certificates instead of the PSK: charon's own and the CA both sides trust.
    certs: Option<&'a Pki>,
    /// charon's IKE port, its NAT-T port and the port it initiates to.
    ports: (u16, u16, u16),
    /// The connection's `childless` (RFC 6023): allow (charon's default), force or never.
    childless: &'a str,
    /// The identity charon expects of us (swanctl syntax, quoted in the file since `#` starts a
    /// comment there; `@#HEX` is an ID_KEY_ID).
    our_id: &'a str,
}

impl<'a> StrongswanSide<'a> {
    /// charon as responder on the standard ports, PSK, our identity `initiator.test`.
    fn responder(ike_proposal: &'a str, esp_proposal: &'a str) -> StrongswanSide<'a> {
        StrongswanSide {
            ike_proposal,
            esp_proposal,
            psk: PSK,
            certs: None,
            ports: (CHARON_PORT, CHARON_NATT_PORT, 600),
            childless: "allow",
            our_id: "initiator.test",
        }
    }

    /// charon as initiator: on 1500/14500, to our NAT-T port, so the non-ESP marker is on
    /// every message.
    fn initiator(ike_proposal: &'a str, esp_proposal: &'a str) -> StrongswanSide<'a> {
        StrongswanSide {
            ports: (1500, 14500, udp::NAT_T_PORT),
            ..StrongswanSide::responder(ike_proposal, esp_proposal)
        }
    }
}

impl Charon {
    fn start(name: &str, side: &StrongswanSide<'_>) -> Charon {
        let dir = std::env::temp_dir().join(format!("kmp-ike-ss-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let d = dir.display().to_string();
        let uri = format!("unix://{d}/charon.vici");
        let (p, pn) = (side.ports.0, side.ports.1);
        // charon-systemd reads the `charon-systemd` section and falls back to `charon`.
        let conf = format!(
            r#"charon {{
  load_modular = no
  load = random nonce openssl pem pkcs1 pkcs8 x509 pubkey sha2 hmac kdf gcm aes kernel-libipsec kernel-netlink socket-default vici
  port = {p}
  port_nat_t = {pn}
  install_routes = yes
  install_virtual_ip = no
  retransmit_timeout = 1
  retransmit_tries = 2
  plugins {{ vici {{ socket = {uri} }} }}
  filelog {{ main {{ path = {d}/charon.log
                   default = 1
                   ike = 2
                   cfg = 2
                   net = 2
                   chd = 4
                   flush_line = yes }} }}
}}
"#
        );
        std::fs::write(dir.join("strongswan.conf"), conf).unwrap();
        let auth = if let Some(pki) = side.certs {
            // swanctl (SWANCTL_DIR = dir) loads x509ca/, x509/ and private/ with --load-all.
            for sub in ["x509ca", "x509", "private"] {
                std::fs::create_dir_all(dir.join(sub)).unwrap();
            }
            std::fs::write(dir.join("x509ca/ca.pem"), &pki.ca_pem).unwrap();
            std::fs::write(dir.join("x509/charon.pem"), &pki.charon.0).unwrap();
            std::fs::write(dir.join("private/charon.pem"), &pki.charon.1).unwrap();
            (
                "pubkey",
                format!("\n             certs = {d}/x509/charon.pem"),
                format!("\n              cacerts = {d}/x509ca/ca.pem"),
            )
        } else {
            ("psk", String::new(), String::new())
        };
        let swanctl = format!(
            r#"connections {{
  kmp {{
    version = 2
    local_addrs = 127.0.0.1
    remote_addrs = 127.0.0.1
    remote_port = {rp}
    mobike = no
    encap = yes
    childless = {childless}
    proposals = {ike}
    local {{ auth = {a}
             id = responder.test{lc} }}
    remote {{ auth = {a}
              id = "{our_id}"{rc} }}
    children {{
      kmp-child {{ local_ts = 10.154.10.1/32
                   remote_ts = 10.154.11.1/32
                   esp_proposals = {esp} }}
    }}
  }}
}}
secrets {{ ike-1 {{ id-1 = responder.test
                   id-2 = "{our_id}"
                   secret = "{psk}" }} }}
"#,
            ike = side.ike_proposal,
            esp = side.esp_proposal,
            psk = side.psk,
            rp = side.ports.2,
            childless = side.childless,
            our_id = side.our_id,
            a = auth.0,
            lc = auth.1,
            rc = auth.2,
        );
        std::fs::write(dir.join("swanctl.conf"), swanctl).unwrap();
        let child = Command::new("unshare")
            .args([
                "-m",
                "--",
                "sh",
                "-c",
                "mount -t tmpfs tmpfs /run && exec \"$0\"",
                charon_binary(),
            ])
            .env("STRONGSWAN_CONF", dir.join("strongswan.conf"))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.join("stdout.log")).unwrap())
            .stderr(std::fs::File::create(dir.join("stderr.log")).unwrap())
            .spawn()
            .expect("cannot start charon");
        let charon = Charon { dir, child, uri };
        let t = Instant::now();
        while !charon.dir.join("charon.vici").exists() {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "charon did not open its vici socket; log:\n{}",
                charon.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let out = charon.swanctl(&["--load-all", "--file", &format!("{d}/swanctl.conf")]);
        assert!(out.0, "swanctl --load-all failed: {}", out.1);
        charon
    }

    fn swanctl(&self, args: &[&str]) -> (bool, String) {
        let out = Command::new("swanctl")
            .env("SWANCTL_DIR", &self.dir)
            .args(args)
            .args(["--uri", &self.uri])
            .stdin(Stdio::null())
            .output()
            .expect("cannot run swanctl");
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("charon.log")).unwrap_or_default()
    }
}

impl Drop for Charon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn our_factory(ike: &str, esp: &str, psk: &str) -> Ikev2Factory {
    our_factory_with(ike, esp, psk, "")
}

/// Our initiator's configuration with `extra` TOML lines.
fn our_factory_with(ike: &str, esp: &str, psk: &str, extra: &str) -> Ikev2Factory {
    let toml = format!(
        r#"{extra}psk = "{psk}"
ike_proposals = ["{ike}"]
child_proposals = ["{esp}"]
local_id = "fqdn:initiator.test"
remote_id = "fqdn:responder.test"
local_ts = ["10.154.11.1/32"]
remote_ts = ["10.154.10.1/32"]
retransmit_ms = 500
max_retransmits = 2
"#
    );
    Ikev2Factory::new(Ikev2Config::from_toml(&toml).unwrap()).unwrap()
}

/// The same, as responder: the roles of the identities and selectors turn around.
fn our_responder_factory(ike: &str, esp: &str) -> Ikev2Factory {
    let toml = format!(
        r#"psk = "{PSK}"
ike_proposals = ["{ike}"]
child_proposals = ["{esp}"]
local_id = "fqdn:initiator.test"
remote_id = "fqdn:responder.test"
local_ts = ["10.154.11.1/32"]
remote_ts = ["10.154.10.1/32"]
"#
    );
    Ikev2Factory::new(Ikev2Config::from_toml(&toml).unwrap()).unwrap()
}

fn key(run: &Run, dir: KeyDirection) -> String {
    let k = run.link_keys().expect("no keys installed");
    hex::encode(
        k.link_keys
            .iter()
            .find(|l| l.direction == dir)
            .unwrap()
            .key
            .expose(),
    )
}

/// The child SA's encryption keys charon logged at `chd = 4`: (initiator's, responder's), hex.
fn charon_child_keys(log: &str) -> Option<(String, String)> {
    let grab = |label: &str| -> Option<String> {
        let start = log.find(label)?;
        let mut hex = String::new();
        for line in log.get(start..)?.lines().skip(1) {
            // Hex dump lines: "   0: 01 02 ... 0F  ascii"
            let Some((_, rest)) = line.split_once(": ") else {
                break;
            };
            let bytes: Vec<&str> = rest
                .split_whitespace()
                .take_while(|t| t.len() == 2 && t.chars().all(|c| c.is_ascii_hexdigit()))
                .collect();
            if bytes.is_empty() || !line.trim_start().starts_with(char::is_numeric) {
                break;
            }
            hex.extend(bytes);
        }
        Some(hex.to_lowercase())
    };
    Some((
        grab("encryption initiator key")?,
        grab("encryption responder key")?,
    ))
}

/// Our initiator (`factory`) against charon on 127.0.0.1:`port`, to its end.
fn connect(factory: &Ikev2Factory, port: u16) -> Run {
    let mut ep = UdpEndpoint::bind("127.0.0.1:0").unwrap();
    ep.connect(
        format!("127.0.0.1:{port}").parse().unwrap(),
        factory,
        LinkIds {
            local: US,
            peer: CHARON,
        },
        Duration::from_secs(10),
    )
    .unwrap()
}

fn initiate_against_charon(name: &str, ike: &str, esp: &str, port: u16) {
    initiate_with(name, ike, esp, port, None, &our_factory(ike, esp, PSK));
}

fn initiate_with(
    name: &str,
    ike: &str,
    esp: &str,
    port: u16,
    certs: Option<&Pki>,
    factory: &Ikev2Factory,
) {
    let charon = Charon::start(
        name,
        &StrongswanSide {
            certs,
            ..StrongswanSide::responder(ike, esp)
        },
    );
    let t = Instant::now();
    let run = connect(factory, port);
    println!("our initiator finished after {:?}", t.elapsed());
    let log = charon.log();
    assert!(
        matches!(run.outcome(), Some(Outcome::Success(_))),
        "{run:?}\ncharon log:\n{log}"
    );
    let (ok, sas) = charon.swanctl(&["--list-sas"]);
    println!("swanctl --list-sas:\n{sas}");
    assert!(ok);
    assert!(sas.contains("ESTABLISHED"), "{sas}\n{log}");
    assert!(
        sas.contains("kmp-child") && sas.contains("INSTALLED"),
        "{sas}\n{log}"
    );
    if let Some(pki) = certs {
        check_cert_auth(&log, pki.sig_name);
    }
    let established: Vec<&str> = log.lines().filter(|l| l.contains("established")).collect();
    println!("charon: {established:#?}");
    // Key agreement: our initiator's Transmit key is the I→R ESP key charon derived.
    let (ki, kr) = charon_child_keys(&log).expect("charon logged no child SA keys");
    println!("charon I→R {ki}\ncharon R→I {kr}");
    assert!(ki.starts_with(&key(&run, KeyDirection::Transmit)), "{ki}");
    assert!(kr.starts_with(&key(&run, KeyDirection::Receive)), "{kr}");
}

#[test]
fn strongswan_responder_ccm8_ecp256() {
    in_netns("strongswan_responder_ccm8_ecp256", || {
        initiate_against_charon(
            "ccm8",
            "aes128ccm8-prfsha256-ecp256",
            "aes128ccm8",
            CHARON_PORT,
        );
    });
}

#[test]
fn strongswan_responder_gcm16_modp2048() {
    in_netns("strongswan_responder_gcm16_modp2048", || {
        initiate_against_charon(
            "gcm16",
            "aes128gcm16-prfsha256-modp2048",
            "aes128gcm16",
            // Straight to the NAT-T port: every message with the non-ESP marker.
            CHARON_NATT_PORT,
        );
    });
}

#[test]
fn strongswan_responder_cbc_sha256() {
    in_netns("strongswan_responder_cbc_sha256", || {
        initiate_against_charon(
            "cbc",
            "aes128-sha256-prfsha256-ecp256",
            "aes128-sha256",
            CHARON_PORT,
        );
    });
}

#[test]
fn strongswan_responder_wrong_psk() {
    in_netns("strongswan_responder_wrong_psk", || {
        let ike = "aes128ccm8-prfsha256-ecp256";
        let charon = Charon::start("wrongpsk", &StrongswanSide::responder(ike, "aes128ccm8"));
        let run = connect(
            &our_factory(ike, "aes128ccm8", "not the right key"),
            CHARON_PORT,
        );
        let log = charon.log();
        assert_eq!(
            run.outcome(),
            Some(&Outcome::Failure(FailureReason::AuthenticationFailed)),
            "{run:?}\n{log}"
        );
        assert!(run.link_keys().is_none());
        let failed: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("mismatch") || l.contains("AUTH_FAILED"))
            .collect();
        println!("charon: {failed:#?}");
        assert!(!failed.is_empty(), "{log}");
        let (_, sas) = charon.swanctl(&["--list-sas"]);
        assert!(!sas.contains("ESTABLISHED"), "{sas}");
    });
}

#[test]
fn strongswan_initiator() {
    in_netns("strongswan_initiator", || {
        let ike = "aes128ccm8-prfsha256-ecp256";
        accept_from_charon(
            "initiator",
            ike,
            None,
            &our_responder_factory(ike, "aes128ccm8"),
        );
    });
}

fn accept_from_charon(name: &str, ike: &str, certs: Option<&Pki>, factory: &Ikev2Factory) {
    {
        let charon = Charon::start(
            name,
            &StrongswanSide {
                certs,
                ..StrongswanSide::initiator(ike, "aes128ccm8")
            },
        );
        let t = Instant::now();
        let mut ep = UdpEndpoint::bind(("127.0.0.1", udp::NAT_T_PORT)).unwrap();
        let uri = charon.uri.clone();
        let swanctl = std::thread::spawn(move || {
            Command::new("swanctl")
                .args([
                    "--initiate",
                    "--child",
                    "kmp-child",
                    "--timeout",
                    "10",
                    "--uri",
                    &uri,
                ])
                .stdin(Stdio::null())
                .output()
                .unwrap()
        });
        // charon's identities are the other way round here: it initiates as
        // "responder.test" (the name of its connection's local side).
        let run = ep
            .accept(
                factory,
                LinkIds {
                    local: US,
                    peer: CHARON,
                },
                Duration::from_secs(10),
            )
            .unwrap_or_else(|e| panic!("{e}\n{}", charon.log()));
        let out = swanctl.join().unwrap();
        let out = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        println!("our responder finished after {:?}", t.elapsed());
        println!("swanctl --initiate:\n{out}");
        let log = charon.log();
        assert!(
            matches!(run.outcome(), Some(Outcome::Success(_))),
            "{run:?}\n{log}"
        );
        assert!(
            out.contains("initiate completed successfully"),
            "{out}\n{log}"
        );
        let (_, sas) = charon.swanctl(&["--list-sas"]);
        println!("swanctl --list-sas:\n{sas}");
        assert!(
            sas.contains("ESTABLISHED") && sas.contains("INSTALLED"),
            "{sas}"
        );
        if let Some(pki) = certs {
            check_cert_auth(&log, pki.sig_name);
        }
        // Here charon is the initiator: its I→R key is our Receive key.
        let (ki, kr) = charon_child_keys(&log).expect("charon logged no child SA keys");
        assert!(ki.starts_with(&key(&run, KeyDirection::Receive)), "{ki}");
        assert!(kr.starts_with(&key(&run, KeyDirection::Transmit)), "{kr}");
    }
}

// ----- certificates (DECISIONS I20–I23) -----

/// A CA and two ECDSA P-256 end entities made by rcgen: charon (`responder.test`) and us
/// (`initiator.test`), PEM (certificate, PKCS#8 key).
struct Pki {
    /// How charon logs the method-14 signature of our key.
    sig_name: &'static str,
    ca_pem: String,
    charon: (String, String),
    us: (String, String),
}

fn pki(rsa: bool) -> Pki {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name
        .push(DnType::CommonName, "kmp interop CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::from_params(&ca, &ca_key);
    let leaf = |dns: &str| {
        let key = if rsa {
            let k =
                openssl::pkey::PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
            let pem = String::from_utf8(k.private_key_to_pem_pkcs8().unwrap()).unwrap();
            KeyPair::from_pem_and_sign_algo(&pem, &rcgen::PKCS_RSA_SHA256).unwrap()
        } else {
            KeyPair::generate().unwrap()
        };
        let mut p = CertificateParams::new(vec![dns.to_string()]).unwrap();
        p.distinguished_name.push(DnType::CommonName, dns);
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        (
            p.signed_by(&key, &issuer).unwrap().pem(),
            key.serialize_pem(),
        )
    };
    Pki {
        sig_name: if rsa {
            "RSA_EMSA_PKCS1_SHA2_256"
        } else {
            "ECDSA_WITH_SHA256_DER"
        },
        charon: leaf("responder.test"),
        us: leaf("initiator.test"),
        ca_pem,
    }
}

/// Our side with our certificate (files in `dir`), checked at the real time.
fn our_cert_factory(pki: &Pki, dir: &Path, responder: bool) -> Ikev2Factory {
    let w = |n: &str, t: &str| {
        let p = dir.join(n);
        std::fs::write(&p, t).unwrap();
        format!("{:?}", p.display().to_string())
    };
    let toml = format!(
        r#"auth = "pubkey"
cert = {}
key = {}
ca = [{}]
ike_proposals = ["aes128ccm8-prfsha256-ecp256"]
child_proposals = ["aes128ccm8"]
local_id = "fqdn:initiator.test"
remote_id = "fqdn:responder.test"
local_ts = ["10.154.11.1/32"]
remote_ts = ["10.154.10.1/32"]
{}"#,
        w("us.pem", &pki.us.0),
        w("us-key.pem", &pki.us.1),
        w("ca.pem", &pki.ca_pem),
        if responder {
            ""
        } else {
            "retransmit_ms = 500\nmax_retransmits = 2\n"
        }
    );
    Ikev2Factory::new(Ikev2Config::from_toml(&toml).unwrap()).unwrap()
}

#[test]
fn strongswan_responder_ecdsa_certificates() {
    in_netns("strongswan_responder_ecdsa_certificates", || {
        let pki = pki(false);
        let dir = tempfile::tempdir().unwrap();
        let ike = "aes128ccm8-prfsha256-ecp256";
        initiate_with(
            "certr",
            ike,
            "aes128ccm8",
            CHARON_PORT,
            Some(&pki),
            &our_cert_factory(&pki, dir.path(), false),
        );
    });
}

#[test]
fn strongswan_initiator_ecdsa_certificates() {
    in_netns("strongswan_initiator_ecdsa_certificates", || {
        let pki = pki(false);
        let dir = tempfile::tempdir().unwrap();
        let ike = "aes128ccm8-prfsha256-ecp256";
        accept_from_charon(
            "certi",
            ike,
            Some(&pki),
            &our_cert_factory(&pki, dir.path(), true),
        );
    });
}

/// charon verified our certificate chain and our RFC 7427 signature (method 14 with
/// ECDSA-SHA256 is "ECDSA_WITH_SHA256_DER" in its log, with RSA PKCS#1 v1.5 SHA-256
/// "RSA_EMSA_PKCS1_SHA2_256").
fn check_cert_auth(log: &str, sig_name: &str) {
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("authentication of") || l.contains("cert"))
        .collect();
    println!("charon: {lines:#?}");
    assert!(
        log.contains(&format!(
            "authentication of 'initiator.test' with {sig_name} successful"
        )),
        "{log}"
    );
}

#[test]
fn strongswan_both_ways_rsa_certificates() {
    in_netns("strongswan_both_ways_rsa_certificates", || {
        let pki = pki(true);
        let dir = tempfile::tempdir().unwrap();
        let ike = "aes128ccm8-prfsha256-ecp256";
        initiate_with(
            "rsar",
            ike,
            "aes128ccm8",
            CHARON_PORT,
            Some(&pki),
            &our_cert_factory(&pki, dir.path(), false),
        );
        accept_from_charon(
            "rsai",
            ike,
            Some(&pki),
            &our_cert_factory(&pki, dir.path(), true),
        );
    });
}

// ----- rekeying and deletes (DECISIONS I10–I13) -----

/// Every child SA's encryption keys charon logged, in order: (requester's, responder's), hex.
fn charon_all_child_keys(log: &str) -> Vec<(String, String)> {
    log.match_indices("encryption initiator key")
        .filter_map(|(i, _)| charon_child_keys(&log[i..]))
        .collect()
}

/// The link keys of every install of the run, in order: (Transmit, Receive), hex.
fn our_installs(run: &Run) -> Vec<(String, String)> {
    let pick = |k: &kmp_api::session::KeyInstall, d: KeyDirection| {
        hex::encode(
            k.link_keys
                .iter()
                .find(|l| l.direction == d)
                .unwrap()
                .key
                .expose(),
        )
    };
    run.actions
        .iter()
        .filter_map(|a| match a {
            kmp_api::session::Action::InstallKeys(k) => Some((
                pick(k, KeyDirection::Transmit),
                pick(k, KeyDirection::Receive),
            )),
            _ => None,
        })
        .collect()
}

fn removals(run: &Run) -> Vec<kmp_api::session::KeySelector> {
    run.actions
        .iter()
        .filter_map(|a| match a {
            kmp_api::session::Action::RemoveKeys(r) => Some(r.which.clone()),
            _ => None,
        })
        .collect()
}

/// Serves `run` in short slices until `done` holds (at most `limit`), then a little longer so
/// the exchange that made it true is finished on both sides.
fn serve_until(ep: &mut UdpEndpoint, run: &mut Run, limit: Duration, done: impl Fn(&Run) -> bool) {
    let end = Instant::now() + limit;
    while !done(run) && Instant::now() < end {
        ep.serve(run, Duration::from_millis(50)).unwrap();
    }
    ep.serve(run, Duration::from_millis(200)).unwrap();
}

fn log_lines<'a>(log: &'a str, words: &[&str]) -> Vec<&'a str> {
    log.lines()
        .filter(|l| words.iter().any(|w| l.contains(w)))
        .collect()
}

/// Our initiator rekeys the child SA (after 1 s), then the IKE SA (after 2 s) and with it, due
/// by then, the child SA again on the new IKE SA; charon agrees on every key; then our delete
/// empties charon's SA list.
#[test]
fn strongswan_responder_rekeys_initiated_by_us() {
    in_netns("strongswan_responder_rekeys_initiated_by_us", || {
        let (ike, esp) = ("aes128ccm8-prfsha256-ecp256", "aes128ccm8");
        let charon = Charon::start("rekey-us", &StrongswanSide::responder(ike, esp));
        let toml = format!(
            r#"psk = "{PSK}"
ike_proposals = ["{ike}"]
child_proposals = ["{esp}"]
local_id = "fqdn:initiator.test"
remote_id = "fqdn:responder.test"
local_ts = ["10.154.11.1/32"]
remote_ts = ["10.154.10.1/32"]
retransmit_ms = 500
max_retransmits = 2
rekey_child_after_secs = 1
rekey_ike_after_secs = 2
"#
        );
        let factory = Ikev2Factory::new(Ikev2Config::from_toml(&toml).unwrap()).unwrap();
        let t = Instant::now();
        let mut ep = UdpEndpoint::bind("127.0.0.1:0").unwrap();
        let peer: SocketAddr = format!("127.0.0.1:{CHARON_PORT}").parse().unwrap();
        let ids = LinkIds {
            local: US,
            peer: CHARON,
        };
        let mut run = ep
            .connect(peer, &factory, ids, Duration::from_secs(10))
            .unwrap();
        let (_, before) = charon.swanctl(&["--list-sas"]);
        // Child rekey at 1 s, IKE SA rekey at 2 s and the child rekey due by then right after
        // it; the next would come a second later.
        serve_until(&mut ep, &mut run, Duration::from_secs(8), |r| {
            our_installs(r).len() >= 3
        });
        println!("established and rekeyed after {:?}", t.elapsed());
        let log = charon.log();
        let (_, sas) = charon.swanctl(&["--list-sas"]);
        println!("swanctl --list-sas before:\n{before}\nafter:\n{sas}");
        println!(
            "charon: {:#?}",
            log_lines(&log, &["rekey", "CREATE_CHILD_SA", "deleting", "closing"])
        );
        let ours = our_installs(&run);
        let theirs = charon_all_child_keys(&log);
        println!("ours (tx, rx): {ours:#?}\ncharon (I→R, R→I): {theirs:#?}");
        assert_eq!(ours.len(), 3, "{run:?}\n{log}");
        assert_eq!(theirs.len(), 3, "{log}");
        // We began every exchange that made a child SA: our Transmit key is the I→R key.
        for ((tx, rx), (ki, kr)) in ours.iter().zip(&theirs) {
            assert!(ki.starts_with(tx.as_str()), "{ki} {tx}");
            assert!(kr.starts_with(rx.as_str()), "{kr} {rx}");
        }
        assert_ne!(ours[0], ours[1]);
        assert_ne!(ours[1], ours[2]);
        // The old child SA records went; nothing else did.
        let removed = removals(&run);
        assert_eq!(removed.len(), 2, "{removed:?}");
        assert!(!removed.contains(&kmp_api::session::KeySelector::All));
        // charon holds one IKE SA (a new one) with one child SA.
        assert!(
            sas.contains("ESTABLISHED") && sas.contains("INSTALLED"),
            "{sas}"
        );
        // Replaced child SAs linger in charon's list as DELETED for a moment.
        assert_eq!(sas.matches("INSTALLED,").count(), 1, "{sas}");
        assert_eq!(sas.matches("ESTABLISHED").count(), 1, "{sas}");
        let spis = |s: &str| {
            s.lines()
                .find(|l| l.contains("ESTABLISHED"))
                .map(str::to_owned)
                .unwrap_or_default()
        };
        assert_ne!(spis(&before), spis(&sas), "the IKE SA has new SPIs");
        // Our delete: charon drops everything.
        ep.delete(&mut run).unwrap();
        let t = Instant::now();
        let mut after = String::new();
        while t.elapsed() < Duration::from_secs(3) {
            after = charon.swanctl(&["--list-sas"]).1;
            if !after.contains("kmp") {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        println!("swanctl --list-sas after our delete: {after:?}");
        assert!(!after.contains("kmp"), "{after}\n{}", charon.log());
    });
}

/// charon initiates, then rekeys the child SA (`swanctl --rekey --child`) and the IKE SA
/// (`--rekey --ike`) while our responder serves; the rekeyed child keys agree; then
/// `swanctl --terminate --ike` makes our side remove its keys and close.
#[test]
fn strongswan_initiator_rekeys_and_terminates() {
    in_netns("strongswan_initiator_rekeys_and_terminates", || {
        let ike = "aes128ccm8-prfsha256-ecp256";
        let charon = Charon::start(
            "rekey-charon",
            &StrongswanSide::initiator(ike, "aes128ccm8"),
        );
        let t = Instant::now();
        let mut ep = UdpEndpoint::bind(("127.0.0.1", udp::NAT_T_PORT)).unwrap();
        let uri = charon.uri.clone();
        let swanctl = move |args: &[&str]| {
            let mut a: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
            a.extend(["--uri".to_owned(), uri.clone()]);
            std::thread::spawn(move || {
                let out = Command::new("swanctl")
                    .args(&a)
                    .stdin(Stdio::null())
                    .output()
                    .unwrap();
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                )
            })
        };
        let init = swanctl(&["--initiate", "--child", "kmp-child", "--timeout", "10"]);
        let mut run = ep
            .accept(
                &our_responder_factory(ike, "aes128ccm8"),
                LinkIds {
                    local: US,
                    peer: CHARON,
                },
                Duration::from_secs(10),
            )
            .unwrap_or_else(|e| panic!("{e}\n{}", charon.log()));
        let out = init.join().unwrap();
        assert!(out.contains("initiate completed successfully"), "{out}");
        let (_, before) = charon.swanctl(&["--list-sas"]);

        // Child SA rekey, begun by charon.
        let rekey = swanctl(&["--rekey", "--child", "kmp-child"]);
        serve_until(&mut ep, &mut run, Duration::from_secs(8), |_| {
            rekey.is_finished()
        });
        println!("swanctl --rekey --child: {}", rekey.join().unwrap());
        let log = charon.log();
        let ours = our_installs(&run);
        let theirs = charon_all_child_keys(&log);
        println!("ours (tx, rx): {ours:#?}\ncharon (I→R, R→I): {theirs:#?}");
        assert_eq!(ours.len(), 2, "{run:?}\n{log}");
        assert_eq!(theirs.len(), 2, "{log}");
        // charon began both exchanges: its I→R key is our Receive key.
        for ((tx, rx), (ki, kr)) in ours.iter().zip(&theirs) {
            assert!(ki.starts_with(rx.as_str()), "{ki} {rx}");
            assert!(kr.starts_with(tx.as_str()), "{kr} {tx}");
        }
        assert_ne!(ours[0], ours[1]);
        assert_eq!(removals(&run).len(), 1);

        // IKE SA rekey, begun by charon.
        let rekey = swanctl(&["--rekey", "--ike", "kmp"]);
        serve_until(&mut ep, &mut run, Duration::from_secs(8), |_| {
            rekey.is_finished()
        });
        println!("swanctl --rekey --ike: {}", rekey.join().unwrap());
        let (_, sas) = charon.swanctl(&["--list-sas"]);
        println!("swanctl --list-sas before:\n{before}\nafter the rekeys:\n{sas}");
        assert_eq!(sas.matches("ESTABLISHED").count(), 1, "{sas}");
        // Replaced child SAs linger in charon's list as DELETED for a moment.
        assert_eq!(sas.matches("INSTALLED,").count(), 1, "{sas}");
        assert!(sas.contains("INSTALLED"), "{sas}");
        let spis = |s: &str| {
            s.lines()
                .find(|l| l.contains("ESTABLISHED"))
                .map(str::to_owned)
                .unwrap_or_default()
        };
        assert_ne!(spis(&before), spis(&sas), "the IKE SA has new SPIs");
        assert!(!run.session.is_closed());

        // The new IKE SA works: charon's child rekey on it agrees too.
        let rekey = swanctl(&["--rekey", "--child", "kmp-child"]);
        serve_until(&mut ep, &mut run, Duration::from_secs(8), |_| {
            rekey.is_finished()
        });
        println!("swanctl --rekey --child: {}", rekey.join().unwrap());
        let log = charon.log();
        let (ours, theirs) = (our_installs(&run), charon_all_child_keys(&log));
        assert_eq!((ours.len(), theirs.len()), (3, 3), "{log}");
        assert!(theirs[2].0.starts_with(ours[2].1.as_str()));
        assert!(theirs[2].1.starts_with(ours[2].0.as_str()));

        // charon terminates: our side removes its keys and closes.
        let term = swanctl(&["--terminate", "--ike", "kmp", "--timeout", "5"]);
        serve_until(&mut ep, &mut run, Duration::from_secs(8), |_| {
            term.is_finished()
        });
        let out = term.join().unwrap();
        println!("swanctl --terminate: {out}");
        println!(
            "charon: {:#?}",
            log_lines(
                &charon.log(),
                &["rekey", "CREATE_CHILD_SA", "deleting", "closing"]
            )
        );
        println!("all done after {:?}", t.elapsed());
        assert!(out.contains("terminate completed successfully"), "{out}");
        assert_eq!(
            removals(&run).last(),
            Some(&kmp_api::session::KeySelector::All)
        );
        assert!(run.session.is_closed());
    });
}

/// PFS child SA rekeys (a KE of the IKE SA's group): ours against charon as responder, then
/// charon's (`swanctl --rekey --child`, charon being the IKE responder) against our initiator.
#[test]
fn strongswan_pfs_child_rekeys_both_ways() {
    in_netns("strongswan_pfs_child_rekeys_both_ways", || {
        let ike = "aes128ccm8-prfsha256-ecp256";
        let charon = Charon::start(
            "rekey-pfs",
            &StrongswanSide::responder(ike, "aes128ccm8-ecp256"),
        );
        let toml = format!(
            r#"psk = "{PSK}"
ike_proposals = ["{ike}"]
child_proposals = ["aes128ccm8"]
local_id = "fqdn:initiator.test"
remote_id = "fqdn:responder.test"
local_ts = ["10.154.11.1/32"]
remote_ts = ["10.154.10.1/32"]
retransmit_ms = 500
max_retransmits = 2
rekey_child_after_secs = 1
pfs = true
"#
        );
        let factory = Ikev2Factory::new(Ikev2Config::from_toml(&toml).unwrap()).unwrap();
        let t = Instant::now();
        let mut ep = UdpEndpoint::bind("127.0.0.1:0").unwrap();
        let peer: SocketAddr = format!("127.0.0.1:{CHARON_PORT}").parse().unwrap();
        let ids = LinkIds {
            local: US,
            peer: CHARON,
        };
        let mut run = ep
            .connect(peer, &factory, ids, Duration::from_secs(10))
            .unwrap();
        serve_until(&mut ep, &mut run, Duration::from_secs(8), |r| {
            our_installs(r).len() >= 2
        });
        // charon's rekey right after ours, before our next one (a second after ours).
        let uri = charon.uri.clone();
        let rekey = std::thread::spawn(move || {
            let out = Command::new("swanctl")
                .args(["--rekey", "--child", "kmp-child", "--uri", &uri])
                .stdin(Stdio::null())
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout).into_owned()
        });
        serve_until(&mut ep, &mut run, Duration::from_secs(8), |_| {
            rekey.is_finished()
        });
        println!("swanctl --rekey --child: {}", rekey.join().unwrap());
        println!("done after {:?}", t.elapsed());
        let log = charon.log();
        println!(
            "charon: {:#?}",
            log_lines(&log, &["CREATE_CHILD_SA", "closing"])
        );
        assert!(
            log.contains("parsed CREATE_CHILD_SA request 2 [ N(REKEY_SA) SA No KE TSi TSr ]"),
            "our request carries a KE\n{log}"
        );
        assert!(
            log.contains("parsed CREATE_CHILD_SA response 0 [ SA No KE TSi TSr ]"),
            "our answer carries a KE\n{log}"
        );
        let (ours, theirs) = (our_installs(&run), charon_all_child_keys(&log));
        println!("ours (tx, rx): {ours:#?}\ncharon (I→R, R→I): {theirs:#?}");
        assert_eq!((ours.len(), theirs.len()), (3, 3), "{run:?}\n{log}");
        // The first two exchanges were ours, the third charon's.
        for (n, ((tx, rx), (ki, kr))) in ours.iter().zip(&theirs).enumerate() {
            let (mine_i2r, mine_r2i) = if n < 2 { (tx, rx) } else { (rx, tx) };
            assert!(ki.starts_with(mine_i2r.as_str()), "{n}: {ki} {mine_i2r}");
            assert!(kr.starts_with(mine_r2i.as_str()), "{n}: {kr} {mine_r2i}");
        }
        let (_, sas) = charon.swanctl(&["--list-sas"]);
        assert_eq!(sas.matches("INSTALLED,").count(), 1, "{sas}");
        assert!(!run.session.is_closed());
    });
}

// ----- childless IKE SAs (RFC 6023, DECISIONS I25) -----

/// Our initiator with `childless = "force"`: IKE_AUTH without a child SA, then the child SA in
/// its own CREATE_CHILD_SA; charon (childless = allow, its default) installs it and its keys
/// are ours.
#[test]
fn strongswan_responder_childless_initiation_by_us() {
    in_netns("strongswan_responder_childless_initiation_by_us", || {
        let (ike, esp) = ("aes128ccm8-prfsha256-ecp256", "aes128ccm8");
        let factory = our_factory_with(ike, esp, PSK, "childless = \"force\"\n");
        let charon = Charon::start("childless-us", &StrongswanSide::responder(ike, esp));
        let run = connect(&factory, CHARON_PORT);
        let log = charon.log();
        assert!(
            matches!(run.outcome(), Some(Outcome::Success(sa)) if sa.keys_installed == 3),
            "{run:?}\n{log}"
        );
        let exchanges = log_lines(&log, &["IKE_AUTH", "CREATE_CHILD_SA"]);
        println!("charon: {exchanges:#?}");
        // charon parsed an IKE_AUTH request without SA/TS and then our CREATE_CHILD_SA.
        let auth = exchanges
            .iter()
            .find(|l| l.contains("parsed IKE_AUTH request"))
            .expect("no IKE_AUTH request in charon's log");
        assert!(!auth.contains(" SA ") && !auth.contains("TSi"), "{auth}");
        assert!(
            exchanges
                .iter()
                .any(|l| l.contains("parsed CREATE_CHILD_SA request")),
            "{log}"
        );
        let (_, sas) = charon.swanctl(&["--list-sas"]);
        println!("swanctl --list-sas:\n{sas}");
        assert!(
            sas.contains("ESTABLISHED") && sas.contains("kmp-child") && sas.contains("INSTALLED"),
            "{sas}\n{log}"
        );
        let (ki, kr) = charon_child_keys(&log).expect("charon logged no child SA keys");
        assert!(ki.starts_with(&key(&run, KeyDirection::Transmit)), "{ki}");
        assert!(kr.starts_with(&key(&run, KeyDirection::Receive)), "{kr}");
    });
}

/// charon with `childless = force` initiates: a childless IKE SA with our responder, then its
/// CREATE_CHILD_SA for the child SA, which our responder accepts (the first child SA of a
/// childless IKE SA); the keys agree.
#[test]
fn strongswan_childless_initiator() {
    in_netns("strongswan_childless_initiator", || {
        let ike = "aes128ccm8-prfsha256-ecp256";
        let charon = Charon::start(
            "childless-charon",
            &StrongswanSide {
                childless: "force",
                ..StrongswanSide::initiator(ike, "aes128ccm8")
            },
        );
        let mut ep = UdpEndpoint::bind(("127.0.0.1", udp::NAT_T_PORT)).unwrap();
        let uri = charon.uri.clone();
        let init = std::thread::spawn(move || {
            let out = Command::new("swanctl")
                .args(["--initiate", "--child", "kmp-child", "--timeout", "10"])
                .args(["--uri", &uri])
                .stdin(Stdio::null())
                .output()
                .unwrap();
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        let mut run = ep
            .accept(
                &our_responder_factory(ike, "aes128ccm8"),
                LinkIds {
                    local: US,
                    peer: CHARON,
                },
                Duration::from_secs(10),
            )
            .unwrap_or_else(|e| panic!("{e}\n{}", charon.log()));
        // The IKE SA alone: nothing installed yet.
        assert!(
            matches!(run.outcome(), Some(Outcome::Success(sa)) if sa.keys_installed == 0),
            "{run:?}"
        );
        serve_until(&mut ep, &mut run, Duration::from_secs(8), |_| {
            init.is_finished()
        });
        let out = init.join().unwrap();
        let log = charon.log();
        println!("swanctl --initiate:\n{out}");
        assert!(
            out.contains("initiate completed successfully"),
            "{out}\n{log}"
        );
        println!(
            "charon: {:#?}",
            log_lines(&log, &["IKE_AUTH", "CREATE_CHILD_SA"])
        );
        let (_, sas) = charon.swanctl(&["--list-sas"]);
        println!("swanctl --list-sas:\n{sas}");
        assert!(
            sas.contains("ESTABLISHED") && sas.contains("INSTALLED"),
            "{sas}\n{log}"
        );
        let ours = our_installs(&run);
        let theirs = charon_all_child_keys(&log);
        assert_eq!((ours.len(), theirs.len()), (1, 1), "{run:?}\n{log}");
        // charon began the CREATE_CHILD_SA: its I→R key is our Receive key.
        assert!(theirs[0].0.starts_with(&ours[0].1), "{theirs:?} {ours:?}");
        assert!(theirs[0].1.starts_with(&ours[0].0), "{theirs:?} {ours:?}");
    });
}

/// Our default identity, the EUI-64 as ID_KEY_ID (DECISIONS I3), is the ID_KEY_ID charon is
/// configured to expect (`@#` and the EUI-64 in hex, in its connection and as an owner of the
/// PSK), so charon picks the connection and the PSK by it.
#[test]
fn strongswan_responder_eui64_as_key_id() {
    in_netns("strongswan_responder_eui64_as_key_id", || {
        let (ike, esp) = ("aes128ccm8-prfsha256-ecp256", "aes128ccm8");
        let toml = format!(
            r#"psk = "{PSK}"
ike_proposals = ["{ike}"]
child_proposals = ["{esp}"]
remote_id = "fqdn:responder.test"
local_ts = ["10.154.11.1/32"]
remote_ts = ["10.154.10.1/32"]
retransmit_ms = 500
max_retransmits = 2
"#
        );
        let factory = Ikev2Factory::new(Ikev2Config::from_toml(&toml).unwrap()).unwrap();
        let eui64 = format!("@#{}", hex::encode(US.0));
        let charon = Charon::start(
            "eui64",
            &StrongswanSide {
                our_id: &eui64,
                ..StrongswanSide::responder(ike, esp)
            },
        );
        let run = connect(&factory, CHARON_PORT);
        let log = charon.log();
        assert!(
            matches!(run.outcome(), Some(Outcome::Success(_))),
            "{run:?}\n{log}"
        );
        // charon prints a KEY_ID as colon-separated hex octets.
        let shown: Vec<String> = US.0.iter().map(|b| format!("{b:02x}")).collect();
        let shown = shown.join(":");
        let auth = log_lines(&log, &["authentication of"]);
        println!("charon: {auth:#?}");
        let ours = format!("authentication of '{shown}' with pre-shared key successful");
        assert!(auth.iter().any(|l| l.contains(&ours)), "{log}");
        let (_, sas) = charon.swanctl(&["--list-sas"]);
        println!("swanctl --list-sas:\n{sas}");
        assert!(sas.contains(&shown) && sas.contains("INSTALLED"), "{sas}");
    });
}
