//! EAP-TLS: our peer against our server, TLS 1.2 and TLS 1.3, with an rcgen test PKI
//! (ECDSA P-256: root CA, intermediate, server and client certificates). The default engine
//! (rustls over OpenSSL's primitives) everywhere; the negative tests also with the OpenSSL
//! engine, and each engine's peer against the other's server (two independent TLS stacks).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use eap::authenticator::{
    AuthAction, AuthFailure, AuthOutcome, Authenticator, AuthenticatorConfig,
};
use eap::method::{PeerMethod, ServerMethod};
use eap::peer::{Peer, PeerAction, PeerConfig, PeerFailure, PeerOutcome};
use eap::tls::fragment::Fragment;
use eap::tls::{
    KeyLog, Step, TlsConfig, TlsEngine, TlsError, TlsKeys, TlsPeer, TlsPeerContext, TlsServer,
    TlsServerContext, TlsVersion, TlsVersions,
};
use eap::wire::{EapType, MethodId};
use kmp_api::rng::RngHandle;
use kmp_api::time::Instant;
use openssl::hash::{MessageDigest, hash};
use openssl::pkey::PKey;
use openssl::sign::Signer;
use proptest::prelude::*;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256, SanType, date_time_ymd,
};

const SERVER_NAME: &str = "aaa.pan.example";
const CLIENT_NAME: &str = "node-7.pan.example";

struct Identity {
    chain: String,
    key: String,
}

struct Pki {
    root: String,
    server: Identity,
    client: Identity,
    expired_client: Identity,
    /// A server certificate from a CA nobody trusts.
    rogue_server: Identity,
}

fn key() -> KeyPair {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap()
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

fn leaf(
    name: &str,
    issuer: &Issuer<'_, &KeyPair>,
    chain_tail: &str,
    years: (i32, i32),
) -> Identity {
    let mut p = CertificateParams::new(vec![name.to_string()]).unwrap();
    p.distinguished_name.push(DnType::CommonName, name);
    p.subject_alt_names.push(SanType::URI(
        "urn:dev:mac:0011223344556677".try_into().unwrap(),
    ));
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.not_before = date_time_ymd(years.0, 1, 1);
    p.not_after = date_time_ymd(years.1, 1, 1);
    let k = key();
    let cert = p.signed_by(&k, issuer).unwrap();
    Identity {
        chain: format!("{}{}", cert.pem(), chain_tail),
        key: k.serialize_pem(),
    }
}

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let root_params = ca_params("EAP-TLS Test Root");
        let root_key = key();
        let root = root_params.self_signed(&root_key).unwrap();
        let root_issuer = Issuer::from_params(&root_params, &root_key);
        let inter_params = ca_params("EAP-TLS Test Intermediate");
        let inter_key = key();
        let inter = inter_params.signed_by(&inter_key, &root_issuer).unwrap();
        let inter_issuer = Issuer::from_params(&inter_params, &inter_key);

        let rogue_params = ca_params("Rogue Root");
        let rogue_key = key();
        let rogue_issuer = Issuer::from_params(&rogue_params, &rogue_key);

        Pki {
            root: root.pem(),
            server: leaf(SERVER_NAME, &inter_issuer, &inter.pem(), (2025, 2045)),
            client: leaf(CLIENT_NAME, &inter_issuer, &inter.pem(), (2025, 2045)),
            expired_client: leaf(CLIENT_NAME, &inter_issuer, &inter.pem(), (2020, 2024)),
            rogue_server: leaf(SERVER_NAME, &rogue_issuer, "", (2025, 2045)),
        }
    })
}

fn config(id: &Identity, versions: TlsVersions) -> TlsConfig {
    let mut c = TlsConfig::from_pem(
        id.chain.as_bytes(),
        id.key.as_bytes(),
        pki().root.as_bytes(),
    )
    .unwrap();
    c.versions = versions;
    c
}

const ENGINES: [TlsEngine; 2] = [TlsEngine::Rustls, TlsEngine::OpenSsl];

fn on(engine: TlsEngine, mut c: TlsConfig) -> TlsConfig {
    c.engine = engine;
    c
}

fn server_config(versions: TlsVersions) -> TlsConfig {
    config(&pki().server, versions)
}

fn peer_config(versions: TlsVersions) -> TlsConfig {
    config(&pki().client, versions)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    ToPeer,
    ToServer,
}

#[derive(Debug)]
struct Success {
    peer: TlsKeys,
    server: TlsKeys,
    /// Requests the server sent (Start included).
    requests: usize,
    /// The longest type-data either side sent.
    longest: usize,
}

#[derive(Debug)]
struct Failure {
    peer: Option<TlsError>,
    server: Option<TlsError>,
}

/// Runs the conversation as an EAP layer would; `tamper` sees every message before delivery.
fn converse(
    peer: &mut TlsPeer,
    server: &mut TlsServer,
    mut tamper: impl FnMut(Dir, usize, &mut Vec<u8>),
) -> Result<Success, Failure> {
    let mut req = server.start().unwrap();
    let mut peer_keys = None;
    let mut peer_error = None;
    let mut server_error = None;
    let mut longest = req.len();
    for n in 0..10_000 {
        tamper(Dir::ToPeer, n, &mut req);
        let mut resp = match peer.process(&req) {
            Ok(Step::Send(r)) => r,
            Ok(Step::Done { send, keys }) => {
                peer_keys = Some(keys);
                send.expect("a peer always acknowledges the last request")
            }
            Ok(Step::Fail { send, error }) => {
                peer_error = Some(error);
                send
            }
            // The peer sends nothing; the server times out and fails.
            Err(e) => {
                return Err(Failure {
                    peer: Some(e),
                    server: server_error,
                });
            }
        };
        longest = longest.max(resp.len());
        tamper(Dir::ToServer, n, &mut resp);
        match server.process(&resp) {
            Ok(Step::Send(r)) => req = r,
            Ok(Step::Fail { send, error }) => {
                server_error = Some(error);
                req = send;
            }
            Ok(Step::Done { send, keys }) => {
                assert_eq!(send, None);
                assert!(server.is_finished());
                // EAP-Success: a peer without keys (failed, or still waiting) rejects it.
                return match peer_keys {
                    Some(peer) if peer_error.is_none() => Ok(Success {
                        peer,
                        server: keys,
                        requests: n + 1,
                        longest,
                    }),
                    _ => Err(Failure {
                        peer: peer_error,
                        server: None,
                    }),
                };
            }
            Err(e) => {
                // EAP-Failure.
                assert!(peer_keys.is_none() || peer_error.is_none());
                return Err(Failure {
                    peer: peer_error,
                    server: Some(e),
                });
            }
        }
        longest = longest.max(req.len());
    }
    panic!("conversation did not end");
}

fn run(peer_cfg: &TlsConfig, server_cfg: &TlsConfig) -> Result<Success, Failure> {
    let mut peer = TlsPeer::new(&TlsPeerContext::new(peer_cfg).unwrap());
    let mut server = TlsServer::new(&TlsServerContext::new(server_cfg).unwrap());
    converse(&mut peer, &mut server, |_, _, _| {})
}

