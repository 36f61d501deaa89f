//! Configuration of the Dragonfly KMP (the `[kmp.dragonfly]` TOML section a product passes to
//! the registry's factory constructor).

use serde::Deserialize;

use kmp_api::security::SecurityLevel;
use kmp_api::session::SessionError;
use kmp_api::time::Duration;

use crate::group::GroupId;
use crate::pwe::{Profile, PweMethod};

/// A group key the responder hands to initiators after authentication (the 6TSCH broadcast
/// key requirement).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupKeyConfig {
    /// The 128-bit key, 32 hex digits.
    pub key_hex: String,
    /// The key index it is sent with (key identifier mode 1).
    pub key_index: u8,
    /// Lifetime in seconds (0 = none).
    #[serde(default)]
    pub lifetime_secs: u32,
}

/// The TOML form; see [`DragonflyConfig`] for the meaning of each field.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    password: Option<String>,
    password_hex: Option<String>,
    #[serde(default = "default_profile")]
    profile: String,
    #[serde(default = "default_method")]
    pwe: String,
    #[serde(default = "default_groups")]
    groups: Vec<u16>,
    #[serde(default = "default_retransmit_ms")]
    retransmit_ms: u64,
    #[serde(default = "default_max_retries")]
    max_retries: u32,
    #[serde(default = "default_anti_clogging")]
    anti_clogging_threshold: usize,
    #[serde(default)]
    key_lifetime_secs: u64,
    #[serde(default = "default_level")]
    min_security_level: u8,
    group_key: Option<GroupKeyConfig>,
    #[serde(default)]
    expect_group_key: bool,
}

fn default_profile() -> String {
    "ieee80211".into()
}
fn default_method() -> String {
    "hash-to-element".into()
}
fn default_groups() -> Vec<u16> {
    vec![19]
}
fn default_retransmit_ms() -> u64 {
    2_000
}
fn default_max_retries() -> u32 {
    3
}
fn default_anti_clogging() -> usize {
    16
}
fn default_level() -> u8 {
    6
}

/// Validated configuration.
#[derive(Clone)]
pub struct DragonflyConfig {
    /// The shared password or PSK.
    pub password: Vec<u8>,
    /// KDF / label flavour (default `ieee80211`).
    pub profile: Profile,
    /// Password element method (default hash-to-element).
    pub method: PweMethod,
    /// Groups in order of preference (default `[19]`).
    pub groups: Vec<GroupId>,
    /// Time to wait for an answer before sending again (default 2 s).
    pub retransmit: Duration,
    /// Retransmissions before giving up (default 3).
    pub max_retries: u32,
    /// Open responder sessions above which a commit must carry an anti-clogging token
    /// (default 16).
    pub anti_clogging_threshold: usize,
    /// Lifetime of the installed link key (`None` = until removed).
    pub key_lifetime: Option<Duration>,
    /// Lowest security level frames under the link key may use (default 6, ENC-MIC-64).
    pub min_security_level: SecurityLevel,
    /// Responder: the group key to deliver after authentication.
    pub group_key: Option<([u8; 16], u8, u32)>,
    /// Initiator: wait for a group key before reporting success.
    pub expect_group_key: bool,
}

impl core::fmt::Debug for DragonflyConfig {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DragonflyConfig")
            .field("profile", &self.profile)
            .field("method", &self.method)
            .field("groups", &self.groups)
            .field("retransmit", &self.retransmit)
            .field("max_retries", &self.max_retries)
            .field("anti_clogging_threshold", &self.anti_clogging_threshold)
            .field("group_key", &self.group_key.map(|(_, i, l)| (i, l)))
            .field("expect_group_key", &self.expect_group_key)
            .finish_non_exhaustive()
    }
}

impl Drop for DragonflyConfig {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.password);
        if let Some((k, _, _)) = &mut self.group_key {
            zeroize::Zeroize::zeroize(k);
        }
    }
}

fn bad(msg: impl Into<String>) -> SessionError {
    SessionError::Config(msg.into())
}

impl DragonflyConfig {
    /// Defaults with the given password.
    pub fn with_password(password: &[u8]) -> DragonflyConfig {
        DragonflyConfig {
            password: password.to_vec(),
            profile: Profile::Ieee80211,
            method: PweMethod::HashToElement,
            groups: vec![GroupId::P256],
            retransmit: Duration::from_millis(default_retransmit_ms()),
            max_retries: default_max_retries(),
            anti_clogging_threshold: default_anti_clogging(),
            key_lifetime: None,
            min_security_level: SecurityLevel::EncMic64,
            group_key: None,
            expect_group_key: false,
        }
    }

