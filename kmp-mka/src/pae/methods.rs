//! The EAP methods a PAE offers, as providers that make a fresh method object per conversation.
//!
//! A provider is the seam through which methods are added: EAP-TLS, EAP-PSK and EAP-pwd live
//! here; another method implements [`MethodProvider`] over its [`PeerMethod`] /
//! [`ServerMethod`] types and is pushed into [`super::PaeConfig::methods`] (and named in
//! [`super::config`]'s `methods` list). The order of the list is the order of preference on
//! both sides: the authenticator proposes the first method, the supplicant lists them in its Nak.

use std::sync::Arc;

use eap::method::{PeerMethod, ServerMethod};
use eap::psk::{PskPeer, PskServer, PskStore};
use eap::pwd::{PwdPeer, PwdServer, PwdStore};
use eap::tls::{TlsConfig, TlsPeer, TlsPeerContext, TlsServer, TlsServerContext};
use kmp_api::crypto::Key128;
use kmp_api::session::{SecretBytes, SessionError};

/// Makes fresh method objects for one EAP method, for either side.
pub trait MethodProvider: Send + Sync + core::fmt::Debug {
    /// The name used in the `methods` list of the configuration (`"tls"`, `"psk"`, …).
    fn name(&self) -> &'static str;

    /// A fresh peer (supplicant) method for one conversation.
    fn peer_method(&self) -> Result<Box<dyn PeerMethod>, SessionError>;

    /// A fresh server (authenticator) method for one conversation.
    fn server_method(&self) -> Result<Box<dyn ServerMethod>, SessionError>;
}

/// EAP-TLS (RFC 5216 / RFC 9190) with one configuration for both sides; the OpenSSL contexts
/// are built once and shared by every conversation.
#[derive(Debug)]
pub struct TlsProvider {
    peer: TlsPeerContext,
    server: TlsServerContext,
}

impl TlsProvider {
    /// Contexts for `config` (credentials, anchors, versions, fragment size).
    pub fn new(config: &TlsConfig) -> Result<TlsProvider, SessionError> {
        let err = |e: eap::tls::TlsError| SessionError::Config(format!("802.1X EAP-TLS: {e}"));
        Ok(TlsProvider {
            peer: TlsPeerContext::new(config).map_err(err)?,
            server: TlsServerContext::new(config).map_err(err)?,
        })
    }
}

impl MethodProvider for TlsProvider {
    fn name(&self) -> &'static str {
        "tls"
    }

    fn peer_method(&self) -> Result<Box<dyn PeerMethod>, SessionError> {
        Ok(Box::new(TlsPeer::new(&self.peer)))
    }

    fn server_method(&self) -> Result<Box<dyn ServerMethod>, SessionError> {
        Ok(Box::new(TlsServer::new(&self.server)))
    }
}

/// EAP-PSK (RFC 4764). As a peer it authenticates as `id` with `psk`; as a server it calls
/// itself `id` and finds each peer's PSK in `store`.
pub struct PskProvider {
    id: Vec<u8>,
    psk: Key128,
    store: Arc<dyn PskStore>,
}

impl core::fmt::Debug for PskProvider {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PskProvider")
            .field("id", &String::from_utf8_lossy(&self.id))
            .finish_non_exhaustive()
    }
}

impl PskProvider {
    /// A provider whose server side accepts `psk` for every ID_P (one network-wide PSK).
    pub fn new(id: impl Into<Vec<u8>>, psk: Key128) -> PskProvider {
        let shared = psk.clone();
        PskProvider {
            id: id.into(),
            psk,
            store: Arc::new(move |_: &[u8]| Some(shared.clone())),
        }
    }

    /// A provider whose server side looks peers up in `store` (per-device PSKs).
    pub fn with_store(
        id: impl Into<Vec<u8>>,
        psk: Key128,
        store: Arc<dyn PskStore>,
    ) -> PskProvider {
        PskProvider {
            id: id.into(),
            psk,
            store,
        }
    }
}

impl MethodProvider for PskProvider {
    fn name(&self) -> &'static str {
        "psk"
    }

    fn peer_method(&self) -> Result<Box<dyn PeerMethod>, SessionError> {
        Ok(Box::new(PskPeer::new(self.id.clone(), self.psk.clone())))
    }

    fn server_method(&self) -> Result<Box<dyn ServerMethod>, SessionError> {
        Ok(Box::new(PskServer::new(
            self.id.clone(),
            Arc::clone(&self.store),
        )))
    }
}

/// EAP-pwd (RFC 5931, group 19). As a peer it calls itself `id` in its PWD-ID response and
/// uses `password`; as a server it calls itself `id` in its PWD-ID request and finds each peer's
/// password in `store`, by the identity of the peer's PWD-ID response.
pub struct PwdProvider {
    id: Vec<u8>,
    password: SecretBytes,
    store: Arc<dyn PwdStore>,
    fragment_size: usize,
}

impl core::fmt::Debug for PwdProvider {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PwdProvider")
            .field("id", &String::from_utf8_lossy(&self.id))
            .field("fragment_size", &self.fragment_size)
            .finish_non_exhaustive()
    }
}

impl PwdProvider {
    /// A provider whose server side accepts `password` for every peer identity (one
    /// network-wide password), with the default fragment size.
    pub fn new(id: impl Into<Vec<u8>>, password: SecretBytes) -> PwdProvider {
        let shared = password.clone();
        PwdProvider {
            id: id.into(),
            password,
            store: Arc::new(move |_: &[u8]| Some(shared.clone())),
            fragment_size: eap::pwd::DEFAULT_FRAGMENT_SIZE,
        }
    }

    /// A provider whose server side looks peers up in `store` (per-device passwords).
    pub fn with_store(
        id: impl Into<Vec<u8>>,
        password: SecretBytes,
        store: Arc<dyn PwdStore>,
    ) -> PwdProvider {
        PwdProvider {
            id: id.into(),
            password,
            store,
            fragment_size: eap::pwd::DEFAULT_FRAGMENT_SIZE,
        }
    }

    /// The largest type-data of one EAP-pwd message we send (at least
    /// [`eap::pwd::MIN_FRAGMENT_SIZE`]); longer messages are fragmented.
    pub fn with_fragment_size(mut self, fragment_size: usize) -> Result<PwdProvider, SessionError> {
        if fragment_size < eap::pwd::MIN_FRAGMENT_SIZE {
            return Err(SessionError::Config(format!(
                "802.1X EAP-pwd: fragment size {fragment_size} is below {}",
                eap::pwd::MIN_FRAGMENT_SIZE
            )));
        }
        self.fragment_size = fragment_size;
        Ok(self)
    }
}

fn pwd_err(e: eap::method::MethodError) -> SessionError {
    SessionError::Config(format!("802.1X EAP-pwd: {e}"))
}

impl MethodProvider for PwdProvider {
    fn name(&self) -> &'static str {
        "pwd"
    }

    fn peer_method(&self) -> Result<Box<dyn PeerMethod>, SessionError> {
        Ok(Box::new(
            PwdPeer::with_fragment_size(self.id.clone(), self.password.clone(), self.fragment_size)
                .map_err(pwd_err)?,
        ))
    }

    fn server_method(&self) -> Result<Box<dyn ServerMethod>, SessionError> {
        Ok(Box::new(
            PwdServer::with_fragment_size(
                self.id.clone(),
                Arc::clone(&self.store),
                self.fragment_size,
            )
            .map_err(pwd_err)?,
        ))
    }
}
