//! Configuration of the 4-way and group-key handshakes (the `[kmp.ieee80211-4way]` and
//! `[kmp.ieee80211-group-key]` TOML sections; both take the same fields).

use serde::Deserialize;

use kmp_api::security::SecurityLevel;
use kmp_api::session::{SecretBytes, SessionError};
use kmp_api::time::Duration;

use super::cache::Gtk;
use super::keys::{DescriptorVersion, PMK_LEN};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGtk {
    key_hex: String,
    key_id: u8,
    #[serde(default)]
    lifetime_secs: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    pmk_hex: Option<String>,
    #[serde(default = "yes")]
    use_pmk_cache: bool,
    #[serde(default = "two")]
    descriptor_version: u8,
    #[serde(default = "default_retransmit_ms")]
    retransmit_ms: u64,
    #[serde(default = "default_max_retries")]
    max_retries: u32,
    #[serde(default = "yes")]
    backoff: bool,
    #[serde(default)]
    gtks: Vec<RawGtk>,
    #[serde(default)]
    pairwise_lifetime_secs: u64,
    #[serde(default)]
    gtk_lifetime_secs: u64,
    #[serde(default = "yes")]
    install_pairwise_key: bool,
    network_name: Option<String>,
    #[serde(default = "yes")]
    send_pmkid: bool,
    #[serde(default = "default_level")]
    min_security_level: u8,
}

fn yes() -> bool {
    true
}
fn two() -> u8 {
    2
}
fn default_retransmit_ms() -> u64 {
    1_000
}
fn default_max_retries() -> u32 {
    3
}
fn default_level() -> u8 {
    6
}

/// Validated configuration of both handshakes.
#[derive(Debug, Clone)]
pub struct HandshakeConfig {
    /// A configured PMK (PSK deployments, tests), used when the cache has none for the peer.
    pub pmk: Option<SecretBytes>,
    /// Whether to look the PMK up in the [`super::PmkCache`] first (default true).
    pub use_pmk_cache: bool,
    /// Key Descriptor Version (default 2, HMAC-SHA1-128 / AES key wrap, as Wi-SUN).
    pub descriptor_version: DescriptorVersion,
    /// Authenticator: wait for an answer this long before the first retransmission (default 1 s).
    pub retransmit: Duration,
    /// Authenticator: retransmissions of message 1/3 (group: 1) before giving up (default 3).
    pub max_retries: u32,
    /// Authenticator: double the wait after each retransmission (default true).
    pub backoff: bool,
    /// Authenticator: the initial GTK set (key IDs 0–3).
    pub gtks: Vec<Gtk>,
    /// Lifetime of the installed pairwise key (`None` = until removed).
    pub pairwise_lifetime: Option<Duration>,
    /// Lifetime of installed GTKs when the message carries no Key Lifetime KDE.
    pub gtk_lifetime: Option<Duration>,
    /// Install the TK as a pairwise link key (default true; Wi-SUN itself uses only group keys).
    pub install_pairwise_key: bool,
    /// Wi-SUN network name: when set, group link keys are the GAKs derived from it and the GTK.
    pub network_name: Option<Vec<u8>>,
    /// Authenticator: send the PMKID KDE in message 1 (default true, as Wi-SUN).
    pub send_pmkid: bool,
    /// Lowest security level of frames under the installed keys (default 6, ENC-MIC-64).
    pub min_security_level: SecurityLevel,
}

fn bad(msg: impl Into<String>) -> SessionError {
    SessionError::Config(format!("802.11 handshake: {}", msg.into()))
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
        .collect()
}

impl HandshakeConfig {
    /// Defaults, with `pmk` as the configured PMK.
    pub fn with_pmk(pmk: Option<[u8; PMK_LEN]>) -> HandshakeConfig {
        HandshakeConfig {
            pmk: pmk.map(|p| SecretBytes::from_slice(&p)),
            use_pmk_cache: true,
            descriptor_version: DescriptorVersion::HmacSha1Aes,
            retransmit: Duration::from_millis(default_retransmit_ms()),
            max_retries: default_max_retries(),
            backoff: true,
            gtks: vec![],
            pairwise_lifetime: None,
            gtk_lifetime: None,
            install_pairwise_key: true,
            network_name: None,
            send_pmkid: true,
            min_security_level: SecurityLevel::EncMic64,
        }
    }