    /// Parses the TOML section. Errors name the offending field.
    pub fn from_toml(text: &str) -> Result<DragonflyConfig, SessionError> {
        let raw: Raw = toml::from_str(text).map_err(|e| bad(format!("dragonfly: {e}")))?;
        let password = match (raw.password, raw.password_hex) {
            (Some(p), None) => p.into_bytes(),
            (None, Some(h)) => {
                decode_hex(&h).ok_or_else(|| bad("dragonfly: password_hex is not hex"))?
            }
            _ => return Err(bad("dragonfly: set exactly one of password, password_hex")),
        };
        if password.is_empty() {
            return Err(bad("dragonfly: empty password"));
        }
        let profile = match raw.profile.as_str() {
            "ieee80211" => Profile::Ieee80211,
            "rfc7664" => Profile::Rfc7664,
            other => return Err(bad(format!("dragonfly: unknown profile {other:?}"))),
        };
        let method = match raw.pwe.as_str() {
            "hash-to-element" => PweMethod::HashToElement,
            "hunt-and-peck" => PweMethod::HuntAndPeck,
            other => return Err(bad(format!("dragonfly: unknown pwe method {other:?}"))),
        };
        let groups = raw
            .groups
            .iter()
            .map(|&g| GroupId::from_number(g).ok_or_else(|| bad(format!("dragonfly: group {g}"))))
            .collect::<Result<Vec<_>, _>>()?;
        if groups.is_empty() {
            return Err(bad("dragonfly: no groups"));
        }
        if raw.max_retries == 0 || raw.retransmit_ms == 0 {
            return Err(bad(
                "dragonfly: retransmit_ms and max_retries must be positive",
            ));
        }
        let group_key = match raw.group_key {
            None => None,
            Some(g) => {
                let k = decode_hex(&g.key_hex)
                    .and_then(|v| <[u8; 16]>::try_from(v.as_slice()).ok())
                    .ok_or_else(|| bad("dragonfly: group_key.key_hex must be 32 hex digits"))?;
                Some((k, g.key_index, g.lifetime_secs))
            }
        };
        if raw.min_security_level > 7 {
            return Err(bad("dragonfly: min_security_level must be 0..=7"));
        }
        Ok(DragonflyConfig {
            password,
            profile,
            method,
            groups,
            retransmit: Duration::from_millis(raw.retransmit_ms),
            max_retries: raw.max_retries,
            anti_clogging_threshold: raw.anti_clogging_threshold,
            key_lifetime: (raw.key_lifetime_secs > 0)
                .then(|| Duration::from_secs(raw.key_lifetime_secs)),
            min_security_level: SecurityLevel::from_bits(raw.min_security_level),
            group_key,
            expect_group_key: raw.expect_group_key,
        })
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        let c = DragonflyConfig::from_toml("password = \"secret\"\ngroups = [19, 20]").unwrap();
        assert_eq!(c.groups, vec![GroupId::P256, GroupId::P384]);
        assert_eq!(c.profile, Profile::Ieee80211);
        assert_eq!(c.method, PweMethod::HashToElement);
        assert!(!format!("{c:?}").contains("secret"));
        for bad in [
            "",
            "password = \"\"",
            "password = \"a\"\npassword_hex = \"00\"",
            "password_hex = \"zz\"",
            "password = \"a\"\ngroups = [22]",
            "password = \"a\"\ngroups = []",
            "password = \"a\"\nprofile = \"wpa3\"",
            "password = \"a\"\nunknown = 1",
            "password = \"a\"\n[group_key]\nkey_hex = \"00\"\nkey_index = 1",
        ] {
            assert!(DragonflyConfig::from_toml(bad).is_err(), "{bad:?}");
        }
        let g = DragonflyConfig::from_toml(
            "password = \"a\"\n[group_key]\nkey_hex = \"000102030405060708090a0b0c0d0e0f\"\nkey_index = 2",
        )
        .unwrap();
        assert_eq!(g.group_key.map(|(_, i, _)| i), Some(2));
    }
}
