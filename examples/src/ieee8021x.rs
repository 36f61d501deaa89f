//! The Wi-SUN-shaped 802.1X join's pieces shared by `kmp-sim` (through
//! [`crate::sim::ieee8021x_join`]) and `kmp-udp-node`: the test PKI, the built-in EAP-TLS PAE
//! configurations, and one station's three factories over one PMK cache.
//!
//! - [`SimCa`]: the P-256 CA. `kmp-sim` makes one in memory; `kmp-udp-node` keeps it in a
//!   directory (`--pki DIR`, [`SimCa::load_or_create`]) that the gateway and node processes
//!   share, and each process issues its own end-entity certificate from it at start
//!   (DECISIONS R20).
//! - [`SimPki`]: a CA with the gateway's and every node's certificates (the simulator's).
//! - [`Station`]: a device's KMP ID 1 PAE and KMP ID 6 / 7 handshake factories, sharing a
//!   [`PmkCache`] so the 4-way handshake finds the PMK the PAE put there; with a `[radius]`
//!   table the PAE is a pass-through authenticator and the station keeps its RADIUS backend
//!   (for its counters).
//! - [`JOIN_STEPS`]: the order of the join and who starts each KMP (DECISIONS R18, R19).

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, anyhow, bail};
use kmp_api::KmpId;
use kmp_api::rng::RngHandle;
use kmp_mka::handshake::{Gtk, GtkSet, HandshakeConfig, HandshakeFactory, PaeRole, PmkCache};
use kmp_mka::pae::{MethodProvider, PaeConfig, PaeFactory, RadiusBackend, TlsProvider};

use crate::sim::Starter;

/// Virtual time 0 of every simulation as a calendar instant, 2026-01-01T00:00:00Z (Unix
/// seconds): the built-in PKI's certificates are valid around it and EAP-TLS checks them at
/// it ([`eap::tls::TlsConfig::validation_time`]), never at the host's clock.
pub const SIM_EPOCH_UNIX_SECS: u64 = 1_767_225_600;

/// The DNS name in the gateway's certificate (nodes require it of the EAP-TLS server).
pub const GATEWAY_CERT_NAME: &str = "gateway.kmp-sim.example";

/// The DNS name in node `i`'s certificate, also its EAP identity.
pub fn node_cert_name(i: usize) -> String {
    format!("node-{i}.kmp-sim.example")
}

/// One certificate chain (end entity, PEM) and its private key (PEM).
#[derive(Clone)]
pub struct PemIdentity {
    /// The certificate.
    pub chain: String,
    /// Its private key (PKCS#8).
    pub key: String,
}

impl std::fmt::Debug for PemIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PemIdentity").finish_non_exhaustive()
    }
}

/// The CA certificate's file in a PKI directory.
pub const CA_CERT_FILE: &str = "ca.pem";
/// The CA key's file in a PKI directory (mode 0600).
pub const CA_KEY_FILE: &str = "ca.key.pem";

/// Valid from a day before [`SIM_EPOCH_UNIX_SECS`] for a year.
fn set_validity(p: &mut rcgen::CertificateParams) {
    let epoch = rcgen::date_time_ymd(2026, 1, 1);
    p.not_before = epoch - std::time::Duration::from_secs(86_400);
    p.not_after = epoch + std::time::Duration::from_secs(365 * 86_400);
}

/// The CA's parameters: the same every time, so a CA read back from its PEM files issues
/// certificates whose issuer name and authority key identifier match its certificate.
fn ca_params() -> anyhow::Result<rcgen::CertificateParams> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyUsagePurpose};
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name
        .push(DnType::CommonName, "kmp-sim test CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    set_validity(&mut ca);
    Ok(ca)
}

/// The test CA: ECDSA P-256 / SHA-256, valid from a day before [`SIM_EPOCH_UNIX_SECS`] for a
/// year; it issues the gateway's server certificate and the nodes' client certificates.
pub struct SimCa {
    cert: String,
    key: rcgen::KeyPair,
}

impl std::fmt::Debug for SimCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimCa").finish_non_exhaustive()
    }
}

impl SimCa {
    /// A fresh CA.
    pub fn generate() -> anyhow::Result<SimCa> {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let cert = ca_params()?.self_signed(&key)?.pem();
        Ok(SimCa { cert, key })
    }

