//! Public-key authentication between our initiator and our responder (DECISIONS I20–I23):
//! RFC 7427 signatures (method 14) with ECDSA P-256 and RSA-2048 certificates made by rcgen
//! (with and without an intermediate CA), the classic methods 1 and 9, raw public keys
//! (RFC 7670), `dn:` identities; and every failure — a CA we do not trust, an expired
//! certificate, an ID the certificate does not name, a tampered signature — is
//! AUTHENTICATION_FAILED with nothing installed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration as StdDuration, SystemTime};

use kmp_api::session::{
    Action, FailureReason, KeyDirection, KeyInstall, KmpFactory, KmpSession, Outcome, Role,
    SessionContext,
};
use kmp_api::{ExtendedAddress, Instant, RngHandle};
use kmp_ikev2::auth::{self, AuthFailure, PeerInit, PublicKeyAuth, SignedData};
use kmp_ikev2::config::Ikev2Config;
use kmp_ikev2::crypto::PrfAlg;
use kmp_ikev2::session::Ikev2Factory;
use kmp_ikev2::wire::{IdPayload, Payload, auth_method, id_type};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
    date_time_ymd,
};

const I: ExtendedAddress = ExtendedAddress([0x02, 0, 0, 0, 0, 0, 0, 0x01]);
const R: ExtendedAddress = ExtendedAddress([0x02, 0, 0, 0, 0, 0, 0, 0x02]);

/// 2030-06-01T00:00:00Z: inside every validity period below but the expired one.
fn t_2030() -> SystemTime {
    SystemTime::UNIX_EPOCH + StdDuration::from_secs(1_906_416_000)
}

// ----- PKI -----

#[derive(Clone, Copy, PartialEq)]
enum Alg {
    Ec,
    Rsa,
}

fn key_pair(alg: Alg) -> KeyPair {
    match alg {
        Alg::Ec => KeyPair::generate().unwrap(),
        Alg::Rsa => {
            let k =
                openssl::pkey::PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
            let pem = String::from_utf8(k.private_key_to_pem_pkcs8().unwrap()).unwrap();
            KeyPair::from_pem_and_sign_algo(&pem, &rcgen::PKCS_RSA_SHA256).unwrap()
        }
    }
}

struct Ca {
    params: CertificateParams,
    key: KeyPair,
    pem: String,
}

impl Ca {
    fn root(cn: &str) -> Ca {
        let key = key_pair(Alg::Ec);
        let params = ca_params(cn);
        let pem = params.self_signed(&key).unwrap().pem();
        Ca { params, key, pem }
    }

    fn intermediate(&self, cn: &str) -> Ca {
        let key = key_pair(Alg::Ec);
        let params = ca_params(cn);
        let pem = params.signed_by(&key, &self.issuer()).unwrap().pem();
        Ca { params, key, pem }
    }

    fn issuer(&self) -> Issuer<'_, &KeyPair> {
        Issuer::from_params(&self.params, &self.key)
    }

    /// An end-entity certificate for `dns` (also its CN), valid 2026 to `until`.
    fn leaf(&self, alg: Alg, dns: &str, until: i32) -> (String, String) {
        let key = key_pair(alg);
        let mut p = CertificateParams::new(vec![dns.to_string()]).unwrap();
        p.distinguished_name.push(DnType::CommonName, dns);
        p.distinguished_name
            .push(DnType::OrganizationName, "kmp test");
        p.subject_alt_names
            .push(SanType::Rfc822Name("ops@pan.example".try_into().unwrap()));
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.not_before = date_time_ymd(2026, 1, 1);
        p.not_after = date_time_ymd(until, 1, 1);
        let cert = p.signed_by(&key, &self.issuer()).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

fn ca_params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.not_before = date_time_ymd(2025, 1, 1);
    p.not_after = date_time_ymd(2045, 1, 1);
    p
}

