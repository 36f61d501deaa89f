//! Interop of `eapol-wired` (our EAP over real EAPOL on Ethernet) with wpa_supplicant 2.10 and
//! hostapd 2.10, both with `-D wired`, over a veth pair:
//!
//! - our authenticator on `veth0` against `wpa_supplicant -D wired -i veth1`;
//! - our supplicant on `veth1` against `hostapd -D wired -i veth0` with its internal EAP server
//!   (`eap_server=1`, an `eap_user` file);
//!
//! each with EAP-PSK, EAP-pwd and EAP-TLS (TLS 1.2 and 1.3, forced on both sides; ECDSA P-256
//! certificates made with the `openssl` command in a temporary directory), and a wrong PSK and
//! a wrong EAP-pwd password in each direction, which must fail on both ends.
//!
//! Success means CTRL-EVENT-EAP-SUCCESS in the third-party log and exit status 0 with a JSON
//! line from `eapol-wired`. MSK agreement: the third party runs with `-dd -K`, which puts the
//! method's MSK in its debug log as a hexdump (`EAP-PSK: MSK - hexdump(len=64): …`,
//! `EAP-TLS: Derived key - hexdump(len=64): …`); the test hashes it with SHA-256 and compares with
//! the `msk_sha256` `eapol-wired` printed (it never prints the MSK), and compares the log's
//! `EAP: Session-Id` hexdump with our `session_id`. hostapd's and wpa_supplicant's EAP-pwd code
//! dumps no MSK, so for EAP-pwd only the Session-Id and their "confirm verified" are checked.
//!
//! Failures: EAP-PSK with a wrong key ends in EAP-Failure on both sides. EAP-pwd has no failure
//! message from the peer: a peer that cannot verify Confirm_s sends nothing, so with
//! wpa_supplicant as peer our authenticator ends on its retransmission limit (Timeout), and with
//! our peer hostapd only keeps retransmitting (never succeeding).
//!
//! Every test re-runs itself (this test binary, `--exact NAME`) under `unshare -n` in a fresh
//! network namespace where a veth pair is created and brought up, so nothing touches the host
//! and tests run in parallel. Each daemon is killed when its guard drops (also on a panic), and
//! the outer test kills the whole process group after [`TEST_LIMIT`]. Root (CAP_SYS_ADMIN,
//! CAP_NET_ADMIN, CAP_NET_RAW) is needed: without it the tests fail and say so. The tests also
//! need `/usr/sbin/hostapd`, `/usr/sbin/wpa_supplicant` (Debian `hostapd`, `wpasupplicant`)
//! and `openssl`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const INNER: &str = "KMP_EAPOL_WIRED_INNER";
const TEST_LIMIT: Duration = Duration::from_secs(60);
const HOSTAPD: &str = "/usr/sbin/hostapd";
const WPA_SUPPLICANT: &str = "/usr/sbin/wpa_supplicant";
const BIN: &str = env!("CARGO_BIN_EXE_eapol-wired");

const PSK_ID: &str = "psk-user";
const PSK: &str = "000102030405060708090a0b0c0d0e0f";
const WRONG_PSK: &str = "000102030405060708090a0b0c0d0eff";
const PWD_ID: &str = "pwd-user";
const PASSWORD: &str = "dragonfly-password";
const WRONG_PASSWORD: &str = "dragonfly-passwort";
const CLIENT: &str = "client.test";
/// hostapd's and wpa_supplicant's EAP-pwd code dumps neither MSK nor EMSK, even with `-K`:
/// only the Session-Id and their "confirm verified" can be checked.
const PWD_MSK: Option<&str> = None;
const PSK_MSK: Option<&str> = Some("EAP-PSK: MSK");
const TLS_MSK: Option<&str> = Some("EAP-TLS: Derived key");
const SERVER: &str = "server.test";

/// Runs `body` inside a private network namespace with `veth0`–`veth1` up.
fn in_netns(name: &str, body: impl FnOnce()) {
    let iso = netns_test::Isolation {
        marker: INNER,
        setup: "ip link set lo up && ip link add veth0 type veth peer name veth1 && ip link set veth0 up && ip link set veth1 up",
        limit: TEST_LIMIT,
        what: "these wired EAPOL interop tests (veth pair; also CAP_NET_RAW)",
    };
    netns_test::run_isolated(name, &iso, body);
}