fn check_keys(s: &Success, version: TlsVersion) {
    assert_eq!(s.peer, s.server, "both sides derive the same keys");
    assert_eq!(s.peer.version, version);
    assert_eq!(s.peer.msk.len(), 64);
    assert_eq!(s.peer.emsk.len(), 64);
    assert_ne!(s.peer.msk.expose(), s.peer.emsk.expose());
    assert_eq!(s.peer.session_id.len(), 65);
    assert_eq!(s.peer.session_id[0], 0x0d);
}

#[test]
fn tls12_success() {
    let s = run(
        &peer_config(TlsVersions::Tls12),
        &server_config(TlsVersions::Tls12),
    )
    .unwrap();
    check_keys(&s, TlsVersion::Tls12);
    assert!(s.longest <= 1000);
    // Without fragmentation: Start, ServerHello…ServerHelloDone, CCS+Finished; the peer's
    // last acknowledgement gets EAP-Success.
    let mut pc = peer_config(TlsVersions::Tls12);
    let mut sc = server_config(TlsVersions::Tls12);
    pc.fragment_size = 4000;
    sc.fragment_size = 4000;
    let s = run(&pc, &sc).unwrap();
    check_keys(&s, TlsVersion::Tls12);
    assert_eq!(s.requests, 3);
}

#[test]
fn tls13_success() {
    let s = run(
        &peer_config(TlsVersions::Tls13),
        &server_config(TlsVersions::Tls13),
    )
    .unwrap();
    check_keys(&s, TlsVersion::Tls13);
    assert!(s.longest <= 1000);
    // Without fragmentation: Start, ServerHello…Finished, success indication.
    let mut pc = peer_config(TlsVersions::Tls13);
    let mut sc = server_config(TlsVersions::Tls13);
    pc.fragment_size = 4000;
    sc.fragment_size = 4000;
    let s = run(&pc, &sc).unwrap();
    check_keys(&s, TlsVersion::Tls13);
    assert_eq!(s.requests, 3);
}

#[test]
fn version_negotiation() {
    let both = run(
        &peer_config(TlsVersions::Both),
        &server_config(TlsVersions::Both),
    )
    .unwrap();
    check_keys(&both, TlsVersion::Tls13);
    let down = run(
        &peer_config(TlsVersions::Tls12),
        &server_config(TlsVersions::Both),
    )
    .unwrap();
    check_keys(&down, TlsVersion::Tls12);
    let f = run(
        &peer_config(TlsVersions::Tls12),
        &server_config(TlsVersions::Tls13),
    )
    .unwrap_err();
    assert!(matches!(f.server, Some(TlsError::Handshake(_))), "{f:?}");
}

#[test]
fn fresh_keys_every_time() {
    let a = run(
        &peer_config(TlsVersions::Tls13),
        &server_config(TlsVersions::Tls13),
    )
    .unwrap();
    let b = run(
        &peer_config(TlsVersions::Tls13),
        &server_config(TlsVersions::Tls13),
    )
    .unwrap();
    assert_ne!(a.peer.msk, b.peer.msk);
    assert_ne!(a.peer.session_id, b.peer.session_id);
}

fn hmac(alg: MessageDigest, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let pkey = PKey::hmac(key).unwrap();
    let mut s = Signer::new(alg, &pkey).unwrap();
    for p in parts {
        s.update(p).unwrap();
    }
    s.sign_to_vec().unwrap()
}

/// RFC 5246 §5: P_SHA256(secret, seed) cut to `len`.
fn p_sha256(secret: &[u8], seed: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut a = hmac(MessageDigest::sha256(), secret, &[seed]);
    while out.len() < len {
        out.extend(hmac(MessageDigest::sha256(), secret, &[&a, seed]));
        a = hmac(MessageDigest::sha256(), secret, &[&a]);
    }
    out.truncate(len);
    out
}

/// RFC 8446 §7.1 HKDF-Expand-Label (RFC 5869 HKDF-Expand).
fn hkdf_expand_label(
    alg: MessageDigest,
    secret: &[u8],
    label: &str,
    ctx: &[u8],
    len: usize,
) -> Vec<u8> {
    let full = format!("tls13 {label}");
    let mut info = Vec::new();
    info.extend_from_slice(&u16::try_from(len).unwrap().to_be_bytes());
    info.push(u8::try_from(full.len()).unwrap());
    info.extend_from_slice(full.as_bytes());
    info.push(u8::try_from(ctx.len()).unwrap());
    info.extend_from_slice(ctx);
    let mut out = Vec::new();
    let mut t = Vec::new();
    let mut i = 1u8;
    while out.len() < len {
        t = hmac(alg, secret, &[&t, &info, &[i]]);
        out.extend_from_slice(&t);
        i += 1;
    }
    out.truncate(len);
    out
}

/// RFC 8446 §7.5 TLS-Exporter from the exporter_master_secret.
fn tls13_exporter(exporter_secret: &[u8], label: &str, context: &[u8], len: usize) -> Vec<u8> {
    // The hash is the suite's: the secret is as long as its output.
    let alg = match exporter_secret.len() {
        32 => MessageDigest::sha256(),
        48 => MessageDigest::sha384(),
        n => panic!("exporter secret of {n} octets"),
    };
    let empty = hash(alg, b"").unwrap();
    let derived = hkdf_expand_label(alg, exporter_secret, label, &empty, exporter_secret.len());
    let ctx_hash = hash(alg, context).unwrap();
    hkdf_expand_label(alg, &derived, "exporter", &ctx_hash, len)
}

fn key_log() -> (KeyLog, Arc<Mutex<Vec<String>>>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&lines);
    let log: KeyLog = Arc::new(move |l: &str| sink.lock().unwrap().push(l.to_owned()));
    (log, lines)
}

/// Finds `LABEL <client_random> <secret>` in a key log.
fn secret(lines: &[String], label: &str) -> (Vec<u8>, Vec<u8>) {
    let line = lines
        .iter()
        .find(|l| l.starts_with(&format!("{label} ")))
        .unwrap_or_else(|| panic!("no {label} in {lines:?}"));
    let mut parts = line.split(' ').skip(1);
    let cr = hex::decode(parts.next().unwrap()).unwrap();
    let s = hex::decode(parts.next().unwrap()).unwrap();
    (cr, s)
}

/// RFC 5216 §2.3 recomputed from the master secret OpenSSL logs: checks the label, the seed
/// order (client.random ‖ server.random), the MSK/EMSK split and the Session-Id layout.
#[test]
fn tls12_key_material_matches_prf() {
    let (log, lines) = key_log();
    let mut pc = peer_config(TlsVersions::Tls12);
    pc.key_log = Some(log);
    let s = run(&pc, &server_config(TlsVersions::Tls12)).unwrap();
    let lines = lines.lock().unwrap();
    let (client_random, master) = secret(&lines, "CLIENT_RANDOM");
    assert_eq!(master.len(), 48);
    assert_eq!(&s.peer.session_id[1..33], client_random.as_slice());
    let server_random = &s.peer.session_id[33..65];
    let mut seed = b"client EAP encryption".to_vec();
    seed.extend_from_slice(&client_random);
    seed.extend_from_slice(server_random);
    let km = p_sha256(&master, &seed, 128);
    assert_eq!(s.peer.msk.expose(), &km[..64]);
    assert_eq!(s.peer.emsk.expose(), &km[64..]);
}

