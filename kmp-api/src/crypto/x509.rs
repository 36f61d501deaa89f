//! X.509 certificates (RFC 5280): chain verification with the OpenSSL X509 store, and field
//! access through `x509-parser`.
//!
//! Verification never reads the clock: the caller passes the verification time (a Unix
//! timestamp, seconds) in [`VerifyOptions`]. The trust anchors are whatever certificates the
//! caller trusts; they need not be self-signed (OpenSSL's `X509_V_FLAG_PARTIAL_CHAIN`).

use std::net::IpAddr;

use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::{X509VerifyFlags, X509VerifyParam};
use openssl::x509::{X509, X509StoreContext};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

use super::CryptoError;
use super::ecc::P256PublicKey;

/// The largest certificate encoding accepted (keeps OpenSSL's `int` lengths in range; real
/// certificates are a few kilobytes).
pub const MAX_CERTIFICATE_LEN: usize = 1 << 20;

fn check_size(len: usize) -> Result<(), CryptoError> {
    if len > MAX_CERTIFICATE_LEN {
        return Err(CryptoError::Certificate(format!(
            "certificate of {len} octets is too large"
        )));
    }
    Ok(())
}

/// A parsed certificate: its DER and OpenSSL's view of it.
#[derive(Clone)]
pub struct Certificate {
    der: Vec<u8>,
    x509: X509,
}

impl Certificate {
    /// Parses DER. Trailing octets after the certificate are an error.
    pub fn from_der(der: &[u8]) -> Result<Certificate, CryptoError> {
        check_size(der.len())?;
        let x509 = X509::from_der(der)
            .map_err(|e| CryptoError::Certificate(format!("not a DER certificate: {e}")))?;
        // OpenSSL ignores trailing garbage; x509-parser tells us whether there was any.
        match X509Certificate::from_der(der) {
            Ok(([], _)) => {}
            Ok(_) => {
                return Err(CryptoError::Certificate(
                    "trailing data after certificate".into(),
                ));
            }
            Err(e) => {
                return Err(CryptoError::Certificate(format!(
                    "not a DER certificate: {e}"
                )));
            }
        }
        Ok(Certificate {
            der: der.to_vec(),
            x509,
        })
    }

    /// Parses one PEM `CERTIFICATE` block.
    pub fn from_pem(pem: &[u8]) -> Result<Certificate, CryptoError> {
        check_size(pem.len())?;
        let x509 = X509::from_pem(pem)
            .map_err(|e| CryptoError::Certificate(format!("not a PEM certificate: {e}")))?;
        Certificate::from_der(&x509.to_der()?)
    }

    /// Parses every PEM `CERTIFICATE` block of `pem`, in order (a chain file, a bundle of trust
    /// anchors). No block at all gives an empty list; a block that does not parse is
    /// [`CryptoError::Certificate`].
    pub fn all_from_pem(pem: &[u8]) -> Result<Vec<Certificate>, CryptoError> {
        check_size(pem.len())?;
        let stack = X509::stack_from_pem(pem)
            .map_err(|e| CryptoError::Certificate(format!("not PEM certificates: {e}")))?;
        stack
            .iter()
            .map(|c| Certificate::from_der(&c.to_der()?))
            .collect()
    }

