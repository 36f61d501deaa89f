//! The plugin side of the ABI: the `extern "C"` shims that
//! [`export_kmp_plugin!`](crate::export_kmp_plugin) instantiates for one KMP. Every shim catches panics and turns them
//! into [`status::PANIC`]; nothing unwinds across the boundary.

#![allow(unsafe_code)]

use core::ffi::c_void;
use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, RwLock};

use super::{LogFn, PluginTableV1, SessionParamsV1, status, tlv};
use crate::addr::ExtendedAddress;
use crate::id::KmpId;
use crate::rng::{RngError, RngHandle, RngSource};
use crate::session::{KmpFactory, KmpSession, Role, SessionContext, SessionError};
use crate::time::Instant;

/// What [`export_kmp_plugin!`](crate::export_kmp_plugin) implements for the exported KMP.
pub trait ExportKmp: 'static {
    /// The KMP ID (with the OUI for 255).
    const KMP_ID: KmpId;
    /// The plugin's name.
    const NAME: &'static str;
    /// Builds the factory from TOML text.
    fn make_factory(config: &str) -> Result<Arc<dyn KmpFactory>, SessionError>;
}

static LOGGER: RwLock<Option<LogFn>> = RwLock::new(None);

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

/// The registered log callback, if any.
pub(super) fn logger() -> Option<LogFn> {
    *LOGGER.read().unwrap_or_else(|p| p.into_inner())
}

fn set_last_error(msg: String) {
    LAST_ERROR.with(|e| *e.borrow_mut() = msg);
}

fn error_status(e: &SessionError) -> i32 {
    match e {
        SessionError::Malformed(_) => status::MALFORMED,
        SessionError::UnexpectedMessage { .. } => status::UNEXPECTED_MESSAGE,
        SessionError::VerificationFailed(_) => status::VERIFICATION_FAILED,
        SessionError::Refused(_) => status::REFUSED,
        SessionError::Finished => status::FINISHED,
        SessionError::Rng(_) => status::RNG,
        SessionError::Crypto(_) => status::CRYPTO,
        SessionError::Config(_) => status::CONFIG,
        _ => status::OTHER,
    }
}

fn result_status(r: Result<(), SessionError>) -> i32 {
    match r {
        Ok(()) => status::OK,
        Err(e) => {
            let code = error_status(&e);
            set_last_error(e.to_string());
            code
        }
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        format!("plugin panicked: {s}")
    } else if let Some(s) = p.downcast_ref::<String>() {
        format!("plugin panicked: {s}")
    } else {
        "plugin panicked".to_owned()
    }
}

/// Runs `f`, turning a panic into [`status::PANIC`].
fn guard(f: impl FnOnce() -> i32) -> i32 {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(s) => s,
        Err(p) => {
            set_last_error(panic_message(&*p));
            status::PANIC
        }
    }
}

/// The RNG of a plugin session: SHA-256 in counter mode over the host's 32-octet seed.
struct SeedRng {
    seed: [u8; 32],
    /// (block counter, current block, octets of the block already used)
    state: Mutex<(u64, [u8; 32], usize)>,
}

impl RngSource for SeedRng {
    fn fill(&self, out: &mut [u8]) -> Result<(), RngError> {
        let mut g = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (counter, block, used) = &mut *g;
        for b in out.iter_mut() {
            if *used == 32 {
                *block = crate::crypto::hmac::sha256_parts(&[&self.seed, &counter.to_be_bytes()]);
                *counter = counter.wrapping_add(1);
                *used = 0;
            }
            *b = block[*used];
            *used += 1;
        }
        Ok(())
    }
}

/// A session as the plugin holds it behind its handle.
struct SessionBox {
    session: Box<dyn KmpSession>,
    /// An encoded action that did not fit the host's buffer.
    pending: Option<Vec<u8>>,
    /// Set once a call panicked.
    poisoned: bool,
}

