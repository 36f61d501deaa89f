//! The IKEv2 key schedule (RFC 7296 §2.14, §2.17, §2.18) and the shared-key AUTH value
//! (§2.15).

use kmp_api::crypto::{CryptoError, SecretBytes};
use zeroize::Zeroize;

use super::prf::PrfAlg;
use super::sk::{EncrAlg, IntegAlg, check_suite};

/// The key pad of the shared-key AUTH computation (RFC 7296 §2.15), without a terminator.
const KEY_PAD: &[u8] = b"Key Pad for IKEv2";

/// The seven IKE SA keys, in the order `prf+` produces them (RFC 7296 §2.14).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IkeSaKeys {
    /// `SK_d`: derives Child SA keys and the next SKEYSEED ([`PrfAlg::key_len`] octets).
    pub sk_d: SecretBytes,
    /// `SK_ai`: integrity key of initiator-to-responder messages (empty with an AEAD).
    pub sk_ai: SecretBytes,
    /// `SK_ar`: integrity key of responder-to-initiator messages (empty with an AEAD).
    pub sk_ar: SecretBytes,
    /// `SK_ei`: encryption key (‖ salt for AEADs) of initiator-to-responder messages.
    pub sk_ei: SecretBytes,
    /// `SK_er`: encryption key (‖ salt for AEADs) of responder-to-initiator messages.
    pub sk_er: SecretBytes,
    /// `SK_pi`: authenticates the initiator's identity in AUTH ([`PrfAlg::key_len`] octets).
    pub sk_pi: SecretBytes,
    /// `SK_pr`: authenticates the responder's identity in AUTH ([`PrfAlg::key_len`] octets).
    pub sk_pr: SecretBytes,
}

/// `SKEYSEED = prf(Ni ‖ Nr, g^ir)` (RFC 7296 §2.14). For a PRF with a fixed key size
/// (AES128-CMAC) the key is the first half of the key size from each nonce: `Ni[0..8] ‖
/// Nr[0..8]`; nonces shorter than that are [`CryptoError::Length`].
pub fn skeyseed(
    prf: PrfAlg,
    ni: &[u8],
    nr: &[u8],
    g_ir: &[u8],
) -> Result<SecretBytes, CryptoError> {
    if prf.fixed_key_size() {
        let half = prf.key_len() / 2;
        for nonce in [ni, nr] {
            if nonce.len() < half {
                return Err(CryptoError::Length {
                    what: "nonce",
                    len: nonce.len(),
                });
            }
        }
        let mut key = Vec::with_capacity(2 * half);
        key.extend_from_slice(&ni[..half]);
        key.extend_from_slice(&nr[..half]);
        prf.prf(&key, g_ir)
    } else {
        let mut key = Vec::with_capacity(ni.len() + nr.len());
        key.extend_from_slice(ni);
        key.extend_from_slice(nr);
        prf.prf(&key, g_ir)
    }
}

/// `{SK_d ‖ SK_ai ‖ SK_ar ‖ SK_ei ‖ SK_er ‖ SK_pi ‖ SK_pr} = prf+(SKEYSEED, Ni ‖ Nr ‖ SPIi ‖
/// SPIr)` with the sizes the negotiated transforms ask for. Also the second half of an IKE SA
/// rekey, with the SKEYSEED from [`rekey_skeyseed`], the new nonces, the new SPIs and the new
/// SA's transforms (RFC 7296 §2.18).
#[allow(clippy::too_many_arguments)]
pub fn ike_sa_keys_from_skeyseed(
    prf: PrfAlg,
    encr: EncrAlg,
    integ: IntegAlg,
    skeyseed: &[u8],
    ni: &[u8],
    nr: &[u8],
    spi_i: &[u8; 8],
    spi_r: &[u8; 8],
) -> Result<IkeSaKeys, CryptoError> {
    check_suite(encr, integ)?;
    let d_len = prf.key_len();
    let a_len = integ.key_len();
    let e_len = encr.key_material_len();
    let p_len = prf.key_len();
    let total = d_len + 2 * a_len + 2 * e_len + 2 * p_len;
    let mut seed = Vec::with_capacity(ni.len() + nr.len() + 16);
    seed.extend_from_slice(ni);
    seed.extend_from_slice(nr);
    seed.extend_from_slice(spi_i);
    seed.extend_from_slice(spi_r);
    let km = prf.prf_plus(skeyseed, &seed, total)?;
    let mut rest = km.expose();
    let mut take = |n: usize| {
        let (head, tail) = rest.split_at(n);
        rest = tail;
        SecretBytes::from_slice(head)
    };
    Ok(IkeSaKeys {
        sk_d: take(d_len),
        sk_ai: take(a_len),
        sk_ar: take(a_len),
        sk_ei: take(e_len),
        sk_er: take(e_len),
        sk_pi: take(p_len),
        sk_pr: take(p_len),
    })
}