fn dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// A `auth = "pubkey"` configuration with certificates, checked in 2030.
fn cert_config(
    dir: &Path,
    name: &str,
    (cert, key): &(String, String),
    chain_extra: &str,
    ca: &str,
    extra: &str,
) -> Ikev2Config {
    let cert = write(
        dir,
        &format!("{name}-cert.pem"),
        &format!("{cert}{chain_extra}"),
    );
    let key = write(dir, &format!("{name}-key.pem"), key);
    let ca = write(dir, &format!("{name}-ca.pem"), ca);
    let toml = format!(
        "auth = \"pubkey\"\ncert = {:?}\nkey = {:?}\nca = [{:?}]\n{extra}",
        cert.display().to_string(),
        key.display().to_string(),
        ca.display().to_string()
    );
    let mut c = Ikev2Config::from_toml(&toml).unwrap();
    c.validation_time = Some(t_2030());
    c
}

// ----- the exchange -----

fn ctx(local: ExtendedAddress, peer: ExtendedAddress, role: Role, seed: u64) -> SessionContext {
    SessionContext {
        local,
        peer,
        role,
        rng: RngHandle::seeded(seed),
        now: Instant::ZERO,
        open_responder_sessions: 0,
    }
}

#[derive(Default, Debug)]
struct Side {
    installs: Vec<KeyInstall>,
    outcomes: Vec<Outcome>,
}

fn drain(s: &mut dyn KmpSession, side: &mut Side, wire: &mut Vec<Vec<u8>>) {
    while let Some(a) = s.poll_action() {
        match a {
            Action::Send(p) => wire.push(p),
            Action::InstallKeys(k) => side.installs.push(k),
            Action::RemoveKeys(_) => {}
            Action::Finished(o) => side.outcomes.push(o),
        }
    }
}

/// Runs initiator ↔ responder to the end over a perfect link.
fn run(ic: Ikev2Config, rc: Ikev2Config) -> (Side, Side) {
    let fi: Arc<dyn KmpFactory> = Arc::new(Ikev2Factory::new(ic).unwrap());
    let fr: Arc<dyn KmpFactory> = Arc::new(Ikev2Factory::new(rc).unwrap());
    let mut i = fi.new_initiator(ctx(I, R, Role::Initiator, 1)).unwrap();
    let mut r: Option<Box<dyn KmpSession>> = None;
    let (mut is, mut rs) = (Side::default(), Side::default());
    i.start(Instant::ZERO).unwrap();
    let mut to_r = vec![];
    drain(i.as_mut(), &mut is, &mut to_r);
    for _ in 0..10 {
        let mut to_i = vec![];
        for p in to_r.drain(..) {
            let s = r.get_or_insert_with(|| {
                fr.new_responder(ctx(R, I, Role::Responder, 2), &p).unwrap()
            });
            let _ = s.handle_datagram(Instant::ZERO, &p);
            drain(s.as_mut(), &mut rs, &mut to_i);
        }
        for p in to_i {
            let _ = i.handle_datagram(Instant::ZERO, &p);
            drain(i.as_mut(), &mut is, &mut to_r);
        }
        if to_r.is_empty() {
            break;
        }
    }
    (is, rs)
}

fn assert_success((is, rs): &(Side, Side)) {
    assert!(
        matches!(is.outcomes.as_slice(), [Outcome::Success(_)]),
        "initiator: {:?}",
        is.outcomes
    );
    assert!(
        matches!(rs.outcomes.as_slice(), [Outcome::Success(_)]),
        "responder: {:?}",
        rs.outcomes
    );
    let key = |k: &KeyInstall, d| {
        k.link_keys
            .iter()
            .find(|l| l.direction == d)
            .unwrap()
            .key
            .expose()
            .to_vec()
    };
    let (ik, rk) = (&is.installs[0], &rs.installs[0]);
    assert_eq!(
        key(ik, KeyDirection::Transmit),
        key(rk, KeyDirection::Receive)
    );
    assert_eq!(
        key(ik, KeyDirection::Receive),
        key(rk, KeyDirection::Transmit)
    );
}

