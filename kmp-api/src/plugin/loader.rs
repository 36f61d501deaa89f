//! The host side of the ABI: loading a plugin and adapting its table to [`KmpFactory`] and
//! [`KmpSession`].
//!
//! A loaded library is never unloaded: the `Library` is leaked on purpose. Its code may still
//! run after the last factory is gone (a session handle freed late, a log callback in flight,
//! thread-local destructors registered by the plugin's Rust runtime), and unloading code that
//! can still be called is undefined behaviour. A process loads each plugin once at startup, so
//! the leak is bounded.

#![allow(unsafe_code)]

use core::ffi::c_void;
use std::collections::VecDeque;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{
    ABI_VERSION, ENTRY_SYMBOL, EntryFn, PluginHeader, PluginTableV1, SessionParamsV1, status, tlv,
};
use crate::addr::ExtendedAddress;
use crate::crypto::CryptoError;
use crate::id::{KmpId, Oui};
use crate::primitives::MacStatus;
use crate::registry::{DynamicMaker, KmpRegistration, Maker};
use crate::rng::RngError;
use crate::session::{
    Action, FailureReason, KmpFactory, KmpSession, Outcome, Role, SessionContext, SessionError,
};
use crate::time::Instant;

/// Error loading a plugin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PluginError {
    /// The file could not be loaded as a shared library.
    #[error("cannot load plugin {path}: {message}")]
    Open {
        /// The file.
        path: PathBuf,
        /// The loader's message.
        message: String,
    },
    /// The library does not export the entry point.
    #[error("{path} is not a KMP plugin: no symbol {symbol} ({message})")]
    MissingSymbol {
        /// The file.
        path: PathBuf,
        /// The symbol looked for.
        symbol: &'static str,
        /// The loader's message.
        message: String,
    },
    /// The entry point returned a null table.
    #[error("plugin entry point returned no table")]
    NullTable,
    /// The plugin speaks another ABI version.
    #[error("plugin ABI version {found}, this host speaks version {expected}")]
    AbiVersion {
        /// The plugin's version.
        found: u32,
        /// Ours.
        expected: u32,
    },
    /// The table has another size than this host's table of the same version.
    #[error("plugin table is {found} octets, this host expects {expected}")]
    StructSize {
        /// The plugin's size.
        found: u32,
        /// Ours.
        expected: u32,
    },
    /// The name is not UTF-8.
    #[error("plugin name is not UTF-8")]
    BadName,
}

/// Checks the version and size a plugin's table starts with.
pub fn check_abi_header(header: PluginHeader) -> Result<(), PluginError> {
    if header.abi_version != ABI_VERSION {
        return Err(PluginError::AbiVersion {
            found: header.abi_version,
            expected: ABI_VERSION,
        });
    }
    let expected = u32::try_from(size_of::<PluginTableV1>()).unwrap_or(u32::MAX);
    if header.struct_size != expected {
        return Err(PluginError::StructSize {
            found: header.struct_size,
            expected,
        });
    }
    Ok(())
}

/// A plugin that is loaded for the rest of the process.
pub struct LoadedPlugin {
    kmp_id: KmpId,
    name: &'static str,
    path: PathBuf,
    table: &'static PluginTableV1,
}

impl fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("kmp_id", &self.kmp_id)
            .field("name", &self.name)
            .field("path", &self.path)
            .finish()
    }
}

extern "C" fn host_log(level: u32, msg: *const u8, len: usize) {
    let _ = std::panic::catch_unwind(|| {
        if msg.is_null() {
            return;
        }
        // SAFETY: the ABI requires `msg` to be valid for `len` octets during the call.
        let bytes = unsafe { core::slice::from_raw_parts(msg, len) };
        super::emit_tracing(level, &String::from_utf8_lossy(bytes));
    });
}

