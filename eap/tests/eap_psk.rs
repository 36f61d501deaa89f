//! Our EAP peer against our authenticator (standalone and pass-through) with EAP-PSK: keys and
//! Session-Id agree, Nak to an unsupported method, retransmission and duplicate detection,
//! wrong PSK, malformed packets, RFC 4137 Success/Failure rules, timeouts.
//!
//! RFC 4764 has no test vectors and none were found elsewhere; the key schedule is checked
//! against the values computed for spec §8.7 in `psk.rs`, and here both sides must agree.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::{PSK, Run, USER, auth_keys_of, keys_of};

use eap::EapError;
use eap::authenticator::{
    AuthAction, AuthFailure, AuthOutcome, Authenticator, AuthenticatorConfig, PassThrough,
    PassThroughAction, PassThroughOutcome,
};
use eap::method::{MethodContext, MethodError, MethodKeys, PeerMethod, ServerMethod, ServerStep};
use eap::peer::{Peer, PeerAction, PeerConfig, PeerFailure, PeerOutcome};
use eap::psk::{PskPeer, PskServer};
use eap::wire::{Body, EapType, ExpandedType, MethodId, Packet, WireError};
use kmp_api::crypto::Key128;
use kmp_api::rng::RngHandle;
use kmp_api::time::{Duration, Instant};

fn psk_server() -> Box<dyn ServerMethod> {
    Box::new(PskServer::new(
        b"aaa.example".to_vec(),
        Arc::new(|id: &[u8]| (id == USER).then(|| Key128::new(PSK))),
    ))
}

fn psk_peer(psk: [u8; 16]) -> Box<dyn PeerMethod> {
    Box::new(PskPeer::new(USER.to_vec(), Key128::new(psk)))
}

fn peer(methods: Vec<Box<dyn PeerMethod>>, seed: u64) -> Peer {
    Peer::new(
        PeerConfig::new(USER.to_vec()),
        methods,
        RngHandle::seeded(seed),
        Instant::ZERO,
    )
}

fn authenticator(methods: Vec<Box<dyn ServerMethod>>, seed: u64) -> Authenticator {
    Authenticator::new(
        AuthenticatorConfig::default(),
        methods,
        RngHandle::seeded(seed),
    )
}

/// A server method that only proposes itself (the peer is expected to Nak it).
struct Proposer(MethodId);

impl ServerMethod for Proposer {
    fn method_id(&self) -> MethodId {
        self.0
    }
    fn start(&mut self, _: &MethodContext<'_>, _: &[u8]) -> Result<Vec<u8>, MethodError> {
        Ok(vec![0x42])
    }
    fn process(&mut self, _: &MethodContext<'_>, _: &[u8]) -> Result<ServerStep, MethodError> {
        Ok(ServerStep::Failure)
    }
    fn keys(&self) -> Option<MethodKeys> {
        None
    }
}

/// Moves packets both ways until neither side has anything to send. `drop_to_auth(i)` drops
/// the i-th packet from the peer.
fn exchange(
    a: &mut Authenticator,
    p: &mut Peer,
    now: Instant,
    drop_to_auth: impl FnMut(usize) -> bool,
    run: &mut Run,
) {
    common::exchange_with(a, p, now, |_, _| {}, drop_to_auth, run);
}