/// RFC 9190 §2.3 recomputed from the exporter secret OpenSSL logs.
#[test]
fn tls13_key_material_matches_exporter() {
    let (log, lines) = key_log();
    let mut sc = server_config(TlsVersions::Tls13);
    sc.key_log = Some(log);
    let s = run(&peer_config(TlsVersions::Tls13), &sc).unwrap();
    let lines = lines.lock().unwrap();
    let (_, exporter) = secret(&lines, "EXPORTER_SECRET");
    let km = tls13_exporter(&exporter, "EXPORTER_EAP_TLS_Key_Material", &[0x0d], 128);
    assert_eq!(s.server.msk.expose(), &km[..64]);
    assert_eq!(s.server.emsk.expose(), &km[64..]);
    let method_id = tls13_exporter(&exporter, "EXPORTER_EAP_TLS_Method-Id", &[0x0d], 64);
    assert_eq!(&s.server.session_id[1..], method_id.as_slice());
}

#[test]
fn small_fragments() {
    for versions in [TlsVersions::Tls12, TlsVersions::Tls13] {
        let mut pc = peer_config(versions);
        let mut sc = server_config(versions);
        pc.fragment_size = 64;
        sc.fragment_size = 64;
        let s = run(&pc, &sc).unwrap();
        check_keys(
            &s,
            if versions == TlsVersions::Tls12 {
                TlsVersion::Tls12
            } else {
                TlsVersion::Tls13
            },
        );
        assert!(s.longest <= 64, "{}", s.longest);
        assert!(s.requests > 30, "{} requests", s.requests);

        // Different sizes on each side.
        pc.fragment_size = 1400;
        sc.fragment_size = 100;
        let s = run(&pc, &sc).unwrap();
        assert_eq!(s.peer, s.server);
    }
}

#[test]
fn fragment_flags_on_the_wire() {
    let mut pc = peer_config(TlsVersions::Tls13);
    let mut sc = server_config(TlsVersions::Tls13);
    pc.fragment_size = 200;
    sc.fragment_size = 200;
    let mut peer = TlsPeer::new(&TlsPeerContext::new(&pc).unwrap());
    let mut server = TlsServer::new(&TlsServerContext::new(&sc).unwrap());
    let mut seen = Vec::new();
    converse(&mut peer, &mut server, |dir, _, m| {
        seen.push((dir, m.clone()))
    })
    .unwrap();
    assert_eq!(seen[0], (Dir::ToPeer, vec![0x20]), "Start");
    // Walk every fragmented message: L on the first fragment only, the total matches, every
    // fragment but the last has M and is answered by an acknowledgement.
    let mut i = 0;
    let mut fragmented = 0;
    while i < seen.len() {
        let f = Fragment::parse(&seen[i].1).unwrap();
        if let Some(total) = f.message_length {
            fragmented += 1;
            let dir = seen[i].0;
            let mut got = f.data.len();
            let mut j = i;
            while Fragment::parse(&seen[j].1).unwrap().more_fragments {
                assert_eq!(seen[j + 1].1, vec![0x00], "acknowledged");
                j += 2;
                let g = Fragment::parse(&seen[j].1).unwrap();
                assert_eq!(seen[j].0, dir);
                assert_eq!(g.message_length, None);
                got += g.data.len();
            }
            assert_eq!(got, total as usize);
            i = j;
        }
        i += 1;
    }
    assert!(
        fragmented >= 2,
        "both flights with certificates were fragmented"
    );
}

/// TLS 1.3 record layout without the middlebox compatibility mode: every message is whole TLS
/// records, ClientHello and ServerHello in the clear, the rest application_data. The OpenSSL
/// engine's peer leaves the mode off (no legacy_session_id, no ChangeCipherSpec); the OpenSSL
/// server then sends no ChangeCipherSpec either, the rustls server always one (6 octets, after
/// its ServerHello). rustls's client always uses the mode (DECISIONS E12).
#[test]
fn tls13_records_without_compat_mode() {
    for server_engine in ENGINES {
        let mut pc = on(TlsEngine::OpenSsl, peer_config(TlsVersions::Tls13));
        let mut sc = on(server_engine, server_config(TlsVersions::Tls13));
        pc.fragment_size = 4000;
        sc.fragment_size = 4000;
        let mut peer = TlsPeer::new(&TlsPeerContext::new(&pc).unwrap());
        let mut server = TlsServer::new(&TlsServerContext::new(&sc).unwrap());
        let mut types = Vec::new();
        converse(&mut peer, &mut server, |dir, _, m| {
            let mut rest = Fragment::parse(m).unwrap().data;
            while !rest.is_empty() {
                assert!(rest.len() >= 5, "a cut record");
                let len = usize::from(u16::from_be_bytes([rest[3], rest[4]]));
                types.push((dir, rest[0]));
                rest = &rest[5 + len..];
            }
        })
        .unwrap();
        let ccs: Vec<_> = types.iter().filter(|(_, t)| *t == 0x14).collect();
        match server_engine {
            TlsEngine::OpenSsl => assert!(ccs.is_empty(), "{types:02x?}"),
            _ => assert_eq!(ccs, [&(Dir::ToPeer, 0x14)], "{types:02x?}"),
        }
        let types: Vec<u8> = types
            .iter()
            .map(|(_, t)| *t)
            .filter(|&t| t != 0x14)
            .collect();
        assert_eq!(&types[..2], &[0x16, 0x16]);
        assert!(types[2..].iter().all(|&t| t == 0x17), "{types:02x?}");
    }
}

/// Each engine's peer against the other engine's server (rustls + webpki against libssl +
/// OpenSSL's X.509 code): both versions complete and both ends export the same MSK, EMSK and
/// Session-Id.
#[test]
fn cross_engine_interop() {
    for versions in [TlsVersions::Tls12, TlsVersions::Tls13] {
        for (pe, se) in [
            (TlsEngine::Rustls, TlsEngine::OpenSsl),
            (TlsEngine::OpenSsl, TlsEngine::Rustls),
        ] {
            let s = run(
                &on(pe, peer_config(versions)),
                &on(se, server_config(versions)),
            )
            .unwrap_or_else(|f| panic!("{pe:?} peer, {se:?} server, {versions:?}: {f:?}"));
            let v = match versions {
                TlsVersions::Tls12 => TlsVersion::Tls12,
                _ => TlsVersion::Tls13,
            };
            check_keys(&s, v);
        }
    }
}

