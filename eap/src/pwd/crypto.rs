//! The EAP-pwd computations of RFC 5931 for ciphersuite group 19 (P-256), random function 1
//! and PRF 1 (HMAC-SHA256), on the Dragonfly core of `kmp-dragonfly`.
//!
//! - Random function `H(x) = HMAC-SHA256(0^32, x)` (RFC 5931 §2.4, §2.7).
//! - `KDF(key, label, L)` (RFC 5931 §2.5): `K(1) = HMAC-SHA256(key, 1 || label || L)`,
//!   `K(i) = HMAC-SHA256(key, K(i-1) || i || label || L)`, `i` and `L` (the length in bits)
//!   big-endian 16-bit, concatenated and truncated to `L` bits. Unlike the 802.11 KDF of SAE:
//!   big-endian counters, chaining, no context.
//! - PWE (RFC 5931 §2.8.3.2): `pwd-seed = H(token || peer-ID || server-ID || password ||
//!   counter)`, `pwd-value = KDF(pwd-seed, "EAP-pwd Hunting And Pecking", len(p))`, accepted
//!   when `pwd-value < p` and `pwd-value^3 + a*pwd-value + b` is a quadratic residue; `y` has the
//!   parity of `pwd-seed`. The loop itself (at least 40 rounds, blinded residue test,
//!   constant-time selection) is `kmp_dragonfly::pwe::hunt_and_peck_with`.
//! - Commit (§2.8.4): `scalar = (private + mask) mod r`, `Element = -(mask * PWE)`:
//!   `kmp_dragonfly::keys::generate_commit`; the checks of the peer's commit (`1 < scalar < r`,
//!   element on the curve, not reflected) and `k = x(private * (peer_scalar * PWE +
//!   peer_element))`: `kmp_dragonfly::keys::shared_secret`.
//! - Confirm (§2.8.5): `Confirm_s = H(k || Element_s || Scalar_s || Element_p || Scalar_p ||
//!   Ciphersuite)` and `Confirm_p = H(k || Element_p || Scalar_p || Element_s || Scalar_s ||
//!   Ciphersuite)`, elements as `x || y` of `len(p)` octets each, scalars of `len(r)` octets,
//!   Ciphersuite = Group (2, big-endian) || Random Function || PRF.
//! - Keys (§2.9): `Method-ID = H(Ciphersuite || Scalar_p || Scalar_s)`, Session-Id =
//!   `52 || Method-ID` (33 octets, RFC 5931 §2.9 and hostapd/wpa_supplicant), `MK = H(k ||
//!   Confirm_p || Confirm_s)`, `MSK || EMSK = KDF(MK, Session-Id, 1024)`.

use kmp_api::crypto::hmac::hmac_sha256_parts;
use kmp_api::session::SecretBytes;
use kmp_dragonfly::group::Group;
use kmp_dragonfly::keys::{Commit, DragonflyError};
use kmp_dragonfly::pwe::{PasswordElement, PweCandidate, hunt_and_peck_with};
use zeroize::Zeroizing;

use crate::method::{MSK_LEN, MethodError, MethodKeys};
use crate::wire::EapType;

/// The only group: 19 (NIST P-256).
pub const GROUP: u16 = 19;
/// Random function 1: HMAC-SHA256 (RFC 5931 §2.7, IANA "EAP-pwd Random Function").
pub const RANDOM_FUNCTION: u8 = 1;
/// PRF 1: HMAC-SHA256 (IANA "EAP-pwd Pseudo-Random Function").
pub const PRF: u8 = 1;
/// Password preparation 0: none (RFC 5931 §2.8.1; IANA "EAP-pwd Password Preparation").
pub const PREP_NONE: u8 = 0;
/// Length of a confirm value, a Method-ID and MK (SHA-256).
pub const HASH_LEN: usize = 32;
/// Length of the Session-Id: the Type and the Method-ID.
pub const SESSION_ID_LEN: usize = 1 + HASH_LEN;

const PWE_LABEL: &[u8] = b"EAP-pwd Hunting And Pecking";

/// Group (big-endian) || Random Function || PRF.
pub fn ciphersuite() -> [u8; 4] {
    let g = GROUP.to_be_bytes();
    [g[0], g[1], RANDOM_FUNCTION, PRF]
}

