//! Commit, key schedule and confirm of the Dragonfly exchange, and the crate's error type.
//!
//! # Commit (both profiles; 802.11-2020 12.4.5.3, RFC 7664 §3.3)
//!
//! `rand` and `mask` are random in `1..q`; `scalar = (rand + mask) mod q` must be `> 1`
//! (otherwise new values are drawn); `element = -(mask * PWE)`. On the wire the scalar is
//! big-endian in [`Group::scalar_len`] octets and the element is `x || y`.
//!
//! # Keys, [`Profile::Ieee80211`] (hostapd `sae_derive_keys`)
//!
//! - `K = rand * (peer_scalar * PWE + peer_element)`, rejected if it is the point at infinity;
//!   `k = x(K)` in `len(p)` octets.
//! - `H` is SHA-256 after hunting-and-pecking, for every group (hostapd: the pre-H2E key
//!   schedule is fixed to SHA-256), and the group's hash (SHA-256/384/512 for groups
//!   19/20/21, 802.11-2020 Table 12-1) after hash-to-element.
//! - `keyseed = HMAC-H(0^len(H), k)`;
//!   `KCK || PMK = KDF-H(keyseed, "SAE KCK and PMK", (scalar + peer_scalar) mod q)` with the
//!   sum in `len(q)` octets, KCK `len(H)` octets, PMK 32 octets;
//!   `PMKID` = the first 16 octets of the sum.
//! - `confirm = HMAC-H(KCK, send_confirm (LE16) || scalar || element || peer_scalar ||
//!   peer_element)`, `H` chosen by the KCK length.
//!
//! # Keys, [`Profile::Rfc7664`] (RFC 7664 §3.3–3.4 with these choices)
//!
//! - `H` is the group's hash (SHA-256/384/512); the KDF is the 802.11 KDF encoding
//!   (`HMAC(key, i LE16 || label || context || L LE16)`).
//! - `ss = x(rand * (peer_scalar * PE + peer_element))` (the RFC's `F`), used as the KDF key
//!   directly (no keyseed step; the RFC has none).
//! - `kck || mk = KDF-H(ss, "Dragonfly Key Derivation", (scalar + peer_scalar) mod q)`, each
//!   `len(H)` octets; [`SessionKeys::pmk`] is `mk`.
//! - `PMKID` = the first 16 octets of `(scalar + peer_scalar) mod q`, as in SAE.
//! - `confirm = HMAC-H(kck, send_confirm (LE16) || scalar || peer_scalar || element ||
//!   peer_element)`: the RFC's order of the four values, but an HMAC keyed with `kck` instead
//!   of `H(kck || …)`, with the send-confirm counter of 802.11 in front, and without the
//!   RFC's `sender-id`: each side puts its own values first, so the two confirms differ and a
//!   reflected confirm fails without naming the sender.

use std::fmt;

use kmp_api::crypto::{CryptoError, SecretBytes, ct_eq};
use kmp_api::rng::{RngError, RngHandle};
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::EcPoint;
use zeroize::Zeroizing;

use crate::group::{Group, HashAlg};
use crate::pwe::{PasswordElement, Profile, PweMethod};

/// What can go wrong in the Dragonfly math.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DragonflyError {
    /// The group number is not 19, 20 or 21 (or a value belongs to another group).
    #[error("unsupported group {0}")]
    UnsupportedGroup(u16),
    /// A scalar is not `1 < s < q`, or has the wrong length.
    #[error("invalid scalar")]
    InvalidScalar,
    /// An element has the wrong length, a coordinate `>= p`, is not on the curve, or a derived
    /// point is the point at infinity.
    #[error("invalid element")]
    InvalidElement,
    /// The peer's commit repeats our own scalar or element (a reflection attack).
    #[error("reflected commit")]
    ReflectedCommit,
    /// The peer's confirm does not verify (wrong password, or tampering).
    #[error("confirm mismatch")]
    ConfirmMismatch,
    /// Hunting-and-pecking found no password element in `MAX_ITERATIONS` rounds.
    #[error("password element not found")]
    PweNotFound,
    /// A combination of options the standards do not define.
    #[error("unsupported: {0}")]
    Unsupported(&'static str),
    /// A kmp-api crypto primitive failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The random source failed.
    #[error(transparent)]
    Rng(#[from] RngError),
    /// OpenSSL failed.
    #[error("openssl: {0}")]
    Library(String),
}

impl From<openssl::error::ErrorStack> for DragonflyError {
    fn from(e: openssl::error::ErrorStack) -> Self {
        DragonflyError::Library(e.to_string())
    }
}

/// Our secret of one commit: `rand` ([`Group::scalar_len`] octets), which the key derivation
/// needs. `mask` is only needed to compute the commit element and is wiped right after, so it
/// is not kept. Zeroized when dropped; `Debug` hides it.
pub struct CommitSecrets {
    rand: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for CommitSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CommitSecrets(..)")
    }
}

/// A commit as it goes on the wire: the scalar (big-endian, [`Group::scalar_len`] octets) and
/// the element (`x || y`, [`Group::element_len`] octets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    /// The commit scalar.
    pub scalar: Vec<u8>,
    /// The commit element.
    pub element: Vec<u8>,
}

impl Commit {
    /// `scalar || element`, the commit as 802.11 carries it after the group number (and any
    /// anti-clogging token).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.scalar.len() + self.element.len());
        v.extend_from_slice(&self.scalar);
        v.extend_from_slice(&self.element);
        v
    }

    /// Splits `scalar || element` of exactly [`Group::scalar_len`] +
    /// [`Group::element_len`] octets; the values are checked by [`check_peer_commit`], not here.
    pub fn from_bytes(group: &Group, bytes: &[u8]) -> Result<Commit, DragonflyError> {
        if bytes.len() != group.scalar_len() + group.element_len() {
            return Err(DragonflyError::InvalidElement);
        }
        let (scalar, element) = bytes.split_at(group.scalar_len());
        Ok(Commit {
            scalar: scalar.to_vec(),
            element: element.to_vec(),
        })
    }
}

/// The keys of a completed exchange.
#[derive(Debug)]
pub struct SessionKeys {
    /// The key confirmation key (32, 48 or 64 octets: the length of the hash).
    pub kck: SecretBytes,
    /// The pairwise master key: SAE's PMK (32 octets), or RFC 7664's `mk` (hash length).
    pub pmk: SecretBytes,
    /// The PMK identifier: the first 16 octets of `(scalar + peer_scalar) mod q`.
    pub pmkid: [u8; 16],
}

