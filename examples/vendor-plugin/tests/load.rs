//! Loads the built `cdylib` through the plugin loader and runs exchanges through the C ABI.

// Test helpers outside #[test] functions may unwrap: a failure is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;

use kmp_api::plugin::{self, LoadedPlugin, PluginError};
use kmp_api::session::{Action, FailureReason, KeyScope, Outcome, SessionContext};
use kmp_api::{
    ExtendedAddress, Instant, KmpFactory, KmpId, KmpSession, Oui, Registry, RngHandle, Role,
    SessionError,
};

const PSK: &str = "psk_hex = \"000102030405060708090a0b0c0d0e0f\"";
const OTHER_PSK: &str = "psk_hex = \"ff0102030405060708090a0b0c0d0e0f\"";
const A: ExtendedAddress = ExtendedAddress([1, 1, 1, 1, 1, 1, 1, 1]);
const B: ExtendedAddress = ExtendedAddress([2, 2, 2, 2, 2, 2, 2, 2]);

fn library_path() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let file = format!(
        "{}kmp_vendor_psk{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    // The test binary is target/<profile>/deps/<name>: `cargo test` leaves the cdylib next to
    // it in deps/, `cargo build` copies it up to target/<profile>/.
    let deps = exe.parent().unwrap();
    let candidates = [deps.join(&file), deps.parent().unwrap().join(&file)];
    candidates
        .iter()
        .find(|p| p.exists())
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "{} is missing (also looked in {}): build the workspace first (cargo build \
                 --workspace, or cargo test --workspace, which builds the cdylib)",
                candidates[1].display(),
                candidates[0].display()
            )
        })
}

fn plugin() -> &'static LoadedPlugin {
    // Loading twice is allowed (the library is never unloaded); do it once per test binary.
    static P: std::sync::OnceLock<&'static LoadedPlugin> = std::sync::OnceLock::new();
    P.get_or_init(|| plugin::load(library_path()).unwrap())
}

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

/// Sessions' outcomes and installed keys after running to quiescence.
#[derive(Default, Debug)]
struct Side {
    outcome: Option<Outcome>,
    keys: Vec<Vec<u8>>,
}

fn drain(s: &mut dyn KmpSession, side: &mut Side, out: &mut Vec<Vec<u8>>) {
    while let Some(a) = s.poll_action() {
        match a {
            Action::Send(p) => out.push(p),
            Action::InstallKeys(k) => {
                for lk in k.link_keys {
                    assert_eq!(lk.scope, KeyScope::Pairwise(s.peer()));
                    side.keys.push(lk.key.expose().to_vec());
                }
            }
            Action::RemoveKeys(_) => {}
            Action::Finished(o) => side.outcome = Some(o),
        }
    }
}

/// Runs an exchange between factories `fi` (initiator on A) and `fr` (responder on B), with
/// virtual time advancing to the next deadline when nothing is in flight.
fn run(fi: &Arc<dyn KmpFactory>, fr: &Arc<dyn KmpFactory>) -> (Side, Side) {
    run_lossy(fi, fr, 0)
}

/// As [`run`], dropping the first `drop_responses` PDUs the responder sends.
fn run_lossy(
    fi: &Arc<dyn KmpFactory>,
    fr: &Arc<dyn KmpFactory>,
    mut drop_responses: usize,
) -> (Side, Side) {
    let mut now = Instant::ZERO;
    let mut i = fi.new_initiator(ctx(A, B, Role::Initiator, 1)).unwrap();
    let mut r: Option<Box<dyn KmpSession>> = None;
    let (mut si, mut sr) = (Side::default(), Side::default());
    i.start(now).unwrap();
    for _ in 0..100 {
        let mut to_r = Vec::new();
        drain(i.as_mut(), &mut si, &mut to_r);
        for pdu in to_r {
            let resp = r.get_or_insert_with(|| {
                fr.new_responder(ctx(B, A, Role::Responder, 2), &pdu)
                    .unwrap()
            });
            let _ = resp.handle_datagram(now, &pdu);
        }
        let mut to_i = Vec::new();
        if let Some(resp) = r.as_mut() {
            drain(resp.as_mut(), &mut sr, &mut to_i);
        }
        let idle = to_i.is_empty();
        let lost = drop_responses.min(to_i.len());
        drop_responses -= lost;
        for pdu in to_i.into_iter().skip(lost) {
            let _ = i.handle_datagram(now, &pdu);
        }
        if idle {
            let next = [i.poll_timeout(), r.as_ref().and_then(|s| s.poll_timeout())]
                .into_iter()
                .flatten()
                .min();
            let Some(next) = next else { break };
            now = next;
            i.handle_timeout(now);
            if let Some(resp) = r.as_mut() {
                resp.handle_timeout(now);
            }
        }
    }
    (si, sr)
}

