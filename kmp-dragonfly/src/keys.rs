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
type Secret = Zeroizing<Vec<u8>>;

/// `k = x(rand * (peer_scalar * PWE + peer_element))`, `len(p)` octets, and
/// `(scalar + peer_scalar) mod q`, `len(q)` octets.
fn shared_secret(
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