/// Draws `rand` and `mask` from `rng` and computes our commit, drawing again while the scalar
/// would be 0 or 1.
pub fn generate_commit(
    group: &Group,
    pwe: &PasswordElement,
    rng: &RngHandle,
) -> Result<(CommitSecrets, Commit), DragonflyError> {
    for _ in 0..100 {
        let mut rand = Group::random_below(group.q(), rng)?;
        let mut mask = Group::random_below(group.q(), rng)?;
        let r = group.scalar_bytes(&rand)?;
        let m = group.scalar_bytes(&mask)?;
        rand.clear();
        mask.clear();
        match commit_from(group, pwe, &r, &m) {
            Err(DragonflyError::InvalidScalar) => continue,
            other => return other,
        }
    }
    Err(DragonflyError::InvalidScalar)
}

/// Computes the commit for given `rand` and `mask` (big-endian, any length, each in `1..q`),
/// for known-answer tests. Fails with [`DragonflyError::InvalidScalar`] if either is out of
/// range or `(rand + mask) mod q <= 1`.
pub fn commit_from(
    group: &Group,
    pwe: &PasswordElement,
    rand: &[u8],
    mask: &[u8],
) -> Result<(CommitSecrets, Commit), DragonflyError> {
    let mut ctx = BigNumContext::new()?;
    let mut r = BigNum::from_slice(rand)?;
    let mut m = BigNum::from_slice(mask)?;
    r.set_const_time();
    m.set_const_time();
    let in_range = |x: &BigNum| x.num_bits() > 0 && x.ucmp(group.q()).is_lt();
    if !in_range(&r) || !in_range(&m) {
        return Err(DragonflyError::InvalidScalar);
    }
    let mut scalar = BigNum::new()?;
    scalar.mod_add(&r, &m, group.q(), &mut ctx)?;
    if scalar.num_bits() <= 1 {
        return Err(DragonflyError::InvalidScalar);
    }
    let base = pwe.point(group, &mut ctx)?;
    let mut element = EcPoint::new(group.ec())?;
    element.mul2(group.ec(), &base, &m, &mut ctx)?;
    element.invert2(group.ec(), &mut ctx)?;
    let commit = Commit {
        scalar: group.scalar_bytes(&scalar)?.to_vec(),
        element: group.element_bytes(&element, &mut ctx)?.to_vec(),
    };
    let secrets = CommitSecrets {
        rand: group.scalar_bytes(&r)?,
    };
    r.clear();
    m.clear();
    Ok((secrets, commit))
}

/// Validates the peer's commit (802.11-2020 12.4.5.4, RFC 7664 §3.3): `1 < scalar < q` in
/// exactly [`Group::scalar_len`] octets; the element exactly [`Group::element_len`] octets with
/// both coordinates `< p` and on the curve (the point at infinity has no such encoding); and
/// neither the scalar nor the element equal to our own (a reflection).
pub fn check_peer_commit(group: &Group, own: &Commit, peer: &Commit) -> Result<(), DragonflyError> {
    let mut ctx = BigNumContext::new()?;
    group.parse_scalar(&peer.scalar)?;
    group.parse_element(&peer.element, &mut ctx)?;
    if peer.scalar == own.scalar || peer.element == own.element {
        return Err(DragonflyError::ReflectedCommit);
    }
    Ok(())
}

/// A secret octet string, wiped on drop.
pub type Secret = Zeroizing<Vec<u8>>;

/// The shared secret of the exchange, after checking the peer's commit ([`check_peer_commit`]):
/// `k = x(rand * (peer_scalar * PWE + peer_element))`, `len(p)` octets, and
/// `(scalar + peer_scalar) mod q`, `len(q)` octets. [`DragonflyError::InvalidElement`] if the
/// shared point is the point at infinity. [`derive_keys`] builds on it; Dragonfly variants with
/// their own key schedule (EAP-pwd, RFC 5931 §2.8.4) use it directly.
pub fn shared_secret(
    group: &Group,
    pwe: &PasswordElement,
    secrets: &CommitSecrets,
    own: &Commit,
    peer: &Commit,
) -> Result<(Secret, Secret), DragonflyError> {
    check_peer_commit(group, own, peer)?;
    let mut ctx = BigNumContext::new()?;
    let own_scalar = group.parse_scalar(&own.scalar)?;
    let peer_scalar = group.parse_scalar(&peer.scalar)?;
    let peer_element = group.parse_element(&peer.element, &mut ctx)?;
    let base = pwe.point(group, &mut ctx)?;
    let mut rand = BigNum::from_slice(&secrets.rand)?;
    rand.set_const_time();
    let mut t = EcPoint::new(group.ec())?;
    t.mul2(group.ec(), &base, &peer_scalar, &mut ctx)?;
    let mut sum_point = EcPoint::new(group.ec())?;
    sum_point.add(group.ec(), &t, &peer_element, &mut ctx)?;
    let mut k_point = EcPoint::new(group.ec())?;
    k_point.mul2(group.ec(), &sum_point, &rand, &mut ctx)?;
    rand.clear();
    let kxy = group.element_bytes(&k_point, &mut ctx)?;
    let k = Zeroizing::new(kxy[..group.prime_len()].to_vec());
    let mut sum = BigNum::new()?;
    sum.mod_add(&own_scalar, &peer_scalar, group.q(), &mut ctx)?;
    let sum = group.scalar_bytes(&sum)?;
    Ok((k, sum))
}

/// Derives KCK, PMK and PMKID from our secrets and both commits (checking the peer's commit
/// first, see [`check_peer_commit`]). See the module documentation for each profile's
/// construction. [`DragonflyError::InvalidElement`] if the shared point is the point at
/// infinity.
pub fn derive_keys(
    group: &Group,
    profile: Profile,
    pwe: &PasswordElement,
    secrets: &CommitSecrets,
    own: &Commit,
    peer: &Commit,
) -> Result<SessionKeys, DragonflyError> {
    let (k, sum) = shared_secret(group, pwe, secrets, own, peer)?;
    let mut pmkid = [0u8; 16];
    pmkid.copy_from_slice(&sum[..16]);
    let (kck, pmk) = match profile {
        Profile::Ieee80211 => {
            let hash = match pwe.method() {
                PweMethod::HuntAndPeck => HashAlg::Sha256,
                PweMethod::HashToElement => group.hash(),
            };
            let hlen = hash.len();
            let keyseed = hash.hmac(&vec![0u8; hlen], &[&k])?;
            let keys = hash.kdf(&keyseed, b"SAE KCK and PMK", &sum, (hlen + 32) * 8)?;
            (
                SecretBytes::from_slice(&keys[..hlen]),
                SecretBytes::from_slice(&keys[hlen..hlen + 32]),
            )
        }
        Profile::Rfc7664 => {
            let hash = group.hash();
            let hlen = hash.len();
            let keys = hash.kdf(&k, b"Dragonfly Key Derivation", &sum, 2 * hlen * 8)?;
            (
                SecretBytes::from_slice(&keys[..hlen]),
                SecretBytes::from_slice(&keys[hlen..]),
            )
        }
    };
    Ok(SessionKeys { kck, pmk, pmkid })
}

