//! The TLS engines behind EAP-TLS, records in, records out, no socket: [`Engine`] is either
//! OpenSSL's libssl state machine over memory buffers ([`OpensslEngine`], this module) or
//! rustls with OpenSSL's primitives ([`super::rustls_engine`]); [`super::TlsEngine`] picks.

use std::io::{self, Read, Write};

use openssl::ssl::{ErrorCode, Ssl, SslStream, SslVersion};
use openssl::x509::X509VerifyResult;
use zeroize::Zeroizing;

use super::{TlsError, TlsKeys, TlsVersion};
use kmp_api::session::SecretBytes;

/// EAP Type of EAP-TLS, the first octet of Session-Id and the exporter context of RFC 9190.
pub const EAP_TYPE_TLS: u8 = 0x0d;

/// RFC 5216 §2.3: the PRF label of Key_Material (TLS 1.2 and earlier).
pub(crate) const LABEL_TLS12: &str = "client EAP encryption";
/// RFC 9190 §2.3: the exporter label of Key_Material.
pub(crate) const LABEL_KEY_MATERIAL: &str = "EXPORTER_EAP_TLS_Key_Material";
/// RFC 9190 §2.3: the exporter label of Method-Id.
pub(crate) const LABEL_METHOD_ID: &str = "EXPORTER_EAP_TLS_Method-Id";

/// The records OpenSSL reads and writes. Reading an empty input is `WouldBlock`, which OpenSSL
/// reports as `WANT_READ`: "give me the next EAP-TLS message".
#[derive(Debug, Default)]
struct Buffers {
    input: Vec<u8>,
    read: usize,
    output: Vec<u8>,
}

impl Read for Buffers {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let rest = self.input.get(self.read..).unwrap_or_default();
        if rest.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.read += n;
        if self.read == self.input.len() {
            self.input.clear();
            self.read = 0;
        }
        Ok(n)
    }
}

impl Write for Buffers {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What a call into the TLS state machine gave.
#[derive(Debug)]
pub(crate) enum Progress {
    /// Needs the next message from the other side.
    WantRead,
    /// The handshake is complete.
    Complete,
    /// Application data arrived.
    Data(Vec<u8>),
}

pub(crate) struct OpensslEngine {
    stream: SslStream<Buffers>,
}

impl core::fmt::Debug for OpensslEngine {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("OpensslEngine")
            .field("state", &self.stream.ssl().state_string_long())
            .finish()
    }
}

impl OpensslEngine {
    pub(crate) fn new(mut ssl: Ssl, server: bool) -> Result<OpensslEngine, TlsError> {
        if server {
            ssl.set_accept_state();
        } else {
            ssl.set_connect_state();
        }
        let stream = SslStream::new(ssl, Buffers::default()).map_err(lib_err)?;
        Ok(OpensslEngine { stream })
    }

    /// Queues TLS records received from the other side.
    pub(crate) fn feed(&mut self, records: &[u8]) {
        self.stream.get_mut().input.extend_from_slice(records);
    }

    /// Takes the TLS records to send.
    pub(crate) fn take_output(&mut self) -> Vec<u8> {
        core::mem::take(&mut self.stream.get_mut().output)
    }

    /// Advances the handshake.
    pub(crate) fn handshake(&mut self) -> Result<Progress, TlsError> {
        match self.stream.do_handshake() {
            Ok(()) => Ok(Progress::Complete),
            Err(e) if e.code() == ErrorCode::WANT_READ => Ok(Progress::WantRead),
            Err(e) => Err(self.failure(&e)),
        }
    }

    /// Reads application data after the handshake (RFC 9190's success indication).
    pub(crate) fn read_app_data(&mut self) -> Result<Progress, TlsError> {
        let mut buf = [0u8; 64];
        match self.stream.ssl_read(&mut buf) {
            Ok(n) => Ok(Progress::Data(buf.get(..n).unwrap_or_default().to_vec())),
            Err(e) if e.code() == ErrorCode::WANT_READ => Ok(Progress::WantRead),
            Err(e) if e.code() == ErrorCode::ZERO_RETURN => Err(TlsError::Handshake(
                "the other side closed the TLS connection (close_notify)".into(),
            )),
            Err(e) => Err(self.failure(&e)),
        }
    }

    /// Writes application data (RFC 9190's success indication).
    pub(crate) fn write_app_data(&mut self, data: &[u8]) -> Result<(), TlsError> {
        match self.stream.ssl_write(data) {
            Ok(n) if n == data.len() => Ok(()),
            Ok(_) => Err(TlsError::Handshake("short TLS write".into())),
            Err(e) => Err(self.failure(&e)),
        }
    }

    /// Whether any received records have not been consumed.
    pub(crate) fn has_unread_input(&self) -> bool {
        !self.stream.get_ref().input.is_empty()
    }

    fn failure(&self, e: &openssl::ssl::Error) -> TlsError {
        let verify = self.stream.ssl().verify_result();
        if verify == X509VerifyResult::APPLICATION_VERIFICATION {
            return TlsError::PeerIdentity;
        }
        if verify != X509VerifyResult::OK {
            return TlsError::Certificate(verify.error_string().to_owned());
        }
        TlsError::Handshake(e.to_string())
    }