    /// The DER encoding.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The fields KMPs look at.
    pub fn info(&self) -> Result<CertificateInfo, CryptoError> {
        let (_, cert) = X509Certificate::from_der(&self.der)
            .map_err(|e| CryptoError::Certificate(format!("parse: {e}")))?;
        let mut subject_alt_names = Vec::new();
        let san = cert
            .subject_alternative_name()
            .map_err(|e| CryptoError::Certificate(format!("subjectAltName: {e}")))?;
        if let Some(san) = san {
            for name in &san.value.general_names {
                subject_alt_names.push(match name {
                    GeneralName::DNSName(s) => SubjectAltName::Dns((*s).to_owned()),
                    GeneralName::URI(s) => SubjectAltName::Uri((*s).to_owned()),
                    GeneralName::RFC822Name(s) => SubjectAltName::Email((*s).to_owned()),
                    GeneralName::IPAddress(b) => match ip_from_octets(b) {
                        Some(ip) => SubjectAltName::Ip(ip),
                        None => SubjectAltName::Other,
                    },
                    _ => SubjectAltName::Other,
                });
            }
        }
        let key_usage = cert
            .key_usage()
            .map_err(|e| CryptoError::Certificate(format!("keyUsage: {e}")))?
            .map(|ku| KeyUsage(ku.value.flags));
        let spki_der = cert.public_key().raw.to_vec();
        let p256_public_key = P256PublicKey::from_spki_der(&spki_der)
            .ok()
            .map(|k| k.to_uncompressed());
        Ok(CertificateInfo {
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            serial: cert.raw_serial().to_vec(),
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
            subject_alt_names,
            key_usage,
            is_ca: cert.is_ca(),
            spki_der,
            p256_public_key,
        })
    }

    /// The subject public key as a P-256 key ([`CryptoError::InvalidPublicValue`] for other
    /// key types).
    pub fn p256_public_key(&self) -> Result<P256PublicKey, CryptoError> {
        P256PublicKey::from_spki_der(&self.x509.public_key()?.public_key_to_der()?)
    }
}

impl core::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let subject = self
            .info()
            .map(|i| i.subject)
            .unwrap_or_else(|_| "?".into());
        write!(f, "Certificate({subject})")
    }
}

impl PartialEq for Certificate {
    fn eq(&self, other: &Self) -> bool {
        self.der == other.der
    }
}

impl Eq for Certificate {}

/// The subject DN of an OpenSSL certificate in the same form as [`CertificateInfo::subject`].
fn subject_of(cert: &openssl::x509::X509Ref) -> String {
    cert.to_der()
        .ok()
        .and_then(|der| {
            X509Certificate::from_der(&der)
                .ok()
                .map(|(_, c)| c.subject().to_string())
        })
        .unwrap_or_default()
}

/// The DER `Name` (RFC 5280 §4.1.2.4) of a text form `CN=a,O=b,…`: attributes by their short
/// or long names, values as UTF8String, one attribute per RDN, in the order given. An empty
/// string, a part without `=`, or an unknown attribute is `None`.
pub fn name_der_from_text(s: &str) -> Option<Vec<u8>> {
    let mut b = openssl::x509::X509Name::builder().ok()?;
    let mut any = false;
    for part in s.split(',') {
        let (k, v) = part.split_once('=')?;
        b.append_entry_by_text(k.trim(), v.trim()).ok()?;
        any = true;
    }
    if !any {
        return None;
    }
    b.build().to_der().ok()
}

fn ip_from_octets(b: &[u8]) -> Option<IpAddr> {
    if let Ok(v4) = <[u8; 4]>::try_from(b) {
        Some(IpAddr::from(v4))
    } else if let Ok(v6) = <[u8; 16]>::try_from(b) {
        Some(IpAddr::from(v6))
    } else {
        None
    }
}

/// One subjectAltName entry (RFC 5280 §4.2.1.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubjectAltName {
    /// `dNSName`.
    Dns(String),
    /// `uniformResourceIdentifier`.
    Uri(String),
    /// `rfc822Name` (an e-mail address).
    Email(String),
    /// `iPAddress` (4 or 16 octets).
    Ip(IpAddr),
    /// Any other form (otherName, directoryName, …), or a malformed entry.
    Other,
}

/// The keyUsage bits (RFC 5280 §4.2.1.3), bit 0 = digitalSignature as x509-parser numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyUsage(pub u16);

impl KeyUsage {
    /// `digitalSignature` (bit 0).
    pub fn digital_signature(self) -> bool {
        self.0 & 1 != 0
    }

