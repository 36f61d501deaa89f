//! EAP-pwd in the PAEs, configured from the PAE TOML (`methods = ["pwd"]`, `[pwd]`): our
//! supplicant PAE against our authenticator PAE (KMP ID 1), then the 4-way handshake over the
//! PMK both derived; a wrong password fails both sides and caches nothing (the supplicant on
//! the server's confirm; the authenticator when its retransmissions of that confirm run out);
//! an unknown PWD-ID identity fails at the authenticator.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use kmp_api::session::{FailureReason, Outcome};
use kmp_mka::handshake::PmkCache;
use kmp_mka::pae::{PaeConfig, PaeFactory};
use support::{BR, NODE, both, check_joined, join};

const LIMIT: Duration = Duration::from_secs(20);

fn authenticator(extra: &str) -> PaeFactory {
    let c = PaeConfig::from_toml(&format!(
        "role = \"authenticator\"\nmethods = [\"pwd\"]\nretransmit_ms = 300\n\
         [pwd]\nid = \"br.pan.example\"\npassword = \"unused-default\"\n{extra}\
         [pwd.peers]\n\"node-2\" = \"dragonfly-password\"\n\"node-3\" = \"other\"\n"
    ))
    .unwrap();
    PaeFactory::new(c, PmkCache::new()).unwrap()
}

fn supplicant(id: &str, password: &str, extra: &str) -> PaeFactory {
    let c = PaeConfig::from_toml(&format!(
        "role = \"supplicant\"\nidentity = \"{id}\"\nmethods = [\"pwd\"]\nidle_timeout_secs = 5\n\
         [pwd]\nid = \"{id}\"\npassword = \"{password}\"\n{extra}"
    ))
    .unwrap();
    PaeFactory::new(c, PmkCache::new()).unwrap()
}

#[test]
fn pwd_join_then_four_way() {
    let (bf, nf) = (
        authenticator(""),
        supplicant("node-2", "dragonfly-password", ""),
    );
    let (br, node) = join(&bf, &nf, LIMIT, both);
    check_joined(&br, &node, bf.pmk_cache(), nf.pmk_cache());
}

#[test]
fn pwd_fragmented_both_ways() {
    // 40-octet fragments: the commits (97 octets) and the PWD-ID go in several messages.
    let (bf, nf) = (
        authenticator("fragment_size = 40\n"),
        supplicant("node-2", "dragonfly-password", "fragment_size = 40\n"),
    );
    let (br, node) = join(&bf, &nf, LIMIT, both);
    assert!(br.sent.len() > 6, "no fragments: {} frames", br.sent.len());
    check_joined(&br, &node, bf.pmk_cache(), nf.pmk_cache());
}

#[test]
fn wrong_pwd_password_fails_and_caches_nothing() {
    let (bf, nf) = (
        authenticator(""),
        supplicant("node-2", "not-the-password", ""),
    );
    let (br, node) = join(&bf, &nf, LIMIT, both);
    // The supplicant finds Confirm_s wrong and fails without answering (RFC 5931, as hostapd
    // and wpa_supplicant do): the authenticator runs out of retransmissions.
    assert!(
        matches!(
            br.outcomes.as_slice(),
            [Outcome::Failure(FailureReason::Timeout { .. })]
        ),
        "{br:?}"
    );
    assert_eq!(
        node.outcomes,
        vec![Outcome::Failure(FailureReason::AuthenticationFailed)],
        "{node:?}"
    );
    assert!(bf.pmk_cache().get(BR, NODE).is_none());
    assert!(nf.pmk_cache().get(NODE, BR).is_none());
}

#[test]
fn unknown_pwd_identity_fails() {
    let (bf, nf) = (
        authenticator(""),
        supplicant("node-9", "dragonfly-password", ""),
    );
    let (br, node) = join(&bf, &nf, LIMIT, both);
    assert_eq!(
        br.outcomes,
        vec![Outcome::Failure(FailureReason::AuthenticationFailed)]
    );
    assert!(
        matches!(node.outcomes.as_slice(), [Outcome::Failure(_)]),
        "{node:?}"
    );
    assert!(bf.pmk_cache().get(BR, NODE).is_none());
}
