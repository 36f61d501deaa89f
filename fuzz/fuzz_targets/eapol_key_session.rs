//! Arbitrary PDUs into the 4-way and group-key sessions of both roles: no panic, and nothing
//! is installed on the authenticator from unauthenticated input.
#![no_main]

use kmp_api::session::{Action, KmpFactory, KmpSession, Role, SessionContext};
use kmp_api::{ExtendedAddress, Instant, RngHandle};
use kmp_mka::handshake::{GtkSet, HandshakeConfig, HandshakeFactory, PmkCache};
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

fn drain(s: &mut dyn KmpSession) {
    while let Some(a) = s.poll_action() {
        assert!(!matches!(a, Action::InstallKeys(_)) || s.role() == Role::Responder);
    }
}

fuzz_target!(|data: &[u8]| {
    let (f6, f7) = HandshakeFactory::pair(
        HandshakeConfig::with_pmk(Some([7; 32])),
        PmkCache::new(),
        GtkSet::new(),
    )
    .expect("factories");
    for f in [&f6, &f7] {
        let mut a = f
            .new_initiator(ctx(A, S, Role::Initiator))
            .expect("initiator");
        let _ = a.start(Instant::ZERO);
        drain(a.as_mut());
        let mut s = f.new_responder(ctx(S, A, Role::Responder), data).ok();
        for (i, chunk) in data.split(|&b| b == 0xff).enumerate() {
            let now = Instant::from_micros(u64::try_from(i).unwrap_or(0) * 400_000);
            let _ = a.handle_datagram(now, chunk);
            a.handle_timeout(now);
            drain(a.as_mut());
            if let Some(s) = s.as_mut() {
                let _ = s.handle_datagram(now, chunk);
                s.handle_timeout(now);
                drain(s.as_mut());
            }
        }
    }
});