/// The table for `M`, for a `static` in the vendor crate.
#[allow(clippy::cast_possible_truncation)] // the table is a few hundred octets
pub const fn table<M: ExportKmp>() -> PluginTableV1 {
    let oui = match M::KMP_ID {
        KmpId::VendorSpecific(o) => o.0,
        _ => [0; 3],
    };
    PluginTableV1 {
        abi_version: super::ABI_VERSION,
        struct_size: size_of::<PluginTableV1>() as u32,
        kmp_id: M::KMP_ID.value(),
        oui,
        name_ptr: M::NAME.as_ptr(),
        name_len: M::NAME.len(),
        set_logger,
        last_error,
        factory_new: factory_new::<M>,
        factory_free,
        new_initiator,
        new_responder,
        session_free,
        start,
        handle_datagram,
        handle_timeout,
        handle_link_failure,
        delete,
        poll_timeout,
        poll_action,
        is_closed,
    }
}

extern "C" fn set_logger(logger: Option<LogFn>) {
    let _ = catch_unwind(|| {
        *LOGGER.write().unwrap_or_else(|p| p.into_inner()) = logger;
    });
}

extern "C" fn last_error(buf: *mut u8, cap: usize) -> usize {
    catch_unwind(|| {
        LAST_ERROR.with(|e| {
            let e = e.borrow();
            let n = e.len().min(cap);
            if !buf.is_null() && n > 0 {
                // SAFETY: the caller guarantees `buf` is valid for `cap` writable octets and
                // `n <= cap`; the source is our own string, which cannot overlap it.
                unsafe { core::ptr::copy_nonoverlapping(e.as_ptr(), buf, n) };
            }
            e.len()
        })
    })
    .unwrap_or(0)
}

/// # Safety
/// `ptr` must be null (then `len` must be 0) or valid for reading `len` octets for the call.
unsafe fn slice<'a>(ptr: *const u8, len: usize) -> Option<&'a [u8]> {
    if ptr.is_null() {
        return (len == 0).then_some(&[]);
    }
    // SAFETY: guaranteed by this function's contract.
    Some(unsafe { core::slice::from_raw_parts(ptr, len) })
}

extern "C" fn factory_new<M: ExportKmp>(
    config: *const u8,
    len: usize,
    out: *mut *mut c_void,
) -> i32 {
    guard(|| {
        if out.is_null() {
            return status::INVALID_ARGUMENT;
        }
        // SAFETY: the ABI requires `config` to be valid for `len` octets during the call.
        let Some(bytes) = (unsafe { slice(config, len) }) else {
            return status::INVALID_ARGUMENT;
        };
        let Ok(text) = std::str::from_utf8(bytes) else {
            set_last_error("configuration is not UTF-8".to_owned());
            return status::INVALID_ARGUMENT;
        };
        match M::make_factory(text) {
            Ok(f) => {
                let raw = Box::into_raw(Box::new(f)).cast::<c_void>();
                // SAFETY: `out` is non-null and the ABI requires it to be writable.
                unsafe { out.write(raw) };
                status::OK
            }
            Err(e) => result_status(Err(e)),
        }
    })
}

extern "C" fn factory_free(factory: *mut c_void) {
    let _ = guard(|| {
        if !factory.is_null() {
            // SAFETY: the handle came from `factory_new` (a boxed `Arc<dyn KmpFactory>`) and the
            // host frees it exactly once.
            drop(unsafe { Box::from_raw(factory.cast::<Arc<dyn KmpFactory>>()) });
        }
        status::OK
    });
}

