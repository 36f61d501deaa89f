//! The rustls engine: rustls's TLS 1.2/1.3 state machine over memory buffers, with every
//! cryptographic operation in OpenSSL ([`super::provider`]), certificate paths checked by
//! webpki against the configured anchors only.

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::SystemTime;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, Resumption};
use rustls::pki_types::{CertificateDer, ServerName, TrustAnchor, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{NoServerSessionStorage, ResolvesServerCert};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::time_provider::TimeProvider;
use rustls::{
    CertificateError, ClientConfig, ClientConnection, Connection, DigitallySignedStruct,
    DistinguishedName, Error, OtherError, ProtocolVersion, ServerConfig, ServerConnection,
    SignatureScheme,
};
use zeroize::Zeroizing;

use super::engine::{Progress, eap_tls_keys};
use super::provider::{self, OurSigningKey, SUPPORTED_ALGORITHMS};
use super::{KeyLog, TlsConfig, TlsError, TlsKeys, TlsVersion, TlsVersions, names};

/// What a configured side shares between its sessions.
#[derive(Clone)]
pub(crate) struct RustlsSide {
    anchors: Arc<Vec<TrustAnchor<'static>>>,
    versions: &'static [&'static rustls::SupportedProtocolVersion],
    time: Arc<dyn TimeProvider>,
    key_log: Option<Arc<dyn rustls::KeyLog>>,
    certified: Option<Arc<CertifiedKey>>,
    /// The prebuilt configuration for the configured expected name.
    default_name: Option<String>,
    server: Option<Arc<ServerConfig>>,
    client: Option<Arc<ClientConfig>>,
}

impl core::fmt::Debug for RustlsSide {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RustlsSide")
            .field("anchors", &self.anchors.len())
            .field("default_name", &self.default_name)
            .finish_non_exhaustive()
    }
}

/// A fixed validation time (a simulation on virtual time), or the system clock.
#[derive(Debug)]
struct Clock(Option<SystemTime>);

impl TimeProvider for Clock {
    fn current_time(&self) -> Option<UnixTime> {
        let t = self.0.unwrap_or_else(SystemTime::now);
        Some(match t.duration_since(SystemTime::UNIX_EPOCH) {
            Ok(d) => UnixTime::since_unix_epoch(d),
            // Before 1970: nothing validates.
            Err(_) => UnixTime::since_unix_epoch(core::time::Duration::ZERO),
        })
    }
}

/// Our [`KeyLog`] behind rustls's interface, in the NSS key log format.
struct NssKeyLog(KeyLog);

impl core::fmt::Debug for NssKeyLog {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("NssKeyLog")
    }
}

impl rustls::KeyLog for NssKeyLog {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        let secret = Zeroizing::new(hex(secret));
        (self.0)(&format!(
            "{label} {} {}",
            hex(client_random),
            secret.as_str()
        ));
    }
}

