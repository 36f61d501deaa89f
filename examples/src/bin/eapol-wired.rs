//! `eapol-wired`: our EAP authenticator or peer over EAPOL on an Ethernet interface
//! (IEEE 802.1X, EtherType 0x888E, PAE group address 01-80-C2-00-00-03, EAPOL version 2),
//! for interop with `hostapd -D wired` and `wpa_supplicant -D wired`.
//!
//! ```text
//! eapol-wired authenticator --iface veth0 --method psk --identity psk-user --psk 000102…0f
//! eapol-wired authenticator --iface veth0 --method tls --cert server.pem --key server.key --ca ca.pem
//! eapol-wired authenticator --iface veth0 --method pwd --identity pwd-user --password-file pw
//! eapol-wired supplicant --iface veth1 --method psk --identity psk-user --psk-file psk.hex
//! eapol-wired supplicant --iface veth1 --method pwd --identity pwd-user --password secret
//! eapol-wired supplicant --iface veth1 --method tls --identity client.test \
//!     --cert client.pem --key client.key --ca ca.pem [--server-name server.test]
//! ```
//!
//! The authenticator waits for an EAPOL-Start; the supplicant sends one (again every
//! `--start-period-secs` until a Request comes). On success one JSON line goes to stdout
//! (`role`, `method`, `identity`, `peer_mac`, `msk_sha256`: the SHA-256 of the MSK, never the
//! MSK, and `session_id`, hex) and the exit status is 0; on failure or after `--timeout-secs`
//! one line on stderr and exit 1; bad arguments exit 2. Needs CAP_NET_RAW. Logs on stderr,
//! filtered by `KMP_LOG`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use eap::authenticator::{Authenticator, AuthenticatorConfig};
use eap::method::{PeerMethod, ServerMethod};
use eap::peer::{Peer, PeerConfig};
use eap::psk::{PskPeer, PskServer};
use eap::pwd::{PwdPeer, PwdServer};
use eap::tls::{TlsConfig, TlsPeer, TlsPeerContext, TlsServer, TlsServerContext, TlsVersions};
use examples::wired::{self, EapolLink};
use kmp_api::crypto::{Key128, SecretBytes};
use kmp_api::rng::RngHandle;
use kmp_api::time::{Duration as KmpDuration, Instant};

#[derive(Debug, Parser)]
#[command(version, about = "EAP over EAPOL on an Ethernet interface (802.1X)")]
struct Cli {
    #[command(subcommand)]
    role: Role,
}