    /// `keyAgreement` (bit 4).
    pub fn key_agreement(self) -> bool {
        self.0 & (1 << 4) != 0
    }

    /// `keyCertSign` (bit 5).
    pub fn key_cert_sign(self) -> bool {
        self.0 & (1 << 5) != 0
    }
}

/// Certificate fields, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    /// Subject DN in RFC 4514-like string form (`CN=…, O=…`).
    pub subject: String,
    /// Issuer DN in the same form.
    pub issuer: String,
    /// The serial number's content octets (big-endian, as encoded).
    pub serial: Vec<u8>,
    /// Start of validity, Unix seconds.
    pub not_before: i64,
    /// End of validity, Unix seconds.
    pub not_after: i64,
    /// subjectAltName entries in order.
    pub subject_alt_names: Vec<SubjectAltName>,
    /// keyUsage, if the extension is present.
    pub key_usage: Option<KeyUsage>,
    /// basicConstraints cA.
    pub is_ca: bool,
    /// The DER `SubjectPublicKeyInfo`.
    pub spki_der: Vec<u8>,
    /// For a P-256 key, the uncompressed point `04 ‖ x ‖ y`.
    pub p256_public_key: Option<[u8; 65]>,
}

/// What [`verify_chain`] checks beyond the signatures and names of the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifyOptions {
    /// The time at which every certificate in the chain must be valid (Unix seconds).
    pub time: i64,
    /// Require the leaf to allow `digitalSignature` (for keys that sign IKE AUTH, HIP or
    /// EAP-TLS handshakes). A leaf without a keyUsage extension passes: RFC 5280 §4.2.1.3
    /// puts no restriction on such a key.
    pub require_digital_signature: bool,
}

impl VerifyOptions {
    /// Checks at `time`, requiring `digitalSignature` on the leaf.
    pub fn at(time: i64) -> VerifyOptions {
        VerifyOptions {
            time,
            require_digital_signature: true,
        }
    }
}