#[test]
fn psk_end_to_end_keys_and_session_id_agree() {
    let mut a = authenticator(vec![psk_server()], 1);
    let mut p = peer(vec![psk_peer(PSK)], 2);
    a.start(Instant::ZERO).unwrap();
    let mut run = Run::default();
    exchange(&mut a, &mut p, Instant::ZERO, |_| false, &mut run);
    let (kp, ka) = (keys_of(&run.peer_outcome), auth_keys_of(&run.auth_outcome));
    assert_eq!(kp, ka);
    assert_eq!(kp.msk.len(), 64);
    assert_eq!(kp.emsk.len(), 64);
    assert_ne!(kp.msk, kp.emsk);
    assert_eq!(kp.session_id.len(), 33);
    assert_eq!(kp.session_id[0], 0x2f);
    // Session-Id = 0x2F || RAND_P || RAND_S: RAND_S is in message #1 (after Flags).
    let m1 = Packet::parse(&run.to_peer[1]).unwrap();
    let Some(Body::Method { method, data }) = m1.body() else {
        panic!("#1 is not a method request")
    };
    assert_eq!(*method, MethodId::Legacy(EapType::PSK));
    assert_eq!(&kp.session_id[17..], &data[1..17]);
    // Identity, #1, #3, Success; Identity, #2, #4. Identifiers increment by one.
    assert_eq!(run.to_peer.len(), 4);
    assert_eq!(run.to_auth.len(), 3);
    let ids: Vec<u8> = run.to_peer.iter().map(|p| p[1]).collect();
    assert_eq!(ids[1], ids[0].wrapping_add(1));
    assert_eq!(ids[2], ids[1].wrapping_add(1));
    assert_eq!(ids[3], ids[2], "Success carries the last Identifier");
    assert_eq!(run.to_peer[3][0], 3);
    assert!(a.is_finished() && p.is_finished());
    assert_eq!(a.poll_timeout(), None);
    assert_eq!(p.poll_timeout(), None);
    assert_eq!(a.identity(), b"node-1@example");
    // Nothing is accepted afterwards.
    assert_eq!(
        a.handle_packet(Instant::ZERO, &run.to_auth[2]),
        Err(EapError::Finished)
    );
    assert_eq!(
        p.handle_packet(Instant::ZERO, &run.to_peer[3]),
        Err(EapError::Finished)
    );
}

#[test]
fn nak_to_unsupported_method_then_psk() {
    let vendor = MethodId::Expanded(ExpandedType::new(0x00_137f, 7).unwrap());
    let mut a = authenticator(
        vec![
            Box::new(Proposer(MethodId::Legacy(EapType::TLS))),
            Box::new(Proposer(vendor)),
            psk_server(),
        ],
        3,
    );
    let mut p = peer(vec![psk_peer(PSK)], 4);
    a.start(Instant::ZERO).unwrap();
    let mut run = Run::default();
    exchange(&mut a, &mut p, Instant::ZERO, |_| false, &mut run);
    // The Legacy Nak to EAP-TLS lists EAP-PSK; the vendor method is skipped because the
    // peer did not ask for expanded types; then EAP-PSK runs.
    let nak = Packet::parse(&run.to_auth[1]).unwrap();
    assert_eq!(nak.body(), Some(&Body::Nak(vec![EapType::PSK])));
    assert_eq!(keys_of(&run.peer_outcome), auth_keys_of(&run.auth_outcome));
    assert_eq!(p.selected_method(), Some(MethodId::Legacy(EapType::PSK)));
}

#[test]
fn expanded_nak_names_legacy_methods_as_ietf_expanded_types() {
    let vendor = MethodId::Expanded(ExpandedType::new(0x00_137f, 7).unwrap());
    let mut a = authenticator(vec![Box::new(Proposer(vendor)), psk_server()], 5);
    let mut p = peer(vec![psk_peer(PSK)], 6);
    a.start(Instant::ZERO).unwrap();
    let mut run = Run::default();
    exchange(&mut a, &mut p, Instant::ZERO, |_| false, &mut run);
    let nak = Packet::parse(&run.to_auth[1]).unwrap();
    assert_eq!(
        nak.body(),
        Some(&Body::ExpandedNak(vec![ExpandedType::new(0, 47).unwrap()]))
    );
    assert_eq!(keys_of(&run.peer_outcome), auth_keys_of(&run.auth_outcome));
}