#[test]
fn untrusted_server_certificate() {
    for (versions, e) in [TlsVersions::Tls12, TlsVersions::Tls13]
        .into_iter()
        .flat_map(|v| ENGINES.map(|e| (v, e)))
    {
        let f = run(
            &on(e, peer_config(versions)),
            &on(e, config(&pki().rogue_server, versions)),
        )
        .unwrap_err();
        match &f.peer {
            Some(TlsError::Certificate(reason)) => {
                assert!(reason.contains("local issuer"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        assert!(f.server.is_some());
    }
}

#[test]
fn client_without_certificate() {
    for (versions, e) in [TlsVersions::Tls12, TlsVersions::Tls13]
        .into_iter()
        .flat_map(|v| ENGINES.map(|e| (v, e)))
    {
        let mut pc = TlsConfig::without_credentials(pki().root.as_bytes()).unwrap();
        pc.versions = versions;
        pc.engine = e;
        let f = run(&pc, &on(e, server_config(versions))).unwrap_err();
        assert!(matches!(f.server, Some(TlsError::Handshake(_))), "{f:?}");
        // The server told the peer with an alert.
        assert!(matches!(f.peer, Some(TlsError::Handshake(_))), "{f:?}");
    }
}

#[test]
fn expired_client_certificate() {
    for (versions, e) in [TlsVersions::Tls12, TlsVersions::Tls13]
        .into_iter()
        .flat_map(|v| ENGINES.map(|e| (v, e)))
    {
        let f = run(
            &on(e, config(&pki().expired_client, versions)),
            &on(e, server_config(versions)),
        )
        .unwrap_err();
        match &f.server {
            Some(TlsError::Certificate(reason)) => assert!(reason.contains("expired"), "{reason}"),
            other => panic!("{other:?}"),
        }
        assert!(f.peer.is_some(), "the peer saw the alert");
    }
}

#[test]
fn validation_time_is_configurable() {
    for e in ENGINES {
        validation_time_with(e);
    }
}

fn validation_time_with(e: TlsEngine) {
    let at = |year_secs: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(year_secs);
    // 2022-06-01: the expired certificate was valid then, the others not yet.
    let mut pc = on(e, config(&pki().expired_client, TlsVersions::Tls13));
    let mut sc = on(e, server_config(TlsVersions::Tls13));
    sc.validation_time = Some(at(1_654_041_600));
    pc.validation_time = Some(at(1_900_000_000));
    let f = run(&pc, &sc).unwrap_err();
    assert!(
        matches!(&f.server, Some(TlsError::Certificate(r)) if r.contains("not yet valid")),
        "{f:?}"
    );
    // 2030 on both sides: valid.
    let mut pc = on(e, peer_config(TlsVersions::Tls13));
    pc.validation_time = Some(at(1_900_000_000));
    sc.validation_time = Some(at(1_900_000_000));
    run(&pc, &sc).unwrap();
    // 2050: everything expired; the peer notices first.
    pc.validation_time = Some(at(2_524_608_000));
    let f = run(&pc, &sc).unwrap_err();
    assert!(
        matches!(&f.peer, Some(TlsError::Certificate(r)) if r.contains("expired")),
        "{f:?}"
    );
}

#[test]
fn expected_names() {
    for versions in [TlsVersions::Tls12, TlsVersions::Tls13] {
        let mut pc = peer_config(versions);
        let mut sc = server_config(versions);
        pc.expected_peer_name = Some(SERVER_NAME.to_uppercase());
        sc.expected_peer_name = Some("urn:dev:mac:0011223344556677".into());
        run(&pc, &sc).unwrap();

        pc.expected_peer_name = Some("other.pan.example".into());
        let f = run(&pc, &sc).unwrap_err();
        assert_eq!(f.peer, Some(TlsError::PeerIdentity));

        pc.expected_peer_name = None;
        let sctx = TlsServerContext::new(&sc).unwrap();
        let mut server = TlsServer::expecting(&sctx, Some("node-8.pan.example".into()));
        let mut peer = TlsPeer::new(&TlsPeerContext::new(&pc).unwrap());
        let f = converse(&mut peer, &mut server, |_, _, _| {}).unwrap_err();
        assert_eq!(f.server, Some(TlsError::PeerIdentity));
        let mut server = TlsServer::expecting(&sctx, Some(CLIENT_NAME.into()));
        let mut peer = TlsPeer::new(&TlsPeerContext::new(&pc).unwrap());
        converse(&mut peer, &mut server, |_, _, _| {}).unwrap();
    }
}

/// One byte of TLS data flipped in any message makes the authentication fail, on one side or
/// the other, without a panic and without keys.
#[test]
fn tampered_fragment_fails() {
    for versions in [TlsVersions::Tls12, TlsVersions::Tls13] {
        let mut pc = peer_config(versions);
        let mut sc = server_config(versions);
        pc.fragment_size = 300;
        sc.fragment_size = 300;
        let pctx = TlsPeerContext::new(&pc).unwrap();
        let sctx = TlsServerContext::new(&sc).unwrap();
        // Count the messages of a clean run.
        let mut count = 0;
        converse(
            &mut TlsPeer::new(&pctx),
            &mut TlsServer::new(&sctx),
            |_, _, m| {
                if m.len() > 8 {
                    count += 1
                }
            },
        )
        .unwrap();
        for target in 0..count {
            for offset in [5usize, 37, 150] {
                let mut seen = 0;
                let r = converse(
                    &mut TlsPeer::new(&pctx),
                    &mut TlsServer::new(&sctx),
                    |_, _, m| {
                        if m.len() > 8 {
                            if seen == target {
                                let at = offset.min(m.len() - 1);
                                m[at] ^= 0x01;
                            }
                            seen += 1;
                        }
                    },
                );
                assert!(
                    r.is_err(),
                    "{versions:?}: message {target} offset {offset} accepted"
                );
            }
        }
    }
}

#[test]
fn oversize_length_rejected() {
    let pctx = TlsPeerContext::new(&peer_config(TlsVersions::Both)).unwrap();
    let mut peer = TlsPeer::new(&pctx);
    assert!(matches!(peer.process(&[0x20]), Ok(Step::Send(_))));
    // 64 KiB + 1 announced.
    let big = [0xc0, 0x00, 0x01, 0x00, 0x01, 0x16, 0x03, 0x03];
    assert_eq!(
        peer.process(&big),
        Err(TlsError::MessageTooLong {
            length: 65_537,
            max: 65_536
        })
    );
    assert!(peer.is_finished());
    assert!(peer.process(&[0x00]).is_err());

    // A larger limit on the server; the announced length still counts.
    let mut sc = server_config(TlsVersions::Both);
    sc.max_message_len = 1024;
    let mut server = TlsServer::new(&TlsServerContext::new(&sc).unwrap());
    server.start().unwrap();
    assert!(matches!(
        server.process(&[0xc0, 0x00, 0x00, 0x04, 0x01, 0x16]),
        Err(TlsError::MessageTooLong {
            length: 1025,
            max: 1024
        })
    ));
}

#[test]
fn inconsistent_length_rejected() {
    let pctx = TlsPeerContext::new(&peer_config(TlsVersions::Both)).unwrap();
    let mut peer = TlsPeer::new(&pctx);
    peer.process(&[0x20]).unwrap();
    assert_eq!(
        peer.process(&[0xc0, 0, 0, 0, 10, 0x16, 0x03]),
        Ok(Step::Send(vec![0x00]))
    );
    assert!(matches!(
        peer.process(&[0xc0, 0, 0, 0, 11, 0x03]),
        Err(TlsError::LengthMismatch { .. })
    ));
}

#[test]
fn protocol_order() {
    let pctx = TlsPeerContext::new(&peer_config(TlsVersions::Both)).unwrap();
    // TLS data before Start.
    let mut peer = TlsPeer::new(&pctx);
    assert!(matches!(
        peer.process(&[0x00, 0x16]),
        Err(TlsError::UnexpectedMessage { .. })
    ));
    // Start twice.
    let mut peer = TlsPeer::new(&pctx);
    peer.process(&[0x20]).unwrap();
    assert!(matches!(
        peer.process(&[0x20]),
        Err(TlsError::UnexpectedMessage { .. })
    ));
    // A server that was not started, then one that gets a Start from the peer.
    let sctx = TlsServerContext::new(&server_config(TlsVersions::Both)).unwrap();
    let mut server = TlsServer::new(&sctx);
    assert!(server.process(&[0x00]).is_err());
    server.start().unwrap();
    assert!(matches!(
        server.process(&[0x20]),
        Err(TlsError::UnexpectedMessage { .. })
    ));
    // Data while the server waits for an acknowledgement of its fragment.
    let mut sc = server_config(TlsVersions::Both);
    sc.fragment_size = 64;
    let mut server = TlsServer::new(&TlsServerContext::new(&sc).unwrap());
    let mut peer = TlsPeer::new(&pctx);
    let hello = match peer.process(&server.start().unwrap()) {
        Ok(Step::Send(h)) => h,
        other => panic!("{other:?}"),
    };
    let first = match server.process(&hello) {
        Ok(Step::Send(f)) => f,
        other => panic!("{other:?}"),
    };
    assert_eq!(first[0], 0xc0, "L and M on the first fragment");
    assert!(matches!(
        server.process(&[0x00, 0x16, 0x03]),
        Err(TlsError::UnexpectedMessage {
            expected: "acknowledgement",
            ..
        })
    ));
}

#[test]
fn config_errors() {
    let p = pki();
    let mut c = peer_config(TlsVersions::Both);
    c.fragment_size = 10;
    assert!(matches!(TlsPeerContext::new(&c), Err(TlsError::Config(_))));
    let c = TlsConfig::without_credentials(p.root.as_bytes()).unwrap();
    assert!(matches!(
        TlsServerContext::new(&c),
        Err(TlsError::Config(_))
    ));
    let c = TlsConfig::without_credentials(b"").unwrap();
    assert!(matches!(TlsPeerContext::new(&c), Err(TlsError::Config(_))));
    // The client's key with the server's certificate.
    assert!(matches!(
        TlsConfig::from_pem(
            p.server.chain.as_bytes(),
            p.client.key.as_bytes(),
            p.root.as_bytes()
        ),
        Err(TlsError::Config(_))
    ));
    assert!(matches!(
        TlsConfig::from_pem(b"junk", p.client.key.as_bytes(), p.root.as_bytes()),
        Err(TlsError::Config(_))
    ));
}

/// Every message of a real conversation cut short: an error or a failure, never a panic and
/// never keys.
#[test]
fn truncated_messages() {
    for versions in [TlsVersions::Tls12, TlsVersions::Tls13] {
        let pctx = TlsPeerContext::new(&peer_config(versions)).unwrap();
        let sctx = TlsServerContext::new(&server_config(versions)).unwrap();
        let mut count = 0;
        converse(
            &mut TlsPeer::new(&pctx),
            &mut TlsServer::new(&sctx),
            |_, _, _| count += 1,
        )
        .unwrap();
        // Lengths vary a little between runs (ECDSA signatures), so cut relative to each.
        let cuts: [fn(usize) -> usize; 5] = [|_| 0, |_| 1, |_| 3, |l| l / 2, |l| l - 1];
        for target in 0..count {
            for cut in cuts {
                let mut seen = 0;
                let mut cut_to = None;
                let r = converse(
                    &mut TlsPeer::new(&pctx),
                    &mut TlsServer::new(&sctx),
                    |_, _, m| {
                        if seen == target && cut(m.len()) < m.len() {
                            cut_to = Some(cut(m.len()));
                            m.truncate(cut(m.len()));
                        }
                        seen += 1;
                    },
                );
                if let Some(c) = cut_to {
                    assert!(r.is_err(), "message {target} cut to {c} accepted");
                }
            }
        }
    }
}

/// Through the EAP state machines: Identity, EAP-TLS, Success/Failure.
struct EapRun {
    peer: Option<PeerOutcome>,
    auth: Option<AuthOutcome>,
    packets: usize,
}

fn eap_run(identity: &str, peer_method: TlsPeer, server_method: TlsServer) -> EapRun {
    let methods: Vec<Box<dyn PeerMethod>> = vec![Box::new(peer_method)];
    let mut p = Peer::new(
        PeerConfig::new(identity.as_bytes().to_vec()),
        methods,
        RngHandle::seeded(1),
        Instant::ZERO,
    );
    let methods: Vec<Box<dyn ServerMethod>> = vec![Box::new(server_method)];
    let mut a = Authenticator::new(
        AuthenticatorConfig::default(),
        methods,
        RngHandle::seeded(2),
    );
    a.start(Instant::ZERO).unwrap();
    let mut run = EapRun {
        peer: None,
        auth: None,
        packets: 0,
    };
    for _ in 0..1000 {
        let mut progressed = false;
        while let Some(act) = a.poll_action() {
            progressed = true;
            match act {
                AuthAction::Send(pkt) => {
                    run.packets += 1;
                    let _ = p.handle_packet(Instant::ZERO, &pkt);
                }
                AuthAction::Finished(o) => run.auth = Some(o),
            }
        }
        while let Some(act) = p.poll_action() {
            progressed = true;
            match act {
                PeerAction::Send(pkt) => {
                    run.packets += 1;
                    let _ = a.handle_packet(Instant::ZERO, &pkt);
                }
                PeerAction::Notification(_) => {}
                PeerAction::Finished(o) => run.peer = Some(o),
            }
        }
        if !progressed {
            return run;
        }
    }
    panic!("EAP conversation did not end");
}

#[test]
fn through_eap_state_machines() {
    let tls = MethodId::Legacy(EapType::TLS);
    for versions in [TlsVersions::Tls12, TlsVersions::Tls13] {
        let mut pc = peer_config(versions);
        let mut sc = server_config(versions);
        pc.fragment_size = 200;
        sc.fragment_size = 200;
        let pctx = TlsPeerContext::new(&pc).unwrap();
        let sctx = TlsServerContext::new(&sc).unwrap();

        let r = eap_run(
            CLIENT_NAME,
            TlsPeer::new(&pctx),
            TlsServer::expecting_identity(&sctx),
        );
        let Some(PeerOutcome::Success {
            method,
            keys: Some(pk),
        }) = r.peer
        else {
            panic!("{:?}", r.peer)
        };
        assert_eq!(method, tls);
        let Some(AuthOutcome::Success {
            keys: Some(ak),
            identity,
            ..
        }) = r.auth
        else {
            panic!("{:?}", r.auth)
        };
        assert_eq!(identity, CLIENT_NAME.as_bytes());
        assert_eq!(pk, ak);
        assert_eq!(pk.session_id.len(), 65);
        assert_eq!(pk.session_id[0], 0x0d);
        assert!(r.packets > 20, "{} packets", r.packets);

        // The identity must be a name of the certificate when asked for.
        let r = eap_run(
            "someone-else",
            TlsPeer::new(&pctx),
            TlsServer::expecting_identity(&sctx),
        );
        assert_eq!(
            r.auth,
            Some(AuthOutcome::Failure(AuthFailure::MethodFailed(tls)))
        );
        assert!(
            matches!(r.peer, Some(PeerOutcome::Failure(PeerFailure::Rejected))),
            "{:?}",
            r.peer
        );

        // An untrusted server: the peer sends its alert, the server fails.
        let rogue = TlsServerContext::new(&config(&pki().rogue_server, versions)).unwrap();
        let r = eap_run(CLIENT_NAME, TlsPeer::new(&pctx), TlsServer::new(&rogue));
        assert_eq!(
            r.auth,
            Some(AuthOutcome::Failure(AuthFailure::MethodFailed(tls)))
        );
        assert!(
            matches!(r.peer, Some(PeerOutcome::Failure(_))),
            "{:?}",
            r.peer
        );
    }
}

#[test]
fn method_interface_states() {
    use eap::method::{Decision, MethodContext, MethodError, MethodState, ServerStep};
    let rng = RngHandle::seeded(3);
    let ctx = MethodContext {
        rng: &rng,
        now: Instant::ZERO,
        in_identifier: 1,
        out_identifier: 2,
    };
    let (pctx, sctx) = contexts();
    let mut server = TlsServer::new(sctx);
    assert!(matches!(
        ServerMethod::process(&mut server, &ctx, &[0x00]),
        Err(MethodError::WrongState(_))
    ));
    assert_eq!(ServerMethod::start(&mut server, &ctx, b"").unwrap(), [0x20]);
    assert_eq!(
        ServerMethod::process(&mut server, &ctx, &[0x20]),
        Ok(ServerStep::Failure)
    );
    assert!(matches!(
        ServerMethod::process(&mut server, &ctx, &[0x00]),
        Err(MethodError::WrongState(_))
    ));
    assert_eq!(ServerMethod::keys(&server), None);

    let mut peer = TlsPeer::new(pctx);
    let step = PeerMethod::process(&mut peer, &ctx, &[0x20]).unwrap();
    assert_eq!(
        (step.state, step.decision),
        (MethodState::MayCont, Decision::Fail)
    );
    assert!(step.response.is_some());
    // A malformed request fails the method at once, with nothing to send.
    let step = PeerMethod::process(&mut peer, &ctx, &[0x80, 0x00]).unwrap();
    assert_eq!(
        (step.response, step.state, step.decision),
        (None, MethodState::Done, Decision::Fail)
    );
    assert!(matches!(peer.failure(), Some(TlsError::Malformed(_))));
    assert!(matches!(
        PeerMethod::process(&mut peer, &ctx, &[0x00]),
        Err(MethodError::WrongState(_))
    ));
    assert_eq!(PeerMethod::keys(&peer), None);
}

fn contexts() -> &'static (TlsPeerContext, TlsServerContext) {
    static C: OnceLock<(TlsPeerContext, TlsServerContext)> = OnceLock::new();
    C.get_or_init(|| {
        let mut pc = peer_config(TlsVersions::Both);
        let mut sc = server_config(TlsVersions::Both);
        pc.fragment_size = 64;
        sc.fragment_size = 64;
        (
            TlsPeerContext::new(&pc).unwrap(),
            TlsServerContext::new(&sc).unwrap(),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Arbitrary type-data sequences, with or without a leading Start, never panic.
    #[test]
    fn garbage_never_panics(
        start in any::<bool>(),
        msgs in proptest::collection::vec(
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..80),
                // Plausible framing: flags from the real set, a small L.
                (prop_oneof![Just(0x00u8), Just(0x40), Just(0x80), Just(0xc0), Just(0x20)],
                 0u32..300, proptest::collection::vec(any::<u8>(), 0..60))
                    .prop_map(|(f, l, d)| {
                        let mut v = vec![f];
                        if f & 0x80 != 0 { v.extend_from_slice(&l.to_be_bytes()); }
                        v.extend(d);
                        v
                    }),
            ],
            0..12,
        ),
    ) {
        let (pctx, sctx) = contexts();
        let mut peer = TlsPeer::new(pctx);
        let mut server = TlsServer::new(sctx);
        server.start().unwrap();
        if start {
            let _ = peer.process(&[0x20]);
        }
        for m in &msgs {
            let p = peer.process(m);
            prop_assert!(!matches!(p, Ok(Step::Done { .. })), "peer succeeded");
            let s = server.process(m);
            prop_assert!(!matches!(s, Ok(Step::Done { .. })), "server succeeded");
        }
    }
}

/// Interop, TLS 1.2 and TLS 1.3, both directions, over RADIUS written out in this test:
/// - wpa_supplicant's EAP-TLS peer (`eapol_test`) against our [`TlsServer`]; the MSK goes back in
///   MS-MPPE-Recv-Key (RFC 2548), which `eapol_test` compares with the MSK it derived;
/// - our [`TlsPeer`] against hostapd's EAP server (run as a RADIUS server); its
///   MS-MPPE-Recv-Key must be our MSK[0..32].
///
/// An independent check of RFC 5216 §2.3 and RFC 9190 §2.3 and of the fragmentation and success
/// indication rules as two real implementations apply them. Skipped when the programs are not
/// installed.
mod interop {
    use super::*;
    use std::net::UdpSocket;
    use std::process::{Command, Stdio};

    use netns_test::hostapd;
    use openssl::rand::rand_bytes;

    const SECRET: &[u8] = b"interop-secret";
    const EAP_MESSAGE: u8 = 79;
    const MESSAGE_AUTHENTICATOR: u8 = 80;
    const STATE: u8 = 24;
    const VENDOR_SPECIFIC: u8 = 26;

    fn md5(parts: &[&[u8]]) -> Vec<u8> {
        hash(MessageDigest::md5(), &parts.concat())
            .unwrap()
            .to_vec()
    }

    /// RFC 2548 §2.4.2 encryption of an MS-MPPE key.
    fn mppe_key(vendor_type: u8, key: &[u8], request_auth: &[u8]) -> Vec<u8> {
        let mut salt = [0u8; 2];
        rand_bytes(&mut salt).unwrap();
        salt[0] |= 0x80;
        let mut p = vec![u8::try_from(key.len()).unwrap()];
        p.extend_from_slice(key);
        while p.len() % 16 != 0 {
            p.push(0);
        }
        let mut out = Vec::new();
        let mut b = md5(&[SECRET, request_auth, &salt]);
        for chunk in p.chunks(16) {
            let c: Vec<u8> = chunk.iter().zip(&b).map(|(x, y)| x ^ y).collect();
            b = md5(&[SECRET, &c]);
            out.extend_from_slice(&c);
        }
        let mut vsa = 311u32.to_be_bytes().to_vec();
        vsa.push(vendor_type);
        vsa.push(u8::try_from(2 + 2 + out.len()).unwrap());
        vsa.extend_from_slice(&salt);
        vsa.extend(out);
        vsa
    }

    fn attr(out: &mut Vec<u8>, t: u8, v: &[u8]) {
        out.push(t);
        out.push(u8::try_from(v.len() + 2).unwrap());
        out.extend_from_slice(v);
    }

    /// A RADIUS response (RFC 2865 §3, RFC 3579 §3.2 Message-Authenticator).
    fn response(code: u8, req: &[u8], eap: &[u8], extra: &[(u8, Vec<u8>)]) -> Vec<u8> {
        let mut attrs = Vec::new();
        for chunk in eap.chunks(253) {
            attr(&mut attrs, EAP_MESSAGE, chunk);
        }
        for (t, v) in extra {
            attr(&mut attrs, *t, v);
        }
        let ma_at = attrs.len();
        attr(&mut attrs, MESSAGE_AUTHENTICATOR, &[0; 16]);
        let len = u16::try_from(20 + attrs.len()).unwrap();
        let mut pkt = vec![code, req[1]];
        pkt.extend_from_slice(&len.to_be_bytes());
        pkt.extend_from_slice(&req[4..20]);
        pkt.extend_from_slice(&attrs);
        let ma = hmac(MessageDigest::md5(), SECRET, &[&pkt]);
        pkt[20 + ma_at + 2..20 + ma_at + 18].copy_from_slice(&ma);
        let auth = md5(&[&pkt, SECRET]);
        pkt[4..20].copy_from_slice(&auth);
        pkt
    }

    fn eap_messages(req: &[u8]) -> Vec<u8> {
        let mut eap = Vec::new();
        let mut rest = &req[20..];
        while rest.len() >= 2 {
            let (t, l) = (rest[0], usize::from(rest[1]));
            if t == EAP_MESSAGE {
                eap.extend_from_slice(&rest[2..l]);
            }
            rest = &rest[l..];
        }
        eap
    }

    fn eap_request(id: u8, type_data: &[u8]) -> Vec<u8> {
        let mut p = vec![1, id];
        p.extend_from_slice(&u16::try_from(5 + type_data.len()).unwrap().to_be_bytes());
        p.push(13);
        p.extend_from_slice(type_data);
        p
    }

    fn run(versions: TlsVersions, phase1: &str) -> (bool, String, Option<TlsKeys>) {
        let p = pki();
        let dir = tempfile::tempdir().unwrap();
        let path = |n: &str| dir.path().join(n).to_str().unwrap().to_owned();
        std::fs::write(path("ca.pem"), &p.root).unwrap();
        std::fs::write(path("client.pem"), &p.client.chain).unwrap();
        std::fs::write(path("client.key"), &p.client.key).unwrap();
        std::fs::write(
            path("eapol.conf"),
            format!(
                "network={{\n key_mgmt=IEEE8021X\n eap=TLS\n identity=\"{CLIENT_NAME}\"\n \
                 ca_cert=\"{}\"\n client_cert=\"{}\"\n private_key=\"{}\"\n \
                 phase1=\"{phase1}\"\n}}\n",
                path("ca.pem"),
                path("client.pem"),
                path("client.key")
            ),
        )
        .unwrap();

        let mut sc = server_config(versions);
        sc.expected_peer_name = Some(CLIENT_NAME.into());
        let mut server = TlsServer::new(&TlsServerContext::new(&sc).unwrap());
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let port = sock.local_addr().unwrap().port();
        let child = Command::new("eapol_test")
            .args([
                "-c",
                &path("eapol.conf"),
                "-a",
                "127.0.0.1",
                "-r",
                "0",
                "-t",
                "15",
            ])
            .arg(format!("-p{port}"))
            .arg(format!("-s{}", String::from_utf8_lossy(SECRET)))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();

        let mut id = 0u8;
        let mut keys = None;
        let mut buf = [0u8; 4096];
        while let Ok((n, from)) = sock.recv_from(&mut buf) {
            let req = &buf[..n];
            if req[0] != 1 || n < 20 {
                continue;
            }
            let eap = eap_messages(req);
            if eap.len() < 5 || eap[0] != 2 {
                continue;
            }
            let state = vec![(STATE, b"eap-tls".to_vec())];
            let reply = if eap[4] == 1 {
                // Identity.
                id = eap[1].wrapping_add(1);
                let start = server.start().unwrap();
                response(11, req, &eap_request(id, &start), &state)
            } else {
                let step = if eap[4] == 13 {
                    server.process(&eap[5..])
                } else {
                    Err(TlsError::Malformed("not EAP-TLS"))
                };
                id = id.wrapping_add(1);
                match step {
                    Ok(Step::Send(td)) | Ok(Step::Fail { send: td, .. }) => {
                        response(11, req, &eap_request(id, &td), &state)
                    }
                    Ok(Step::Done { keys: k, .. }) => {
                        let msk = k.msk.expose().to_vec();
                        keys = Some(k);
                        let vsas = vec![
                            (VENDOR_SPECIFIC, mppe_key(17, &msk[..32], &req[4..20])),
                            (VENDOR_SPECIFIC, mppe_key(16, &msk[32..], &req[4..20])),
                        ];
                        response(2, req, &[3, eap[1], 0, 4], &vsas)
                    }
                    Err(_) => response(3, req, &[4, eap[1], 0, 4], &[]),
                }
            };
            sock.send_to(&reply, from).unwrap();
            if reply[0] != 11 {
                break;
            }
        }
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text, keys)
    }

    /// RFC 2548 §2.4.2 decryption of an MS-MPPE key attribute value (after the vendor type and
    /// length: salt ‖ string).
    fn mppe_decrypt(value: &[u8], request_auth: &[u8]) -> Vec<u8> {
        let (salt, c) = value.split_at(2);
        let mut p = Vec::new();
        let mut b = md5(&[SECRET, request_auth, salt]);
        for chunk in c.chunks(16) {
            p.extend(chunk.iter().zip(&b).map(|(x, y)| x ^ y));
            b = md5(&[SECRET, chunk]);
        }
        let len = usize::from(p[0]);
        p[1..=len].to_vec()
    }

    fn access_request(id: u8, user: &[u8], eap: &[u8], state: Option<&[u8]>) -> Vec<u8> {
        let mut auth = [0u8; 16];
        rand_bytes(&mut auth).unwrap();
        let mut attrs = Vec::new();
        attr(&mut attrs, 1, user);
        for chunk in eap.chunks(253) {
            attr(&mut attrs, EAP_MESSAGE, chunk);
        }
        if let Some(st) = state {
            attr(&mut attrs, STATE, st);
        }
        let ma_at = attrs.len();
        attr(&mut attrs, MESSAGE_AUTHENTICATOR, &[0; 16]);
        let mut pkt = vec![1, id];
        pkt.extend_from_slice(&u16::try_from(20 + attrs.len()).unwrap().to_be_bytes());
        pkt.extend_from_slice(&auth);
        pkt.extend_from_slice(&attrs);
        let ma = hmac(MessageDigest::md5(), SECRET, &[&pkt]);
        pkt[20 + ma_at + 2..20 + ma_at + 18].copy_from_slice(&ma);
        pkt
    }

    /// Our [`TlsPeer`] against hostapd's EAP server (run as a RADIUS server). Returns our
    /// keys and the MSK[0..32] hostapd sent in MS-MPPE-Recv-Key, or hostapd's log on failure.
    fn run_hostapd(versions: TlsVersions, tls_flags: &str) -> Result<(TlsKeys, Vec<u8>), String> {
        let p = pki();
        let dir = tempfile::tempdir().unwrap().keep();
        let path = |n: &str| dir.join(n).to_str().unwrap().to_owned();
        std::fs::write(path("ca.pem"), &p.root).unwrap();
        std::fs::write(path("server.pem"), &p.server.chain).unwrap();
        std::fs::write(path("server.key"), &p.server.key).unwrap();
        let hostapd = hostapd::Config::new(&dir, SECRET, format!("\"{CLIENT_NAME}\" TLS\n"))
            .interface("eaptls0")
            .lines(&format!(
                "ca_cert={}\nserver_cert={}\nprivate_key={}\n{tls_flags}\n",
                path("ca.pem"),
                path("server.pem"),
                path("server.key"),
            ))
            .start();
        let port = hostapd.port;
        let result = (|| {
            let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
            sock.set_read_timeout(Some(Duration::from_millis(500)))
                .unwrap();
            let server = format!("127.0.0.1:{port}");
            let mut peer = TlsPeer::new(&TlsPeerContext::new(&peer_config(versions)).unwrap());
            let user = CLIENT_NAME.as_bytes();
            // EAP-Response/Identity.
            let mut eap = vec![2, 0];
            eap.extend_from_slice(&u16::try_from(5 + user.len()).unwrap().to_be_bytes());
            eap.push(1);
            eap.extend_from_slice(user);
            let mut state: Option<Vec<u8>> = None;
            let mut keys = None;
            let mut buf = [0u8; 4096];
            for rid in 0..=255u8 {
                let req = access_request(rid, user, &eap, state.as_deref());
                // hostapd may still be starting: retry the first request.
                let mut reply = None;
                for _ in 0..20 {
                    sock.send_to(&req, &server).unwrap();
                    if let Ok(n) = sock.recv(&mut buf) {
                        reply = Some(buf[..n].to_vec());
                        break;
                    }
                }
                let reply = reply.ok_or("no RADIUS reply")?;
                let mut eap_in = Vec::new();
                let mut recv_key = None;
                state = None;
                let mut rest = &reply[20..];
                while rest.len() >= 2 {
                    let (t, l) = (rest[0], usize::from(rest[1]));
                    let v = &rest[2..l];
                    match t {
                        EAP_MESSAGE => eap_in.extend_from_slice(v),
                        STATE => state = Some(v.to_vec()),
                        VENDOR_SPECIFIC if v[..4] == 311u32.to_be_bytes() && v[4] == 17 => {
                            recv_key = Some(mppe_decrypt(&v[6..], &req[4..20]));
                        }
                        _ => {}
                    }
                    rest = &rest[l..];
                }
                match reply[0] {
                    2 => {
                        let keys: TlsKeys = keys.ok_or("Access-Accept before our peer finished")?;
                        return Ok((keys, recv_key.ok_or("no MS-MPPE-Recv-Key")?));
                    }
                    11 => {}
                    c => return Err(format!("RADIUS code {c}, our peer: {:?}", peer.failure())),
                }
                if eap_in.len() < 6 || eap_in[0] != 1 || eap_in[4] != 13 {
                    return Err(format!("not an EAP-TLS request: {eap_in:02x?}"));
                }
                let td = match peer.process(&eap_in[5..]) {
                    Ok(Step::Send(td)) => td,
                    Ok(Step::Done { send, keys: k }) => {
                        keys = Some(k);
                        send.unwrap()
                    }
                    Ok(Step::Fail { send, error }) => {
                        eprintln!("our peer failed: {error}");
                        send
                    }
                    Err(e) => return Err(format!("our peer: {e}")),
                };
                eap = vec![2, eap_in[1]];
                eap.extend_from_slice(&u16::try_from(5 + td.len()).unwrap().to_be_bytes());
                eap.push(13);
                eap.extend_from_slice(&td);
            }
            Err("too many round trips".to_string())
        })();
        result.map_err(|e| format!("{e}\n--- hostapd ---\n{}", hostapd.log()))
    }

    #[test]
    fn hostapd_server_tls12() {
        if !hostapd::installed() {
            eprintln!("hostapd not installed; skipped");
            return;
        }
        let (keys, recv_key) =
            run_hostapd(TlsVersions::Tls12, "").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(keys.version, TlsVersion::Tls12);
        assert_eq!(recv_key, &keys.msk.expose()[..32]);
    }

    #[test]
    fn hostapd_server_tls13() {
        if !hostapd::installed() {
            eprintln!("hostapd not installed; skipped");
            return;
        }
        let (keys, recv_key) = run_hostapd(TlsVersions::Tls13, "tls_flags=[ENABLE-TLSv1.3]")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(keys.version, TlsVersion::Tls13);
        assert_eq!(recv_key, &keys.msk.expose()[..32]);
    }

    fn installed() -> bool {
        Command::new("eapol_test").arg("-v").output().is_ok()
    }

    #[test]
    fn wpa_supplicant_peer_tls12() {
        if !installed() {
            eprintln!("eapol_test not installed; skipped");
            return;
        }
        let (ok, text, keys) = run(TlsVersions::Tls12, "tls_disable_tlsv1_3=1");
        assert!(ok, "{text}");
        assert!(text.contains("MPPE keys OK: 1  mismatch: 0"), "{text}");
        assert_eq!(keys.unwrap().version, TlsVersion::Tls12);
    }

    #[test]
    fn wpa_supplicant_peer_tls13() {
        if !installed() {
            eprintln!("eapol_test not installed; skipped");
            return;
        }
        let (ok, text, keys) = run(TlsVersions::Tls13, "tls_disable_tlsv1_3=0");
        assert!(ok, "{text}");
        assert!(text.contains("MPPE keys OK: 1  mismatch: 0"), "{text}");
        assert_eq!(keys.unwrap().version, TlsVersion::Tls13);
    }
}