/// The responder rejects the initiator: both sides fail with AUTHENTICATION_FAILED (the
/// initiator from the responder's notify) and nothing is installed anywhere.
fn assert_auth_failed((is, rs): &(Side, Side)) {
    let failed = vec![Outcome::Failure(FailureReason::AuthenticationFailed)];
    assert_eq!(is.outcomes, failed, "initiator");
    assert_eq!(rs.outcomes, failed, "responder");
    assert!(is.installs.is_empty() && rs.installs.is_empty());
}

struct Setup {
    _dir: tempfile::TempDir,
    i: Ikev2Config,
    r: Ikev2Config,
}

/// Initiator `initiator.test`, responder `responder.test`, both under one root CA.
fn setup(alg: Alg, extra_i: &str, extra_r: &str) -> Setup {
    let d = dir();
    let ca = Ca::root("Test Root CA");
    let i = cert_config(
        d.path(),
        "i",
        &ca.leaf(alg, "initiator.test", 2040),
        "",
        &ca.pem,
        &format!(
            "local_id = \"fqdn:initiator.test\"\nremote_id = \"fqdn:responder.test\"\n{extra_i}"
        ),
    );
    let r = cert_config(
        d.path(),
        "r",
        &ca.leaf(alg, "responder.test", 2040),
        "",
        &ca.pem,
        &format!("local_id = \"fqdn:responder.test\"\n{extra_r}"),
    );
    Setup { _dir: d, i, r }
}

#[test]
fn ecdsa_certificates_authenticate_with_rfc7427_signatures() {
    let s = setup(Alg::Ec, "", "");
    assert_success(&run(s.i, s.r));
}

#[test]
fn rsa_certificates_authenticate_with_rfc7427_signatures() {
    let s = setup(Alg::Rsa, "", "");
    assert_success(&run(s.i, s.r));
}

#[test]
fn classic_methods_1_and_9_still_work() {
    for alg in [Alg::Ec, Alg::Rsa] {
        let s = setup(
            alg,
            "signature = \"classic\"\n",
            "signature = \"classic\"\n",
        );
        assert_success(&run(s.i, s.r));
    }
    // One side classic, the other RFC 7427: each verifies what the other sends.
    let s = setup(Alg::Ec, "signature = \"classic\"\n", "");
    assert_success(&run(s.i, s.r));
}

#[test]
fn an_intermediate_ca_in_the_cert_payloads_and_dn_identities() {
    let d = dir();
    let root = Ca::root("Test Root CA");
    let inter = root.intermediate("Test Intermediate CA");
    let i = cert_config(
        d.path(),
        "i",
        &inter.leaf(Alg::Ec, "initiator.test", 2040),
        &inter.pem,
        &root.pem,
        "local_id = \"dn:CN=initiator.test,O=kmp test\"\nremote_id = \"email:ops@pan.example\"\n",
    );
    let r = cert_config(
        d.path(),
        "r",
        &inter.leaf(Alg::Ec, "responder.test", 2040),
        &inter.pem,
        &root.pem,
        "local_id = \"email:ops@pan.example\"\nremote_id = \"dn:CN=initiator.test,O=kmp test\"\n",
    );
    assert_success(&run(i, r));
}

#[test]
fn raw_public_keys_with_pinned_peer_keys() {
    let d = dir();
    let ki = KeyPair::generate().unwrap();
    let kr = key_pair(Alg::Rsa);
    let conf = |name: &str, own: &KeyPair, peer: &KeyPair| {
        let key = write(d.path(), &format!("{name}-key.pem"), &own.serialize_pem());
        let peer = write(d.path(), &format!("{name}-peer.pem"), &pem_public(peer));
        Ikev2Config::from_toml(&format!(
            "auth = \"pubkey\"\nkey = {:?}\npeer_raw_key = {:?}\n",
            key.display().to_string(),
            peer.display().to_string()
        ))
        .unwrap()
    };
    assert_success(&run(conf("i", &ki, &kr), conf("r", &kr, &ki)));
    // A key that is not the pinned one.
    let other = KeyPair::generate().unwrap();
    assert_auth_failed(&run(conf("i", &other, &kr), conf("r", &kr, &ki)));
}