#[test]
fn no_common_method_fails_both_sides() {
    let mut a = authenticator(vec![Box::new(Proposer(MethodId::Legacy(EapType::TLS)))], 7);
    let mut p = peer(vec![psk_peer(PSK)], 8);
    a.start(Instant::ZERO).unwrap();
    let mut run = Run::default();
    exchange(&mut a, &mut p, Instant::ZERO, |_| false, &mut run);
    assert_eq!(
        run.auth_outcome,
        Some(AuthOutcome::Failure(AuthFailure::NoAcceptableMethod))
    );
    assert_eq!(
        run.peer_outcome,
        Some(PeerOutcome::Failure(PeerFailure::Rejected))
    );
    // A peer without methods says "none" in its Nak.
    let mut a = authenticator(vec![psk_server()], 9);
    let mut p = peer(vec![], 10);
    a.start(Instant::ZERO).unwrap();
    let mut run = Run::default();
    exchange(&mut a, &mut p, Instant::ZERO, |_| false, &mut run);
    let nak = Packet::parse(&run.to_auth[1]).unwrap();
    assert_eq!(nak.body(), Some(&Body::Nak(vec![EapType::NONE])));
    assert_eq!(
        run.auth_outcome,
        Some(AuthOutcome::Failure(AuthFailure::NoAcceptableMethod))
    );
}

#[test]
fn wrong_psk_fails_cleanly_on_both_sides() {
    let mut a = authenticator(vec![psk_server()], 11);
    let mut p = peer(vec![psk_peer(*b"not the real psk")], 12);
    a.start(Instant::ZERO).unwrap();
    let mut run = Run::default();
    exchange(&mut a, &mut p, Instant::ZERO, |_| false, &mut run);
    assert_eq!(
        run.auth_outcome,
        Some(AuthOutcome::Failure(AuthFailure::MethodFailed(
            MethodId::Legacy(EapType::PSK)
        )))
    );
    assert_eq!(
        run.peer_outcome,
        Some(PeerOutcome::Failure(PeerFailure::Rejected))
    );
    assert_eq!(run.to_peer.last().unwrap()[0], 4, "Failure sent");
}

#[test]
fn lost_response_retransmission_and_duplicate_detection() {
    let mut a = authenticator(vec![psk_server()], 13);
    let mut p = peer(vec![psk_peer(PSK)], 14);
    a.start(Instant::ZERO).unwrap();
    let mut run = Run::default();
    // Drop message #2 (the second packet from the peer).
    exchange(&mut a, &mut p, Instant::ZERO, |i| i == 1, &mut run);
    assert!(run.auth_outcome.is_none());
    let deadline = a.poll_timeout().unwrap();
    assert_eq!(deadline, Instant::ZERO + Duration::from_secs(3));
    // Too early: nothing.
    a.handle_timeout(Instant::from_micros(1));
    assert!(a.poll_action().is_none());
    a.handle_timeout(deadline);
    exchange(&mut a, &mut p, deadline, |_| false, &mut run);
    // #1 was sent twice, identical; the peer answered both with the same octets, so the
    // method ran once (a second run would have drawn a fresh RAND_P).
    assert_eq!(run.to_peer[1], run.to_peer[2]);
    assert_eq!(run.to_auth[1], run.to_auth[2]);
    assert_eq!(keys_of(&run.peer_outcome), auth_keys_of(&run.auth_outcome));
}

#[test]
fn duplicate_request_gets_the_cached_response() {
    let mut a = authenticator(vec![psk_server()], 15);
    let mut p = peer(vec![psk_peer(PSK)], 16);
    a.start(Instant::ZERO).unwrap();
    let Some(AuthAction::Send(identity_req)) = a.poll_action() else {
        panic!()
    };
    p.handle_packet(Instant::ZERO, &identity_req).unwrap();
    let Some(PeerAction::Send(r1)) = p.poll_action() else {
        panic!()
    };
    p.handle_packet(Instant::ZERO, &identity_req).unwrap();
    assert_eq!(p.poll_action(), Some(PeerAction::Send(r1.clone())));
    // The authenticator discards the duplicate Response after it moved on.
    a.handle_packet(Instant::ZERO, &r1).unwrap();
    assert!(matches!(
        a.handle_packet(Instant::ZERO, &r1),
        Err(EapError::Unexpected { .. })
    ));
}