fn hex(bytes: &[u8]) -> String {
    use core::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

impl RustlsSide {
    pub(crate) fn new(config: &TlsConfig, server: bool) -> Result<RustlsSide, TlsError> {
        let mut anchors = Vec::with_capacity(config.trust_anchors.len());
        for a in &config.trust_anchors {
            let der = CertificateDer::from(a.der());
            let anchor = webpki::anchor_from_trusted_cert(&der)
                .map_err(|e| TlsError::Config(format!("trust anchor: {e}")))?;
            anchors.push(anchor.to_owned());
        }
        let certified = match &config.credentials {
            Some(creds) => {
                let chain: Vec<CertificateDer<'static>> = creds
                    .chain
                    .iter()
                    .map(|c| CertificateDer::from(c.der().to_vec()))
                    .collect();
                let key =
                    OurSigningKey::new(kmp_api::crypto::sig::SigningKey::from(creds.key.clone()))
                        .map_err(|e| TlsError::Config(format!("private key: {e}")))?;
                Some(Arc::new(CertifiedKey::new(chain, Arc::new(key))))
            }
            None if server => {
                return Err(TlsError::Config(
                    "the server needs a certificate and key".into(),
                ));
            }
            None => None,
        };
        static TLS12: [&rustls::SupportedProtocolVersion; 1] = [&rustls::version::TLS12];
        static TLS13: [&rustls::SupportedProtocolVersion; 1] = [&rustls::version::TLS13];
        static BOTH: [&rustls::SupportedProtocolVersion; 2] =
            [&rustls::version::TLS13, &rustls::version::TLS12];
        let versions: &'static [&'static rustls::SupportedProtocolVersion] = match config.versions {
            TlsVersions::Tls12 => &TLS12,
            TlsVersions::Tls13 => &TLS13,
            TlsVersions::Both => &BOTH,
        };
        let mut side = RustlsSide {
            anchors: Arc::new(anchors),
            versions,
            time: Arc::new(Clock(config.validation_time)),
            key_log: config
                .key_log
                .as_ref()
                .map(|l| Arc::new(NssKeyLog(Arc::clone(l))) as Arc<dyn rustls::KeyLog>),
            certified,
            default_name: config.expected_peer_name.clone(),
            server: None,
            client: None,
        };
        if server {
            side.server = Some(side.server_config(config.expected_peer_name.clone())?);
        } else {
            side.client = Some(side.client_config(config.expected_peer_name.clone())?);
        }
        Ok(side)
    }

    fn verifier(&self, expected: Option<String>) -> Arc<PeerVerifier> {
        Arc::new(PeerVerifier {
            anchors: Arc::clone(&self.anchors),
            expected,
        })
    }

    fn server_config(&self, expected: Option<String>) -> Result<Arc<ServerConfig>, TlsError> {
        let certified = self
            .certified
            .as_ref()
            .ok_or_else(|| TlsError::Config("the server needs a certificate and key".into()))?;
        let mut c =
            ServerConfig::builder_with_details(provider::provider(), Arc::clone(&self.time))
                .with_protocol_versions(self.versions)
                .map_err(|e| TlsError::Config(e.to_string()))?
                .with_client_cert_verifier(self.verifier(expected))
                .with_cert_resolver(Arc::new(SingleCertAndKey::from(Arc::clone(certified)))
                    as Arc<dyn ResolvesServerCert>);
        // Every authentication is a full handshake with fresh keys: no tickets, no cache.
        c.send_tls13_tickets = 0;
        c.session_storage = Arc::new(NoServerSessionStorage {});
        if let Some(log) = &self.key_log {
            c.key_log = Arc::clone(log);
        }
        Ok(Arc::new(c))
    }

    fn client_config(&self, expected: Option<String>) -> Result<Arc<ClientConfig>, TlsError> {
        let b = ClientConfig::builder_with_details(provider::provider(), Arc::clone(&self.time))
            .with_protocol_versions(self.versions)
            .map_err(|e| TlsError::Config(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(self.verifier(expected));
        let mut c = match &self.certified {
            Some(ck) => b.with_client_cert_resolver(Arc::new(ClientCert(Arc::clone(ck)))),
            None => b.with_no_client_auth(),
        };
        c.resumption = Resumption::disabled();
        // The server is named by its certificate (expected_peer_name), not by SNI.
        c.enable_sni = false;
        if let Some(log) = &self.key_log {
            c.key_log = Arc::clone(log);
        }
        Ok(Arc::new(c))
    }

    /// A connection for one session; `expected` overrides the configured peer name.
    pub(crate) fn engine(
        &self,
        server: bool,
        expected: Option<String>,
    ) -> Result<RustlsEngine, TlsError> {
        let conn = if server {
            let config = match &self.server {
                Some(c) if expected == self.default_name => Arc::clone(c),
                _ => self.server_config(expected)?,
            };
            Connection::Server(
                ServerConnection::new(config).map_err(|e| TlsError::Library(e.to_string()))?,
            )
        } else {
            let config = match &self.client {
                Some(c) if expected == self.default_name => Arc::clone(c),
                _ => self.client_config(expected)?,
            };
            // No SNI is sent; the name only reaches our verifier, which ignores it.
            let name = ServerName::IpAddress(core::net::Ipv4Addr::UNSPECIFIED.into());
            Connection::Client(
                ClientConnection::new(config, name)
                    .map_err(|e| TlsError::Library(e.to_string()))?,
            )
        };
        Ok(RustlsEngine {
            conn,
            input: Vec::new(),
            plaintext_pending: false,
            server,
            client_hello: HelloScan::default(),
            server_hello: HelloScan::default(),
        })
    }
}

/// Our certificate for any CertificateRequest.
#[derive(Debug)]
struct ClientCert(Arc<CertifiedKey>);

impl ResolvesClientCert for ClientCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.0
            .key
            .choose_scheme(sigschemes)
            .map(|_| Arc::clone(&self.0))
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// Checks the other side's chain against our anchors (webpki, our algorithms) and, if set,
/// its end-entity certificate's name.
#[derive(Debug)]
struct PeerVerifier {
    anchors: Arc<Vec<TrustAnchor<'static>>>,
    expected: Option<String>,
}

fn certificate_error(e: webpki::Error) -> Error {
    use webpki::Error as E;
    Error::InvalidCertificate(match e {
        E::UnknownIssuer => CertificateError::UnknownIssuer,
        E::CertExpired { .. } => CertificateError::Expired,
        E::CertNotValidYet { .. } => CertificateError::NotValidYet,
        E::InvalidSignatureForPublicKey
        | E::UnsupportedSignatureAlgorithmContext(_)
        | E::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => CertificateError::BadSignature,
        E::BadDer | E::BadDerTime | E::TrailingData(_) => CertificateError::BadEncoding,
        E::RequiredEkuNotFoundContext(_) => CertificateError::InvalidPurpose,
        other => CertificateError::Other(OtherError(Arc::new(other))),
    })
}

impl PeerVerifier {
    fn verify(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
        usage: webpki::KeyUsage,
    ) -> Result<(), Error> {
        let cert = webpki::EndEntityCert::try_from(end_entity).map_err(certificate_error)?;
        cert.verify_for_usage(
            SUPPORTED_ALGORITHMS.all,
            &self.anchors,
            intermediates,
            now,
            usage,
            None,
            None,
        )
        .map_err(certificate_error)?;
        if let Some(name) = &self.expected
            && !names(end_entity, name)
        {
            return Err(Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ));
        }
        Ok(())
    }
}

/// The handshake-signature checks both verifier traits share: our algorithms on the
/// certificate's key.
macro_rules! handshake_signatures {
    () => {
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, Error> {
            rustls::crypto::verify_tls12_signature(message, cert, dss, &SUPPORTED_ALGORITHMS)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, Error> {
            rustls::crypto::verify_tls13_signature(message, cert, dss, &SUPPORTED_ALGORITHMS)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            SUPPORTED_ALGORITHMS.supported_schemes()
        }
    };
}

impl ServerCertVerifier for PeerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        self.verify(
            end_entity,
            intermediates,
            now,
            webpki::KeyUsage::server_auth(),
        )?;
        Ok(ServerCertVerified::assertion())
    }

    handshake_signatures!();
}