/// SKEYSEED from the IKE_SA_INIT exchange, then the seven keys
/// ([`skeyseed`] then [`ike_sa_keys_from_skeyseed`]).
#[allow(clippy::too_many_arguments)]
pub fn derive_ike_sa_keys(
    prf: PrfAlg,
    encr: EncrAlg,
    integ: IntegAlg,
    ni: &[u8],
    nr: &[u8],
    g_ir: &[u8],
    spi_i: &[u8; 8],
    spi_r: &[u8; 8],
) -> Result<IkeSaKeys, CryptoError> {
    let seed = skeyseed(prf, ni, nr, g_ir)?;
    ike_sa_keys_from_skeyseed(prf, encr, integ, seed.expose(), ni, nr, spi_i, spi_r)
}

/// The SKEYSEED of a rekeyed IKE SA: `prf(SK_d (old), g^ir (new) ‖ Ni ‖ Nr)` (RFC 7296
/// §2.18). `prf` is the old IKE SA's PRF; the new keys then come from
/// [`ike_sa_keys_from_skeyseed`] with the new SA's transforms.
pub fn rekey_skeyseed(
    prf: PrfAlg,
    old_sk_d: &[u8],
    g_ir_new: &[u8],
    ni: &[u8],
    nr: &[u8],
) -> Result<SecretBytes, CryptoError> {
    prf.prf_parts(old_sk_d, &[g_ir_new, ni, nr])
}

/// Child SA key material: `KEYMAT = prf+(SK_d, [g^ir (new) ‖] Ni ‖ Nr)`, `len` octets
/// (RFC 7296 §2.17). Keys are taken in the order: initiator-to-responder encryption, its
/// integrity, responder-to-initiator encryption, its integrity.
pub fn child_keymat(
    prf: PrfAlg,
    sk_d: &[u8],
    g_ir_new: Option<&[u8]>,
    ni: &[u8],
    nr: &[u8],
    len: usize,
) -> Result<SecretBytes, CryptoError> {
    let g = g_ir_new.unwrap_or_default();
    let mut seed = Vec::with_capacity(g.len() + ni.len() + nr.len());
    seed.extend_from_slice(g);
    seed.extend_from_slice(ni);
    seed.extend_from_slice(nr);
    let out = prf.prf_plus(sk_d, &seed, len);
    seed.zeroize();
    out
}

/// The octets a signature AUTH signs (RFC 7296 §2.15): `message ‖ nonce ‖ prf(SK_p, id_body)`,
/// where `message` is the sender's first message (IKE_SA_INIT request or response) as sent,
/// `nonce` is the peer's nonce data, `sk_p` is the sender's `SK_pi` or `SK_pr`, and `id_body`
/// is the sender's ID payload body (`ID type ‖ RESERVED (3) ‖ data`, without the generic
/// header).
pub fn signed_octets(
    message: &[u8],
    nonce: &[u8],
    prf: PrfAlg,
    sk_p: &[u8],
    id_body: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let mac_id = prf.prf(sk_p, id_body)?;
    let mut out = Vec::with_capacity(message.len() + nonce.len() + mac_id.len());
    out.extend_from_slice(message);
    out.extend_from_slice(nonce);
    out.extend_from_slice(mac_id.expose());
    Ok(out)
}

/// The shared-key AUTH value (RFC 7296 §2.15, method 2):
/// `prf(prf(PSK, "Key Pad for IKEv2"), message ‖ peer_nonce ‖ prf(SK_p, id_body))`, with the
/// arguments of [`signed_octets`]. Compare a received value with
/// [`kmp_api::crypto::ct_eq`].
pub fn psk_auth(
    prf: PrfAlg,
    psk: &[u8],
    signed_octets_message: &[u8],
    peer_nonce: &[u8],
    sk_p: &[u8],
    id_body: &[u8],
) -> Result<SecretBytes, CryptoError> {
    let key = prf.prf(psk, KEY_PAD)?;
    let mac_id = prf.prf(sk_p, id_body)?;
    prf.prf_parts(
        key.expose(),
        &[signed_octets_message, peer_nonce, mac_id.expose()],
    )
}