#[test]
fn retransmissions_exhausted_is_a_timeout_without_failure_packet() {
    let config = AuthenticatorConfig {
        retransmit_timeout: Duration::from_millis(500),
        max_retransmissions: 2,
        identity_request: true,
    };
    let mut a = Authenticator::new(config, vec![psk_server()], RngHandle::seeded(17));
    a.start(Instant::ZERO).unwrap();
    let Some(AuthAction::Send(first)) = a.poll_action() else {
        panic!()
    };
    let mut sent = vec![first];
    while let Some(t) = a.poll_timeout() {
        a.handle_timeout(t);
        while let Some(act) = a.poll_action() {
            match act {
                AuthAction::Send(p) => sent.push(p),
                AuthAction::Finished(o) => {
                    assert_eq!(o, AuthOutcome::Failure(AuthFailure::Timeout));
                }
            }
        }
    }
    assert_eq!(sent.len(), 3);
    assert!(sent.iter().all(|p| p == &sent[0]));
    assert!(a.is_finished());
}

#[test]
fn malformed_packets_are_discarded_and_the_run_goes_on() {
    let mut a = authenticator(vec![psk_server()], 18);
    let mut p = peer(vec![psk_peer(PSK)], 19);
    a.start(Instant::ZERO).unwrap();
    let Some(AuthAction::Send(req)) = a.poll_action() else {
        panic!()
    };
    // Truncated, oversize (trailing octets), bad Length, unknown Code.
    assert_eq!(
        p.handle_packet(Instant::ZERO, &req[..req.len() - 1]),
        Err(EapError::Wire(WireError::Truncated))
    );
    let mut long = req.clone();
    long.extend_from_slice(&[0; 3]);
    assert_eq!(
        p.handle_packet(Instant::ZERO, &long),
        Err(EapError::Wire(WireError::TrailingData(3)))
    );
    assert_eq!(
        p.handle_packet(Instant::ZERO, &[9, 1, 0, 4]),
        Err(EapError::Wire(WireError::UnknownCode(9)))
    );
    let mut big = vec![1, 1, 0xff, 0xff, 1];
    big.resize(70_000, 0);
    assert_eq!(
        p.handle_packet(Instant::ZERO, &big),
        Err(EapError::Wire(WireError::TrailingData(70_000 - 65_535)))
    );
    assert!(p.poll_action().is_none());
    assert!(matches!(
        a.handle_packet(Instant::ZERO, &[2, 0, 0, 2]),
        Err(EapError::Wire(WireError::BadLength(2, 2)))
    ));
    // A Request sent to the authenticator is refused.
    assert!(matches!(
        a.handle_packet(Instant::ZERO, &req),
        Err(EapError::Unexpected { .. })
    ));
    p.handle_packet(Instant::ZERO, &req).unwrap();
    let mut run = Run::default();
    exchange(&mut a, &mut p, Instant::ZERO, |_| false, &mut run);
    assert_eq!(keys_of(&run.peer_outcome), auth_keys_of(&run.auth_outcome));
}

#[test]
fn tampered_method_messages_are_ignored() {
    let mut a = authenticator(vec![psk_server()], 20);
    let mut p = peer(vec![psk_peer(PSK)], 21);
    a.start(Instant::ZERO).unwrap();
    let mut run = Run::default();
    // Stop before #3 reaches the peer by tampering with it on the way.
    let Some(AuthAction::Send(id_req)) = a.poll_action() else {
        panic!()
    };
    p.handle_packet(Instant::ZERO, &id_req).unwrap();
    let Some(PeerAction::Send(id_resp)) = p.poll_action() else {
        panic!()
    };
    a.handle_packet(Instant::ZERO, &id_resp).unwrap();
    let Some(AuthAction::Send(m1)) = a.poll_action() else {
        panic!()
    };
    p.handle_packet(Instant::ZERO, &m1).unwrap();
    let Some(PeerAction::Send(m2)) = p.poll_action() else {
        panic!()
    };
    // #2 with a changed RAND_S: the method ignores it, the authenticator keeps waiting.
    let mut bad = m2.clone();
    bad[7] ^= 1;
    assert!(matches!(
        a.handle_packet(Instant::ZERO, &bad),
        Err(EapError::Method(MethodError::Invalid(_)))
    ));
    assert!(a.poll_action().is_none());
    a.handle_packet(Instant::ZERO, &m2).unwrap();
    exchange(&mut a, &mut p, Instant::ZERO, |_| false, &mut run);
    assert_eq!(keys_of(&run.peer_outcome), auth_keys_of(&run.auth_outcome));
}