fn pem_public(k: &KeyPair) -> String {
    String::from_utf8(
        openssl::pkey::PKey::private_key_from_pem(k.serialize_pem().as_bytes())
            .unwrap()
            .public_key_to_pem()
            .unwrap(),
    )
    .unwrap()
}

#[test]
fn a_certificate_from_another_ca_fails() {
    let d = dir();
    let ca = Ca::root("Test Root CA");
    let rogue = Ca::root("Test Root CA");
    let i = cert_config(
        d.path(),
        "i",
        &rogue.leaf(Alg::Ec, "initiator.test", 2040),
        "",
        &ca.pem,
        "local_id = \"fqdn:initiator.test\"\n",
    );
    let r = cert_config(
        d.path(),
        "r",
        &ca.leaf(Alg::Ec, "responder.test", 2040),
        "",
        &ca.pem,
        "local_id = \"fqdn:responder.test\"\n",
    );
    assert_auth_failed(&run(i, r));
}

#[test]
fn an_expired_certificate_fails() {
    let d = dir();
    let ca = Ca::root("Test Root CA");
    let conf = |name: &str, dns: &str, until: i32| {
        cert_config(
            d.path(),
            name,
            &ca.leaf(Alg::Ec, dns, until),
            "",
            &ca.pem,
            &format!("local_id = \"fqdn:{dns}\"\n"),
        )
    };
    // The initiator's certificate ran out in 2028; the responder checks in 2030.
    assert_auth_failed(&run(
        conf("i", "initiator.test", 2028),
        conf("r", "responder.test", 2040),
    ));
    // The responder's: the initiator rejects it and installs nothing (the responder, which
    // had accepted the initiator, is left with keys nobody uses).
    let (is, _) = run(
        conf("i", "initiator.test", 2040),
        conf("r", "responder.test", 2028),
    );
    assert_eq!(
        is.outcomes,
        vec![Outcome::Failure(FailureReason::AuthenticationFailed)]
    );
    assert!(is.installs.is_empty());
}

#[test]
fn an_id_the_certificate_does_not_name_fails() {
    for id in [
        "fqdn:someone-else.test",
        "dn:CN=initiator.test",
        "ipv4:10.0.0.1",
    ] {
        let d = dir();
        let ca = Ca::root("Test Root CA");
        let i = cert_config(
            d.path(),
            "i",
            &ca.leaf(Alg::Ec, "initiator.test", 2040),
            "",
            &ca.pem,
            &format!("local_id = \"{id}\"\n"),
        );
        let r = cert_config(
            d.path(),
            "r",
            &ca.leaf(Alg::Ec, "responder.test", 2040),
            "",
            &ca.pem,
            "local_id = \"fqdn:responder.test\"\n",
        );
        assert_auth_failed(&run(i, r));
    }
}