/// Our confirm value with counter `send_confirm` (see the module documentation for the
/// construction per profile). The HMAC hash is chosen by the KCK length (32, 48, 64 octets);
/// any other length is [`CryptoError::KeyLength`].
pub fn confirm(
    group: &Group,
    profile: Profile,
    kck: &[u8],
    send_confirm: u16,
    own: &Commit,
    peer: &Commit,
) -> Result<Vec<u8>, DragonflyError> {
    let hash = HashAlg::from_len(kck.len()).ok_or(CryptoError::KeyLength(kck.len()))?;
    for c in [own, peer] {
        if c.scalar.len() != group.scalar_len() {
            return Err(DragonflyError::InvalidScalar);
        }
        if c.element.len() != group.element_len() {
            return Err(DragonflyError::InvalidElement);
        }
    }
    let sc = send_confirm.to_le_bytes();
    let mac = match profile {
        Profile::Ieee80211 => hash.hmac(
            kck,
            &[&sc, &own.scalar, &own.element, &peer.scalar, &peer.element],
        )?,
        Profile::Rfc7664 => hash.hmac(
            kck,
            &[&sc, &own.scalar, &peer.scalar, &own.element, &peer.element],
        )?,
    };
    Ok(mac.to_vec())
}

/// Checks the peer's confirm `received` (sent with the peer's counter `peer_send_confirm`) in
/// constant time; [`DragonflyError::ConfirmMismatch`] if it is wrong.
pub fn verify_confirm(
    group: &Group,
    profile: Profile,
    kck: &[u8],
    peer_send_confirm: u16,
    own: &Commit,
    peer: &Commit,
    received: &[u8],
) -> Result<(), DragonflyError> {
    let expected = confirm(group, profile, kck, peer_send_confirm, peer, own)?;
    if ct_eq(&expected, received) {
        Ok(())
    } else {
        Err(DragonflyError::ConfirmMismatch)
    }
}

/// Label of the 802.15.4 link key derived from the PMK (project-defined; docs/DECISIONS.md D8).
const LINK_KEY_LABEL: &[u8] = b"IEEE 802.15.9 Dragonfly link key";
/// Label of the key-encryption key for group key delivery (docs/DECISIONS.md D9).
const KEK_LABEL: &[u8] = b"IEEE 802.15.9 Dragonfly group KEK";

/// The 128-bit 802.15.4 link key a finished exchange installs:
/// HMAC-SHA-256(PMK, "IEEE 802.15.9 Dragonfly link key" ‖ initiator id ‖ responder id)[0..16].
pub fn link_key(
    keys: &SessionKeys,
    initiator: &[u8],
    responder: &[u8],
) -> Result<SecretBytes, DragonflyError> {
    let h = kmp_api::crypto::hmac::hmac_sha256_parts(
        keys.pmk.expose(),
        &[LINK_KEY_LABEL, initiator, responder],
    )?;
    let key = SecretBytes::from_slice(&h[..16]);
    drop(Zeroizing::new(h));
    Ok(key)
}