impl ClientCertVerifier for PeerVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // No certificate_authorities list: it would cost octets on every 802.15.4 join, and
        // a peer has one certificate anyway.
        &[]
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        self.verify(
            end_entity,
            intermediates,
            now,
            webpki::KeyUsage::client_auth(),
        )?;
        Ok(ClientCertVerified::assertion())
    }

    handshake_signatures!();
}

/// Finds the random of the first Hello in one direction of the record stream (TLS 1.2's
/// Session-Id is 0x0D ‖ client.random ‖ server.random, and rustls does not expose them).
/// Handshake records before any other content type are collected until the Hello's random
/// (handshake header 4, legacy_version 2, random 32) is complete.
#[derive(Debug, Default)]
struct HelloScan {
    raw: Vec<u8>,
    handshake: Vec<u8>,
    random: Option<[u8; 32]>,
    stopped: bool,
}

/// More than any ClientHello this side accepts before the random is seen.
const HELLO_SCAN_LIMIT: usize = 64 * 1024;

impl HelloScan {
    fn push(&mut self, bytes: &[u8], hello_type: u8) {
        if self.random.is_some() || self.stopped || bytes.is_empty() {
            return;
        }
        if self.raw.len() + bytes.len() > HELLO_SCAN_LIMIT {
            self.stopped = true;
            self.raw = Vec::new();
            return;
        }
        self.raw.extend_from_slice(bytes);
        let mut at = 0;
        while let Some(header) = self.raw.get(at..at + 5) {
            let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
            let typ = header[0];
            let Some(body) = self.raw.get(at + 5..at + 5 + len) else {
                break;
            };
            if typ != 22 {
                self.stopped = true;
                break;
            }
            self.handshake.extend_from_slice(body);
            at += 5 + len;
            if self.handshake.len() >= 38 {
                if self.handshake[0] == hello_type {
                    let mut r = [0u8; 32];
                    r.copy_from_slice(&self.handshake[6..38]);
                    self.random = Some(r);
                } else {
                    self.stopped = true;
                }
                break;
            }
        }
        if self.random.is_some() || self.stopped {
            self.raw = Vec::new();
            self.handshake = Vec::new();
        } else {
            self.raw.drain(..at);
        }
    }
}