/// The random function `H(x) = HMAC-SHA256(0^32, x)` over the concatenation of `parts`.
pub fn h(parts: &[&[u8]]) -> Result<[u8; HASH_LEN], MethodError> {
    Ok(hmac_sha256_parts(&[0u8; HASH_LEN], parts)?)
}

/// The RFC 5931 §2.5 KDF: `bits` bits (the unused low bits of the last octet cleared).
pub fn kdf(key: &[u8], label: &[u8], bits: u16) -> Result<Zeroizing<Vec<u8>>, MethodError> {
    let len = usize::from(bits).div_ceil(8);
    let l = bits.to_be_bytes();
    let mut out = Zeroizing::new(Vec::with_capacity(len + HASH_LEN));
    let mut prev = Zeroizing::new([0u8; HASH_LEN]);
    let mut i: u16 = 1;
    while out.len() < len {
        let ib = i.to_be_bytes();
        let k = if i == 1 {
            hmac_sha256_parts(key, &[&ib, label, &l])?
        } else {
            hmac_sha256_parts(key, &[&prev[..], &ib, label, &l])?
        };
        *prev = k;
        out.extend_from_slice(&k);
        i = i.wrapping_add(1);
    }
    out.truncate(len);
    let spare = usize::from(bits) % 8;
    if spare != 0
        && let Some(last) = out.last_mut()
    {
        *last &= 0xffu8 << (8 - spare);
    }
    Ok(out)
}

/// What goes wrong in the Dragonfly math, as a method error (only for failures that are not an
/// authentication verdict).
pub(crate) fn df_error(e: DragonflyError) -> MethodError {
    match e {
        DragonflyError::Crypto(c) => MethodError::Crypto(c),
        DragonflyError::Rng(r) => MethodError::Rng(r),
        other => MethodError::Other(format!("EAP-pwd: {other}")),
    }
}

/// The password element of RFC 5931 §2.8.3.2 for group 19.
pub fn derive_pwe(
    group: &Group,
    token: &[u8; 4],
    peer_id: &[u8],
    server_id: &[u8],
    password: &[u8],
) -> Result<PasswordElement, DragonflyError> {
    let bits = u16::try_from(group.prime_len() * 8)
        .map_err(|_| DragonflyError::Unsupported("prime length"))?;
    if group.id().number() != GROUP {
        return Err(DragonflyError::UnsupportedGroup(group.id().number()));
    }
    hunt_and_peck_with(group, password, |pw, counter| {
        let seed = Zeroizing::new(
            h(&[token, peer_id, server_id, pw, &[counter]])
                .map_err(|_| DragonflyError::Library("HMAC-SHA256".into()))?,
        );
        let x = kdf(&seed[..], PWE_LABEL, bits)
            .map_err(|_| DragonflyError::Library("EAP-pwd KDF".into()))?;
        Ok(PweCandidate {
            x,
            parity: seed[HASH_LEN - 1] & 1,
        })
    })
}

/// The commit as EAP-pwd carries it: `Element || Scalar`.
pub fn commit_payload(c: &Commit) -> Vec<u8> {
    let mut v = Vec::with_capacity(c.element.len() + c.scalar.len());
    v.extend_from_slice(&c.element);
    v.extend_from_slice(&c.scalar);
    v
}

/// Splits `Element || Scalar` of exactly the group's lengths (values are checked later).
pub fn parse_commit(group: &Group, b: &[u8]) -> Option<Commit> {
    if b.len() != group.element_len() + group.scalar_len() {
        return None;
    }
    let (element, scalar) = b.split_at(group.element_len());
    Some(Commit {
        scalar: scalar.to_vec(),
        element: element.to_vec(),
    })
}

/// `H(k || Element_a || Scalar_a || Element_b || Scalar_b || Ciphersuite)`: the sender's
/// values (`a`) first. Confirm_s with `a` = server, Confirm_p with `a` = peer.
pub fn confirm(k: &[u8], a: &Commit, b: &Commit) -> Result<[u8; HASH_LEN], MethodError> {
    h(&[
        k,
        &a.element,
        &a.scalar,
        &b.element,
        &b.scalar,
        &ciphersuite(),
    ])
}