    /// Reads the CA from `dir` ([`CA_CERT_FILE`], [`CA_KEY_FILE`]).
    pub fn load(dir: &Path) -> anyhow::Result<SimCa> {
        let read = |name: &str| {
            let p = dir.join(name);
            std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))
        };
        let cert = read(CA_CERT_FILE)?;
        let key = rcgen::KeyPair::from_pem(&read(CA_KEY_FILE)?)
            .map_err(|e| anyhow!("{}: {e}", dir.join(CA_KEY_FILE).display()))?;
        if !cert.contains("-----BEGIN CERTIFICATE-----") {
            bail!("{}: no PEM certificate", dir.join(CA_CERT_FILE).display());
        }
        Ok(SimCa { cert, key })
    }

    /// Reads the CA from `dir`, or, when `dir` does not exist or is empty, generates one and
    /// writes it there. Several processes may race: the CA is written to a fresh directory
    /// beside `dir` and renamed into place, so exactly one CA wins and every process reads it.
    pub fn load_or_create(dir: &Path) -> anyhow::Result<SimCa> {
        if dir.join(CA_CERT_FILE).exists() {
            return Self::load(dir);
        }
        if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
            bail!(
                "{} exists but holds no {CA_CERT_FILE}: not a PKI directory",
                dir.display()
            );
        }
        let ca = Self::generate()?;
        let parent = match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent)
            .with_context(|| format!("creating {}", parent.display()))?;
        let tmp = tempfile::Builder::new()
            .prefix(".kmp-pki-")
            .tempdir_in(&parent)
            .with_context(|| format!("creating a directory in {}", parent.display()))?;
        std::fs::write(tmp.path().join(CA_CERT_FILE), &ca.cert)?;
        write_secret(&tmp.path().join(CA_KEY_FILE), &ca.key.serialize_pem())?;
        // rename(2) replaces an empty directory and fails on a non-empty one: whoever renames
        // first wins; the others read the winner's CA.
        match std::fs::rename(tmp.path(), dir) {
            Ok(()) => {
                // The directory is `dir` now; nothing left for the guard to remove.
                let _ = tmp.keep();
                Ok(ca)
            }
            Err(_) if dir.join(CA_CERT_FILE).exists() => Self::load(dir),
            Err(e) => Err(e).with_context(|| format!("creating the PKI in {}", dir.display())),
        }
    }

    /// The CA certificate (PEM), the only trust anchor of both ends.
    pub fn cert_pem(&self) -> &str {
        &self.cert
    }

    fn issue(
        &self,
        name: &str,
        eku: rcgen::ExtendedKeyUsagePurpose,
    ) -> anyhow::Result<PemIdentity> {
        use rcgen::{CertificateParams, DnType, Issuer, KeyPair, KeyUsagePurpose};
        let issuer = Issuer::new(ca_params()?, &self.key);
        let mut p = CertificateParams::new(vec![name.to_string()])?;
        p.distinguished_name.push(DnType::CommonName, name);
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![eku];
        set_validity(&mut p);
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        Ok(PemIdentity {
            chain: p.signed_by(&key, &issuer)?.pem(),
            key: key.serialize_pem(),
        })
    }

    /// A new server certificate for [`GATEWAY_CERT_NAME`].
    pub fn gateway_identity(&self) -> anyhow::Result<PemIdentity> {
        self.issue(
            GATEWAY_CERT_NAME,
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    /// A new client certificate for node `i` ([`node_cert_name`]).
    pub fn node_identity(&self, i: usize) -> anyhow::Result<PemIdentity> {
        self.issue(
            &node_cert_name(i),
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        )
    }
}

/// Writes a private key readable by its owner only.
fn write_secret(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// The simulation's PKI, generated at start: a [`SimCa`], the gateway's server certificate
/// and one client certificate per node.
#[derive(Debug, Clone)]
pub struct SimPki {
    /// The CA certificate (PEM), the only trust anchor of both ends.
    pub ca: String,
    /// The gateway's identity ([`GATEWAY_CERT_NAME`]).
    pub gateway: PemIdentity,
    /// Node `i`'s identity is `nodes[i - 1]` ([`node_cert_name`]).
    pub nodes: Vec<PemIdentity>,
}

impl SimPki {
    /// Generates the CA and `nodes` + 1 end-entity certificates.
    pub fn generate(nodes: usize) -> anyhow::Result<SimPki> {
        let ca = SimCa::generate()?;
        Ok(SimPki {
            ca: ca.cert.clone(),
            gateway: ca.gateway_identity()?,
            nodes: (1..=nodes)
                .map(|i| ca.node_identity(i))
                .collect::<anyhow::Result<Vec<_>>>()?,
        })
    }
}

/// The EAP-TLS configuration of one end: its identity, `ca` as the only anchor, TLS 1.2 (what
/// Wi-SUN FAN specifies), certificates checked at [`SIM_EPOCH_UNIX_SECS`]; a node requires
/// `peer_name` of the server.
pub fn tls_config(
    ca: &str,
    me: &PemIdentity,
    peer_name: Option<&str>,
) -> anyhow::Result<eap::tls::TlsConfig> {
    let mut c =
        eap::tls::TlsConfig::from_pem(me.chain.as_bytes(), me.key.as_bytes(), ca.as_bytes())
            .map_err(|e| anyhow!("EAP-TLS configuration: {e}"))?;
    c.versions = eap::tls::TlsVersions::Tls12;
    c.expected_peer_name = peer_name.map(str::to_string);
    c.validation_time =
        Some(std::time::UNIX_EPOCH + std::time::Duration::from_secs(SIM_EPOCH_UNIX_SECS));
    Ok(c)
}

/// The built-in PAE configuration: `role` with EAP identity `identity` and EAP-TLS over `tls`
/// as its only method, defaults otherwise.
pub fn builtin_pae_config(
    role: PaeRole,
    identity: &str,
    tls: &eap::tls::TlsConfig,
) -> anyhow::Result<PaeConfig> {
    let tls: Arc<dyn MethodProvider> =
        Arc::new(TlsProvider::new(tls).map_err(|e| anyhow!("EAP-TLS: {e}"))?);
    Ok(PaeConfig::new(role, identity, vec![tls]))
}

/// The gateway's GTK: key ID 0 (802.15.4 key index 1), drawn from `rng`, with Wi-SUN FAN's
/// default lifetime of 30 days (sent in the Key Lifetime KDE).
pub fn gateway_gtk(rng: &RngHandle) -> anyhow::Result<Gtk> {
    let key: [u8; 16] = rng.array().map_err(|e| anyhow!("GTK: {e}"))?;
    Ok(Gtk {
        key_id: 0,
        key: kmp_api::session::SecretBytes::from_slice(&key),
        lifetime_secs: 30 * 86_400,
    })
}

/// One KMP of the 802.1X join: registry name, KMP ID, who starts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepSpec {
    /// The name in events and reports.
    pub name: &'static str,
    /// The KMP ID.
    pub kmp_id: KmpId,
    /// Who starts it once that end finished the step before with the peer.
    pub starter: Starter,
}

/// The Wi-SUN-shaped join: KMP ID 1 started by the node (its key request), then the 4-way
/// (6) and group-key (7) handshakes started by the gateway (kmp-mka decisions H2, B3).
pub const JOIN_STEPS: [StepSpec; 3] = [
    StepSpec {
        name: "8021x",
        kmp_id: KmpId::Ieee8021xMka,
        starter: Starter::Node,
    },
    StepSpec {
        name: "ieee80211-4way",
        kmp_id: KmpId::Ieee80211FourWay,
        starter: Starter::Gateway,
    },
    StepSpec {
        name: "ieee80211-group-key",
        kmp_id: KmpId::Ieee80211GroupKey,
        starter: Starter::Gateway,
    },
];

/// One device's factories for the 802.1X join, over its own PMK cache (not the process-wide
/// one, which other stations of the same process would share).
pub struct Station {
    /// KMP ID 1: the PAE.
    pub pae: Arc<dyn kmp_api::KmpFactory>,
    /// KMP ID 6: the 4-way handshake.
    pub four_way: Arc<dyn kmp_api::KmpFactory>,
    /// KMP ID 7: the group-key handshake.
    pub group_key: Arc<dyn kmp_api::KmpFactory>,
    /// The pass-through PAE's RADIUS backend, when the configuration has `[radius]`.
    pub radius: Option<Arc<RadiusBackend>>,
}

impl std::fmt::Debug for Station {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Station")
            .field("radius", &self.radius.is_some())
            .finish_non_exhaustive()
    }
}