/// A process whose output goes to a file; killed on drop.
struct Proc {
    child: Child,
    log: PathBuf,
    name: &'static str,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    fn spawn(name: &'static str, cmd: &mut Command, log: PathBuf) -> Proc {
        let f = std::fs::File::create(&log).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Proc { child, log, name }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log contains one of `needles`; returns which.
    fn wait_for(&self, needles: &[&str], limit: Duration) -> usize {
        let end = Instant::now() + limit;
        loop {
            let log = self.log();
            if let Some(i) = needles.iter().position(|n| log.contains(n)) {
                return i;
            }
            assert!(
                Instant::now() < end,
                "{}: none of {needles:?} within {limit:?}:\n{log}",
                self.name
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// What `eapol-wired` reported.
struct Ours {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Ours {
    fn json(&self) -> serde_json::Value {
        assert!(
            self.ok,
            "eapol-wired failed:\n{}\n{}",
            self.stdout, self.stderr
        );
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("eapol-wired printed no JSON ({e}):\n{}", self.stdout))
    }
}

/// Runs `eapol-wired` to its end (its own `--timeout-secs` bounds it).
fn spawn_ours(dir: &Path, args: &[&str]) -> Proc {
    let mut cmd = Command::new(BIN);
    cmd.args(args).env("KMP_LOG", "info");
    Proc::spawn("eapol-wired", &mut cmd, dir.join("ours.log"))
}

fn finish_ours(mut p: Proc) -> Ours {
    let status = p.child.wait().unwrap();
    let log = p.log();
    // The JSON line is the only line starting with '{'.
    let stdout = log
        .lines()
        .filter(|l| l.starts_with('{'))
        .collect::<Vec<_>>()
        .join("\n");
    Ours {
        ok: status.success(),
        stdout,
        stderr: log,
    }
}

/// The octets of the first `<label> - hexdump(len=N): …` line of a hostapd / wpa_supplicant
/// debug log (`-dd -K`).
fn hexdump(log: &str, label: &str) -> Option<Vec<u8>> {
    let line = log
        .lines()
        .find(|l| l.contains(&format!("{label} - hexdump(")))?;
    let (_, hex_part) = line.split_once("): ")?;
    let text: String = hex_part.split_whitespace().collect();
    hex::decode(text).ok()
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(kmp_api::crypto::hmac::sha256(b))
}

/// Checks that the third party's log holds our MSK (by hash; when the method dumps it) and our
/// Session-Id.
fn assert_same_keys(ours: &serde_json::Value, log: &str, msk_label: Option<&str>) {
    if let Some(msk_label) = msk_label {
        let msk = hexdump(log, msk_label)
            .unwrap_or_else(|| panic!("no {msk_label:?} hexdump in the log (-K missing?):\n{log}"));
        assert_eq!(msk.len(), 64, "MSK length in the log");
        assert_eq!(
            ours["msk_sha256"].as_str().unwrap(),
            sha256_hex(&msk),
            "the MSKs differ"
        );
    }
    let sid = hexdump(log, "EAP: Session-Id").expect("no EAP: Session-Id in the log");
    assert_eq!(
        ours["session_id"].as_str().unwrap(),
        hex::encode(sid),
        "Session-Ids differ"
    );
}

/// A temporary directory with a CA and P-256 server/client certificates (the openssl recipe
/// of the interop notes; rcgen is not a dependency of this package).
fn certs() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(d)
            .output()
            .expect("cannot run openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"],
            &ec[..],
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "30",
                "-subj",
                "/CN=EAP Test CA",
            ],
        ]
        .concat(),
    );
    for (n, eku) in [("server", "serverAuth"), ("client", "clientAuth")] {
        let cn = format!("/CN={n}.test");
        openssl(
            &[
                &["req"],
                &ec[..],
                &[
                    "-keyout",
                    &format!("{n}.key"),
                    "-out",
                    &format!("{n}.csr"),
                    "-subj",
                    &cn,
                ],
            ]
            .concat(),
        );
        std::fs::write(
            d.join(format!("{n}.ext")),
            format!("extendedKeyUsage={eku}\nsubjectAltName=DNS:{n}.test\n"),
        )
        .unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            &format!("{n}.csr"),
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &format!("{n}.pem"),
            "-days",
            "30",
            "-extfile",
            &format!("{n}.ext"),
        ]);
    }
    dir
}