/// MSK, EMSK and Session-Id (RFC 5931 §2.9).
pub fn method_keys(
    k: &[u8],
    peer: &Commit,
    server: &Commit,
    confirm_p: &[u8],
    confirm_s: &[u8],
) -> Result<MethodKeys, MethodError> {
    let method_id = h(&[&ciphersuite(), &peer.scalar, &server.scalar])?;
    let mut session_id = Vec::with_capacity(SESSION_ID_LEN);
    session_id.push(EapType::PWD.0);
    session_id.extend_from_slice(&method_id);
    let mk = Zeroizing::new(h(&[k, confirm_p, confirm_s])?);
    let bits = u16::try_from(2 * MSK_LEN * 8).map_err(|_| MethodError::Invalid("key length"))?;
    let keys = kdf(&mk[..], &session_id, bits)?;
    Ok(MethodKeys {
        msk: SecretBytes::from_slice(&keys[..MSK_LEN]),
        emsk: SecretBytes::from_slice(&keys[MSK_LEN..]),
        session_id,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use kmp_api::crypto::hmac::hmac_sha256;
    use kmp_dragonfly::group::GroupId;

    #[test]
    fn kdf_chains_big_endian_counters() {
        // Built by hand from the RFC 5931 §2.5 definition.
        let key = b"key";
        let k1 = hmac_sha256(key, &[&[0u8, 1][..], b"lbl", &[1, 0]].concat()).unwrap();
        let k2 = hmac_sha256(key, &[&k1[..], &[0, 2], b"lbl", &[1, 0]].concat()).unwrap();
        let out = kdf(key, b"lbl", 256).unwrap();
        assert_eq!(&out[..], &k1[..]);
        let out = kdf(key, b"lbl", 512).unwrap();
        // L changes with the length, so recompute for 512.
        let k1 = hmac_sha256(key, &[&[0u8, 1][..], b"lbl", &[2, 0]].concat()).unwrap();
        let k2b = hmac_sha256(key, &[&k1[..], &[0, 2], b"lbl", &[2, 0]].concat()).unwrap();
        assert_eq!(&out[..32], &k1[..]);
        assert_eq!(&out[32..], &k2b[..]);
        assert_ne!(k2, k2b);
        // Odd bit lengths clear the low bits of the last octet.
        let out = kdf(key, b"lbl", 12).unwrap();
        let full = hmac_sha256(key, &[&[0u8, 1][..], b"lbl", &[0, 12]].concat()).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0], full[0]);
        assert_eq!(out[1], full[1] & 0xf0);
    }

    #[test]
    fn pwe_is_on_the_curve_and_depends_on_every_input() {
        let g = Group::new(GroupId::P256).unwrap();
        let t = [1, 2, 3, 4];
        let base = derive_pwe(&g, &t, b"peer", b"server", b"pw").unwrap();
        assert!(base.iterations() >= 40);
        let xy = |p: &PasswordElement| {
            // Commit with fixed rand/mask to observe the element without exposing the PWE.
            kmp_dragonfly::keys::commit_from(&g, p, &[5], &[7])
                .unwrap()
                .1
        };
        let c = xy(&base);
        assert_eq!(
            c,
            xy(&derive_pwe(&g, &t, b"peer", b"server", b"pw").unwrap())
        );
        for other in [
            derive_pwe(&g, &[1, 2, 3, 5], b"peer", b"server", b"pw").unwrap(),
            derive_pwe(&g, &t, b"server", b"peer", b"pw").unwrap(),
            derive_pwe(&g, &t, b"peer", b"server", b"pW").unwrap(),
        ] {
            assert_ne!(c, xy(&other));
        }
    }

    #[test]
    fn commit_encoding_is_element_then_scalar() {
        let g = Group::new(GroupId::P256).unwrap();
        let c = Commit {
            scalar: vec![1; 32],
            element: vec![2; 64],
        };
        let b = commit_payload(&c);
        assert_eq!(&b[..64], &[2; 64]);
        assert_eq!(parse_commit(&g, &b), Some(c));
        assert_eq!(parse_commit(&g, &b[1..]), None);
    }

    #[test]
    fn ciphersuite_octets() {
        assert_eq!(ciphersuite(), [0x00, 0x13, 0x01, 0x01]);
    }
}