/// Loads the plugin at `path`, checks its ABI and registers the host's log callback. The
/// library stays loaded until the process exits.
pub fn load(path: impl AsRef<Path>) -> Result<&'static LoadedPlugin, PluginError> {
    let path = path.as_ref().to_path_buf();
    // SAFETY: loading a library runs its initialisers; loading a plugin means trusting its code,
    // which is the operator's decision (the path comes from configuration).
    let lib = unsafe { libloading::Library::new(&path) }.map_err(|e| PluginError::Open {
        path: path.clone(),
        message: e.to_string(),
    })?;
    // Never unloaded (see the module documentation).
    let lib: &'static libloading::Library = Box::leak(Box::new(lib));
    // SAFETY: the symbol is declared by the ABI with exactly this type.
    let entry = unsafe { lib.get::<EntryFn>(ENTRY_SYMBOL.as_bytes()) }.map_err(|e| {
        PluginError::MissingSymbol {
            path: path.clone(),
            symbol: ENTRY_SYMBOL,
            message: e.to_string(),
        }
    })?;
    let ptr = entry();
    if ptr.is_null() {
        return Err(PluginError::NullTable);
    }
    // SAFETY: every table version starts with `PluginHeader`; the entry point returns a pointer
    // to a static table that lives as long as the (never unloaded) library.
    let header = unsafe { *ptr.cast::<PluginHeader>() };
    check_abi_header(header)?;
    // SAFETY: version and size match ours, so the pointer is to a `PluginTableV1` in static
    // memory of a library that is never unloaded.
    let table: &'static PluginTableV1 = unsafe { &*ptr };
    // SAFETY: the ABI says `name_ptr`/`name_len` describe static octets of the plugin.
    let name_bytes = unsafe { core::slice::from_raw_parts(table.name_ptr, table.name_len) };
    let name = std::str::from_utf8(name_bytes).map_err(|_| PluginError::BadName)?;
    let kmp_id = if table.kmp_id == 255 {
        KmpId::VendorSpecific(Oui(table.oui))
    } else {
        KmpId::from_value(table.kmp_id).unwrap_or(KmpId::Reserved(table.kmp_id))
    };
    (table.set_logger)(Some(host_log));
    tracing::info!(%kmp_id, name, path = %path.display(), "loaded KMP plugin");
    Ok(Box::leak(Box::new(LoadedPlugin {
        kmp_id,
        name,
        path,
        table,
    })))
}

impl LoadedPlugin {
    /// The KMP ID the plugin serves.
    pub fn kmp_id(&self) -> KmpId {
        self.kmp_id
    }

    /// The plugin's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Where it was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A registration for [`Registry::register`](crate::Registry::register).
    pub fn registration(&'static self) -> KmpRegistration {
        KmpRegistration {
            kmp_id: self.kmp_id,
            name: self.name,
            make: Maker::Dynamic(self),
        }
    }

    fn last_error(&self) -> String {
        let mut buf = vec![0u8; 256];
        let n = (self.table.last_error)(buf.as_mut_ptr(), buf.len());
        buf.truncate(n.min(buf.len()));
        String::from_utf8_lossy(&buf).into_owned()
    }

    fn error(&self, code: i32) -> SessionError {
        let msg = self.last_error();
        match code {
            status::MALFORMED => SessionError::Malformed(msg),
            status::UNEXPECTED_MESSAGE => SessionError::UnexpectedMessage {
                expected: "(see plugin)",
                got: msg,
            },
            status::VERIFICATION_FAILED => SessionError::VerificationFailed("plugin verification"),
            status::REFUSED => SessionError::Refused(msg),
            status::FINISHED => SessionError::Finished,
            status::RNG => SessionError::Rng(RngError::Failed(msg)),
            status::CRYPTO => SessionError::Crypto(CryptoError::Library(msg)),
            status::CONFIG => SessionError::Config(msg),
            other => SessionError::Plugin(format!("status {other}: {msg}")),
        }
    }
}

impl DynamicMaker for LoadedPlugin {
    fn make(&'static self, config: &str) -> Result<Arc<dyn KmpFactory>, SessionError> {
        let mut handle: *mut c_void = core::ptr::null_mut();
        let code = (self.table.factory_new)(config.as_ptr(), config.len(), &mut handle);
        if code != status::OK {
            return Err(self.error(code));
        }
        if handle.is_null() {
            return Err(SessionError::Plugin(
                "plugin returned a null factory".into(),
            ));
        }
        Ok(Arc::new(PluginFactory {
            plugin: self,
            handle,
        }))
    }
}

/// A plugin factory handle.
struct PluginFactory {
    plugin: &'static LoadedPlugin,
    handle: *mut c_void,
}