/// AUTH built and verified directly: a flipped bit anywhere in the signature, other signed
/// octets, or another method fails.
#[test]
fn tampered_signatures_fail() {
    let d = dir();
    let ca = Ca::root("Test Root CA");
    for (alg, classic) in [
        (Alg::Ec, false),
        (Alg::Rsa, false),
        (Alg::Ec, true),
        (Alg::Rsa, true),
    ] {
        let c = cert_config(
            d.path(),
            "x",
            &ca.leaf(alg, "node.test", 2040),
            "",
            &ca.pem,
            if classic {
                "signature = \"classic\"\n"
            } else {
                ""
            },
        );
        let pk: &PublicKeyAuth = c.pubkey.as_deref().unwrap();
        let id = IdPayload {
            id_type: id_type::FQDN,
            data: b"node.test".to_vec(),
        };
        let data = SignedData {
            message: b"the IKE_SA_INIT message",
            peer_nonce: &[7; 32],
            prf: PrfAlg::HmacSha256,
            sk_p: &[9; 32],
            id: &id,
        };
        let peer = PeerInit {
            sha256_signatures: true,
        };
        let payloads = auth::build(None, Some(pk), &peer, &data).unwrap();
        let method = match payloads.last() {
            Some(Payload::Auth(a)) => a.method,
            p => panic!("{p:?}"),
        };
        let want = match (alg, classic) {
            (_, false) => auth_method::DIGITAL_SIGNATURE,
            (Alg::Ec, true) => auth_method::ECDSA_P256_SHA256,
            (Alg::Rsa, true) => auth_method::RSA_SIG,
        };
        assert_eq!(method, want);
        auth::verify(None, Some(pk), &payloads, &data, t_2030()).unwrap();
        // Every byte of the signature's last 8 and the first of the AlgorithmIdentifier.
        let Some(Payload::Auth(a)) = payloads.last() else {
            unreachable!()
        };
        let n = a.data.len();
        let mut positions: Vec<usize> = (n - 8..n).collect();
        positions.push(if classic { 0 } else { 5 });
        for pos in positions {
            let mut bad = payloads.clone();
            if let Some(Payload::Auth(a)) = bad.last_mut() {
                a.data[pos] ^= 0x01;
            }
            let e = auth::verify(None, Some(pk), &bad, &data, t_2030()).unwrap_err();
            assert!(
                matches!(e, AuthFailure::Signature | AuthFailure::Format(_)),
                "{pos}: {e:?}"
            );
        }
        let other = SignedData {
            message: b"another IKE_SA_INIT message",
            ..data
        };
        assert_eq!(
            auth::verify(None, Some(pk), &payloads, &other, t_2030()),
            Err(AuthFailure::Signature)
        );
        // Expired at the verification time (the leaf runs to 2040).
        let late = SystemTime::UNIX_EPOCH + StdDuration::from_secs(2_300_000_000);
        assert!(matches!(
            auth::verify(None, Some(pk), &payloads, &data, late),
            Err(AuthFailure::Chain(_))
        ));
        // A PSK MIC when no PSK is configured.
        let mut psk = payloads.clone();
        if let Some(Payload::Auth(a)) = psk.last_mut() {
            a.method = auth_method::SHARED_KEY_MIC;
        }
        assert_eq!(
            auth::verify(None, Some(pk), &psk, &data, t_2030()),
            Err(AuthFailure::Method(auth_method::SHARED_KEY_MIC))
        );
    }
}

#[test]
fn configuration_errors_are_clear() {
    let d = dir();
    let ca = Ca::root("Test Root CA");
    let (cert, key) = ca.leaf(Alg::Ec, "node.test", 2040);
    let (_, other_key) = ca.leaf(Alg::Ec, "node.test", 2040);
    let c = write(d.path(), "c.pem", &cert);
    let k = write(d.path(), "k.pem", &key);
    let ok = write(d.path(), "ok.pem", &other_key);
    let a = write(d.path(), "a.pem", &ca.pem);
    let s = |p: &PathBuf| format!("{:?}", p.display().to_string());
    let err = |t: String| Ikev2Config::from_toml(&t).unwrap_err().to_string();
    assert!(err("auth = \"pubkey\"\n".into()).contains("needs key"));
    assert!(
        err(format!(
            "auth = \"pubkey\"\nkey = \"/nonexistent/k.pem\"\nca = [{}]",
            s(&a)
        ))
        .contains("/nonexistent/k.pem")
    );
    assert!(
        err(format!(
            "auth = \"pubkey\"\nkey = {}\nca = [{}]",
            s(&c),
            s(&a)
        ))
        .contains("key")
    );
    assert!(err(format!("auth = \"pubkey\"\nkey = {}", s(&k))).contains("ca"));
    assert!(
        err(format!(
            "auth = \"pubkey\"\nkey = {}\ncert = {}\nca = [{}]",
            s(&ok),
            s(&c),
            s(&a)
        ))
        .contains("not the key's")
    );
    assert!(err(format!("cert = {}", s(&c))).contains("pubkey"));
    assert!(err("auth = \"token\"".into()).contains("unknown auth"));
    assert!(
        err(format!(
            "auth = \"pubkey\"\nkey = {}\nca = [{}]\npsk = \"x\"",
            s(&k),
            s(&a)
        ))
        .contains("psk")
    );
    let good = Ikev2Config::from_toml(&format!(
        "auth = \"pubkey\"\nkey = {}\ncert = {}\nca = [{}]",
        s(&k),
        s(&c),
        s(&a)
    ))
    .unwrap();
    assert!(!format!("{good:?}").contains("PRIVATE"));
}