#[test]
fn rfc4137_success_and_failure_rules_at_the_peer() {
    // Success right after Identity (no method ran): the peer fails, it never accepts an
    // unauthenticated Success.
    let mut p = peer(vec![psk_peer(PSK)], 22);
    p.handle_packet(Instant::ZERO, &[1, 5, 0, 5, 1]).unwrap();
    assert!(matches!(p.poll_action(), Some(PeerAction::Send(_))));
    // Success with another Identifier is discarded.
    assert!(matches!(
        p.handle_packet(Instant::ZERO, &[3, 6, 0, 4]),
        Err(EapError::Unexpected { .. })
    ));
    assert!(p.poll_action().is_none());
    p.handle_packet(Instant::ZERO, &[3, 5, 0, 4]).unwrap();
    assert_eq!(
        p.poll_action(),
        Some(PeerAction::Finished(PeerOutcome::Failure(
            PeerFailure::UnauthenticatedSuccess
        )))
    );

    // Success in the middle of EAP-PSK (after #2, decision FAIL, state MAY_CONT): failure.
    let mut a = authenticator(vec![psk_server()], 23);
    let mut p = peer(vec![psk_peer(PSK)], 24);
    a.start(Instant::ZERO).unwrap();
    let mut run = Run::default();
    exchange(&mut a, &mut p, Instant::ZERO, |i| i == 1, &mut run);
    let m1_id = run.to_peer[1][1];
    p.handle_packet(Instant::ZERO, &[3, m1_id, 0, 4]).unwrap();
    assert_eq!(
        p.poll_action(),
        Some(PeerAction::Finished(PeerOutcome::Failure(
            PeerFailure::UnauthenticatedSuccess
        )))
    );

    // After the method succeeded unconditionally (EAP-PSK #4 sent) a Failure is ignored;
    // the Success that follows is accepted.
    let mut a = authenticator(vec![psk_server()], 25);
    let mut p = peer(vec![psk_peer(PSK)], 26);
    a.start(Instant::ZERO).unwrap();
    let mut run = Run::default();
    exchange(&mut a, &mut p, Instant::ZERO, |i| i == 2, &mut run);
    let m3_id = run.to_peer[2][1];
    assert!(matches!(
        p.handle_packet(Instant::ZERO, &[4, m3_id, 0, 4]),
        Err(EapError::Unexpected { .. })
    ));
    p.handle_packet(Instant::ZERO, &[3, m3_id, 0, 4]).unwrap();
    assert!(matches!(
        p.poll_action(),
        Some(PeerAction::Finished(PeerOutcome::Success {
            keys: Some(_),
            ..
        }))
    ));
}

#[test]
fn notification_and_idle_timeout_at_the_peer() {
    let mut p = peer(vec![psk_peer(PSK)], 27);
    let notification = Packet::Request {
        identifier: 9,
        body: Body::Notification(b"hello"),
    }
    .to_vec();
    p.handle_packet(Instant::ZERO, &notification).unwrap();
    assert_eq!(
        p.poll_action(),
        Some(PeerAction::Notification(b"hello".to_vec()))
    );
    assert_eq!(p.poll_action(), Some(PeerAction::Send(vec![2, 9, 0, 5, 2])));
    let t = p.poll_timeout().unwrap();
    assert_eq!(t, Instant::ZERO + Duration::from_secs(60));
    p.handle_timeout(t);
    assert_eq!(
        p.poll_action(),
        Some(PeerAction::Finished(PeerOutcome::Failure(
            PeerFailure::Timeout
        )))
    );
    assert_eq!(p.poll_timeout(), None);
}

