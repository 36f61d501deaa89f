//! Dynamically loaded KMPs: a versioned C ABI, the macro that exports a Rust KMP through it and
//! the loader that turns a shared library back into a [`KmpFactory`](crate::KmpFactory).
//!
//! # The ABI (version 1)
//!
//! A plugin is a shared library that exports one symbol, [`ENTRY_SYMBOL`]
//! (`kmp_plugin_entry_v1`), an `extern "C" fn() -> *const PluginTableV1`. The table is a static
//! `#[repr(C)]` [`PluginTableV1`]: it starts with the ABI version and its own size (checked by
//! the loader before anything else is read), then the KMP ID octet and OUI, the plugin's name and
//! function pointers that mirror the session contract. Only byte slices (pointer + length),
//! integers and opaque handles cross: time is `u64` microseconds, "no deadline" is `u64::MAX`,
//! actions are encoded as TLVs ([`tlv`]), and every function returns a status (see
//! [`status`]) instead of unwinding. The message of the last failure on the calling thread is
//! available through `last_error`.
//!
//! Randomness: the host does not share its RNG object. For every new session it passes 32 random
//! octets drawn from the session context's RNG ([`SessionParamsV1::rng_seed`]); the plugin
//! expands them with SHA-256 in counter mode. With the OS RNG on the host the plugin's stream is
//! as good as a 256-bit-seeded CSPRNG; with a seeded host RNG a simulation still replays exactly.
//!
//! Logging: the host registers a callback with `set_logger`; plugin code logs with [`log`],
//! which goes to that callback inside a plugin and straight to `tracing` when the same crate is
//! linked statically. The loader's callback emits the lines as `tracing` events with the target
//! `kmp_plugin`.
//!
//! A vendor writes an ordinary [`KmpFactory`](crate::KmpFactory) and
//! [`KmpSession`](crate::KmpSession), builds a `cdylib` and invokes
//! [`export_kmp_plugin!`](crate::export_kmp_plugin) once. The host calls [`load`] and registers
//! the result with [`Registry::register`](crate::Registry::register).
//!
//! Unsafe code is allowed only in `export.rs` and `loader.rs` (and on the one `unsafe impl`
//! here); the TLV codec is safe code.

use core::ffi::c_void;

pub mod export;
mod loader;
pub mod tlv;

pub use loader::{LoadedPlugin, PluginError, check_abi_header, load};

/// The ABI version this crate speaks.
pub const ABI_VERSION: u32 = 1;

/// The name of the entry point every plugin exports.
pub const ENTRY_SYMBOL: &str = "kmp_plugin_entry_v1";

/// Status codes returned by the plugin functions. Codes 1–9 are
/// [`SessionError`](crate::SessionError) kinds; the message is available through `last_error`.
pub mod status {
    /// Success.
    pub const OK: i32 = 0;
    /// `SessionError::Malformed`.
    pub const MALFORMED: i32 = 1;
    /// `SessionError::UnexpectedMessage`.
    pub const UNEXPECTED_MESSAGE: i32 = 2;
    /// `SessionError::VerificationFailed`.
    pub const VERIFICATION_FAILED: i32 = 3;
    /// `SessionError::Refused`.
    pub const REFUSED: i32 = 4;
    /// `SessionError::Finished`.
    pub const FINISHED: i32 = 5;
    /// `SessionError::Rng`.
    pub const RNG: i32 = 6;
    /// `SessionError::Crypto`.
    pub const CRYPTO: i32 = 7;
    /// `SessionError::Config`.
    pub const CONFIG: i32 = 8;
    /// Any other session error.
    pub const OTHER: i32 = 9;
    /// The plugin panicked; the panic was caught at the boundary. A session that panicked is
    /// poisoned: every later call returns [`POISONED`].
    pub const PANIC: i32 = 20;
    /// `poll_action`: the buffer is too small; `*out_len` holds the length needed and the action
    /// is kept for the next call.
    pub const BUFFER_TOO_SMALL: i32 = 21;
    /// A required pointer was null, or text was not UTF-8.
    pub const INVALID_ARGUMENT: i32 = 22;
    /// The session panicked earlier and takes no more calls.
    pub const POISONED: i32 = 23;
    /// The session produced an action that ABI v1 cannot encode; the action was dropped.
    pub const ENCODING: i32 = 24;
}

/// Log levels of the log callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum LogLevel {
    /// 1.
    Error = 1,
    /// 2.
    Warn = 2,
    /// 3.
    Info = 3,
    /// 4.
    Debug = 4,
    /// 5.
    Trace = 5,
}

/// The host's log callback: level (a [`LogLevel`] value), UTF-8 message pointer and length. The
/// message is only valid during the call.
pub type LogFn = extern "C" fn(level: u32, msg: *const u8, len: usize);

/// The type of the entry point.
pub type EntryFn = extern "C" fn() -> *const PluginTableV1;

/// What a new session needs, by value (ABI v1).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct SessionParamsV1 {
    /// Our EUI-64 (the octets of [`ExtendedAddress`](crate::ExtendedAddress)).
    pub local: [u8; 8],
    /// The peer's EUI-64.
    pub peer: [u8; 8],
    /// Responder sessions of this KMP open now.
    pub open_responder_sessions: u64,
    /// Creation time, microseconds.
    pub now_us: u64,
    /// 32 random octets that seed the session's RNG inside the plugin.
    pub rng_seed: [u8; 32],
}