/// The key-encryption key of group key delivery: HMAC-SHA-256(KCK, "IEEE 802.15.9 Dragonfly
/// group KEK")[0..16].
pub fn group_kek(keys: &SessionKeys) -> Result<kmp_api::crypto::Key128, DragonflyError> {
    let h = Zeroizing::new(kmp_api::crypto::hmac::hmac_sha256(
        keys.kck.expose(),
        KEK_LABEL,
    )?);
    let mut k = [0u8; 16];
    k.copy_from_slice(&h[..16]);
    let key = kmp_api::crypto::Key128::new(k);
    zeroize::Zeroize::zeroize(&mut k);
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::GroupId;
    use crate::pwe::{MIN_ITERATIONS, derive_pwe};

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s.replace([' ', '\n'], "")).unwrap()
    }

    /// Splits an 802.11 commit body `group (LE16) || scalar || x || y`.
    fn commit_body(body: &[u8]) -> Commit {
        assert_eq!(&body[..2], &[0x13, 0x00]);
        Commit {
            scalar: body[2..34].to_vec(),
            element: body[34..].to_vec(),
        }
    }

    // IEEE 802.11-2020 Annex J.10, as in hostap src/common/common_module_tests.c `sae_tests`
    // and spec §8.5 (k, keyseed and the confirm re-derived there).
    #[test]
    fn sae_known_answer_j10() {
        let g = Group::new(GroupId::P256).unwrap();
        let pwe = derive_pwe(
            &g,
            Profile::Ieee80211,
            PweMethod::HuntAndPeck,
            b"mekmitasdigoat",
            &h("4d3f2fffe387"),
            &h("a5d8aa958e3c"),
            None,
        )
        .unwrap();
        assert!(pwe.iterations() >= MIN_ITERATIONS);
        let (secrets, own) = commit_from(
            &g,
            &pwe,
            &h("992465fd3daa3c60aa6565b7f62a2a7f2e12dd12f198faf4fbed89d7ff1ace94"),
            &h("9507a90f777a044d6a0830b91ea3d5dd70bece44e1acffb86983b5e1bf9fb322"),
        )
        .unwrap();
        assert_eq!(
            own,
            commit_body(&h(
                "1300 2e2c0f0db52440ad146d967114ce005ce1eab0aa2c2e5c2871b774f6c2575c65
                 d5ad9e00829707aa36ba8b859738fc961d08243505f47c035376d7ac4bc8d7b9
                 5083bf43827d0fc31ed778dd3671fd21a46d1091d64b6f9a1e1272621325dbe1"
            ))
        );
        let peer = commit_body(&h(
            "1300 591b96f3397fb945100848e7b550543b6720d88337ee93fc49fd6df7e08b5223
             e71b9bb048d3873f20556953a96c91536fd8ee6ca9b4a68a148b056a909be03e
             83ae208f60f8ef5537858074db06687032399862999b511e0a1552a5fea317c2",
        ));
        check_peer_commit(&g, &own, &peer).unwrap();
        assert_eq!(Commit::from_bytes(&g, &peer.to_bytes()).unwrap(), peer);
        assert!(Commit::from_bytes(&g, &peer.to_bytes()[1..]).is_err());
        let (k, _) = shared_secret(&g, &pwe, &secrets, &own, &peer).unwrap();
        assert_eq!(
            hex::encode(&*k),
            "189f666f3181b4a1701c2bf7d34d644e66b5a104acb99adf25f3d48b878c081f"
        );
        let keys = derive_keys(&g, Profile::Ieee80211, &pwe, &secrets, &own, &peer).unwrap();
        assert_eq!(
            hex::encode(keys.kck.expose()),
            "1e733f6d9bd53256287304338831b09a39406d121017073a5c30db36f36cb81a"
        );
        assert_eq!(
            hex::encode(keys.pmk.expose()),
            "4e4dfab1a2dd8ac1a91790f953faaa452ae5c6873ab75b63605ba663f8a7fe59"
        );
        assert_eq!(hex::encode(keys.pmkid), "8747a600eea3f9f22475df58ca1e5498");
        let c = confirm(&g, Profile::Ieee80211, keys.kck.expose(), 1, &own, &peer).unwrap();
        assert_eq!(
            hex::encode(&c),
            "b6dec375e4522d27520827d0933cdde7ad3caf3771e4b00702ba4332797fba59"
        );
        assert!(!format!("{secrets:?} {keys:?}").contains("1e733f"));
    }

    struct ModelVector {
        group: GroupId,
        profile: Profile,
        rand_a: &'static str,
        mask_a: &'static str,
        rand_b: &'static str,
        mask_b: &'static str,
        pwe: &'static str,
        scalar_a: &'static str,
        element_a: &'static str,
        element_b: &'static str,
        kck: &'static str,
        pmk: &'static str,
        pmkid: &'static str,
        confirm_a: &'static str,
    }

    // Cross-checks against an independent, deliberately plain Python model (variable-time
    // big-integer arithmetic, written from the formulas in the module docs and checked by
    // itself against 802.11-2020 J.10 first). No public vectors exist for groups 20/21
    // hunting-and-pecking or for the RFC 7664 profile, so these are computed here.
    // Identities 0011223344556677 / 8899aabbccddeeff, password "dragonfly 802.15.9".
    const MODEL_VECTORS: &[ModelVector] = &[
        ModelVector {
            group: GroupId::P384,
            profile: Profile::Ieee80211,
            rand_a: "22b5ee00cbfeddba6e45b6c131e857f270e89b4275da9127a24af6b9f5ead544\
                8706bbece865eb4ec6cb740416d2988f",
            mask_a: "0c56bed47f217e2e53faae168ef1ba7e49d83747a1cec049ddb3c28893752211\
                15b9365d2aab0a35b9e099e571dbb438",
            rand_b: "5474dcedd1f04c632580caa15488c2ed029318851251cca48a518ed5e876212b\
                d14df8736de51ac1553929459fadc88d",
            mask_b: "f0fa5ccb794e5f8f494477f0a7239a318fd2f77865486edabc5fa7c56876b08b\
                b04da43f702e8ea815ea7efc0fb0eeed",
            pwe: "9bab1d30de43d79251daeaed758327776ba429f355055e7d734f53e859f2cfc2\
                d29686c3e29ae816d09bfc84e63cf77275f4d9d1e6b6875a2ccbbb0fdbd5bd3c\
                40fcf41b4aa74a99cfac2e14442d9ac57995d1eb5511f3bfe70bbe975c93d7fa",
            scalar_a: "2f0cacd54b205be8c24064d7c0da1270bac0d28a17a951717ffeb942895ff755\
                9cbff24a1310f58480ac0de988ae4cc7",
            element_a: "7eb08a582d2b0225c15a067ce8effc275b90d59baca8e17cfe1727d70d68f329\
                b9d7ce16395178896588a3cf4686a9e376e4bf714dd7db0e02c02b81e3e44cee\
                7f2d030b3b3be7a52ca17edeaf2a9ca7481ca13c24619df8faef59360633dcb7",
            element_b: "893d104dc45817e92117f622c7d1127331b2a4bb8c03f6fe964781dec60ce1de\
                429d17c1c1171d6eda344c4d74bb595234d9464f60fb1af891bf3a36ef4c38fd\
                5c79a5c6697dbfabe9c8d7c290172115876ede3f16e6766c38e45fffd493b75a",
            kck: "6d741adba1233fd0777221ba8704d8ba6f10a8300c728fc37874dd6a4586de76",
            pmk: "19a58e79293493365045b95c1d7631ad9c64b4c05b8b7839977a6c4dd4f0e6f9",
            pmkid: "747be68e965f07db3105a769bc866f8f",
            confirm_a: "0997f8dc79809292220972b79ac2cfaf4535bbc793bb90c90ed6ff061005c56c",
        },
        ModelVector {
            group: GroupId::P521,
            profile: Profile::Ieee80211,
            rand_a: "01ceb4ffdaf3d8e91422ae338f3ae80d4068ad8d6c529fd8df04c69975ba3676\
                38750517591a3e53fb8ad66c6ca5d565789197be573389211f2825e0931373e8\
                a4a1",
            mask_a: "003df33e700ef85fddd4b9323b1ab20d1491d954960948a8290efb131ed78324\
                4d089b9ee88220a6eb50f40fc804fbda876ea8a12fa97c2654691cade2720a11\
                a420",
            rand_b: "01665729f7b6be84dec97ce49c4c953b6e97bec581ae15ca1a4dff30a86c087f\
                a1edb1ec5f8bac8320bffae44472f93194ced27f015f24ebae36cb48719b056e\
                8449",
            mask_b: "01bff5ee6c5932909dfb3faf7b6388fd97fe3a3b44f29fb9ce805ca4acdcb882\
                753c01e6cd376bb160f6ba1b0af9809d1fd894c18cff8fdbd48db63ab74273ae\
                1045",
            pwe: "011054aa78cdd3ba0b5a874ce96ea9e93e84003b9565e7b782deea534edd4b80\
                6b21ed52d1223a4f43669f01da075c2f007c59bea6157fc59fa553e4dd6f9fb6\
                ad0f005cb818f3f5a0dbf9f77f4c8b154c7be3a77a930d79b1a5befafd2b8ce0\
                8279d92cde2585a5c9c787b242a17dc2bf3335e5161b6b77ef49d81ef48c152d\
                9a8fc2c1",
            scalar_a: "000ca83e4b02d148f1f76765ca559a1a54fa86e2025be8810813c1ac9491b99a\
                85834f2fba189fcb50704ab03361da365a3004a9bd247bab2be2871ebe66ecc1\
                e4b8",
            element_a: "01d246f280bb74201acf2f819b1d96d1ef504cf87d89a6c8b644a0a4d741739f\
                faed42f99434559399088ef76663c1dbd7b3bd91e620aae8bfd5d517abdebb4d\
                7b0c00ad64c546ea8d12d4fbfb091616014810e9ab1f54da5a3f89088120d8d2\
                ecfed481f193c5e33c5e059b51da7d38602fc189288360b2a699ff78cbec1e31\
                5d1dc08e",
            element_b: "001dd676a476d4fed77e2ca8036016f10ae8bb5bf0f9746562178af2d1194854\
                87601cd89ae984bd1c473960ce45a2ee2b29710ad45f718946a36396fa38110c\
                2f1401b63124c55ff41b96d94ad44a9bf1d12a5ee5bd086eef217d28e95a6da3\
                3d624c88f91557d7ee3f7c127f4f56fc053f02f2f398668d4910d2540dc2d15d\
                e3bcbacb",
            kck: "4826d7c77bcab7a1393964187ddbbcfda4470e044fea252d4f225bab676a613a",
            pmk: "ea12a97bbf775047d35b1e430ce394fbd28c34623565410a85adbb183675a962",
            pmkid: "0132f556af12c25e6ebc23f9e205b853",
            confirm_a: "a64c4e43057782cbec6714a37d5adaf10449ad6c6a2abdb574ef2d943c0f153d",
        },
        ModelVector {
            group: GroupId::P256,
            profile: Profile::Rfc7664,
            rand_a: "87db71af54d8e63cb5a25af55f863cbd11179918d5a30300da80fc770b6698cd",
            mask_a: "1d1f8a7504d99093295d73fbc5a6b4a7933c5736b59c68ead611a93260145b15",
            rand_b: "5f944db4c98c80b2373c44cffacbb80702a3db6b6f331832e984155ad84e42f7",
            mask_b: "4e9a5e506bf494def1154d91b979683319335bb3a5c6de702ca0a02f5e2a1ca3",
            pwe: "de9871ad786a1aebb4d96c94682209bd0546f60faeaad58550cbf53cb73ebeb4\
                b21701df40a8bc709b832cd6d1751a5c2a3453a2bf15fb939666c3fea5a05dce",
            scalar_a: "a4fafc2459b276cfdeffcef1252cf164a453f04f8b3f6bebb092a5a96b7af3e2",
            element_a: "377ef829f9fd00df8930bfac107d13444ecd0308633984f484ec14c82e406ceb\
                dd042183f0ba3d1678d54d61af72b0d3f9af03e55dac2079836bb478f3873a83",
            element_b: "49100bbb7ba5cc4786e4025271445b3a170b37e9d05fc27e7ed93ba8228edb58\
                eabb45f1930013ecf68e7f4ea9fa665935a272b9e79a645f9d55d4d4fb685242",
            kck: "4ebb5bfebb7385d21e02442a7a637a0405147dbb0eaa652591e6e40b404f620d",
            pmk: "84d12842a86c3deee71b89ae33b5a2e34b53569c3b1db7ffc2f9f3572b9e13bc",
            pmkid: "5329a82a8f338c6007516152d972119f",
            confirm_a: "5b491cb00c01f24f33f161d15bff4eaa58914bca220cb7e57cd51566de0aeb92",
        },
        ModelVector {
            group: GroupId::P521,
            profile: Profile::Rfc7664,
            rand_a: "01ceb4ffdaf3d8e91422ae338f3ae80d4068ad8d6c529fd8df04c69975ba3676\
                38750517591a3e53fb8ad66c6ca5d565789197be573389211f2825e0931373e8\
                a4a1",
            mask_a: "003df33e700ef85fddd4b9323b1ab20d1491d954960948a8290efb131ed78324\
                4d089b9ee88220a6eb50f40fc804fbda876ea8a12fa97c2654691cade2720a11\
                a420",
            rand_b: "01665729f7b6be84dec97ce49c4c953b6e97bec581ae15ca1a4dff30a86c087f\
                a1edb1ec5f8bac8320bffae44472f93194ced27f015f24ebae36cb48719b056e\
                8449",
            mask_b: "01bff5ee6c5932909dfb3faf7b6388fd97fe3a3b44f29fb9ce805ca4acdcb882\
                753c01e6cd376bb160f6ba1b0af9809d1fd894c18cff8fdbd48db63ab74273ae\
                1045",
            pwe: "00cbdb750d06b0fd3809420302e09d33e262f5f2b76777e73c93f81dd9ab8d94\
                7eedc919e16b7a7fc4a8a769e59351a67a23f32935a24156dbddf59fed8a09de\
                f3a80015ef46be75b470b78049f953f63d5762644cae32417af6b37435e79877\
                e02196a11955376609d0e51f528537ec7e7a275f0ec8ec34c261296371b7e88e\
                4199f494",
            scalar_a: "000ca83e4b02d148f1f76765ca559a1a54fa86e2025be8810813c1ac9491b99a\
                85834f2fba189fcb50704ab03361da365a3004a9bd247bab2be2871ebe66ecc1\
                e4b8",
            element_a: "00a755b4ad5cbff48a192b6c146ae0f5430abbcb710213961757127788992a76\
                17053a7cf5aa3b5b44d279ea15f7c57ffd878d0e270cb81bb2557f9f98f0d890\
                eba9008d2157dcdb54c1a3d743c1cf0c1241714420494cfe5619fd0a9ac48c42\
                43f353ecce2cdf48ac3f0ddd99c507eb846d85bccdf15274564e38f781152020\
                704a4dc7",
            element_b: "0184482088f91d90877bdde43eaea9fe409cebb9b81c6e409ace1a0d789e53ce\
                2bf63d6b9c1768a59b184aeb38b9791263e1994799ad0c4201cd3db55f035ea3\
                441201f21a11150335d12f402fc4b1ad5646d4e4f1dd6f33ca7bb9a3ab4db93e\
                46141bc6bbc5a9366dde81b284b04868a685fa4c97f988db22fed33dabafd1ed\
                41ac0282",
            kck: "aab4a32b72ea49f603f1219735ff13e26185970157985ecb30952654413e1a36\
                af374765c366069ff7d00a8dda7a0c328c5c54bcf8772a2c1ee95224f577ecaf",
            pmk: "531e5ea7e38e1c3ac249ca1009944f9d01f958541c9ee604a013aaa55a5c8de7\
                e667b2fead765846c8cbeefb23c0ecd3edb6f5d02ff088cce53058d241df498d",
            pmkid: "0132f556af12c25e6ebc23f9e205b853",
            confirm_a: "72f5067d605891403f43686b1a0282ebf34525c708521463fd5938bb78f52ab5\
                eb7c302eb8ab02ea061eb7ae47db03605ada9e56c93e4739e781e1438e834f27",
        },
    ];

    #[test]
    fn model_vectors_groups_20_21_and_rfc7664() {
        let (a_id, b_id) = (h("0011223344556677"), h("8899aabbccddeeff"));
        for v in MODEL_VECTORS {
            let g = Group::new(v.group).unwrap();
            let what = format!("{:?} {:?}", v.group, v.profile);
            let pwe = derive_pwe(
                &g,
                v.profile,
                PweMethod::HuntAndPeck,
                b"dragonfly 802.15.9",
                &a_id,
                &b_id,
                None,
            )
            .unwrap();
            assert_eq!(hex::encode(pwe.xy()), v.pwe, "{what}");
            let (sa, ca) = commit_from(&g, &pwe, &h(v.rand_a), &h(v.mask_a)).unwrap();
            let (sb, cb) = commit_from(&g, &pwe, &h(v.rand_b), &h(v.mask_b)).unwrap();
            assert_eq!(hex::encode(&ca.scalar), v.scalar_a, "{what}");
            assert_eq!(hex::encode(&ca.element), v.element_a, "{what}");
            assert_eq!(hex::encode(&cb.element), v.element_b, "{what}");
            let ka = derive_keys(&g, v.profile, &pwe, &sa, &ca, &cb).unwrap();
            let kb = derive_keys(&g, v.profile, &pwe, &sb, &cb, &ca).unwrap();
            assert_eq!(hex::encode(ka.kck.expose()), v.kck, "{what}");
            assert_eq!(hex::encode(ka.pmk.expose()), v.pmk, "{what}");
            assert_eq!(hex::encode(ka.pmkid), v.pmkid, "{what}");
            assert_eq!((&ka.kck, &ka.pmk), (&kb.kck, &kb.pmk));
            let c = confirm(&g, v.profile, ka.kck.expose(), 1, &ca, &cb).unwrap();
            assert_eq!(hex::encode(&c), v.confirm_a, "{what}");
            verify_confirm(&g, v.profile, kb.kck.expose(), 1, &cb, &ca, &c).unwrap();
        }
    }

    struct H2eVector {
        group: GroupId,
        pt: &'static str,
        pwe: &'static str,
        rand_a: &'static str,
        mask_a: &'static str,
        rand_b: &'static str,
        mask_b: &'static str,
        scalar_a: &'static str,
        element_a: &'static str,
        kck: &'static str,
        pmk: &'static str,
        pmkid: &'static str,
        confirm_a: &'static str,
    }

    // Hash-to-element on groups 20 and 21 (SHA-384 / SHA-512 throughout), from the same
    // independent Python model extended with RFC 9380 SSWU and checked against the 802.11-2020
    // J.10 group-19 PT/PWE first; inputs as J.10: SSID "byteme", password "mekmitasdigoat",
    // identifier "psk4internet", addresses 00:09:5b:66:ec:1e and 00:0b:6b:d9:02:46.
    const H2E_MODEL_VECTORS: &[H2eVector] = &[
        H2eVector {
            group: GroupId::P384,
            pt: "c20f7de2ff2c6a2482c81aeaa525fb969c0897cec0f05f32942c3dcd4f3a3c83\
                ac68a9ad918eb4b0ac068c9fef93f5847e9bc499f475bc3fe4f345bb14007dab\
                dc7568f7f74f3e5dbb046475903736a395f3570d2c778dc96641d8d2910c75e8",
            pwe: "aeb85bd3dfe654a7940fb328b39db8e0b20ea289465d8b68d184bd8e98e2c419\
                165a31eac7d9091d196ed9066d12c3fbf0a27ca78906cab38d3be51601a08127\
                ccf5b68ac5f3854e7efb521eac433030feb681650dc88980efdf542bd4bfaf00",
            rand_a: "e31fa4bd7d32117c1916deb5ea62e4e349f3c7edbc69bc2b9496e2576028c43f\
                53fc61e356d4c5aeec33a4fa86f99ec5",
            mask_a: "3741b13a44030d565b394cf96e51e5e36bc85e8c312f46370ade3fe13e37ca27\
                d3927f12e46b0d7614c3be229408988f",
            rand_b: "8087fc83c45ad4279dd92f010e48df84d488bf91a4b10c1cb32275256d986dc9\
                ae4b5812a7abd8f08dc2443677d524f9",
            mask_b: "c75ffe07645507a2d1a8181be258c3c856ce2d9b7788c37c948ae7f1be772184\
                c1477b99432a56f6a0e204feeaa1b2d0",
            scalar_a: "1a6155f7c1351ed274502baf58b4cac6b5bc2679ed990262d811d4b6aa296087\
                cf74d343f28f2baa140b49b24e3d0de1",
            element_a: "a6a690f6c1606fcdc489979f7cd5c5a9a28f9df8248d9786f52697a368deba21\
                02ae00f9a52fda195ed2137b41a4e97c02a3e645337c19169ca67c05f59e4627\
                1cc0f9076e51ed7986be6df35f8106c332100a0ae2449e64500c89a01baaf96d",
            kck: "5d2ea06e0e20822dd5604fc8bb55e9fde0382aabf40fe7230176b505bbe686ac\
                c755d9c15d847f87370cbc6b491406cb",
            pmk: "9537ecf8085e4b96d5d745f52aec28ff295f4eb5a92108d50b1284b449d60809",
            pmkid: "62495082e9e4fa9ce3d172cc49566e13",
            confirm_a: "b17a6dffec218a2dc79d3da2fe6702199e816132c78ef1590a2764da81b682a4\
                786b6d08069d2c1d9c0c68dd9c6b9b7d",
        },
        H2eVector {
            group: GroupId::P521,
            pt: "0055fa9b73212b56b6c31861fad6d6bd79cf613a14d3e39de7f81f213f31977c\
                3959991a7e54492359b1e0920c67e7698e4ceaf07695c749fb2bf65166f7cc5d\
                e60c009080882b71f2bd7f5eca80ca6c1e1156b791d7561047783d2c8408070b\
                35a5fc467d13d8813efee38f188429c07f4eb09da9f09d115c1ad86df333b556\
                d0b2199d",
            pwe: "00d8991b493a965a97f163c3b1197715ea9d2191f31c0f5e8828d729769cfb52\
                0ecc9719288aefa5d93287f3083fb837a7dff08f19227f5bebe546ea23fc175e\
                fa88008f400b544c5c755570fbbf7ba77fac7ab647fe2142cfd44197ddfe0bc2\
                10a7222dc8d58de93a49c868929d2c28ae608a87f9035f04035d1ebcd7b84984\
                1bb27d85",
            rand_a: "01453c46a4697c4d2b1f34dfb48a470e092044e9968fb5ee993f61d9af5b8597\
                c9e8dedb010664eb3fea2aacceb9ebd6e3a624b6171de484bda606700c17aecb\
                00fb",
            mask_a: "01cafd26808a26250caeb8c79f145d1ddb517b6bd49be4f971e497e57dfaf5f5\
                2eb72797a959787a58f8359cad6ede89cac6e8f4e783f7394b6f0a2c06c70f65\
                f582",
            rand_b: "008e2648190f7fecc79249f3f5ecfa50cd3592d76636ab5c41cfed92807ce80e\
                944e8c6355e33b698d734154484c0e646eca21d89823bfce0e564a9f2351415b\
                7ea5",
            mask_b: "00be3d19d202da1a4960c425fe44f201de854b39a95ec963fd72dca9fc224fec\
                ed4458dcb09a916016ac4191783c4af7faece2dfb8b02914ceba2b8b18943c39\
                4a46",
            scalar_a: "0110396d24f3a27237cdeda7539ea42be471c0556b2b9ae80b23f9bf2d567b8c\
                f8a5b4ec22dc1e360276e07d7adfd357089cd1f534e95221c166552c5bc02cf8\
                9274",
            element_a: "0171d2900320ff3160cd509a41de6a904f88d141b9f28b1692a0c1dabf6bf0b0\
                96eb621260c1048fdf167949acf0965422e57b9f73dc127538bb293b16a98392\
                be090017ef6e32533ed63f33053aa849f64cd4c1cb737478d954fef28f21d08b\
                68b5c378a3595da1a413e0478db296c3dc34e8ddeb2e84410aa615ab363a7ca1\
                fe66434c",
            kck: "17f62f65c2f12c2ee6afd0e18820b62c773a94206bf1c231f92e22bf52a743c9\
                fc7feb1958efec966151f8df716e7e51692e69f0d931f46ee199a44016af6b62",
            pmk: "739e9615d2e68f8ded6faf9a53c19323b0227ca6f8348d8ba655d9d0adc4a7a9",
            pmkid: "005c9ccf1005fc7948c0fbc147d0907e",
            confirm_a: "b2496e22ad41832311c7e7997fd74ebafe1c8d8a10289a78a0c14d64ab433283\
                63c9e35ec40a7849caebba73c2a3844afa22f4646630260c369bffb20ae9f769",
        },
    ];

    #[test]
    fn h2e_model_vectors_groups_20_21() {
        for v in H2E_MODEL_VECTORS {
            let g = Group::new(v.group).unwrap();
            let pt = crate::pwe::derive_pt(&g, b"byteme", b"mekmitasdigoat", Some(b"psk4internet"))
                .unwrap();
            assert_eq!(hex::encode(pt.expose_xy()), v.pt, "{:?}", v.group);
            let pwe =
                crate::pwe::pwe_from_pt(&g, &pt, &h("00095b66ec1e"), &h("000b6bd90246")).unwrap();
            assert_eq!(hex::encode(pwe.xy()), v.pwe, "{:?}", v.group);
            let (sa, ca) = commit_from(&g, &pwe, &h(v.rand_a), &h(v.mask_a)).unwrap();
            let (_, cb) = commit_from(&g, &pwe, &h(v.rand_b), &h(v.mask_b)).unwrap();
            assert_eq!(hex::encode(&ca.scalar), v.scalar_a);
            assert_eq!(hex::encode(&ca.element), v.element_a);
            let k = derive_keys(&g, Profile::Ieee80211, &pwe, &sa, &ca, &cb).unwrap();
            assert_eq!(hex::encode(k.kck.expose()), v.kck, "{:?}", v.group);
            assert_eq!(hex::encode(k.pmk.expose()), v.pmk, "{:?}", v.group);
            assert_eq!(hex::encode(k.pmkid), v.pmkid);
            let c = confirm(&g, Profile::Ieee80211, k.kck.expose(), 1, &ca, &cb).unwrap();
            assert_eq!(hex::encode(&c), v.confirm_a, "{:?}", v.group);
        }
    }

    fn run(id: GroupId, profile: Profile, method: PweMethod, pw_a: &[u8], pw_b: &[u8]) -> bool {
        let g = Group::new(id).unwrap();
        let (a_id, b_id) = (h("0011223344556677"), h("8899aabbccddeeff"));
        let pwe_a = derive_pwe(&g, profile, method, pw_a, &a_id, &b_id, None).unwrap();
        let pwe_b = derive_pwe(&g, profile, method, pw_b, &b_id, &a_id, None).unwrap();
        let rng = RngHandle::seeded(u64::from(id.number()));
        let (sa, ca) = generate_commit(&g, &pwe_a, &rng).unwrap();
        let (sb, cb) = generate_commit(&g, &pwe_b, &rng).unwrap();
        assert_eq!(ca.scalar.len(), g.scalar_len());
        assert_eq!(ca.element.len(), g.element_len());
        check_peer_commit(&g, &ca, &cb).unwrap();
        check_peer_commit(&g, &cb, &ca).unwrap();
        let ka = derive_keys(&g, profile, &pwe_a, &sa, &ca, &cb).unwrap();
        let kb = derive_keys(&g, profile, &pwe_b, &sb, &cb, &ca).unwrap();
        assert_eq!(ka.pmkid, kb.pmkid);
        let conf_a = confirm(&g, profile, ka.kck.expose(), 1, &ca, &cb).unwrap();
        let conf_b = confirm(&g, profile, kb.kck.expose(), 1, &cb, &ca).unwrap();
        assert_ne!(conf_a, conf_b);
        let ok_b = verify_confirm(&g, profile, kb.kck.expose(), 1, &cb, &ca, &conf_a);
        let ok_a = verify_confirm(&g, profile, ka.kck.expose(), 1, &ca, &cb, &conf_b);
        assert_eq!(ok_a.is_ok(), ok_b.is_ok());
        if ok_a.is_ok() {
            assert_eq!(ka.kck, kb.kck);
            assert_eq!(ka.pmk, kb.pmk);
            // A confirm with another counter does not verify.
            assert!(matches!(
                verify_confirm(&g, profile, kb.kck.expose(), 2, &cb, &ca, &conf_a),
                Err(DragonflyError::ConfirmMismatch)
            ));
        } else {
            assert!(matches!(ok_a, Err(DragonflyError::ConfirmMismatch)));
            assert_ne!(ka.pmk, kb.pmk);
        }
        ok_a.is_ok()
    }

    #[test]
    fn two_sides_agree_every_group_profile_method() {
        for id in [GroupId::P256, GroupId::P384, GroupId::P521] {
            for profile in [Profile::Ieee80211, Profile::Rfc7664] {
                for method in [PweMethod::HuntAndPeck, PweMethod::HashToElement] {
                    assert!(run(id, profile, method, b"secret", b"secret"));
                }
            }
        }
    }

    #[test]
    fn wrong_password_is_a_confirm_mismatch() {
        for profile in [Profile::Ieee80211, Profile::Rfc7664] {
            for method in [PweMethod::HuntAndPeck, PweMethod::HashToElement] {
                assert!(!run(GroupId::P256, profile, method, b"secret", b"Secret"));
            }
        }
    }

    #[test]
    fn key_lengths_per_group() {
        for (id, kck_h2e) in [
            (GroupId::P256, 32),
            (GroupId::P384, 48),
            (GroupId::P521, 64),
        ] {
            let g = Group::new(id).unwrap();
            for (profile, method, kck, pmk) in [
                (Profile::Ieee80211, PweMethod::HuntAndPeck, 32, 32),
                (Profile::Ieee80211, PweMethod::HashToElement, kck_h2e, 32),
                (Profile::Rfc7664, PweMethod::HuntAndPeck, kck_h2e, kck_h2e),
            ] {
                let pwe = derive_pwe(&g, profile, method, b"pw", b"a", b"b", None).unwrap();
                let rng = RngHandle::seeded(9);
                let (sa, ca) = generate_commit(&g, &pwe, &rng).unwrap();
                let (_, cb) = generate_commit(&g, &pwe, &rng).unwrap();
                let k = derive_keys(&g, profile, &pwe, &sa, &ca, &cb).unwrap();
                assert_eq!((k.kck.len(), k.pmk.len()), (kck, pmk), "{id:?} {profile:?}");
            }
        }
    }

    #[test]
    fn peer_commit_checks() {
        let g = Group::new(GroupId::P256).unwrap();
        let pwe = derive_pwe(
            &g,
            Profile::Ieee80211,
            PweMethod::HuntAndPeck,
            b"pw",
            b"a",
            b"b",
            None,
        )
        .unwrap();
        let rng = RngHandle::seeded(3);
        let (_, own) = generate_commit(&g, &pwe, &rng).unwrap();
        let (_, peer) = generate_commit(&g, &pwe, &rng).unwrap();
        check_peer_commit(&g, &own, &peer).unwrap();
        let q = g.scalar_bytes(g.q()).unwrap().to_vec();
        let mut q_plus = q.clone();
        q_plus[31] += 1;
        let mut one = vec![0u8; 32];
        one[31] = 1;
        for bad in [vec![0u8; 32], one, q, q_plus, vec![0xff; 32], vec![2u8; 31]] {
            let c = Commit {
                scalar: bad,
                element: peer.element.clone(),
            };
            assert!(matches!(
                check_peer_commit(&g, &own, &c),
                Err(DragonflyError::InvalidScalar)
            ));
        }
        let mut off_curve = peer.element.clone();
        off_curve[63] ^= 1;
        let mut x_too_big = peer.element.clone();
        x_too_big[..32].fill(0xff);
        let short = peer.element[..63].to_vec();
        for bad in [vec![0u8; 64], off_curve, x_too_big, short, Vec::new()] {
            let c = Commit {
                scalar: peer.scalar.clone(),
                element: bad,
            };
            assert!(matches!(
                check_peer_commit(&g, &own, &c),
                Err(DragonflyError::InvalidElement)
            ));
        }
        assert!(matches!(
            check_peer_commit(&g, &own, &own.clone()),
            Err(DragonflyError::ReflectedCommit)
        ));
        let half = Commit {
            scalar: peer.scalar.clone(),
            element: own.element.clone(),
        };
        assert!(matches!(
            check_peer_commit(&g, &own, &half),
            Err(DragonflyError::ReflectedCommit)
        ));
    }

    #[test]
    fn commit_from_rejects_bad_rand_and_mask() {
        let g = Group::new(GroupId::P256).unwrap();
        let pwe = derive_pwe(
            &g,
            Profile::Ieee80211,
            PweMethod::HuntAndPeck,
            b"pw",
            b"a",
            b"b",
            None,
        )
        .unwrap();
        let q = g.scalar_bytes(g.q()).unwrap().to_vec();
        assert!(matches!(
            commit_from(&g, &pwe, &[0], &[5]),
            Err(DragonflyError::InvalidScalar)
        ));
        assert!(matches!(
            commit_from(&g, &pwe, &q, &[5]),
            Err(DragonflyError::InvalidScalar)
        ));
        // mask 0 is out of range.
        assert!(matches!(
            commit_from(&g, &pwe, &[1], &[0]),
            Err(DragonflyError::InvalidScalar)
        ));
        let mut qm1 = q.clone();
        qm1[31] -= 1;
        assert!(matches!(
            commit_from(&g, &pwe, &qm1, &[1]),
            Err(DragonflyError::InvalidScalar)
        ));
        assert!(matches!(
            commit_from(&g, &pwe, &qm1, &[2]),
            Err(DragonflyError::InvalidScalar)
        ));
        commit_from(&g, &pwe, &qm1, &[3]).unwrap();
    }

    #[test]
    fn confirm_rejects_odd_kck() {
        let g = Group::new(GroupId::P256).unwrap();
        let c = Commit {
            scalar: vec![0; 32],
            element: vec![0; 64],
        };
        assert!(matches!(
            confirm(&g, Profile::Ieee80211, &[0; 16], 1, &c, &c),
            Err(DragonflyError::Crypto(CryptoError::KeyLength(16)))
        ));
    }
}
