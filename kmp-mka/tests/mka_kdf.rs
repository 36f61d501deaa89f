//! The 802.1X KDF and key hierarchy through the public API: the EAP CAK/CKN vector of spec
//! §8.3 (Rambus `dot1xpae_logon.c`), its KEK/ICK regression values, SAK derivation and the
//! RFC 3394 wrap the SAK distribution uses.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use kmp_api::crypto::cmac::aes_cmac_parts;
use kmp_api::crypto::keywrap::{aes_key_unwrap, aes_key_wrap};
use kmp_mka::mka::{CakKeys, KeyLength, MkaError, kdf};

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).unwrap()
}

const MSK16: &str = "e68a1ab90313024fda7a04a03fea010f";
const MAC1: &str = "001b6393fcbc";
const MAC2: &str = "00d0b71a7717";
const SESSION_ID: &str = "0dd075693f54b2b2eb01da61f0af5d429b65b1ebcaf536fba350777598571728f6\
                          30c5c8da5475489ad47b6e3489a97372e5a8fd550617972c020d42a3b13a4eae";

#[test]
fn eap_cak_ckn_vector() {
    // The KDK is MSK[0..16]; a longer MSK must give the same 128-bit keys.
    let mut msk = h(MSK16);
    msk.extend_from_slice(&[0x55; 48]);
    let sid = h(SESSION_ID);
    assert_eq!(sid.len(), 65);
    let keys = CakKeys::from_eap(&msk, &sid, &h(MAC1), &h(MAC2), KeyLength::Aes128).unwrap();
    assert_eq!(
        keys.cak().expose(),
        &h("135bd758b0ee5c11c55ff6ab19fdb199")[..]
    );
    assert_eq!(
        keys.ckn().as_bytes(),
        &h("96437a93ccf10d9dfe347846cce52c7d")[..]
    );
    // Regression values derived in the spec from that CAK and CKN (not a public vector).
    assert_eq!(
        keys.kek().expose(),
        &h("8f5a384c15d6ae9302b462e363d03ca6")[..]
    );
    assert_eq!(
        keys.ick().expose(),
        &h("8f1c5cb1c8ed2e5f047906e0473aad4d")[..]
    );
    // The address order does not matter: mac1 is the numerically lower one.
    let swapped = CakKeys::from_eap(&msk, &sid, &h(MAC2), &h(MAC1), KeyLength::Aes128).unwrap();
    assert_eq!(swapped, keys);
    // The pre-shared path gives the same KEK/ICK from the same CAK/CKN.
    let psk = CakKeys::from_psk(keys.cak().expose(), keys.ckn().as_bytes()).unwrap();
    assert_eq!(psk, keys);
}

#[test]
fn kdf_matches_the_published_cak_directly() {
    let cak = kdf(
        &h(MSK16),
        b"IEEE8021 EAP CAK",
        &[h(MAC1), h(MAC2)].concat(),
        128,
    )
    .unwrap();
    assert_eq!(cak.expose(), &h("135bd758b0ee5c11c55ff6ab19fdb199")[..]);
}

#[test]
fn eap_256_bit_keys_follow_the_block_layout() {
    // The spec gives no 256-bit vector: check the layout block by block with AES-256-CMAC.
    let msk: Vec<u8> = (0u8..64).collect();
    let sid = h(SESSION_ID);
    let keys = CakKeys::from_eap(&msk, &sid, &h(MAC2), &h(MAC1), KeyLength::Aes256).unwrap();
    let macs = [h(MAC1), h(MAC2)].concat();
    let kdk = &msk[..32];
    let l = 256u16.to_be_bytes();
    let b1 = aes_cmac_parts(kdk, &[&[1], b"IEEE8021 EAP CAK", &[0], &macs, &l]).unwrap();
    let b2 = aes_cmac_parts(kdk, &[&[2], b"IEEE8021 EAP CAK", &[0], &macs, &l]).unwrap();
    assert_eq!(keys.cak().expose(), &[b1, b2].concat()[..]);
    assert_eq!(keys.key_length(), KeyLength::Aes256);
    assert_eq!(keys.ckn().as_bytes().len(), 32);
    let ctx = &keys.ckn().as_bytes()[..16];
    let k1 = aes_cmac_parts(keys.cak().expose(), &[&[1], b"IEEE8021 KEK", &[0], ctx, &l]).unwrap();
    assert_eq!(&keys.kek().expose()[..16], &k1);
    assert_eq!(keys.kek().len(), 32);
    assert_eq!(keys.ick().len(), 32);
}

#[test]
fn bad_inputs_are_typed_errors() {
    assert!(matches!(
        CakKeys::from_eap(&[0; 16], b"", &[1; 6], &[2; 6], KeyLength::Aes256),
        Err(MkaError::MskLength(16))
    ));
    assert!(matches!(
        CakKeys::from_eap(&[0; 64], b"", &[1; 6], &[2; 8], KeyLength::Aes128),
        Err(MkaError::AddressLengths(6, 8))
    ));
    assert!(matches!(
        CakKeys::from_psk(&[0; 16], &[]),
        Err(MkaError::CknLength(0))
    ));
    assert!(matches!(
        CakKeys::from_psk(&[0; 16], &[0; 33]),
        Err(MkaError::CknLength(33))
    ));
}

#[test]
fn short_ckn_is_zero_padded_for_kek_and_ick() {
    let cak = h("0123456789abcdef0123456789abcdef");
    let keys = CakKeys::from_psk(&cak, &[0xAB]).unwrap();
    let mut ctx = [0u8; 16];
    ctx[0] = 0xAB;
    assert_eq!(
        keys.ick().expose(),
        kdf(&cak, b"IEEE8021 ICK", &ctx, 128).unwrap().expose()
    );
}

#[test]
fn sak_derivation_and_wrap() {
    let keys = CakKeys::from_psk(&h("135bd758b0ee5c11c55ff6ab19fdb199"), &[1, 2, 3]).unwrap();
    let nonce = [9u8; 16];
    let mis = [[1u8; 12], [2u8; 12]];
    let sak = keys.derive_sak(&nonce, &mis, 1, KeyLength::Aes128).unwrap();
    let mut ctx = nonce.to_vec();
    ctx.extend_from_slice(&[1; 12]);
    ctx.extend_from_slice(&[2; 12]);
    ctx.extend_from_slice(&[0, 0, 0, 1]); // KN big-endian
    assert_eq!(
        sak.expose(),
        kdf(keys.cak().expose(), b"IEEE8021 SAK", &ctx, 128)
            .unwrap()
            .expose()
    );
    assert_ne!(
        sak,
        keys.derive_sak(&nonce, &mis, 2, KeyLength::Aes128).unwrap()
    );
    assert_eq!(
        keys.derive_sak(&nonce, &mis, 1, KeyLength::Aes256)
            .unwrap()
            .len(),
        32
    );
    // RFC 3394 §4.1 (spec §8.3), the wrap used for Distributed SAK.
    let wrapped = aes_key_wrap(
        &h("000102030405060708090A0B0C0D0E0F"),
        &h("00112233445566778899AABBCCDDEEFF"),
    )
    .unwrap();
    assert_eq!(
        wrapped,
        h("1fa68b0a8112b447aef34bd8fb5a7b829d3e862371d2cfe5")
    );
    let w = aes_key_wrap(keys.kek().expose(), sak.expose()).unwrap();
    assert_eq!(w.len(), 24);
    assert_eq!(aes_key_unwrap(keys.kek().expose(), &w).unwrap(), sak);
}