// SAFETY: the ABI lets a factory handle be used from several threads at once (the exporting
// side wraps an `Arc<dyn KmpFactory>`, which is `Send + Sync`).
unsafe impl Send for PluginFactory {}
// SAFETY: as above.
unsafe impl Sync for PluginFactory {}

impl Drop for PluginFactory {
    fn drop(&mut self) {
        (self.plugin.table.factory_free)(self.handle);
    }
}

impl PluginFactory {
    fn session(
        &self,
        ctx: SessionContext,
        first_pdu: Option<&[u8]>,
    ) -> Result<Box<dyn KmpSession>, SessionError> {
        let params = SessionParamsV1 {
            local: ctx.local.0,
            peer: ctx.peer.0,
            open_responder_sessions: u64::try_from(ctx.open_responder_sessions).unwrap_or(u64::MAX),
            now_us: ctx.now.as_micros(),
            rng_seed: ctx.rng.array()?,
        };
        let t = self.plugin.table;
        let mut handle: *mut c_void = core::ptr::null_mut();
        let code = match first_pdu {
            None => (t.new_initiator)(self.handle, &params, &mut handle),
            Some(p) => (t.new_responder)(self.handle, &params, p.as_ptr(), p.len(), &mut handle),
        };
        if code != status::OK {
            return Err(self.plugin.error(code));
        }
        if handle.is_null() {
            return Err(SessionError::Plugin(
                "plugin returned a null session".into(),
            ));
        }
        Ok(Box::new(PluginSession {
            plugin: self.plugin,
            handle,
            role: ctx.role,
            peer: ctx.peer,
            buf: vec![0; 512],
            failed: None,
            queue: VecDeque::new(),
        }))
    }
}

impl KmpFactory for PluginFactory {
    fn kmp_id(&self) -> KmpId {
        self.plugin.kmp_id
    }

    fn new_initiator(&self, ctx: SessionContext) -> Result<Box<dyn KmpSession>, SessionError> {
        self.session(ctx, None)
    }

    fn new_responder(
        &self,
        ctx: SessionContext,
        first_pdu: &[u8],
    ) -> Result<Box<dyn KmpSession>, SessionError> {
        self.session(ctx, Some(first_pdu))
    }
}

/// A plugin session handle.
struct PluginSession {
    plugin: &'static LoadedPlugin,
    handle: *mut c_void,
    role: Role,
    peer: ExtendedAddress,
    buf: Vec<u8>,
    /// Set when the plugin panicked or sent an action we cannot decode: the session is dead.
    failed: Option<String>,
    /// Actions the adapter made itself (the failure report).
    queue: VecDeque<Action>,
}

// SAFETY: the ABI lets a session handle move between threads as long as one thread uses it at
// a time, which `&mut self` / `Send` (not `Sync`) guarantee.
unsafe impl Send for PluginSession {}

impl Drop for PluginSession {
    fn drop(&mut self) {
        (self.plugin.table.session_free)(self.handle);
    }
}

impl PluginSession {
    /// Marks the session dead and queues the KMP-FINISHED failure, once.
    fn fail(&mut self, why: String) {
        if self.failed.is_none() {
            tracing::error!(plugin = self.plugin.name, "{why}");
            self.queue
                .push_back(Action::Finished(Outcome::Failure(FailureReason::Internal(
                    why.clone(),
                ))));
            self.failed = Some(why);
        }
    }

    /// Turns a status into a result; a panic kills the session.
    fn check(&mut self, code: i32) -> Result<(), SessionError> {
        match code {
            status::OK => Ok(()),
            status::PANIC | status::POISONED => {
                let msg = self.plugin.last_error();
                self.fail(msg.clone());
                Err(SessionError::Plugin(msg))
            }
            other => Err(self.plugin.error(other)),
        }
    }
}

impl KmpSession for PluginSession {
    fn kmp_id(&self) -> KmpId {
        self.plugin.kmp_id
    }

    fn role(&self) -> Role {
        self.role
    }

    fn peer(&self) -> ExtendedAddress {
        self.peer
    }

    fn start(&mut self, now: Instant) -> Result<(), SessionError> {
        if let Some(why) = &self.failed {
            return Err(SessionError::Plugin(why.clone()));
        }
        let code = (self.plugin.table.start)(self.handle, now.as_micros());
        self.check(code)
    }