    /// Parses the TOML section. Errors name the offending field.
    pub fn from_toml(text: &str) -> Result<HandshakeConfig, SessionError> {
        let raw: Raw = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
        let pmk = match raw.pmk_hex {
            None => None,
            Some(h) => Some(SecretBytes::new(
                decode_hex(&h)
                    .filter(|p| p.len() == PMK_LEN)
                    .ok_or_else(|| bad("pmk_hex must be 64 hex digits"))?,
            )),
        };
        let descriptor_version = DescriptorVersion::from_u8(raw.descriptor_version)
            .ok_or_else(|| bad("descriptor_version must be 2 or 3"))?;
        if raw.retransmit_ms == 0 {
            return Err(bad("retransmit_ms must be positive"));
        }
        if raw.min_security_level > 7 {
            return Err(bad("min_security_level must be 0..=7"));
        }
        let mut gtks: Vec<Gtk> = vec![];
        for g in raw.gtks {
            let key = decode_hex(&g.key_hex)
                .filter(|k| k.len() == 16)
                .ok_or_else(|| bad("gtks.key_hex must be 32 hex digits"))?;
            if g.key_id > 3 || gtks.iter().any(|o| o.key_id == g.key_id) {
                return Err(bad(format!("gtks.key_id {} (0..=3, once each)", g.key_id)));
            }
            gtks.push(Gtk {
                key_id: g.key_id,
                key: SecretBytes::new(key),
                lifetime_secs: g.lifetime_secs,
            });
        }
        let secs = |s: u64| (s > 0).then(|| Duration::from_secs(s));
        Ok(HandshakeConfig {
            pmk,
            use_pmk_cache: raw.use_pmk_cache,
            descriptor_version,
            retransmit: Duration::from_millis(raw.retransmit_ms),
            max_retries: raw.max_retries,
            backoff: raw.backoff,
            gtks,
            pairwise_lifetime: secs(raw.pairwise_lifetime_secs),
            gtk_lifetime: secs(raw.gtk_lifetime_secs),
            install_pairwise_key: raw.install_pairwise_key,
            network_name: raw.network_name.map(String::into_bytes),
            send_pmkid: raw.send_pmkid,
            min_security_level: SecurityLevel::from_bits(raw.min_security_level),
        })
    }

    /// The wait before retransmission number `attempt + 1` (0-based `attempt`).
    pub fn retransmit_after(&self, attempt: u32) -> Duration {
        if self.backoff {
            self.retransmit.saturating_mul(1u64 << attempt.min(16))
        } else {
            self.retransmit
        }
    }

    /// How long a whole exchange may take on the authenticator's schedule: what a supplicant
    /// waits for the next message, and how long a finished supplicant answers retransmissions.
    pub fn exchange_window(&self) -> Duration {
        (0..=self.max_retries).fold(Duration::ZERO, |d, a| d + self.retransmit_after(a))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn parses_and_refuses() {
        let c = HandshakeConfig::from_toml(
            "pmk_hex = \"000102030405060708090a0b0c0d0e0f000102030405060708090a0b0c0d0e0f\"\n\
             retransmit_ms = 100\nmax_retries = 2\nnetwork_name = \"net\"\n\
             [[gtks]]\nkey_hex = \"00112233445566778899aabbccddeeff\"\nkey_id = 1\n",
        )
        .unwrap();
        assert_eq!(c.pmk.as_ref().unwrap().len(), 32);
        assert_eq!(c.gtks[0].key_id, 1);
        assert_eq!(c.retransmit_after(0), Duration::from_millis(100));
        assert_eq!(c.retransmit_after(2), Duration::from_millis(400));
        assert_eq!(c.exchange_window(), Duration::from_millis(700));
        assert!(!format!("{c:?}").contains("0011"));
        assert!(HandshakeConfig::from_toml("").unwrap().pmk.is_none());
        for bad in [
            "pmk_hex = \"00\"",
            "descriptor_version = 1",
            "retransmit_ms = 0",
            "min_security_level = 8",
            "surprise = 1",
            "[[gtks]]\nkey_hex = \"00\"\nkey_id = 0",
            "[[gtks]]\nkey_hex = \"00112233445566778899aabbccddeeff\"\nkey_id = 4",
        ] {
            assert!(HandshakeConfig::from_toml(bad).is_err(), "{bad:?}");
        }
    }
}