/// The first two fields of every table version; the loader reads only these before checking.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct PluginHeader {
    /// [`ABI_VERSION`] of the plugin.
    pub abi_version: u32,
    /// `size_of` the plugin's table.
    pub struct_size: u32,
}

/// The function table of ABI version 1. On 64-bit targets it is 152 octets: the version and
/// size (offsets 0, 4), the KMP ID (8), the OUI (9–11), padding, the name pointer (16) and
/// length (24), then the 15 function pointers in declaration order from offset 32.
///
/// Handles are opaque pointers owned by the plugin; the
/// host frees them with `factory_free` / `session_free` exactly once. Sessions do not borrow
/// their factory: a factory may be freed while its sessions live. Handles may move between
/// threads; a session handle is used by one thread at a time, a factory handle by many.
#[repr(C)]
#[derive(Debug)]
pub struct PluginTableV1 {
    /// [`ABI_VERSION`].
    pub abi_version: u32,
    /// `size_of::<PluginTableV1>()` as compiled into the plugin.
    pub struct_size: u32,
    /// The KMP ID octet (255 for vendor-specific).
    pub kmp_id: u8,
    /// The OUI after KMP ID 255 (zero otherwise).
    pub oui: [u8; 3],
    /// The plugin's name (UTF-8, static).
    pub name_ptr: *const u8,
    /// Length of the name.
    pub name_len: usize,
    /// Registers (or, with `None`, removes) the log callback.
    pub set_logger: extern "C" fn(logger: Option<LogFn>),
    /// Copies the message of the last failure on this thread into `buf` (truncated to `cap`)
    /// and returns its full length.
    pub last_error: extern "C" fn(buf: *mut u8, cap: usize) -> usize,
    /// Builds a factory from TOML text; writes the handle to `*out`.
    pub factory_new: extern "C" fn(config: *const u8, len: usize, out: *mut *mut c_void) -> i32,
    /// Frees a factory.
    pub factory_free: extern "C" fn(factory: *mut c_void),
    /// KMP-CREATE.request: a new initiator session.
    pub new_initiator: extern "C" fn(
        factory: *const c_void,
        params: *const SessionParamsV1,
        out: *mut *mut c_void,
    ) -> i32,
    /// KMP-CREATE.indication: a new responder session for a first PDU (not processed yet).
    pub new_responder: extern "C" fn(
        factory: *const c_void,
        params: *const SessionParamsV1,
        pdu: *const u8,
        len: usize,
        out: *mut *mut c_void,
    ) -> i32,
    /// Frees a session.
    pub session_free: extern "C" fn(session: *mut c_void),
    /// `KmpSession::start`.
    pub start: extern "C" fn(session: *mut c_void, now_us: u64) -> i32,
    /// `KmpSession::handle_datagram`.
    pub handle_datagram:
        extern "C" fn(session: *mut c_void, now_us: u64, pdu: *const u8, len: usize) -> i32,
    /// `KmpSession::handle_timeout`.
    pub handle_timeout: extern "C" fn(session: *mut c_void, now_us: u64) -> i32,
    /// `KmpSession::handle_link_failure`: the MAC status as `(code, detail)`, see
    /// [`tlv::mac_status_to_abi`]. An unknown code is ignored (`OK`).
    pub handle_link_failure:
        extern "C" fn(session: *mut c_void, now_us: u64, status: u32, detail: u32) -> i32,
    /// `KmpSession::delete`.
    pub delete: extern "C" fn(session: *mut c_void, now_us: u64) -> i32,
    /// `KmpSession::poll_timeout`: microseconds, `u64::MAX` for none (also after a panic).
    pub poll_timeout: extern "C" fn(session: *const c_void) -> u64,
    /// `KmpSession::poll_action`: writes one action TLV into `buf`. `OK` with `*out_len == 0`
    /// means no action; `BUFFER_TOO_SMALL` sets `*out_len` to the length needed.
    pub poll_action:
        extern "C" fn(session: *mut c_void, buf: *mut u8, cap: usize, out_len: *mut usize) -> i32,
    /// `KmpSession::is_closed`: 1 closed, 0 open (a poisoned session is closed).
    pub is_closed: extern "C" fn(session: *const c_void) -> i32,
}

#[allow(unsafe_code)]
// SAFETY: the table is immutable after construction; `name_ptr` points to a `&'static str`
// and the function pointers are plain code addresses, so sharing it between threads is sound.
unsafe impl Sync for PluginTableV1 {}

/// Logs one line from plugin code: to the host's callback inside a loaded plugin, to `tracing`
/// otherwise.
pub fn log(level: LogLevel, msg: &str) {
    if let Some(cb) = export::logger() {
        cb(level as u32, msg.as_ptr(), msg.len());
    } else {
        emit_tracing(level as u32, msg);
    }
}

/// Emits one plugin log line as a `tracing` event with the target `kmp_plugin`.
fn emit_tracing(level: u32, msg: &str) {
    match level {
        1 => tracing::error!(target: "kmp_plugin", "{msg}"),
        2 => tracing::warn!(target: "kmp_plugin", "{msg}"),
        3 => tracing::info!(target: "kmp_plugin", "{msg}"),
        4 => tracing::debug!(target: "kmp_plugin", "{msg}"),
        _ => tracing::trace!(target: "kmp_plugin", "{msg}"),
    }
}