/// An RSASSA-PSS (SHA-256, salt 32) method-14 AUTH, which we accept but never send, with both
/// encodings of its AlgorithmIdentifier (RFC 7427 Appendix A's, with the trailerField, and
/// plain DER without it).
#[test]
fn rsa_pss_signatures_are_accepted() {
    use openssl::hash::MessageDigest;
    use openssl::rsa::Padding;
    use openssl::sign::{RsaPssSaltlen, Signer};
    let d = dir();
    let ca = Ca::root("Test Root CA");
    let (cert_pem, key_pem) = ca.leaf(Alg::Rsa, "node.test", 2040);
    let c = cert_config(
        d.path(),
        "x",
        &(cert_pem.clone(), key_pem.clone()),
        "",
        &ca.pem,
        "",
    );
    let pk = c.pubkey.as_deref().unwrap();
    let id = IdPayload {
        id_type: id_type::FQDN,
        data: b"node.test".to_vec(),
    };
    let data = SignedData {
        message: b"the IKE_SA_INIT message",
        peer_nonce: &[7; 32],
        prf: PrfAlg::HmacSha256,
        sk_p: &[9; 32],
        id: &id,
    };
    let octets = kmp_ikev2::crypto::signed_octets(
        data.message,
        data.peer_nonce,
        data.prf,
        data.sk_p,
        &id.body_for_auth(),
    )
    .unwrap();
    let key = openssl::pkey::PKey::private_key_from_pem(key_pem.as_bytes()).unwrap();
    let mut s = Signer::new(MessageDigest::sha256(), &key).unwrap();
    s.set_rsa_padding(Padding::PKCS1_PSS).unwrap();
    s.set_rsa_mgf1_md(MessageDigest::sha256()).unwrap();
    s.set_rsa_pss_saltlen(RsaPssSaltlen::custom(32)).unwrap();
    let sig = s.sign_oneshot_to_vec(&octets).unwrap();
    let cert_der = openssl::x509::X509::from_pem(cert_pem.as_bytes())
        .unwrap()
        .to_der()
        .unwrap();
    // Plain DER: rsassaPss, SEQUENCE { [0] sha256, [1] mgf1(sha256), [2] 32 }.
    let mut der_alg = auth::ALG_RSA_PSS_SHA256.to_vec();
    der_alg.truncate(der_alg.len() - 5);
    der_alg[1] -= 5;
    der_alg[14] -= 5;
    for alg in [auth::ALG_RSA_PSS_SHA256.to_vec(), der_alg] {
        let mut adata = vec![u8::try_from(alg.len()).unwrap()];
        adata.extend(&alg);
        adata.extend(&sig);
        let payloads = vec![
            Payload::Cert(kmp_ikev2::wire::CertPayload {
                encoding: kmp_ikev2::wire::cert_encoding::X509_SIGNATURE,
                data: cert_der.clone(),
            }),
            Payload::Auth(kmp_ikev2::wire::AuthPayload {
                method: auth_method::DIGITAL_SIGNATURE,
                data: adata,
            }),
        ];
        auth::verify(None, Some(pk), &payloads, &data, t_2030()).unwrap();
        // The same signature under the PKCS#1 v1.5 identifier does not verify.
        let mut v15 = vec![15];
        v15.extend(auth::ALG_RSA_PKCS1_SHA256);
        v15.extend(&sig);
        let mut bad = payloads.clone();
        bad[1] = Payload::Auth(kmp_ikev2::wire::AuthPayload {
            method: auth_method::DIGITAL_SIGNATURE,
            data: v15,
        });
        assert_eq!(
            auth::verify(None, Some(pk), &bad, &data, t_2030()),
            Err(AuthFailure::Signature)
        );
    }
}