fn new_session(
    factory: *const c_void,
    params: *const SessionParamsV1,
    role: Role,
    first_pdu: Option<(*const u8, usize)>,
    out: *mut *mut c_void,
) -> i32 {
    guard(|| {
        if factory.is_null() || params.is_null() || out.is_null() {
            return status::INVALID_ARGUMENT;
        }
        // SAFETY: a non-null factory handle is a live `Box<Arc<dyn KmpFactory>>` from
        // `factory_new` (ABI contract); we only borrow it.
        let f = unsafe { &*factory.cast::<Arc<dyn KmpFactory>>() };
        // SAFETY: non-null and, by the ABI, pointing to a valid `SessionParamsV1`.
        let p = unsafe { *params };
        let ctx = SessionContext {
            local: ExtendedAddress(p.local),
            peer: ExtendedAddress(p.peer),
            role,
            rng: RngHandle::new(SeedRng {
                seed: p.rng_seed,
                state: Mutex::new((0, [0; 32], 32)),
            }),
            now: Instant::from_micros(p.now_us),
            open_responder_sessions: usize::try_from(p.open_responder_sessions)
                .unwrap_or(usize::MAX),
        };
        let made = match first_pdu {
            None => f.new_initiator(ctx),
            Some((ptr, len)) => {
                // SAFETY: the ABI requires `pdu` to be valid for `len` octets during the call.
                let Some(pdu) = (unsafe { slice(ptr, len) }) else {
                    return status::INVALID_ARGUMENT;
                };
                f.new_responder(ctx, pdu)
            }
        };
        match made {
            Ok(session) => {
                let b = Box::new(SessionBox {
                    session,
                    pending: None,
                    poisoned: false,
                });
                // SAFETY: `out` is non-null and writable by the ABI.
                unsafe { out.write(Box::into_raw(b).cast::<c_void>()) };
                status::OK
            }
            Err(e) => result_status(Err(e)),
        }
    })
}

extern "C" fn new_initiator(
    factory: *const c_void,
    params: *const SessionParamsV1,
    out: *mut *mut c_void,
) -> i32 {
    new_session(factory, params, Role::Initiator, None, out)
}

extern "C" fn new_responder(
    factory: *const c_void,
    params: *const SessionParamsV1,
    pdu: *const u8,
    len: usize,
    out: *mut *mut c_void,
) -> i32 {
    new_session(factory, params, Role::Responder, Some((pdu, len)), out)
}

extern "C" fn session_free(session: *mut c_void) {
    let _ = guard(|| {
        if !session.is_null() {
            // SAFETY: the handle came from `new_session` (a boxed `SessionBox`) and the host
            // frees it exactly once.
            drop(unsafe { Box::from_raw(session.cast::<SessionBox>()) });
        }
        status::OK
    });
}

/// Runs `f` on a live, unpoisoned session; a panic poisons it.
fn with_session(session: *mut c_void, f: impl FnOnce(&mut SessionBox) -> i32) -> i32 {
    if session.is_null() {
        return status::INVALID_ARGUMENT;
    }
    // SAFETY: a non-null session handle is a live `Box<SessionBox>` from `new_session`, used by
    // one thread at a time (ABI contract), so this is the only reference.
    let s = unsafe { &mut *session.cast::<SessionBox>() };
    if s.poisoned {
        set_last_error("session poisoned by an earlier panic".to_owned());
        return status::POISONED;
    }
    let code = guard(|| f(&mut *s));
    if code == status::PANIC {
        s.poisoned = true;
    }
    code
}

extern "C" fn start(session: *mut c_void, now_us: u64) -> i32 {
    with_session(session, |s| {
        result_status(s.session.start(Instant::from_micros(now_us)))
    })
}

extern "C" fn handle_datagram(
    session: *mut c_void,
    now_us: u64,
    pdu: *const u8,
    len: usize,
) -> i32 {
    with_session(session, |s| {
        // SAFETY: the ABI requires `pdu` to be valid for `len` octets during the call.
        let Some(pdu) = (unsafe { slice(pdu, len) }) else {
            return status::INVALID_ARGUMENT;
        };
        result_status(s.session.handle_datagram(Instant::from_micros(now_us), pdu))
    })
}

extern "C" fn handle_timeout(session: *mut c_void, now_us: u64) -> i32 {
    with_session(session, |s| {
        s.session.handle_timeout(Instant::from_micros(now_us));
        status::OK
    })
}

extern "C" fn handle_link_failure(
    session: *mut c_void,
    now_us: u64,
    code: u32,
    detail: u32,
) -> i32 {
    with_session(session, |s| {
        if let Some(st) = tlv::mac_status_from_abi(code, detail) {
            s.session
                .handle_link_failure(Instant::from_micros(now_us), st);
        }
        status::OK
    })
}