pub(crate) struct RustlsEngine {
    conn: Connection,
    /// Records received and not yet taken by rustls.
    input: Vec<u8>,
    /// Decrypted application data waits to be read.
    plaintext_pending: bool,
    server: bool,
    client_hello: HelloScan,
    server_hello: HelloScan,
}

impl core::fmt::Debug for RustlsEngine {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RustlsEngine")
            .field("server", &self.server)
            .field("handshaking", &self.conn.is_handshaking())
            .finish_non_exhaustive()
    }
}

fn failure(e: &Error) -> TlsError {
    match e {
        Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure) => {
            TlsError::PeerIdentity
        }
        Error::InvalidCertificate(c) => TlsError::Certificate(match c {
            // The wording of OpenSSL's X509_verify_cert_error_string, so that both engines
            // report the same reasons.
            CertificateError::UnknownIssuer => "unable to get local issuer certificate".into(),
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "certificate has expired".into()
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "certificate is not yet valid".into()
            }
            CertificateError::BadSignature => "certificate signature failure".into(),
            CertificateError::BadEncoding => "certificate encoding error".into(),
            CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
                "unsupported certificate purpose".into()
            }
            other => format!("{other:?}"),
        }),
        // As OpenSSL reports it: a handshake failure, not a rejected chain.
        Error::NoCertificatesPresented => {
            TlsError::Handshake("the peer sent no certificate".into())
        }
        other => TlsError::Handshake(other.to_string()),
    }
}

impl RustlsEngine {
    /// Queues TLS records received from the other side.
    pub(crate) fn feed(&mut self, records: &[u8]) {
        if self.server {
            self.client_hello.push(records, 1);
        } else {
            self.server_hello.push(records, 2);
        }
        self.input.extend_from_slice(records);
    }

    /// Hands the queued records to rustls.
    fn pump(&mut self) -> Result<(), TlsError> {
        let mut at = 0;
        while at < self.input.len() {
            let mut rest = &self.input[at..];
            let n = self
                .conn
                .read_tls(&mut rest)
                .map_err(|e| TlsError::Handshake(format!("TLS input: {e}")))?;
            at += n;
            let state = self.conn.process_new_packets().map_err(|e| failure(&e))?;
            self.plaintext_pending = state.plaintext_bytes_to_read() > 0;
            if n == 0 {
                break;
            }
        }
        self.input.drain(..at);
        Ok(())
    }

    /// Takes the TLS records to send.
    pub(crate) fn take_output(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut out) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        if self.server {
            self.server_hello.push(&out, 2);
        } else {
            self.client_hello.push(&out, 1);
        }
        out
    }

    /// Advances the handshake.
    pub(crate) fn handshake(&mut self) -> Result<Progress, TlsError> {
        self.pump()?;
        Ok(if self.conn.is_handshaking() {
            Progress::WantRead
        } else {
            Progress::Complete
        })
    }

    /// Reads application data after the handshake (RFC 9190's success indication).
    pub(crate) fn read_app_data(&mut self) -> Result<Progress, TlsError> {
        self.pump()?;
        let mut buf = [0u8; 64];
        let r = self.conn.reader().read(&mut buf);
        match r {
            Ok(0) => Err(TlsError::Handshake(
                "the other side closed the TLS connection (close_notify)".into(),
            )),
            Ok(n) => {
                self.plaintext_pending = false;
                let data = buf[..n].to_vec();
                // Anything more is also unread input.
                let mut more = [0u8; 1];
                if matches!(self.conn.reader().read(&mut more), Ok(m) if m > 0) {
                    self.plaintext_pending = true;
                }
                Ok(Progress::Data(data))
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Progress::WantRead),
            Err(e) => Err(TlsError::Handshake(format!("TLS read: {e}"))),
        }
    }

    /// Writes application data (RFC 9190's success indication).
    pub(crate) fn write_app_data(&mut self, data: &[u8]) -> Result<(), TlsError> {
        self.conn
            .writer()
            .write_all(data)
            .map_err(|e| TlsError::Handshake(format!("TLS write: {e}")))
    }

    /// Whether any received records or decrypted data have not been consumed.
    pub(crate) fn has_unread_input(&self) -> bool {
        !self.input.is_empty() || self.plaintext_pending
    }

    /// The negotiated protocol version.
    pub(crate) fn version(&self) -> Result<TlsVersion, TlsError> {
        match self.conn.protocol_version() {
            Some(ProtocolVersion::TLSv1_2) => Ok(TlsVersion::Tls12),
            Some(ProtocolVersion::TLSv1_3) => Ok(TlsVersion::Tls13),
            other => Err(TlsError::Handshake(format!(
                "unexpected protocol version {other:?}"
            ))),
        }
    }

    /// MSK, EMSK and Session-Id: RFC 5216 §2.3 for TLS 1.2, RFC 9190 §2.3 for TLS 1.3.
    pub(crate) fn export_keys(&self) -> Result<TlsKeys, TlsError> {
        eap_tls_keys(
            self.version()?,
            &mut |label, context, out| {
                self.conn
                    .export_keying_material(out, label.as_bytes(), context)
                    .map(|_| ())
                    .map_err(|e| TlsError::KeyExport(e.to_string()))
            },
            || match (self.client_hello.random, self.server_hello.random) {
                (Some(c), Some(s)) => Ok((c, s)),
                _ => Err(TlsError::KeyExport("hello randoms unavailable".into())),
            },
        )
    }
}

