//! EAP-pwd type-data into a peer and a server: nothing panics, and nothing that was tampered
//! with succeeds on both sides with different keys.
//!
//! The first input octet picks the mode:
//! - even: the rest is a sequence of messages (two-octet big-endian length, then the
//!   type-data), each fed to one peer and to one started server, whatever state they are in;
//! - odd: a real conversation between the two, with the fragment size taken from the second
//!   octet (33 to 288) and the rest XORed into the messages as they pass.
#![no_main]

use std::sync::Arc;

use eap::method::{MethodContext, MethodKeys, PeerMethod, ServerMethod, ServerStep};
use eap::pwd::{PwdPeer, PwdServer, PwdStore};
use kmp_api::rng::RngHandle;
use kmp_api::session::SecretBytes;
use kmp_api::time::Instant;
use libfuzzer_sys::fuzz_target;

const USER: &[u8] = b"node-1@example";
const PASSWORD: &[u8] = b"fuzz password";

fn ctx(rng: &RngHandle) -> MethodContext<'_> {
    MethodContext {
        rng,
        now: Instant::ZERO,
        in_identifier: 0,
        out_identifier: 0,
    }
}

fn pair(fragment_size: usize) -> (PwdPeer, PwdServer) {
    let store: Arc<dyn PwdStore> =
        Arc::new(|id: &[u8]| (id == USER).then(|| SecretBytes::from_slice(PASSWORD)));
    (
        PwdPeer::with_fragment_size(
            USER.to_vec(),
            SecretBytes::from_slice(PASSWORD),
            fragment_size,
        )
        .expect("peer"),
        PwdServer::with_fragment_size(b"fuzz.example".to_vec(), store, fragment_size)
            .expect("server"),
    )
}

/// XORs the next octets of `noise` into `msg`.
fn tamper(msg: &mut [u8], noise: &mut impl Iterator<Item = u8>) {
    for b in msg.iter_mut() {
        match noise.next() {
            Some(n) => *b ^= n,
            None => return,
        }
    }
}

fn check(peer: Option<MethodKeys>, server: Option<MethodKeys>) {
    if let (Some(p), Some(s)) = (peer, server) {
        assert_eq!(p, s, "both sides succeeded with different keys");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let rng = RngHandle::seeded(7);
    if mode & 1 == 0 {
        let (mut peer, mut server) = pair(1000);
        let _ = server.start(&ctx(&rng), USER);
        let mut rest = rest;
        while let Some((len, tail)) = rest.split_first_chunk::<2>() {
            let n = usize::from(u16::from_be_bytes(*len)).min(tail.len());
            let (msg, tail) = tail.split_at(n);
            let _ = peer.process(&ctx(&rng), msg);
            let _ = server.process(&ctx(&rng), msg);
            rest = tail;
        }
        // Garbage alone never authenticates the server side.
        assert!(server.keys().is_none(), "the server succeeded on garbage");
        return;
    }
    let Some((&size, noise)) = rest.split_first() else {
        return;
    };
    let fragment_size = 33 + usize::from(size);
    let (mut peer, mut server) = pair(fragment_size);
    let mut noise = noise.iter().copied();
    let Ok(mut request) = server.start(&ctx(&rng), USER) else {
        return;
    };
    for _ in 0..64 {
        tamper(&mut request, &mut noise);
        let Ok(step) = peer.process(&ctx(&rng), &request) else {
            break;
        };
        let Some(mut response) = step.response else {
            break;
        };
        tamper(&mut response, &mut noise);
        match server.process(&ctx(&rng), &response) {
            Ok(ServerStep::Request(r)) => request = r,
            Ok(ServerStep::Success) | Ok(ServerStep::Failure) | Err(_) => break,
        }
    }
    check(peer.keys(), server.keys());
});