    fn handle_datagram(&mut self, now: Instant, pdu: &[u8]) -> Result<(), SessionError> {
        if let Some(why) = &self.failed {
            return Err(SessionError::Plugin(why.clone()));
        }
        let code = (self.plugin.table.handle_datagram)(
            self.handle,
            now.as_micros(),
            pdu.as_ptr(),
            pdu.len(),
        );
        self.check(code)
    }

    fn handle_timeout(&mut self, now: Instant) {
        if self.failed.is_none() {
            let code = (self.plugin.table.handle_timeout)(self.handle, now.as_micros());
            let _ = self.check(code);
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        if self.failed.is_some() {
            return None;
        }
        let t = (self.plugin.table.poll_timeout)(self.handle);
        (t != u64::MAX).then(|| Instant::from_micros(t))
    }

    fn poll_action(&mut self) -> Option<Action> {
        if let Some(a) = self.queue.pop_front() {
            return Some(a);
        }
        if self.failed.is_some() {
            return None;
        }
        loop {
            let mut len = 0usize;
            let code = (self.plugin.table.poll_action)(
                self.handle,
                self.buf.as_mut_ptr(),
                self.buf.len(),
                &mut len,
            );
            match code {
                status::OK if len == 0 => return None,
                status::OK => {
                    let Some(encoded) = self.buf.get(..len) else {
                        self.fail(format!("plugin reported {len} octets in a smaller buffer"));
                        return self.queue.pop_front();
                    };
                    match tlv::decode_action(encoded) {
                        Ok(a) => return Some(a),
                        Err(e) => {
                            self.fail(format!("plugin sent a malformed action: {e}"));
                            return self.queue.pop_front();
                        }
                    }
                }
                status::BUFFER_TOO_SMALL if len > self.buf.len() => self.buf.resize(len, 0),
                other => {
                    let msg = self.plugin.last_error();
                    self.fail(format!("plugin poll_action failed (status {other}): {msg}"));
                    return self.queue.pop_front();
                }
            }
        }
    }

    fn handle_link_failure(&mut self, now: Instant, status: MacStatus) {
        if self.failed.is_none() {
            let (code, detail) = tlv::mac_status_to_abi(status);
            let code =
                (self.plugin.table.handle_link_failure)(self.handle, now.as_micros(), code, detail);
            let _ = self.check(code);
        }
    }

    fn delete(&mut self, now: Instant) {
        if self.failed.is_none() {
            let code = (self.plugin.table.delete)(self.handle, now.as_micros());
            let _ = self.check(code);
        }
    }

    fn is_closed(&self) -> bool {
        if self.failed.is_some() {
            return self.queue.is_empty();
        }
        (self.plugin.table.is_closed)(self.handle) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn table_layout_is_pinned() {
        // Changing the layout is an ABI break: bump ABI_VERSION and the entry symbol.
        assert_eq!(size_of::<PluginTableV1>(), 152);
        assert_eq!(core::mem::offset_of!(PluginTableV1, kmp_id), 8);
        assert_eq!(core::mem::offset_of!(PluginTableV1, oui), 9);
        assert_eq!(core::mem::offset_of!(PluginTableV1, name_ptr), 16);
        assert_eq!(core::mem::offset_of!(PluginTableV1, set_logger), 32);
        assert_eq!(core::mem::offset_of!(PluginTableV1, is_closed), 144);
        assert_eq!(size_of::<SessionParamsV1>(), 64);
    }

    #[test]
    fn abi_header_checks() {
        let size = u32::try_from(size_of::<PluginTableV1>()).unwrap();
        assert_eq!(
            check_abi_header(PluginHeader {
                abi_version: ABI_VERSION,
                struct_size: size
            }),
            Ok(())
        );
        assert_eq!(
            check_abi_header(PluginHeader {
                abi_version: 2,
                struct_size: size
            }),
            Err(PluginError::AbiVersion {
                found: 2,
                expected: ABI_VERSION
            })
        );
        assert_eq!(
            check_abi_header(PluginHeader {
                abi_version: ABI_VERSION,
                struct_size: size - 8
            }),
            Err(PluginError::StructSize {
                found: size - 8,
                expected: size
            })
        );
        let e = PluginError::AbiVersion {
            found: 2,
            expected: 1,
        };
        assert_eq!(
            e.to_string(),
            "plugin ABI version 2, this host speaks version 1"
        );
    }
}