extern "C" fn delete(session: *mut c_void, now_us: u64) -> i32 {
    with_session(session, |s| {
        s.session.delete(Instant::from_micros(now_us));
        status::OK
    })
}

extern "C" fn poll_timeout(session: *const c_void) -> u64 {
    let mut out = u64::MAX;
    let _ = with_session(session.cast_mut(), |s| {
        out = s
            .session
            .poll_timeout()
            .map_or(u64::MAX, Instant::as_micros);
        status::OK
    });
    out
}

extern "C" fn poll_action(
    session: *mut c_void,
    buf: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> i32 {
    if out_len.is_null() {
        return status::INVALID_ARGUMENT;
    }
    let mut len = 0usize;
    let code = with_session(session, |s| {
        let encoded = match s.pending.take() {
            Some(e) => e,
            None => match s.session.poll_action() {
                None => return status::OK,
                Some(a) => match tlv::encode_action(&a) {
                    Ok(e) => e,
                    Err(e) => {
                        set_last_error(e.to_string());
                        return status::ENCODING;
                    }
                },
            },
        };
        len = encoded.len();
        if buf.is_null() || cap < encoded.len() {
            s.pending = Some(encoded);
            return status::BUFFER_TOO_SMALL;
        }
        // SAFETY: `buf` is non-null and valid for `cap >= encoded.len()` writable octets (ABI);
        // it cannot overlap our own vector.
        unsafe { core::ptr::copy_nonoverlapping(encoded.as_ptr(), buf, encoded.len()) };
        status::OK
    });
    // SAFETY: checked non-null above; writable by the ABI.
    unsafe {
        out_len.write(if code == status::OK || code == status::BUFFER_TOO_SMALL {
            len
        } else {
            0
        })
    };
    code
}

extern "C" fn is_closed(session: *const c_void) -> i32 {
    let mut closed = 1;
    let _ = with_session(session.cast_mut(), |s| {
        closed = i32::from(s.session.is_closed());
        status::OK
    });
    closed
}

/// Generates the plugin entry point [`ENTRY_SYMBOL`](crate::plugin::ENTRY_SYMBOL) for one KMP.
///
/// Invoke once in a `cdylib` crate:
///
/// ```ignore
/// kmp_api::export_kmp_plugin!(
///     kmp_api::KmpId::VendorSpecific(kmp_api::Oui([0x02, 0x15, 0x09])),
///     "vendor-psk",
///     make_factory
/// );
/// ```
///
/// `make_factory` is a `fn(&str) -> Result<Arc<dyn KmpFactory>, SessionError>` (the same as a
/// [`MakeFactory`](crate::registry::MakeFactory)). The only generated item that needs unsafe
/// code is the unmangled entry point, which carries `#[allow(unsafe_code)]`.
#[macro_export]
macro_rules! export_kmp_plugin {
    ($kmp_id:expr, $name:expr, $make:path $(,)?) => {
        #[doc(hidden)]
        pub struct __KmpPluginExport;

        impl $crate::plugin::export::ExportKmp for __KmpPluginExport {
            const KMP_ID: $crate::KmpId = $kmp_id;
            const NAME: &'static str = $name;
            fn make_factory(
                config: &str,
            ) -> ::core::result::Result<
                ::std::sync::Arc<dyn $crate::KmpFactory>,
                $crate::SessionError,
            > {
                $make(config)
            }
        }

        #[doc(hidden)]
        pub static __KMP_PLUGIN_TABLE: $crate::plugin::PluginTableV1 =
            $crate::plugin::export::table::<__KmpPluginExport>();

        /// The KMP plugin entry point (ABI version 1): returns this plugin's function table.
        #[allow(unsafe_code)]
        #[unsafe(no_mangle)]
        pub extern "C" fn kmp_plugin_entry_v1() -> *const $crate::plugin::PluginTableV1 {
            &__KMP_PLUGIN_TABLE
        }
    };
}