fn p(dir: &Path, f: &str) -> String {
    dir.join(f).display().to_string()
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum M {
    Psk(&'static str),
    Pwd(&'static str),
    Tls12,
    Tls13,
}

/// The method number and identity in our JSON, and for TLS the version in the other's log.
fn check_method(m: M, j: &serde_json::Value, log: &str, other: &str) {
    let (number, identity) = match m {
        M::Psk(_) => (47, PSK_ID),
        M::Pwd(_) => (52, PWD_ID),
        M::Tls12 | M::Tls13 => (13, CLIENT),
    };
    assert_eq!(j["method"], number);
    assert_eq!(j["identity"], identity);
    if matches!(m, M::Pwd(_)) {
        assert!(
            log.contains("EAP-pwd (peer): confirm verified")
                || log.contains("EAP-pwd (server): confirm verified"),
            "{other}'s log does not show the EAP-pwd confirm verified:\n{log}"
        );
    }
    if matches!(m, M::Tls12 | M::Tls13) {
        let v = if m == M::Tls12 { "TLSv1.2" } else { "TLSv1.3" };
        assert!(
            log.contains(&format!("SSL: Using TLS version {v}")),
            "{other}'s log does not show {v}:\n{log}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Our authenticator against wpa_supplicant -D wired

fn wpa_supplicant(dir: &Path, m: M) -> Proc {
    assert!(
        Path::new(WPA_SUPPLICANT).exists(),
        "{WPA_SUPPLICANT} is missing: install the Debian package wpasupplicant"
    );
    let method = match m {
        M::Psk(psk) => format!("eap=PSK\n  identity=\"{PSK_ID}\"\n  password={psk}\n"),
        M::Pwd(pw) => format!("eap=PWD\n  identity=\"{PWD_ID}\"\n  password=\"{pw}\"\n"),
        M::Tls12 | M::Tls13 => format!(
            "eap=TLS\n  identity=\"{CLIENT}\"\n  ca_cert=\"{}\"\n  client_cert=\"{}\"\n  \
             private_key=\"{}\"\n  domain_match=\"{SERVER}\"\n  phase1=\"{}\"\n",
            p(dir, "ca.pem"),
            p(dir, "client.pem"),
            p(dir, "client.key"),
            if m == M::Tls12 {
                "tls_disable_tlsv1_3=1"
            } else {
                "tls_disable_tlsv1_0=1 tls_disable_tlsv1_1=1 tls_disable_tlsv1_2=1 \
                 tls_disable_tlsv1_3=0"
            }
        ),
    };
    let conf = dir.join("wpas.conf");
    std::fs::write(
        &conf,
        format!(
            "ap_scan=0\neapol_version=2\nnetwork={{\n  key_mgmt=IEEE8021X\n  eapol_flags=0\n  \
             {method}}}\n"
        ),
    )
    .unwrap();
    Proc::spawn(
        "wpa_supplicant",
        Command::new(WPA_SUPPLICANT)
            .args(["-D", "wired", "-i", "veth1", "-dd", "-K", "-t", "-c"])
            .arg(&conf),
        dir.join("wpas.log"),
    )
}

fn our_authenticator_args(dir: &Path, m: M) -> Vec<String> {
    let mut a: Vec<String> = [
        "authenticator",
        "--iface",
        "veth0",
        "--timeout-secs",
        "25",
        "--retransmit-secs",
        "1",
    ]
    .map(String::from)
    .to_vec();
    match m {
        M::Psk(_) => {
            a.extend(["--method", "psk", "--identity", PSK_ID, "--psk", PSK].map(String::from))
        }
        M::Pwd(_) => a.extend(
            [
                "--method",
                "pwd",
                "--identity",
                PWD_ID,
                "--password",
                PASSWORD,
            ]
            .map(String::from),
        ),
        M::Tls12 | M::Tls13 => a.extend([
            "--method".into(),
            "tls".into(),
            "--cert".into(),
            p(dir, "server.pem"),
            "--key".into(),
            p(dir, "server.key"),
            "--ca".into(),
            p(dir, "ca.pem"),
            "--tls-version".into(),
            if m == M::Tls12 { "1.2" } else { "1.3" }.into(),
        ]),
    }
    a
}

/// Runs our authenticator and wpa_supplicant; returns our report and wpa_supplicant's log.
fn ours_vs_wpa_supplicant(m: M) -> (Ours, String) {
    let dir = certs();
    let d = dir.path();
    let args = our_authenticator_args(d, m);
    let ours = spawn_ours(d, &args.iter().map(String::as_str).collect::<Vec<_>>());
    let wpas = wpa_supplicant(d, m);
    let which = wpas.wait_for(
        &["CTRL-EVENT-EAP-SUCCESS", "CTRL-EVENT-EAP-FAILURE"],
        Duration::from_secs(30),
    );
    let ours = finish_ours(ours);
    let log = wpas.log();
    println!("wpa_supplicant: {}", ["success", "failure"][which]);
    (ours, log)
}

fn authenticator_success(m: M, msk_label: Option<&str>) {
    let (ours, log) = ours_vs_wpa_supplicant(m);
    assert!(
        log.contains("CTRL-EVENT-EAP-SUCCESS"),
        "wpa_supplicant did not succeed:\n{log}"
    );
    let j = ours.json();
    assert_eq!(j["role"], "authenticator");
    assert_same_keys(&j, &log, msk_label);
    check_method(m, &j, &log, "wpa_supplicant");
    println!("MSK and Session-Id agree with wpa_supplicant: {j}");
}

#[test]
fn our_authenticator_psk_with_wpa_supplicant() {
    in_netns("our_authenticator_psk_with_wpa_supplicant", || {
        authenticator_success(M::Psk(PSK), PSK_MSK);
    });
}

#[test]
fn our_authenticator_tls12_with_wpa_supplicant() {
    in_netns("our_authenticator_tls12_with_wpa_supplicant", || {
        authenticator_success(M::Tls12, TLS_MSK);
    });
}

#[test]
fn our_authenticator_tls13_with_wpa_supplicant() {
    in_netns("our_authenticator_tls13_with_wpa_supplicant", || {
        authenticator_success(M::Tls13, TLS_MSK);
    });
}

#[test]
fn our_authenticator_pwd_with_wpa_supplicant() {
    in_netns("our_authenticator_pwd_with_wpa_supplicant", || {
        authenticator_success(M::Pwd(PASSWORD), PWD_MSK);
    });
}

#[test]
fn our_authenticator_rejects_wrong_password_of_wpa_supplicant() {
    in_netns(
        "our_authenticator_rejects_wrong_password_of_wpa_supplicant",
        || {
            let (ours, log) = ours_vs_wpa_supplicant(M::Pwd(WRONG_PASSWORD));
            assert_authenticator_rejected(&ours, &log, "Timeout");
        },
    );
}

/// `why`: wpa_supplicant's EAP-pwd fails silently on a bad Confirm_s (no response), so our
/// authenticator's retransmissions run out (Timeout); EAP-PSK's #2 fails the method.
fn assert_authenticator_rejected(ours: &Ours, log: &str, why: &str) {
    assert!(
        log.contains("CTRL-EVENT-EAP-FAILURE") && !log.contains("CTRL-EVENT-EAP-SUCCESS"),
        "wpa_supplicant did not fail:\n{log}"
    );
    assert!(
        !ours.ok,
        "our authenticator accepted a wrong key:\n{}",
        ours.stderr
    );
    assert!(
        ours.stderr
            .contains(&format!("EAP authentication failed: {why}")),
        "our authenticator's message:\n{}",
        ours.stderr
    );
    assert!(ours.stdout.is_empty(), "JSON on failure: {}", ours.stdout);
}

#[test]
fn our_authenticator_rejects_wrong_psk_of_wpa_supplicant() {
    in_netns(
        "our_authenticator_rejects_wrong_psk_of_wpa_supplicant",
        || {
            let (ours, log) = ours_vs_wpa_supplicant(M::Psk(WRONG_PSK));
            assert!(
                log.contains("CTRL-EVENT-EAP-FAILURE") && !log.contains("CTRL-EVENT-EAP-SUCCESS"),
                "wpa_supplicant did not fail:\n{log}"
            );
            assert!(
                !ours.ok,
                "our authenticator accepted a wrong PSK:\n{}",
                ours.stderr
            );
            assert!(
                ours.stderr
                    .contains("EAP authentication failed: MethodFailed"),
                "our authenticator's message:\n{}",
                ours.stderr
            );
            assert!(ours.stdout.is_empty(), "JSON on failure: {}", ours.stdout);
        },
    );
}

// ---------------------------------------------------------------------------------------------
// Our supplicant against hostapd -D wired

fn hostapd(dir: &Path, m: M) -> Proc {
    assert!(
        Path::new(HOSTAPD).exists(),
        "{HOSTAPD} is missing: install the Debian package hostapd"
    );
    std::fs::write(
        dir.join("eap_user"),
        format!("\"{CLIENT}\" TLS\n\"{PSK_ID}\" PSK {PSK}\n\"{PWD_ID}\" PWD \"{PASSWORD}\"\n"),
    )
    .unwrap();
    let tls_flags = match m {
        M::Tls13 => "tls_flags=[ENABLE-TLSv1.3]\n",
        _ => "tls_flags=[DISABLE-TLSv1.3]\n",
    };
    let conf = dir.join("hostapd.conf");
    std::fs::write(
        &conf,
        format!(
            "interface=veth0\ndriver=wired\nieee8021x=1\neapol_version=2\nuse_pae_group_addr=1\n\
             eap_server=1\neap_user_file={}\nca_cert={}\nserver_cert={}\nprivate_key={}\n\
             server_id={SERVER}\nlogger_stdout=-1\nlogger_stdout_level=0\n{tls_flags}",
            p(dir, "eap_user"),
            p(dir, "ca.pem"),
            p(dir, "server.pem"),
            p(dir, "server.key"),
        ),
    )
    .unwrap();
    let h = Proc::spawn(
        "hostapd",
        Command::new(HOSTAPD).args(["-dd", "-K", "-t"]).arg(&conf),
        dir.join("hostapd.log"),
    );
    h.wait_for(&["AP-ENABLED"], Duration::from_secs(10));
    h
}

/// Runs hostapd and our supplicant; returns our report and hostapd's log.
fn ours_vs_hostapd(m: M) -> (Ours, String) {
    let dir = certs();
    let d = dir.path();
    let h = hostapd(d, m);
    let mut args: Vec<String> = ["supplicant", "--iface", "veth1", "--timeout-secs", "25"]
        .map(String::from)
        .to_vec();
    match m {
        M::Psk(psk) => {
            args.extend(["--method", "psk", "--identity", PSK_ID, "--psk", psk].map(String::from))
        }
        M::Pwd(pw) => args
            .extend(["--method", "pwd", "--identity", PWD_ID, "--password", pw].map(String::from)),
        M::Tls12 | M::Tls13 => args.extend([
            "--method".into(),
            "tls".into(),
            "--identity".into(),
            CLIENT.into(),
            "--cert".into(),
            p(d, "client.pem"),
            "--key".into(),
            p(d, "client.key"),
            "--ca".into(),
            p(d, "ca.pem"),
            "--server-name".into(),
            SERVER.into(),
            "--tls-version".into(),
            if m == M::Tls12 { "1.2" } else { "1.3" }.into(),
        ]),
    }
    let ours = finish_ours(spawn_ours(
        d,
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    ));
    // With EAP-pwd our peer fails silently on a bad Confirm_s (RFC 5931 has no failure
    // message), so hostapd only retransmits its request (retransWhile) and never ends by itself.
    let which = h.wait_for(
        &[
            "CTRL-EVENT-EAP-SUCCESS",
            "CTRL-EVENT-EAP-FAILURE",
            "(EAP) retransWhile --> 0",
        ],
        Duration::from_secs(10),
    );
    println!(
        "hostapd: {}",
        ["success", "failure", "retransmitting, no answer"][which]
    );
    (ours, h.log())
}

fn supplicant_success(m: M, msk_label: Option<&str>) {
    let (ours, log) = ours_vs_hostapd(m);
    assert!(
        log.contains("CTRL-EVENT-EAP-SUCCESS"),
        "hostapd did not succeed:\n{log}"
    );
    let j = ours.json();
    assert_eq!(j["role"], "supplicant");
    assert_same_keys(&j, &log, msk_label);
    check_method(m, &j, &log, "hostapd");
    println!("MSK and Session-Id agree with hostapd: {j}");
}

#[test]
fn our_supplicant_psk_with_hostapd() {
    in_netns("our_supplicant_psk_with_hostapd", || {
        supplicant_success(M::Psk(PSK), PSK_MSK);
    });
}

#[test]
fn our_supplicant_tls12_with_hostapd() {
    in_netns("our_supplicant_tls12_with_hostapd", || {
        supplicant_success(M::Tls12, TLS_MSK);
    });
}

#[test]
fn our_supplicant_tls13_with_hostapd() {
    in_netns("our_supplicant_tls13_with_hostapd", || {
        supplicant_success(M::Tls13, TLS_MSK);
    });
}

#[test]
fn our_supplicant_pwd_with_hostapd() {
    in_netns("our_supplicant_pwd_with_hostapd", || {
        supplicant_success(M::Pwd(PASSWORD), PWD_MSK);
    });
}

#[test]
fn our_supplicant_with_wrong_password_is_rejected_by_hostapd() {
    in_netns(
        "our_supplicant_with_wrong_password_is_rejected_by_hostapd",
        || {
            let (ours, log) = ours_vs_hostapd(M::Pwd(WRONG_PASSWORD));
            assert_supplicant_rejected(&ours, &log, false);
        },
    );
}

/// `hostapd_ends`: whether hostapd sends EAP-Failure (EAP-PSK) or, with EAP-pwd, only keeps
/// retransmitting to a peer that gave up silently (never authenticating it either way).
fn assert_supplicant_rejected(ours: &Ours, log: &str, hostapd_ends: bool) {
    let end = if hostapd_ends {
        "CTRL-EVENT-EAP-FAILURE"
    } else {
        "(EAP) retransWhile --> 0"
    };
    assert!(
        log.contains(end)
            && !log.contains("CTRL-EVENT-EAP-SUCCESS")
            && !log.contains("AP-STA-CONNECTED"),
        "hostapd did not fail ({end}):\n{log}"
    );
    assert!(
        !ours.ok,
        "our supplicant succeeded with a wrong key:\n{}",
        ours.stderr
    );
    assert!(
        ours.stderr.contains(if hostapd_ends {
            "EAP authentication failed: Rejected"
        } else {
            "EAP authentication failed: MethodFailed"
        }),
        "our supplicant's message:\n{}",
        ours.stderr
    );
    assert!(ours.stdout.is_empty(), "JSON on failure: {}", ours.stdout);
}

#[test]
fn our_supplicant_with_wrong_psk_is_rejected_by_hostapd() {
    in_netns(
        "our_supplicant_with_wrong_psk_is_rejected_by_hostapd",
        || {
            let (ours, log) = ours_vs_hostapd(M::Psk(WRONG_PSK));
            assert!(
                log.contains("CTRL-EVENT-EAP-FAILURE") && !log.contains("CTRL-EVENT-EAP-SUCCESS"),
                "hostapd did not fail:\n{log}"
            );
            assert!(
                !ours.ok,
                "our supplicant succeeded with a wrong PSK:\n{}",
                ours.stderr
            );
            assert!(
                ours.stderr.contains("EAP authentication failed: Rejected"),
                "our supplicant's message:\n{}",
                ours.stderr
            );
            assert!(ours.stdout.is_empty(), "JSON on failure: {}", ours.stdout);
        },
    );
}