/// A verifier trusting one certificate, for the provider's tests.
#[cfg(test)]
pub(crate) fn test_verifier(anchor: &CertificateDer<'_>) -> Arc<dyn ServerCertVerifier> {
    #[allow(clippy::unwrap_used)]
    let anchor = webpki::anchor_from_trusted_cert(anchor).unwrap().to_owned();
    Arc::new(PeerVerifier {
        anchors: Arc::new(vec![anchor]),
        expected: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A handshake record around `body`.
    fn record(typ: u8, body: &[u8]) -> Vec<u8> {
        let len = u16::try_from(body.len()).unwrap_or(u16::MAX).to_be_bytes();
        let mut r = vec![typ, 3, 3, len[0], len[1]];
        r.extend_from_slice(body);
        r
    }

    /// A Hello of `hello_type` whose random is 0x00, 0x01, … 0x1f.
    fn hello(hello_type: u8) -> Vec<u8> {
        let mut h = vec![hello_type, 0, 0, 60, 3, 3];
        h.extend(0u8..32);
        h.extend_from_slice(&[0; 24]);
        h
    }

    fn expected() -> [u8; 32] {
        core::array::from_fn(|i| u8::try_from(i).unwrap_or(0))
    }

    #[test]
    fn hello_random_in_one_record_or_many() {
        let mut s = HelloScan::default();
        s.push(&record(22, &hello(1)), 1);
        assert_eq!(s.random, Some(expected()));

        // The Hello cut into 7-octet records, fed an octet at a time.
        let h = hello(2);
        let stream: Vec<u8> = h.chunks(7).flat_map(|c| record(22, c)).collect();
        let mut s = HelloScan::default();
        for b in &stream {
            s.push(core::slice::from_ref(b), 2);
        }
        assert_eq!(s.random, Some(expected()));
    }

    #[test]
    fn hello_scan_refuses_what_is_not_a_hello() {
        // Another handshake message first.
        let mut s = HelloScan::default();
        s.push(&record(22, &hello(2)), 1);
        assert_eq!(s.random, None);
        assert!(s.stopped);
        // An alert before the Hello is complete.
        let mut s = HelloScan::default();
        s.push(&record(22, &hello(1)[..20]), 1);
        s.push(&record(21, &[2, 40]), 1);
        s.push(&record(22, &hello(1)[20..]), 1);
        assert_eq!(s.random, None);
        assert!(s.stopped);
        // A flood of empty handshake records is consumed as it comes (rustls refuses them).
        let mut s = HelloScan::default();
        for _ in 0..100_000 {
            s.push(&record(22, &[]), 1);
        }
        assert!(s.raw.is_empty() && s.handshake.is_empty() && s.random.is_none());
        // A record longer than the limit stops the scan and frees what it held.
        let mut s = HelloScan::default();
        s.push(&[22, 3, 3, 0xff, 0xff], 1);
        for _ in 0..16 {
            s.push(&[0u8; 4096], 1);
        }
        assert!(s.stopped);
        assert!(s.raw.is_empty() && s.handshake.is_empty() && s.random.is_none());
        // Truncated input leaves it waiting, then completes.
        let mut s = HelloScan::default();
        let r = record(22, &hello(1));
        s.push(&r[..3], 1);
        assert_eq!(s.random, None);
        s.push(&r[3..], 1);
        assert_eq!(s.random, Some(expected()));
    }
}