#[derive(Debug, Subcommand)]
enum Role {
    /// Our EAP authenticator (with its own EAP server): waits for EAPOL-Start.
    Authenticator(AuthArgs),
    /// Our EAP peer: sends EAPOL-Start and authenticates.
    Supplicant(SuppArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Method {
    /// EAP-PSK (RFC 4764).
    Psk,
    /// EAP-TLS (RFC 5216, RFC 9190).
    Tls,
    /// EAP-pwd (RFC 5931, group 19).
    Pwd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TlsVersionArg {
    #[value(name = "1.2")]
    V12,
    #[value(name = "1.3")]
    V13,
    Both,
}

#[derive(Debug, Args)]
struct Common {
    /// The Ethernet interface.
    #[arg(long)]
    iface: String,
    /// The EAP method.
    #[arg(long, value_enum)]
    method: Method,
    /// EAP-PSK: the 16-octet PSK in hex.
    #[arg(long, conflicts_with = "psk_file")]
    psk: Option<String>,
    /// EAP-PSK: a file holding the PSK in hex.
    #[arg(long)]
    psk_file: Option<PathBuf>,
    /// EAP-pwd: the password (used as is).
    #[arg(long, conflicts_with = "password_file")]
    password: Option<String>,
    /// EAP-pwd: a file holding the password (one line; the line end is not part of it).
    #[arg(long)]
    password_file: Option<PathBuf>,
    /// EAP-TLS: our certificate (PEM, end entity first).
    #[arg(long)]
    cert: Option<PathBuf>,
    /// EAP-TLS: our private key (PEM).
    #[arg(long)]
    key: Option<PathBuf>,
    /// EAP-TLS: the trust anchors for the other side's certificate (PEM).
    #[arg(long)]
    ca: Option<PathBuf>,
    /// EAP-TLS: the versions allowed.
    #[arg(long, value_enum, default_value = "both")]
    tls_version: TlsVersionArg,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 30)]
    timeout_secs: u64,
}

#[derive(Debug, Args)]
struct AuthArgs {
    #[command(flatten)]
    common: Common,
    /// EAP-PSK / EAP-pwd: the peer's identity (ID_P, PWD-ID) that the key belongs to.
    #[arg(long)]
    identity: Option<String>,
    /// EAP-PSK / EAP-pwd: our identity (ID_S, PWD-ID).
    #[arg(long, default_value = "eapol-wired")]
    server_id: String,
    /// EAP-TLS: do not require the peer's certificate to carry its EAP identity.
    #[arg(long)]
    no_identity_check: bool,
    /// Seconds before an EAP Request is retransmitted.
    #[arg(long, default_value_t = 3)]
    retransmit_secs: u64,
}

#[derive(Debug, Args)]
struct SuppArgs {
    #[command(flatten)]
    common: Common,
    /// Our identity (the Identity Response; EAP-PSK's ID_P, EAP-pwd's peer PWD-ID).
    #[arg(long)]
    identity: String,
    /// EAP-TLS: the name the server's certificate must carry.
    #[arg(long)]
    server_name: Option<String>,
    /// Seconds between EAPOL-Starts while no authenticator answers.
    #[arg(long, default_value_t = 3)]
    start_period_secs: u64,
}

fn read(path: &Option<PathBuf>, what: &str) -> anyhow::Result<Vec<u8>> {
    let path = path
        .as_ref()
        .ok_or_else(|| anyhow!("--method tls needs --{what}"))?;
    std::fs::read(path).with_context(|| format!("--{what} {}", path.display()))
}

fn psk(c: &Common) -> anyhow::Result<Key128> {
    let text = match (&c.psk, &c.psk_file) {
        (Some(h), _) => h.clone(),
        (None, Some(f)) => {
            std::fs::read_to_string(f).with_context(|| format!("--psk-file {}", f.display()))?
        }
        (None, None) => bail!("--method psk needs --psk or --psk-file"),
    };
    let bytes = hex::decode(text.trim()).context("the PSK is not hex")?;
    let arr: [u8; 16] = bytes
        .try_into()
        .map_err(|b: Vec<u8>| anyhow!("the PSK must be 16 octets, not {}", b.len()))?;
    Ok(Key128::new(arr))
}

fn password(c: &Common) -> anyhow::Result<SecretBytes> {
    let text = match (&c.password, &c.password_file) {
        (Some(p), _) => p.clone(),
        (None, Some(f)) => {
            let t = std::fs::read_to_string(f)
                .with_context(|| format!("--password-file {}", f.display()))?;
            t.strip_suffix('\n').unwrap_or(&t).to_owned()
        }
        (None, None) => bail!("--method pwd needs --password or --password-file"),
    };
    if text.is_empty() {
        bail!("the password is empty");
    }
    Ok(SecretBytes::new(text.into_bytes()))
}

fn tls_config(c: &Common, own_required: bool) -> anyhow::Result<TlsConfig> {
    let ca = read(&c.ca, "ca")?;
    let mut config = if own_required || c.cert.is_some() {
        TlsConfig::from_pem(&read(&c.cert, "cert")?, &read(&c.key, "key")?, &ca)
    } else {
        TlsConfig::without_credentials(&ca)
    }
    .map_err(|e| anyhow!("TLS configuration: {e}"))?;
    config.versions = match c.tls_version {
        TlsVersionArg::V12 => TlsVersions::Tls12,
        TlsVersionArg::V13 => TlsVersions::Tls13,
        TlsVersionArg::Both => TlsVersions::Both,
    };
    Ok(config)
}

fn authenticator(a: &AuthArgs, link: &EapolLink) -> anyhow::Result<wired::Success> {
    let method: Box<dyn ServerMethod> = match a.common.method {
        Method::Psk => {
            let key = psk(&a.common)?;
            let id = a
                .identity
                .clone()
                .ok_or_else(|| anyhow!("--method psk needs --identity (the peer's ID_P)"))?
                .into_bytes();
            let store = move |id_p: &[u8]| (id_p == id.as_slice()).then(|| key.clone());
            Box::new(PskServer::new(
                a.server_id.as_bytes().to_vec(),
                Arc::new(store),
            ))
        }
        Method::Pwd => {
            let pw = password(&a.common)?;
            let id = a
                .identity
                .clone()
                .ok_or_else(|| anyhow!("--method pwd needs --identity (the peer's PWD-ID)"))?
                .into_bytes();
            let store = move |peer: &[u8]| (peer == id.as_slice()).then(|| pw.clone());
            Box::new(
                PwdServer::new(a.server_id.as_bytes().to_vec(), Arc::new(store))
                    .map_err(|e| anyhow!("EAP-pwd: {e}"))?,
            )
        }
        Method::Tls => {
            let ctx = TlsServerContext::new(&tls_config(&a.common, true)?)
                .map_err(|e| anyhow!("TLS context: {e}"))?;
            Box::new(if a.no_identity_check {
                TlsServer::new(&ctx)
            } else {
                TlsServer::expecting_identity(&ctx)
            })
        }
    };
    let config = AuthenticatorConfig {
        retransmit_timeout: KmpDuration::from_secs(a.retransmit_secs),
        ..AuthenticatorConfig::default()
    };
    let auth = Authenticator::new(config, vec![method], RngHandle::os());
    wired::run_authenticator(link, auth, Duration::from_secs(a.common.timeout_secs))
}

fn supplicant(s: &SuppArgs, link: &EapolLink) -> anyhow::Result<wired::Success> {
    let method: Box<dyn PeerMethod> = match s.common.method {
        Method::Psk => Box::new(PskPeer::new(
            s.identity.as_bytes().to_vec(),
            psk(&s.common)?,
        )),
        Method::Pwd => Box::new(
            PwdPeer::new(s.identity.as_bytes().to_vec(), password(&s.common)?)
                .map_err(|e| anyhow!("EAP-pwd: {e}"))?,
        ),
        Method::Tls => {
            let mut config = tls_config(&s.common, true)?;
            config.expected_peer_name = s.server_name.clone();
            let ctx = TlsPeerContext::new(&config).map_err(|e| anyhow!("TLS context: {e}"))?;
            Box::new(TlsPeer::new(&ctx))
        }
    };
    let limit = Duration::from_secs(s.common.timeout_secs);
    let mut config = PeerConfig::new(s.identity.as_bytes().to_vec());
    config.idle_timeout = Some(KmpDuration::from_secs(s.common.timeout_secs));
    // The peer's clock starts at the run's origin (run_supplicant counts from zero too).
    let peer = Peer::new(config, vec![method], RngHandle::os(), Instant::ZERO);
    wired::run_supplicant(
        link,
        peer,
        s.identity.as_bytes(),
        Duration::from_secs(s.start_period_secs.max(1)),
        limit,
    )
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    let (iface, role) = match &cli.role {
        Role::Authenticator(a) => (&a.common.iface, "authenticator"),
        Role::Supplicant(s) => (&s.common.iface, "supplicant"),
    };
    let link = EapolLink::open(iface)?;
    tracing::info!(
        "{role} on {} ({})",
        link.iface(),
        wired::format_mac(&link.mac())
    );
    let ok = match &cli.role {
        Role::Authenticator(a) => authenticator(a, &link)?,
        Role::Supplicant(s) => supplicant(s, &link)?,
    };
    println!("{}", ok.to_json(role));
    Ok(())
}

fn main() -> ExitCode {
    examples::init_logging();
    let cli = match examples::parse_args::<Cli>() {
        Ok(c) => c,
        Err(code) => return code,
    };
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("eapol-wired: {e:#}");
            ExitCode::from(1)
        }
    }
}