/// Verifies that `leaf` chains to one of `trust_anchors`, possibly through `intermediates`
/// (in any order), at `options.time`: signatures, issuer/subject names, validity periods,
/// basicConstraints of the issuers and, if asked, the leaf's keyUsage.
///
/// Failures are [`CryptoError::Certificate`] with OpenSSL's reason, the depth (0 = leaf) and the
/// subject of the certificate at fault.
pub fn verify_chain(
    trust_anchors: &[Certificate],
    intermediates: &[Certificate],
    leaf: &Certificate,
    options: &VerifyOptions,
) -> Result<(), CryptoError> {
    if trust_anchors.is_empty() {
        return Err(CryptoError::Certificate("no trust anchors".into()));
    }
    let mut builder = X509StoreBuilder::new()?;
    for anchor in trust_anchors {
        builder.add_cert(anchor.x509.clone())?;
    }
    let mut param = X509VerifyParam::new()?;
    // `time_t` is 32 bits on some targets.
    #[allow(clippy::useless_conversion)]
    let time = options
        .time
        .try_into()
        .map_err(|_| CryptoError::Certificate(format!("verification time {}", options.time)))?;
    param.set_time(time);
    param.set_flags(X509VerifyFlags::PARTIAL_CHAIN)?;
    builder.set_param(&param)?;
    let store = builder.build();

    let mut chain = Stack::new()?;
    for cert in intermediates {
        chain.push(cert.x509.clone())?;
    }
    let mut ctx = X509StoreContext::new()?;
    let outcome = ctx.init(&store, &leaf.x509, &chain, |c| {
        let ok = c.verify_cert()?;
        let subject = c.current_cert().map(subject_of).unwrap_or_default();
        Ok((ok, c.error(), c.error_depth(), subject))
    })?;
    let (ok, error, depth, subject) = outcome;
    if !ok {
        return Err(CryptoError::Certificate(format!(
            "{} (depth {depth}{}{subject})",
            error.error_string(),
            if subject.is_empty() { "" } else { ", " }
        )));
    }

    if options.require_digital_signature {
        let info = leaf.info()?;
        if let Some(ku) = info.key_usage
            && !ku.digital_signature()
        {
            return Err(CryptoError::Certificate(format!(
                "leaf keyUsage lacks digitalSignature ({})",
                info.subject
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
        SanType, date_time_ymd,
    };

    /// 2030-06-01T00:00:00Z, inside every validity period below except the expired leaf's.
    const T_2030: i64 = 1_906_416_000;

    struct Pki {
        root: Certificate,
        intermediate: Certificate,
        leaf: Certificate,
        inter_params: CertificateParams,
        inter_key: KeyPair,
    }

    fn ca_params(cn: &str) -> CertificateParams {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        p.not_before = date_time_ymd(2025, 1, 1);
        p.not_after = date_time_ymd(2045, 1, 1);
        p
    }

    fn leaf_params(
        cn: &str,
        usages: Vec<KeyUsagePurpose>,
        not_after_year: i32,
    ) -> CertificateParams {
        let mut p = CertificateParams::new(vec!["node-1.pan.example".to_string()]).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.subject_alt_names.push(SanType::URI(
            "urn:dev:mac:0011223344556677".try_into().unwrap(),
        ));
        p.subject_alt_names
            .push(SanType::Rfc822Name("ops@pan.example".try_into().unwrap()));
        p.subject_alt_names
            .push(SanType::IpAddress("fd00::1".parse().unwrap()));
        p.key_usages = usages;
        p.not_before = date_time_ymd(2026, 1, 1);
        p.not_after = date_time_ymd(not_after_year, 1, 1);
        p
    }

    fn der(c: &rcgen::Certificate) -> Certificate {
        Certificate::from_der(c.der()).unwrap()
    }

    fn pki() -> Pki {
        pki_named("Test")
    }

    fn pki_named(prefix: &str) -> Pki {
        let root_key = KeyPair::generate().unwrap();
        let root_params = ca_params(&format!("{prefix} Root CA"));
        let root = root_params.self_signed(&root_key).unwrap();
        let root_issuer = Issuer::from_params(&root_params, &root_key);

        let inter_key = KeyPair::generate().unwrap();
        let inter_params = ca_params(&format!("{prefix} Intermediate CA"));
        let intermediate = inter_params.signed_by(&inter_key, &root_issuer).unwrap();

        let leaf_key = KeyPair::generate().unwrap();
        let leaf = leaf_params("node-1", vec![KeyUsagePurpose::DigitalSignature], 2040)
            .signed_by(&leaf_key, &Issuer::from_params(&inter_params, &inter_key))
            .unwrap();
        Pki {
            root: der(&root),
            intermediate: der(&intermediate),
            leaf: der(&leaf),
            inter_params,
            inter_key,
        }
    }

    fn leaf_under(pki: &Pki, params: CertificateParams) -> Certificate {
        let key = KeyPair::generate().unwrap();
        der(&params
            .signed_by(
                &key,
                &Issuer::from_params(&pki.inter_params, &pki.inter_key),
            )
            .unwrap())
    }

    #[test]
    fn all_from_pem_reads_every_block_in_order() {
        let p = pki();
        let pem = |c: &Certificate| X509::from_der(c.der()).unwrap().to_pem().unwrap();
        let bundle = [pem(&p.leaf), pem(&p.intermediate), pem(&p.root)].concat();
        let all = Certificate::all_from_pem(&bundle).unwrap();
        assert_eq!(all, vec![p.leaf, p.intermediate, p.root]);
        assert_eq!(Certificate::all_from_pem(b"").unwrap(), vec![]);
        let mut broken = bundle.clone();
        let at = broken.len() / 2;
        broken[at] = b'!';
        assert!(Certificate::all_from_pem(&broken).is_err());
    }

    #[test]
    fn name_der_from_text_encodes_rdns_in_order() {
        // SEQUENCE { SET { SEQUENCE { OID 2.5.4.3 (CN), UTF8String "test" } } }
        assert_eq!(
            name_der_from_text("CN=test").unwrap(),
            [
                0x30, 0x0f, 0x31, 0x0d, 0x30, 0x0b, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x04, b't',
                b'e', b's', b't'
            ]
        );
        let two = name_der_from_text("O=org, CN=node").unwrap();
        // O (2.5.4.10) comes first.
        assert_eq!(&two[4..11], &[0x30, 0x0a, 0x06, 0x03, 0x55, 0x04, 0x0a]);
        assert_eq!(name_der_from_text(""), None);
        assert_eq!(name_der_from_text("CN"), None);
        assert_eq!(name_der_from_text("NOPE=x"), None);
    }

    #[test]
    fn valid_chain_passes_and_fields_decode() {
        let pki = pki();
        let opts = VerifyOptions::at(T_2030);
        verify_chain(
            std::slice::from_ref(&pki.root),
            std::slice::from_ref(&pki.intermediate),
            &pki.leaf,
            &opts,
        )
        .unwrap();
        // The intermediate may itself be the trust anchor.
        verify_chain(
            std::slice::from_ref(&pki.intermediate),
            &[],
            &pki.leaf,
            &opts,
        )
        .unwrap();

        let info = pki.leaf.info().unwrap();
        assert_eq!(info.subject, "CN=node-1");
        assert_eq!(info.issuer, "CN=Test Intermediate CA");
        assert!(!info.serial.is_empty());
        assert_eq!(info.not_before, 1_767_225_600); // 2026-01-01
        assert_eq!(info.not_after, 2_208_988_800); // 2040-01-01
        assert_eq!(
            info.subject_alt_names,
            vec![
                SubjectAltName::Dns("node-1.pan.example".into()),
                SubjectAltName::Uri("urn:dev:mac:0011223344556677".into()),
                SubjectAltName::Email("ops@pan.example".into()),
                SubjectAltName::Ip("fd00::1".parse().unwrap()),
            ]
        );
        assert!(info.key_usage.unwrap().digital_signature());
        assert!(!info.is_ca);
        let point = info.p256_public_key.unwrap();
        assert_eq!(point[0], 0x04);
        assert_eq!(pki.leaf.p256_public_key().unwrap().to_uncompressed(), point);
        assert_eq!(
            P256PublicKey::from_spki_der(&info.spki_der)
                .unwrap()
                .to_uncompressed(),
            point
        );
        let root_info = pki.root.info().unwrap();
        assert!(root_info.is_ca && root_info.key_usage.unwrap().key_cert_sign());
        assert_eq!(root_info.subject, root_info.issuer);

        // PEM round trip.
        let pem = pki.leaf.x509.to_pem().unwrap();
        assert_eq!(Certificate::from_pem(&pem).unwrap(), pki.leaf);
        assert!(format!("{:?}", pki.leaf).contains("node-1"));
    }

    #[test]
    fn expired_leaf_fails() {
        let pki = pki();
        let old = leaf_under(
            &pki,
            leaf_params("old-node", vec![KeyUsagePurpose::DigitalSignature], 2028),
        );
        let err = verify_chain(
            std::slice::from_ref(&pki.root),
            std::slice::from_ref(&pki.intermediate),
            &old,
            &VerifyOptions::at(T_2030),
        )
        .unwrap_err();
        let CryptoError::Certificate(msg) = err else {
            panic!("{err:?}")
        };
        assert!(msg.contains("expired"), "{msg}");
        assert!(msg.contains("depth 0"), "{msg}");
        // The same leaf was fine in 2027: the time is an input, not the clock.
        verify_chain(
            std::slice::from_ref(&pki.root),
            std::slice::from_ref(&pki.intermediate),
            &old,
            &VerifyOptions::at(1_800_000_000),
        )
        .unwrap();
        // Before notBefore is an error too.
        let err = verify_chain(
            std::slice::from_ref(&pki.root),
            &[pki.intermediate],
            &pki.leaf,
            &VerifyOptions::at(1_700_000_000),
        )
        .unwrap_err();
        assert!(
            matches!(&err, CryptoError::Certificate(m) if m.contains("not yet valid")),
            "{err:?}"
        );
    }

    #[test]
    fn untrusted_root_or_wrong_issuer_fails() {
        let pki = pki();
        let other = pki_named("Other");
        let opts = VerifyOptions::at(T_2030);
        // Another PKI's root does not anchor this chain.
        let err = verify_chain(
            std::slice::from_ref(&other.root),
            std::slice::from_ref(&pki.intermediate),
            &pki.leaf,
            &opts,
        )
        .unwrap_err();
        assert!(
            matches!(&err, CryptoError::Certificate(m) if m.contains("local issuer")),
            "{err:?}"
        );
        // The right root but the other PKI's intermediate: the leaf's issuer is missing.
        let err = verify_chain(
            std::slice::from_ref(&pki.root),
            std::slice::from_ref(&other.intermediate),
            &pki.leaf,
            &opts,
        )
        .unwrap_err();
        assert!(
            matches!(&err, CryptoError::Certificate(m) if m.contains("local issuer")),
            "{err:?}"
        );
        // A same-named root with another key: the intermediate's signature does not verify.
        let twin = pki_named("Test");
        let err = verify_chain(
            std::slice::from_ref(&twin.root),
            std::slice::from_ref(&pki.intermediate),
            &pki.leaf,
            &opts,
        )
        .unwrap_err();
        assert!(
            matches!(&err, CryptoError::Certificate(m) if m.contains("signature")),
            "{err:?}"
        );
        // Same issuer name, different key: the signature does not verify.
        let impostor_key = KeyPair::generate().unwrap();
        let impostor = leaf_params("impostor", vec![KeyUsagePurpose::DigitalSignature], 2040)
            .signed_by(
                &KeyPair::generate().unwrap(),
                &Issuer::from_params(&pki.inter_params, &impostor_key),
            )
            .unwrap();
        let err = verify_chain(
            std::slice::from_ref(&pki.root),
            std::slice::from_ref(&pki.intermediate),
            &der(&impostor),
            &opts,
        )
        .unwrap_err();
        assert!(
            matches!(&err, CryptoError::Certificate(m) if m.contains("signature")),
            "{err:?}"
        );
        assert!(verify_chain(&[], &[], &pki.leaf, &opts).is_err());
    }

    #[test]
    fn leaf_without_digital_signature_fails_when_required() {
        let pki = pki();
        let kex_only = leaf_under(
            &pki,
            leaf_params("kex-only", vec![KeyUsagePurpose::KeyAgreement], 2040),
        );
        let anchors = [pki.root.clone()];
        let inter = [pki.intermediate.clone()];
        let err =
            verify_chain(&anchors, &inter, &kex_only, &VerifyOptions::at(T_2030)).unwrap_err();
        assert_eq!(
            err,
            CryptoError::Certificate("leaf keyUsage lacks digitalSignature (CN=kex-only)".into())
        );
        let lenient = VerifyOptions {
            time: T_2030,
            require_digital_signature: false,
        };
        verify_chain(&anchors, &inter, &kex_only, &lenient).unwrap();
        assert!(kex_only.info().unwrap().key_usage.unwrap().key_agreement());
    }

    #[test]
    fn malformed_input() {
        assert!(matches!(
            Certificate::from_der(b"\x30\x03\x02\x01\x01"),
            Err(CryptoError::Certificate(_))
        ));
        assert!(matches!(
            Certificate::from_pem(b"-----BEGIN"),
            Err(CryptoError::Certificate(_))
        ));
        let pki = pki();
        let mut trailing = pki.leaf.der().to_vec();
        trailing.push(0);
        assert!(Certificate::from_der(&trailing).is_err());
    }
}