    /// The negotiated protocol version.
    pub(crate) fn version(&self) -> Result<TlsVersion, TlsError> {
        match self.stream.ssl().version2() {
            Some(v) if v == SslVersion::TLS1_2 => Ok(TlsVersion::Tls12),
            Some(v) if v == SslVersion::TLS1_3 => Ok(TlsVersion::Tls13),
            _ => Err(TlsError::Handshake(format!(
                "unexpected protocol version {}",
                self.stream.ssl().version_str()
            ))),
        }
    }

    /// MSK, EMSK and Session-Id of the completed handshake.
    pub(crate) fn export_keys(&self) -> Result<TlsKeys, TlsError> {
        let ssl = self.stream.ssl();
        eap_tls_keys(
            self.version()?,
            &mut |label, context, out| {
                ssl.export_keying_material(out, label, context)
                    .map_err(|e| TlsError::KeyExport(e.to_string()))
            },
            || {
                let (mut c, mut s) = ([0u8; 32], [0u8; 32]);
                if ssl.client_random(&mut c) != 32 || ssl.server_random(&mut s) != 32 {
                    return Err(TlsError::KeyExport("hello randoms unavailable".into()));
                }
                Ok((c, s))
            },
        )
    }
}

/// An engine's keying material exporter: `(label, context, output)`.
pub(crate) type Exporter<'a> =
    dyn FnMut(&str, Option<&[u8]>, &mut [u8]) -> Result<(), TlsError> + 'a;

/// MSK, EMSK and Session-Id of a completed handshake, from the engine's exporter (RFC 5705 /
/// RFC 8446 §7.5) and, for TLS 1.2, its Hello randoms: RFC 5216 §2.3 for TLS 1.2, RFC 9190 §2.3
/// for TLS 1.3.
pub(crate) fn eap_tls_keys(
    version: TlsVersion,
    export: &mut Exporter<'_>,
    hello_randoms: impl FnOnce() -> Result<([u8; 32], [u8; 32]), TlsError>,
) -> Result<TlsKeys, TlsError> {
    let mut key_material = Zeroizing::new([0u8; 128]);
    let mut session_id = Vec::with_capacity(65);
    session_id.push(EAP_TYPE_TLS);
    match version {
        TlsVersion::Tls12 => {
            // Without a context, the RFC 5705 exporter is exactly
            // PRF(master_secret, label, client.random ‖ server.random).
            export(LABEL_TLS12, None, &mut key_material[..])?;
            let (client, server) = hello_randoms()?;
            session_id.extend_from_slice(&client);
            session_id.extend_from_slice(&server);
        }
        TlsVersion::Tls13 => {
            export(
                LABEL_KEY_MATERIAL,
                Some(&[EAP_TYPE_TLS]),
                &mut key_material[..],
            )?;
            let mut method_id = [0u8; 64];
            export(LABEL_METHOD_ID, Some(&[EAP_TYPE_TLS]), &mut method_id)?;
            session_id.extend_from_slice(&method_id);
        }
    }
    Ok(TlsKeys {
        version,
        msk: SecretBytes::from_slice(&key_material[..64]),
        emsk: SecretBytes::from_slice(&key_material[64..]),
        session_id,
    })
}

/// One session's TLS state machine.
#[derive(Debug)]
pub(crate) enum Engine {
    /// OpenSSL's libssl.
    OpenSsl(OpensslEngine),
    /// rustls over OpenSSL's primitives.
    Rustls(Box<super::rustls_engine::RustlsEngine>),
}

macro_rules! delegate {
    ($self:ident, $e:ident => $call:expr) => {
        match $self {
            Engine::OpenSsl($e) => $call,
            Engine::Rustls($e) => $call,
        }
    };
}

impl Engine {
    pub(crate) fn feed(&mut self, records: &[u8]) {
        delegate!(self, e => e.feed(records))
    }

    pub(crate) fn take_output(&mut self) -> Vec<u8> {
        delegate!(self, e => e.take_output())
    }

    pub(crate) fn handshake(&mut self) -> Result<Progress, TlsError> {
        delegate!(self, e => e.handshake())
    }

    pub(crate) fn read_app_data(&mut self) -> Result<Progress, TlsError> {
        delegate!(self, e => e.read_app_data())
    }

    pub(crate) fn write_app_data(&mut self, data: &[u8]) -> Result<(), TlsError> {
        delegate!(self, e => e.write_app_data(data))
    }

    pub(crate) fn has_unread_input(&self) -> bool {
        delegate!(self, e => e.has_unread_input())
    }

    pub(crate) fn version(&self) -> Result<TlsVersion, TlsError> {
        delegate!(self, e => e.version())
    }

    pub(crate) fn export_keys(&self) -> Result<TlsKeys, TlsError> {
        delegate!(self, e => e.export_keys())
    }
}

pub(crate) fn lib_err(e: impl core::fmt::Display) -> TlsError {
    TlsError::Library(e.to_string())
}