/// The test plays the backend: an EAP server (our `PskServer` behind hand-built Requests) as a
/// RADIUS server would run it, and hands the MSK over with the accept.
#[test]
fn pass_through_with_the_test_as_backend() {
    let mut pt = PassThrough::new(AuthenticatorConfig::default(), RngHandle::seeded(28));
    let mut p = peer(vec![psk_peer(PSK)], 29);
    let mut server = psk_server();
    let backend_rng = RngHandle::seeded(30);
    pt.start(Instant::ZERO).unwrap();
    let mut to_backend = Vec::new();
    let mut pt_outcome = None;
    let mut peer_outcome = None;
    let mut backend_keys = None;
    for _round in 0..10 {
        while let Some(act) = pt.poll_action() {
            match act {
                PassThroughAction::Send(pkt) => {
                    let _ = p.handle_packet(Instant::ZERO, &pkt);
                }
                PassThroughAction::ToBackend(pkt) => to_backend.push(pkt),
                PassThroughAction::Finished(o) => pt_outcome = Some(o),
            }
        }
        while let Some(act) = p.poll_action() {
            match act {
                PeerAction::Send(pkt) => pt.handle_packet(Instant::ZERO, &pkt).unwrap(),
                PeerAction::Finished(o) => peer_outcome = Some(o),
                PeerAction::Notification(_) => {}
            }
        }
        // The backend answers each relayed Response.
        let Some(resp) = to_backend.pop() else {
            continue;
        };
        let parsed = Packet::parse(&resp).unwrap();
        let id = parsed.identifier();
        let ctx = MethodContext {
            rng: &backend_rng,
            now: Instant::ZERO,
            in_identifier: id,
            out_identifier: id.wrapping_add(1),
        };
        let step = match parsed.body().unwrap() {
            Body::Identity(who) => {
                assert_eq!(*who, b"node-1@example");
                ServerStep::Request(server.start(&ctx, who).unwrap())
            }
            Body::Method { data, .. } => server.process(&ctx, data).unwrap(),
            other => panic!("unexpected {other:?}"),
        };
        match step {
            ServerStep::Request(data) => {
                let req = Packet::Request {
                    identifier: id.wrapping_add(1),
                    body: Body::Method {
                        method: MethodId::Legacy(EapType::PSK),
                        data: &data,
                    },
                }
                .to_vec();
                // A backend answer that is not a Request is refused.
                assert!(pt.backend_request(Instant::ZERO, &[3, id, 0, 4]).is_err());
                pt.backend_request(Instant::ZERO, &req).unwrap();
            }
            ServerStep::Success => {
                let keys = server.keys().unwrap();
                pt.backend_accept(Some(&[3, id, 0, 4]), Some(keys.msk.clone()))
                    .unwrap();
                backend_keys = Some(keys);
            }
            ServerStep::Failure => pt.backend_reject(None).unwrap(),
        }
    }
    let peer_keys = keys_of(&peer_outcome);
    assert_eq!(Some(&peer_keys), backend_keys.as_ref());
    assert_eq!(
        pt_outcome,
        Some(PassThroughOutcome::Success {
            identity: b"node-1@example".to_vec(),
            msk: Some(peer_keys.msk.clone()),
        })
    );
    assert_eq!(pt.identity(), b"node-1@example");
    assert_eq!(pt.poll_timeout(), None);
    assert!(matches!(pt.backend_reject(None), Err(EapError::Finished)));
}