impl Station {
    /// The station of a device whose PAE runs `pae`; an authenticator hands out `gtks` (a
    /// supplicant has none). With `[radius]` in `pae` the PAE relays EAP to the RADIUS
    /// servers through a backend bound here.
    pub fn new(pae: PaeConfig, gtks: Vec<Gtk>) -> anyhow::Result<Station> {
        let err = |what: &str, e: kmp_api::session::SessionError| anyhow!("{what}: {e}");
        let pmks = PmkCache::new();
        let (pae_factory, radius) = match &pae.radius {
            Some(settings) => {
                let backend =
                    Arc::new(RadiusBackend::bind(settings).map_err(|e| err("RADIUS client", e))?);
                let f = PaeFactory::pass_through(pae, pmks.clone(), backend.clone())
                    .map_err(|e| err("802.1X PAE", e))?;
                (f, Some(backend))
            }
            None => (
                PaeFactory::new(pae, pmks.clone()).map_err(|e| err("802.1X PAE", e))?,
                None,
            ),
        };
        let mut hs = HandshakeConfig::with_pmk(None);
        hs.gtks = gtks;
        let (four, group) = HandshakeFactory::pair(hs, pmks, GtkSet::new())
            .map_err(|e| err("802.11 handshakes", e))?;
        Ok(Station {
            pae: Arc::new(pae_factory),
            four_way: Arc::new(four),
            group_key: Arc::new(group),
            radius,
        })
    }

    /// The factory of each of [`JOIN_STEPS`], in that order.
    pub fn factories(&self) -> [Arc<dyn kmp_api::KmpFactory>; 3] {
        [
            self.pae.clone(),
            self.four_way.clone(),
            self.group_key.clone(),
        ]
    }
}
