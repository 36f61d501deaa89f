//! Arbitrary PDUs into the KMP ID 1 sessions of both PAEs (supplicant and authenticator, as
//! initiator and as responder, with MKA enabled): no panic, no keys installed and no PMK cached
//! from unauthenticated input.
#![no_main]

use std::sync::Arc;

use kmp_api::crypto::Key128;
use kmp_api::session::{Action, KmpFactory, KmpSession, Role, SessionContext};
use kmp_api::{ExtendedAddress, Instant, RngHandle};
use kmp_mka::handshake::{PaeRole, PmkCache};
use kmp_mka::pae::{MethodProvider, MkaSettings, PaeConfig, PaeFactory, PskProvider};
use libfuzzer_sys::fuzz_target;

const A: ExtendedAddress = ExtendedAddress([2, 0, 0, 0, 0, 0, 0, 1]);
const S: ExtendedAddress = ExtendedAddress([2, 0, 0, 0, 0, 0, 0, 2]);

fn ctx(local: ExtendedAddress, peer: ExtendedAddress, role: Role) -> SessionContext {
    SessionContext {
        local,
        peer,
        role,
        rng: RngHandle::seeded(1),
        now: Instant::ZERO,
        open_responder_sessions: 0,
    }
}

fn factory(role: PaeRole, cache: &PmkCache) -> PaeFactory {
    let psk: Arc<dyn MethodProvider> = Arc::new(PskProvider::new("id", Key128::new([7; 16])));
    let mut c = PaeConfig::new(role, "id", vec![psk]);
    c.mka = Some(MkaSettings::default());
    PaeFactory::new(c, cache.clone()).expect("factory")
}

fn drain(s: &mut dyn KmpSession) {
    while let Some(a) = s.poll_action() {
        assert!(!matches!(a, Action::InstallKeys(_)), "keys from garbage");
    }
}

fuzz_target!(|data: &[u8]| {
    let cache = PmkCache::new();
    let auth = factory(PaeRole::Authenticator, &cache);
    let supp = factory(PaeRole::Supplicant, &cache);
    let mut sessions: Vec<Box<dyn KmpSession>> = vec![
        auth.new_initiator(ctx(A, S, Role::Initiator))
            .expect("initiator"),
        supp.new_initiator(ctx(S, A, Role::Initiator))
            .expect("initiator"),
    ];
    let mut chunks = data.split(|&b| b == 0xff);
    let first = chunks.next().unwrap_or_default();
    sessions.extend(auth.new_responder(ctx(A, S, Role::Responder), first).ok());
    sessions.extend(supp.new_responder(ctx(S, A, Role::Responder), first).ok());
    for s in sessions.iter_mut() {
        let _ = s.start(Instant::ZERO);
        drain(s.as_mut());
    }
    for (i, chunk) in std::iter::once(first).chain(chunks).enumerate() {
        let now = Instant::from_micros(u64::try_from(i).unwrap_or(0) * 700_000);
        for s in sessions.iter_mut() {
            let _ = s.handle_datagram(now, chunk);
            if s.poll_timeout().is_some_and(|t| t <= now) {
                s.handle_timeout(now);
            }
            drain(s.as_mut());
        }
    }
    assert!(cache.get(A, S).is_none() && cache.get(S, A).is_none());
});