#[test]
fn pass_through_retransmits_rejects_and_times_out() {
    // Retransmission of the Identity Request, then a backend reject.
    let mut pt = PassThrough::new(AuthenticatorConfig::default(), RngHandle::seeded(31));
    pt.start(Instant::ZERO).unwrap();
    let Some(PassThroughAction::Send(id_req)) = pt.poll_action() else {
        panic!()
    };
    // A backend answer before any peer Response is refused.
    assert!(pt.backend_reject(None).is_err());
    let t = pt.poll_timeout().unwrap();
    pt.handle_timeout(t);
    assert_eq!(
        pt.poll_action(),
        Some(PassThroughAction::Send(id_req.clone()))
    );
    let id = id_req[1];
    // Wrong Identifier: discarded.
    assert!(
        pt.handle_packet(Instant::ZERO, &[2, id.wrapping_add(1), 0, 6, 1, b'x'])
            .is_err()
    );
    let resp = [2, id, 0, 6, 1, b'x'];
    pt.handle_packet(Instant::ZERO, &resp).unwrap();
    assert_eq!(
        pt.poll_action(),
        Some(PassThroughAction::ToBackend(resp.to_vec()))
    );
    assert_eq!(
        pt.poll_timeout(),
        None,
        "no timer while the backend decides"
    );
    // A duplicate Response while the backend decides is discarded.
    assert!(pt.handle_packet(Instant::ZERO, &resp).is_err());
    // The backend's Failure must be a Failure.
    assert!(pt.backend_reject(Some(&[3, id, 0, 4])).is_err());
    pt.backend_reject(Some(&[4, id, 0, 4])).unwrap();
    assert_eq!(
        pt.poll_action(),
        Some(PassThroughAction::Send(vec![4, id, 0, 4]))
    );
    assert_eq!(
        pt.poll_action(),
        Some(PassThroughAction::Finished(PassThroughOutcome::Failure(
            AuthFailure::Rejected
        )))
    );

    // The backend goes silent: failure without a packet.
    let mut pt = PassThrough::new(AuthenticatorConfig::default(), RngHandle::seeded(32));
    pt.start(Instant::ZERO).unwrap();
    let Some(PassThroughAction::Send(id_req)) = pt.poll_action() else {
        panic!()
    };
    pt.handle_packet(Instant::ZERO, &[2, id_req[1], 0, 5, 1])
        .unwrap();
    let _ = pt.poll_action();
    pt.backend_timeout().unwrap();
    assert_eq!(
        pt.poll_action(),
        Some(PassThroughAction::Finished(PassThroughOutcome::Failure(
            AuthFailure::BackendTimeout
        )))
    );

    // The peer goes silent: Timeout after the retransmissions.
    let mut pt = PassThrough::new(AuthenticatorConfig::default(), RngHandle::seeded(33));
    pt.start(Instant::ZERO).unwrap();
    let mut sends = 0;
    let mut outcome = None;
    loop {
        while let Some(act) = pt.poll_action() {
            match act {
                PassThroughAction::Send(_) => sends += 1,
                PassThroughAction::Finished(o) => outcome = Some(o),
                PassThroughAction::ToBackend(_) => panic!(),
            }
        }
        match pt.poll_timeout() {
            Some(t) => pt.handle_timeout(t),
            None => break,
        }
    }
    assert_eq!(sends, 5);
    assert_eq!(
        outcome,
        Some(PassThroughOutcome::Failure(AuthFailure::Timeout))
    );
}