#[test]
fn loaded_plugin_registers_and_completes_an_exchange() {
    let p = plugin();
    let id = KmpId::VendorSpecific(Oui([0x02, 0x15, 0x09]));
    assert_eq!(p.kmp_id(), id);
    assert_eq!(p.name(), "vendor-psk");
    let mut reg = Registry::new();
    reg.register(p.registration()).unwrap();
    let f = reg.lookup(id).unwrap().make_factory(PSK).unwrap();
    assert_eq!(f.kmp_id(), id);
    let (i, r) = run(&f, &f);
    for side in [&i, &r] {
        match &side.outcome {
            Some(Outcome::Success(sa)) => assert_eq!(sa.keys_installed, 1),
            other => panic!("expected success, got {other:?}"),
        }
        assert_eq!(side.keys.len(), 1);
        assert_eq!(side.keys[0].len(), 16);
    }
    assert_eq!(i.keys, r.keys);
    // The registry refuses a second registration of the same plugin.
    assert!(reg.register(p.registration()).is_err());
}

#[test]
fn lost_responses_are_retransmitted_and_retries_are_bounded() {
    let f = plugin().registration().make_factory(PSK).unwrap();
    let (i, r) = run_lossy(&f, &f, 2);
    assert!(matches!(i.outcome, Some(Outcome::Success(_))), "{i:?}");
    assert!(matches!(r.outcome, Some(Outcome::Success(_))), "{r:?}");
    assert_eq!(i.keys, r.keys);
    // Every response lost: the responder gives up after three transmissions.
    let (i, r) = run_lossy(&f, &f, usize::MAX);
    assert!(matches!(
        i.outcome,
        Some(Outcome::Failure(FailureReason::Timeout { attempts: 3 }))
    ));
    assert!(matches!(
        r.outcome,
        Some(Outcome::Failure(FailureReason::Timeout { attempts: 3 }))
    ));
}

#[test]
fn wrong_psk_fails_authentication() {
    let fi = plugin().registration().make_factory(PSK).unwrap();
    let fr = plugin().registration().make_factory(OTHER_PSK).unwrap();
    let (i, r) = run(&fi, &fr);
    assert_eq!(
        i.outcome,
        Some(Outcome::Failure(FailureReason::AuthenticationFailed))
    );
    assert!(matches!(
        r.outcome,
        Some(Outcome::Failure(FailureReason::Timeout { attempts: 3 }))
    ));
    assert!(i.keys.is_empty() && r.keys.is_empty());
}

#[test]
fn bad_configuration_is_a_typed_error() {
    let reg = plugin().registration();
    assert!(matches!(reg.make_factory(""), Err(SessionError::Config(_))));
    assert!(matches!(
        reg.make_factory("psk_hex = \"zz\""),
        Err(SessionError::Config(m)) if m.contains("psk_hex")
    ));
}

#[test]
fn a_panic_in_the_plugin_is_an_error_not_an_abort() {
    let f = plugin()
        .registration()
        .make_factory(&format!("{PSK}\ntest_panic_on_start = true"))
        .unwrap();
    let mut s = f.new_initiator(ctx(A, B, Role::Initiator, 1)).unwrap();
    let err = s.start(Instant::ZERO).unwrap_err();
    assert!(
        matches!(&err, SessionError::Plugin(m) if m.contains("test_panic_on_start")),
        "{err:?}"
    );
    assert!(matches!(
        s.poll_action(),
        Some(Action::Finished(Outcome::Failure(FailureReason::Internal(
            _
        ))))
    ));
    assert_eq!(s.poll_action(), None);
    assert!(s.is_closed());
    assert!(matches!(
        s.handle_datagram(Instant::ZERO, &[1]),
        Err(SessionError::Plugin(_))
    ));
}

#[test]
fn a_library_without_the_entry_point_is_refused() {
    // The C library this test binary runs with certainly has no KMP entry point.
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let libc = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| p.contains("/libc.so") || p.contains("/libc-"))
        .expect("libc in /proc/self/maps");
    match plugin::load(libc) {
        Err(PluginError::MissingSymbol { symbol, .. }) => {
            assert_eq!(symbol, plugin::ENTRY_SYMBOL);
        }
        other => panic!("expected MissingSymbol, got {other:?}"),
    }
    // A file that is not a shared library at all.
    let not_a_lib = std::env::temp_dir().join("kmp-vendor-psk-not-a-library.so");
    std::fs::write(&not_a_lib, b"not an ELF file").unwrap();
    let r = plugin::load(&not_a_lib);
    let _ = std::fs::remove_file(&not_a_lib);
    assert!(matches!(r, Err(PluginError::Open { .. })), "{r:?}");
}

/// A `tracing` subscriber that keeps the messages of `kmp_plugin` events.
struct Capture(std::sync::Mutex<Vec<String>>);

struct MessageVisitor<'a>(&'a mut String);

impl tracing::field::Visit for MessageVisitor<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            *self.0 = format!("{value:?}");
        }
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        if event.metadata().target() == "kmp_plugin" {
            let mut msg = String::new();
            event.record(&mut MessageVisitor(&mut msg));
            self.0.lock().unwrap().push(msg);
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[test]
fn plugin_log_lines_reach_tracing() {
    let capture = Arc::new(Capture(std::sync::Mutex::new(Vec::new())));
    let f = plugin().registration().make_factory(PSK).unwrap();
    tracing::subscriber::with_default(Arc::clone(&capture), || {
        let (i, _) = run(&f, &f);
        assert!(matches!(i.outcome, Some(Outcome::Success(_))));
    });
    let lines = capture.0.lock().unwrap();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("vendor-psk: keys established")),
        "{lines:?}"
    );
}
