//! EAP-TLS type-data sequences into a peer and a server: nothing panics, and nothing that was
//! tampered with succeeds on both sides with different keys.
//!
//! The first input octet picks the mode:
//! - even: the rest is a sequence of messages (two-octet big-endian length, then the
//!   type-data), each fed to a fresh peer (after a Start if bit 1 is set) and to a started
//!   server;
//! - odd: a real conversation between the two, with the fragment size taken from the second
//!   octet and the rest XORed into the messages as they pass.
#![no_main]

use std::sync::OnceLock;

use eap::tls::{
    Step, TlsConfig, TlsPeer, TlsPeerContext, TlsServer, TlsServerContext, TlsVersions,
};
use libfuzzer_sys::fuzz_target;

// A throwaway self-signed P-256 identity, valid until 2126, used by both sides:
// `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 36500
//  -subj "/CN=fuzz.eap-tls.example"`.
const CERT: &str = "\
-----BEGIN CERTIFICATE-----\n\
MIIBlTCCATugAwIBAgIUHCp29w2HJmPc3KXyftWYQVn6HDkwCgYIKoZIzj0EAwIw\n\
HzEdMBsGA1UEAwwUZnV6ei5lYXAtdGxzLmV4YW1wbGUwIBcNMjYxMTIyMDUzNjMw\n\
WhgPMjEyNjEwMjkwNTM2MzBaMB8xHTAbBgNVBAMMFGZ1enouZWFwLXRscy5leGFt\n\
cGxlMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE9vee0lWuky6Bo759DI3Acomc\n\
/PODKPe+unDSa6sW1AY9sA9fNdY4ZZqL8+XBfSN1dt1JlEiNwyaYkK3cIaLRaaNT\n\
MFEwHQYDVR0OBBYEFJPBXrfCznRqJTqqUeDDq2w/jzy2MB8GA1UdIwQYMBaAFJPB\n\
XrfCznRqJTqqUeDDq2w/jzy2MA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwID\n\
SAAwRQIhAKE760MDJTVX94Ph8LjD1mom0NicDgBTf1cMGsujuydAAiA23zTmUhAk\n\
rMI12nLnbqpTjayGzTbExZ16QkkTp1NhwA==\n\
-----END CERTIFICATE-----\n";
const KEY: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgkG4aRouwjn+z+7HU\n\
w7YoRTyyQ8/u3mR1pcjGpwZ5CnGhRANCAAT2957SVa6TLoGjvn0MjcByiZz884Mo\n\
9766cNJrqxbUBj2wD1811jhlmovz5cF9I3V23UmUSI3DJpiQrdwhotFp\n\
-----END PRIVATE KEY-----\n";

fn config(fragment_size: usize) -> TlsConfig {
    let mut c = TlsConfig::from_pem(CERT.as_bytes(), KEY.as_bytes(), CERT.as_bytes())
        .expect("fuzz identity");
    c.versions = TlsVersions::Both;
    c.fragment_size = fragment_size;
    c
}

fn contexts(fragment_size: usize) -> (TlsPeerContext, TlsServerContext) {
    static SMALL: OnceLock<(TlsPeerContext, TlsServerContext)> = OnceLock::new();
    static LARGE: OnceLock<(TlsPeerContext, TlsServerContext)> = OnceLock::new();
    let cell = if fragment_size < 200 { &SMALL } else { &LARGE };
    cell.get_or_init(|| {
        let c = config(fragment_size);
        (
            TlsPeerContext::new(&c).expect("peer context"),
            TlsServerContext::new(&c).expect("server context"),
        )
    })
    .clone()
}

fn messages(mut data: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        let (len, rest) = data.split_first_chunk::<2>()?;
        let len = usize::from(u16::from_be_bytes(*len)).min(rest.len());
        let (m, rest) = rest.split_at(len);
        data = rest;
        Some(m)
    })
}

fn garbage(mode: u8, data: &[u8]) {
    let (pctx, sctx) = contexts(if mode & 4 != 0 { 64 } else { 1000 });
    let mut peer = TlsPeer::new(&pctx);
    let mut server = TlsServer::new(&sctx);
    server.start().expect("start");
    if mode & 2 != 0 {
        let _ = peer.process(&[0x20]);
    }
    for m in messages(data).take(64) {
        let p = peer.process(m);
        assert!(
            !matches!(p, Ok(Step::Done { .. })),
            "peer succeeded on garbage"
        );
        let s = server.process(m);
        assert!(
            !matches!(s, Ok(Step::Done { .. })),
            "server succeeded on garbage"
        );
    }
}

fn conversation(fragment_octet: u8, noise: &[u8]) {
    let (pctx, sctx) = contexts(if fragment_octet < 128 { 64 } else { 1000 });
    let mut peer = TlsPeer::new(&pctx);
    let mut server = TlsServer::new(&sctx);
    let mut noise = noise.iter().copied().cycle();
    let mut flip = |m: &mut Vec<u8>| {
        for b in m.iter_mut() {
            *b ^= noise.next().unwrap_or(0);
        }
    };
    let mut req = server.start().expect("start");
    let mut peer_keys = None;
    for _ in 0..400 {
        flip(&mut req);
        let mut resp = match peer.process(&req) {
            Ok(Step::Send(r)) => r,
            Ok(Step::Done { send, keys }) => {
                peer_keys = Some(keys);
                send.unwrap_or_default()
            }
            Ok(Step::Fail { send, .. }) => send,
            Err(_) => return,
        };
        flip(&mut resp);
        match server.process(&resp) {
            Ok(Step::Send(r)) | Ok(Step::Fail { send: r, .. }) => req = r,
            Ok(Step::Done { keys, .. }) => {
                if let Some(p) = peer_keys {
                    assert_eq!(p, keys, "both sides succeeded with different keys");
                }
                return;
            }
            Err(_) => return,
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        garbage(mode, rest);
    } else if let Some((&f, noise)) = rest.split_first() {
        conversation(f, noise);
    }
});