/// Messages #2, #3, #4, MSK, EMSK and Session-Id with fixed RAND_S and RAND_P, recomputed
/// independently by `tests/psk_vectors.py` (Python `cryptography`; not a published vector:
/// RFC 4764 has none and none were found). Identifiers: #1 is 1, #3 is 2.
#[test]
fn psk_known_answer() {
    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }
    let psk = Key128::from_slice(&h("000102030405060708090a0b0c0d0e0f")).unwrap();
    let rand_s: Vec<u8> = (0x20..0x30).collect();
    let rand_p: Vec<u8> = (0x10..0x20).collect();
    let mut server = PskServer::new(
        b"server".to_vec(),
        Arc::new({
            let psk = psk.clone();
            move |id: &[u8]| (id == b"peer").then(|| psk.clone())
        }),
    );
    let mut peer = PskPeer::new(b"peer".to_vec(), psk.clone());
    let (srng, prng) = (RngHandle::fixed(rand_s), RngHandle::fixed(rand_p));
    let ctx = |rng, i, o| MethodContext {
        rng,
        now: Instant::ZERO,
        in_identifier: i,
        out_identifier: o,
    };
    let m1 = server.start(&ctx(&srng, 1, 1), b"").unwrap();
    assert_eq!(m1, h("00202122232425262728292a2b2c2d2e2f736572766572"));
    let m2 = peer
        .process(&ctx(&prng, 1, 1), &m1)
        .unwrap()
        .response
        .unwrap();
    assert_eq!(
        m2,
        h(
            "40202122232425262728292a2b2c2d2e2f101112131415161718191a1b1c1d1e1f\
           7e7c7262afc5394550b7dceb1b8395fd70656572"
        )
    );
    let ServerStep::Request(m3) = server.process(&ctx(&srng, 1, 2), &m2).unwrap() else {
        panic!("expected #3")
    };
    assert_eq!(
        m3,
        h(
            "80202122232425262728292a2b2c2d2e2f3d4dbe136cb2551847891b00a7dcebd3\
           00000000456397f58485f3cdfdb37b714a433243a7"
        )
    );
    let m4 = peer
        .process(&ctx(&prng, 2, 2), &m3)
        .unwrap()
        .response
        .unwrap();
    assert_eq!(
        m4,
        h("c0202122232425262728292a2b2c2d2e2f0000000190a0bbbc716030720e884ed1ada7f06764")
    );
    assert_eq!(
        server.process(&ctx(&srng, 2, 3), &m4).unwrap(),
        ServerStep::Success
    );
    let keys = server.keys().unwrap();
    assert_eq!(peer.keys().unwrap(), keys);
    assert_eq!(
        keys.msk.expose(),
        h(
            "3d57fffaa740360b2b43888b4ce41fa529e312778f8229003bb5bc14b27d6d2d\
           881186b8ae4d7c0ad958f78c47a6fa2b548f4f4a046f44e6ab57a80eb60c7fda"
        )
    );
    assert_eq!(
        keys.emsk.expose(),
        h(
            "6ece6f68c11f4478a3727a47b40e2a44b5b16a1a8c37f76222ed64675796671c\
           f1310d5eef048aab68da1fa507338efe0a1915ec9d1bfae0f591fc058cd9fc14"
        )
    );
    assert_eq!(
        keys.session_id,
        h("2f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f")
    );
}

#[test]
fn backend_start_adopts_the_identity_response() {
    // Empty (EAP-Start): an Identity Request, as with start().
    let mut a = authenticator(vec![psk_server()], 40);
    a.start_backend(Instant::ZERO, &[]).unwrap();
    let Some(AuthAction::Send(req)) = a.poll_action() else {
        panic!()
    };
    assert_eq!(
        Packet::parse(&req).unwrap().body(),
        Some(&Body::Identity(b""))
    );
    // Not an Identity Response: refused, nothing starts.
    let mut a = authenticator(vec![psk_server()], 41);
    assert!(matches!(
        a.start_backend(Instant::ZERO, &[2, 7, 0, 6, 3, 47]),
        Err(EapError::Unexpected { .. })
    ));
    assert!(matches!(
        a.start_backend(Instant::ZERO, &[2, 7, 0, 9]),
        Err(EapError::Wire(_))
    ));
    assert!(a.poll_action().is_none());
    // The Identity Response with Identifier 7: EAP-PSK #1 goes out with Identifier 8, and the
    // run completes against our peer.
    let mut p = peer(vec![psk_peer(PSK)], 42);
    let identity = Packet::Response {
        identifier: 7,
        body: Body::Identity(b"node-1@example"),
    }
    .to_vec();
    a.start_backend(Instant::ZERO, &identity).unwrap();
    assert_eq!(a.identity(), b"node-1@example");
    assert!(a.start_backend(Instant::ZERO, &identity).is_err());
    let mut run = Run::default();
    exchange(&mut a, &mut p, Instant::ZERO, |_| false, &mut run);
    assert_eq!(run.to_peer[0][1], 8);
    assert_eq!(keys_of(&run.peer_outcome), auth_keys_of(&run.auth_outcome));
}

#[test]
fn state_machines_can_move_between_threads() {
    fn send<T: Send>() {}
    send::<Peer>();
    send::<Authenticator>();
    send::<PassThrough>();
    send::<PskPeer>();
    send::<PskServer>();
}
