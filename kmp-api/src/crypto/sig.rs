//! RSA and ECDSA signatures over a message with a named hash (the message is hashed here).
//!
//! | scheme | signature | spec |
//! |---|---|---|
//! | [`SigScheme::Ecdsa`] | DER `ECDSA-Sig-Value` (raw `r ‖ s` via [`SigningKey::sign_ecdsa_raw`]) | FIPS 186-4, RFC 3279 §2.2.3 |
//! | [`SigScheme::RsaPkcs1v15`] | RSASSA-PKCS1-v1_5, modulus-length octets | RFC 8017 §8.2 |
//! | [`SigScheme::RsaPss`] | RSASSA-PSS with MGF1 over the same hash | RFC 8017 §8.1 |
//!
//! Keys are any OpenSSL RSA or EC key ([`SigningKey`], [`VerifyingKey`]); [`KeyKind`] says which,
//! so protocols can restrict them (P-256 only, RSA ≥ 2048 bits, …). A private key's Debug output
//! names only its kind; its memory is OpenSSL's, which clears private components when freed.
//! The ECDSA nonce comes from OpenSSL's CSPRNG.
//!
//! Verification never panics and gives [`CryptoError::AuthenticationFailed`] for every bad
//! signature (wrong, malformed, out of range); a scheme that does not fit the key is
//! [`CryptoError::Unsupported`].

use core::fmt;

use openssl::bn::BigNum;
use openssl::ecdsa::EcdsaSig;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{HasPublic, Id, PKey, PKeyRef, Private, Public};
use openssl::rsa::Padding;
use openssl::sign::{RsaPssSaltlen, Signer, Verifier};

use super::CryptoError;

/// The hash a signature is computed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SigHash {
    /// SHA-1 (FIPS 180-4), for legacy peers only.
    Sha1,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl SigHash {
    fn digest(self) -> MessageDigest {
        match self {
            SigHash::Sha1 => MessageDigest::sha1(),
            SigHash::Sha256 => MessageDigest::sha256(),
            SigHash::Sha384 => MessageDigest::sha384(),
            SigHash::Sha512 => MessageDigest::sha512(),
        }
    }
}

/// A signature scheme: algorithm, padding and hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SigScheme {
    /// ECDSA with the given hash; the signature is a DER `ECDSA-Sig-Value`.
    Ecdsa(SigHash),
    /// RSASSA-PKCS1-v1_5 with the given hash.
    RsaPkcs1v15(SigHash),
    /// RSASSA-PSS with the given hash, MGF1 with the same hash, and a salt of `salt_len` octets.
    RsaPss {
        /// The message hash and MGF1 hash.
        hash: SigHash,
        /// The salt length in octets.
        salt_len: u16,
    },
    /// Ed25519 (PureEdDSA, RFC 8032 §5.1): the message itself is signed, no separate hash.
    Ed25519,
}

impl SigScheme {
    /// The digest to sign through; `None` for Ed25519, which hashes inside.
    fn digest(self) -> Option<MessageDigest> {
        match self {
            SigScheme::Ecdsa(h) | SigScheme::RsaPkcs1v15(h) | SigScheme::RsaPss { hash: h, .. } => {
                Some(h.digest())
            }
            SigScheme::Ed25519 => None,
        }
    }

    fn fits(self, kind: KeyKind) -> bool {
        match self {
            SigScheme::Ecdsa(_) => kind.is_ec(),
            SigScheme::RsaPkcs1v15(_) | SigScheme::RsaPss { .. } => kind == KeyKind::Rsa,
            SigScheme::Ed25519 => kind == KeyKind::Ed25519,
        }
    }
}

/// What kind of key a [`SigningKey`] or [`VerifyingKey`] holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyKind {
    /// An EC key on NIST P-256 (secp256r1).
    EcP256,
    /// An EC key on another curve (or with explicit parameters).
    EcOther,
    /// An RSA key (`rsaEncryption`; RSA-PSS-restricted keys are [`KeyKind::Other`]).
    Rsa,
    /// An Ed25519 key.
    Ed25519,
    /// Anything else (Ed448, DSA, …): no scheme here signs with it.
    Other,
}

impl KeyKind {
    /// Whether this is an EC key, on any curve.
    pub fn is_ec(self) -> bool {
        matches!(self, KeyKind::EcP256 | KeyKind::EcOther)
    }
}

fn kind_of<T: HasPublic>(key: &PKeyRef<T>) -> KeyKind {
    match key.id() {
        Id::EC => match key.ec_key() {
            Ok(ec) if ec.group().curve_name() == Some(Nid::X9_62_PRIME256V1) => KeyKind::EcP256,
            _ => KeyKind::EcOther,
        },
        Id::RSA => KeyKind::Rsa,
        Id::ED25519 => KeyKind::Ed25519,
        _ => KeyKind::Other,
    }
}

/// The length of a scalar (and of `r`, `s`) for an EC key, from its group's order.
fn ec_scalar_len<T: HasPublic>(key: &PKeyRef<T>) -> Result<usize, CryptoError> {
    let ec = key.ec_key()?;
    let bits = ec.group().order_bits();
    usize::try_from(bits)
        .map(|b| b.div_ceil(8))
        .map_err(|_| CryptoError::Library(format!("EC order of {bits} bits")))
}

fn set_rsa_padding(scheme: SigScheme, kind: KeyKind) -> Option<(Padding, Option<u16>)> {
    match (scheme, kind) {
        (SigScheme::RsaPkcs1v15(_), KeyKind::Rsa) => Some((Padding::PKCS1, None)),
        (SigScheme::RsaPss { salt_len, .. }, KeyKind::Rsa) => {
            Some((Padding::PKCS1_PSS, Some(salt_len)))
        }
        _ => None,
    }
}

/// A private signing key (RSA, EC or Ed25519).
#[derive(Clone)]
pub struct SigningKey {
    key: PKey<Private>,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kind", &self.kind())
            .finish_non_exhaustive()
    }
}

impl From<PKey<Private>> for SigningKey {
    fn from(key: PKey<Private>) -> SigningKey {
        SigningKey { key }
    }
}

impl SigningKey {
    /// A key from PEM (PKCS#8, or the traditional RSA / EC formats).
    pub fn from_pem(pem: &[u8]) -> Result<SigningKey, CryptoError> {
        Ok(SigningKey {
            key: PKey::private_key_from_pem(pem)?,
        })
    }

    /// A key from DER (PKCS#8, or the traditional RSA / EC formats).
    pub fn from_der(der: &[u8]) -> Result<SigningKey, CryptoError> {
        Ok(SigningKey {
            key: PKey::private_key_from_der(der)?,
        })
    }

    /// What kind of key this is.
    pub fn kind(&self) -> KeyKind {
        kind_of(&self.key)
    }

    /// The key size in bits (the modulus for RSA, the order for EC).
    pub fn bits(&self) -> u32 {
        self.key.bits()
    }

    /// The public half as a DER `SubjectPublicKeyInfo`.
    pub fn public_key_der(&self) -> Result<Vec<u8>, CryptoError> {
        Ok(self.key.public_key_to_der()?)
    }

    /// The public half.
    pub fn verifying_key(&self) -> Result<VerifyingKey, CryptoError> {
        VerifyingKey::from_spki_der(&self.public_key_der()?)
    }

    /// Signs `msg` with `scheme` (ECDSA: a DER `ECDSA-Sig-Value`). A scheme that does not fit
    /// the key is [`CryptoError::Unsupported`].
    pub fn sign(&self, scheme: SigScheme, msg: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let kind = self.kind();
        if !scheme.fits(kind) {
            return Err(CryptoError::Unsupported(
                "signature scheme does not fit the key",
            ));
        }
        let Some(md) = scheme.digest() else {
            return Ok(Signer::new_without_digest(&self.key)?.sign_oneshot_to_vec(msg)?);
        };
        let mut signer = Signer::new(md, &self.key)?;
        if let Some((padding, salt)) = set_rsa_padding(scheme, kind) {
            signer.set_rsa_padding(padding)?;
            if let Some(salt) = salt {
                signer.set_rsa_mgf1_md(md)?;
                signer.set_rsa_pss_saltlen(RsaPssSaltlen::custom(i32::from(salt)))?;
            }
        }
        Ok(signer.sign_oneshot_to_vec(msg)?)
    }

    /// A P-256 key as [`super::ecc::P256KeyPair`] (ECDSA on `EC_KEY`, no EVP lookups per
    /// signature); `None` for other kinds of key.
    pub fn to_p256(&self) -> Option<super::ecc::P256KeyPair> {
        if self.kind() != KeyKind::EcP256 {
            return None;
        }
        let ec = self.key.ec_key().ok()?;
        let mut d = ec.private_key().to_vec_padded(32).ok()?;
        let pair = super::ecc::P256KeyPair::from_scalar(&d).ok();
        zeroize::Zeroize::zeroize(&mut d);
        pair
    }

    /// Signs `msg` with ECDSA over `hash` and returns the raw `r ‖ s`, each left-padded to the
    /// length of the curve's order (32 octets each for P-256).
    pub fn sign_ecdsa_raw(&self, hash: SigHash, msg: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let der = self.sign(SigScheme::Ecdsa(hash), msg)?;
        ecdsa_der_to_raw(&der, ec_scalar_len(&self.key)?)
    }
}

/// A public verification key (RSA, EC or Ed25519).
#[derive(Clone)]
pub struct VerifyingKey {
    key: PKey<Public>,
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kind", &self.kind())
            .field("bits", &self.bits())
            .finish()
    }
}

impl VerifyingKey {
    /// A key from a DER `SubjectPublicKeyInfo`.
    pub fn from_spki_der(der: &[u8]) -> Result<VerifyingKey, CryptoError> {
        Ok(VerifyingKey {
            key: PKey::public_key_from_der(der)?,
        })
    }

    /// A key from the two parts of a `SubjectPublicKeyInfo`: the DER contents of its
    /// AlgorithmIdentifier (without the SEQUENCE header) and the subjectPublicKey bits (what an
    /// X.509 path validator hands a signature check).
    pub fn from_spki_parts(
        algorithm: &[u8],
        subject_public_key: &[u8],
    ) -> Result<VerifyingKey, CryptoError> {
        let mut bits = Vec::with_capacity(subject_public_key.len() + 1);
        bits.push(0); // no unused bits
        bits.extend_from_slice(subject_public_key);
        let mut body = der_tlv(0x30, algorithm)?;
        body.extend(der_tlv(0x03, &bits)?);
        VerifyingKey::from_spki_der(&der_tlv(0x30, &body)?)
    }

    /// A key from a PEM `PUBLIC KEY` (SubjectPublicKeyInfo).
    pub fn from_pem(pem: &[u8]) -> Result<VerifyingKey, CryptoError> {
        Ok(VerifyingKey {
            key: PKey::public_key_from_pem(pem)?,
        })
    }

    /// What kind of key this is.
    pub fn kind(&self) -> KeyKind {
        kind_of(&self.key)
    }

    /// The key size in bits.
    pub fn bits(&self) -> u32 {
        self.key.bits()
    }

    /// The DER `SubjectPublicKeyInfo`.
    pub fn to_spki_der(&self) -> Result<Vec<u8>, CryptoError> {
        Ok(self.key.public_key_to_der()?)
    }

    /// Verifies `signature` over `msg` with `scheme` (ECDSA: a DER `ECDSA-Sig-Value`). A bad
    /// signature is [`CryptoError::AuthenticationFailed`]; a scheme that does not fit the key
    /// [`CryptoError::Unsupported`].
    pub fn verify(
        &self,
        scheme: SigScheme,
        msg: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        let kind = self.kind();
        if !scheme.fits(kind) {
            return Err(CryptoError::Unsupported(
                "signature scheme does not fit the key",
            ));
        }
        let fail = |_| CryptoError::AuthenticationFailed;
        let Some(md) = scheme.digest() else {
            let mut v = Verifier::new_without_digest(&self.key).map_err(fail)?;
            return match v.verify_oneshot(signature, msg) {
                Ok(true) => Ok(()),
                Ok(false) | Err(_) => Err(CryptoError::AuthenticationFailed),
            };
        };
        let mut v = Verifier::new(md, &self.key).map_err(fail)?;
        if let Some((padding, salt)) = set_rsa_padding(scheme, kind) {
            v.set_rsa_padding(padding).map_err(fail)?;
            if let Some(salt) = salt {
                v.set_rsa_mgf1_md(md)
                    .and_then(|()| v.set_rsa_pss_saltlen(RsaPssSaltlen::custom(i32::from(salt))))
                    .map_err(fail)?;
            }
        }
        match v.verify_oneshot(signature, msg) {
            Ok(true) => Ok(()),
            // OpenSSL reports a malformed signature as an error, a wrong one as false.
            Ok(false) | Err(_) => Err(CryptoError::AuthenticationFailed),
        }
    }

    /// Verifies a raw `r ‖ s` ECDSA signature over `msg` with `hash`. Anything but two halves
    /// of the curve's scalar length is [`CryptoError::AuthenticationFailed`].
    pub fn verify_ecdsa_raw(
        &self,
        hash: SigHash,
        msg: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        if !self.kind().is_ec() {
            return Err(CryptoError::Unsupported(
                "signature scheme does not fit the key",
            ));
        }
        let len = ec_scalar_len(&self.key)?;
        if signature.len() != 2 * len {
            return Err(CryptoError::AuthenticationFailed);
        }
        let der = ecdsa_raw_to_der(signature).map_err(|_| CryptoError::AuthenticationFailed)?;
        self.verify(SigScheme::Ecdsa(hash), msg, &der)
    }
}

/// One DER tag-length-value (definite length, up to 2^24 octets).
fn der_tlv(tag: u8, value: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let len = value.len();
    let too_long = || CryptoError::Length {
        what: "DER value",
        len,
    };
    let octets = u32::try_from(len).map_err(|_| too_long())?.to_be_bytes();
    let mut out = Vec::with_capacity(len + 5);
    out.push(tag);
    match len {
        0..=0x7f => out.push(octets[3]),
        0x80..=0xff => out.extend([0x81, octets[3]]),
        0x100..=0xffff => out.extend([0x82, octets[2], octets[3]]),
        0x1_0000..=0xff_ffff => out.extend([0x83, octets[1], octets[2], octets[3]]),
        _ => return Err(too_long()),
    }
    out.extend_from_slice(value);
    Ok(out)
}

/// A raw ECDSA signature `r ‖ s` (two halves of equal length) as a DER `ECDSA-Sig-Value`.
/// An empty or odd-length input is [`CryptoError::Length`].
pub fn ecdsa_raw_to_der(raw: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if raw.is_empty() || !raw.len().is_multiple_of(2) {
        return Err(CryptoError::Length {
            what: "ECDSA r||s",
            len: raw.len(),
        });
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    let sig = EcdsaSig::from_private_components(BigNum::from_slice(r)?, BigNum::from_slice(s)?)?;
    Ok(sig.to_der()?)
}

/// A DER `ECDSA-Sig-Value` as raw `r ‖ s`, each left-padded to `scalar_len` octets. Malformed
/// DER, or `r` or `s` longer than `scalar_len`, is [`CryptoError::Library`].
pub fn ecdsa_der_to_raw(der: &[u8], scalar_len: usize) -> Result<Vec<u8>, CryptoError> {
    let sig = EcdsaSig::from_der(der)?;
    let len = i32::try_from(scalar_len).map_err(|_| CryptoError::Length {
        what: "ECDSA scalar",
        len: scalar_len,
    })?;
    let mut raw = sig.r().to_vec_padded(len)?;
    raw.extend(sig.s().to_vec_padded(len)?);
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::ecc::P256PublicKey;
    use openssl::rsa::Rsa;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    /// RFC 6979 A.2.5: the P-256 key `x = C9AF…6721` and its public point.
    const RFC6979_X: &str = "C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721";
    const RFC6979_UX: &str = "60FED4BA255A9D31C961EB74C6356D68C049B8923B61FA6CE669622E60F29FB6";
    const RFC6979_UY: &str = "7903FE1008B8BC99A41AE9E95628BC64F2F1B20C2D7E9F5177A3C294D4462299";
    /// RFC 6979 A.2.5, SHA-256: (message, r, s).
    const RFC6979_SHA256: [(&str, &str, &str); 2] = [
        (
            "sample",
            "EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716",
            "F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8",
        ),
        (
            "test",
            "F1ABB023518351CD71D881567B1EA663ED3EFCF6C5132B354F28D3B0B7D38367",
            "019F4113742A2B14BD25926B49C649155F267E60D3814B4C0CC84250E46F0083",
        ),
    ];

    fn rfc6979_key() -> VerifyingKey {
        let xy = [h(RFC6979_UX), h(RFC6979_UY)].concat();
        let spki = P256PublicKey::from_xy(&xy).unwrap().to_spki_der().unwrap();
        VerifyingKey::from_spki_der(&spki).unwrap()
    }

    /// RFC 7515 (JWS) Appendix A.2: RS256 (RSASSA-PKCS1-v1_5 with SHA-256), the 2048-bit key
    /// of A.2.1 (JWK n, e, d, p, q, dp, dq, qi, base64url-decoded to hex) and the signature
    /// of A.2.1 over the JWS Signing Input.
    const JWS_N: &str = "a1f8160ae2e3c9b465ce8d2d656263362b927dbe29e1f02477fc1625cc90a136\
        e38bd93497c5b6ea63dd7711e67c7429f956b0fb8a8f089adc4b69893cc1333f53edd019b87784252fec914f\
        e4857769594bea4280d32c0f55bf62944f130396bc6e9bdf6ebdd2bda3678eeca0c668f701b38dbffb38c834\
        2ce2fe6d27fade4a5a4874979dd4b9cf9adec4c75b05852c2c0f5ef8a5c1750392f944e8ed64c110c6b64760\
        9aa4783aeb9c6c9ad755313050638b83665c6f6f7a82a396702a1f641b82d3ebf2392219491fb686872c5716\
        f50af8358d9a8b9d17c340728f7f87d89a18d8fcab67ad84590c2ecf759339363c07034d6f606f9e21e05456\
        cae5e9a1";
    const JWS_D: &str = "12ae71a469cd0a2bc37e526c4500571f1d61751d64e949707b62590f9d0ba57c\
        963c401e3fcf2f2cd3bdec88e503bfc6439b0b28c82f7d3797671f5213eed8c15a25d8d5cea0025ee3ab2e8b\
        7f79216fc63bea562753b40644c6a15127d9b2954540a0bbe1a30556982d4e9fde5f6425f14d4b713441b55d\
        c73b9b4aedcc92ace3927e37f57d0cfd5e7581fa512c8f4961a9eb0b80f8a80746728a55ff46471f3425063b\
        9d53642f5ede1e84d613081afa5c22d051285bd63b943b565d898a05685413e53c3c6c6525ff1fe34e3ddc70\
        f0d56450fda48ba12e104e9deb9fb81881e1c4bdf25d9247f450c865927968e77334f4414f75a750e139546e\
        3a8a739d";
    const JWS_P: &str = "e01cc410eb48a6655d54464d0aa4bb6da0b872b774a6a9d11ffe480778f0ddb7\
        311a7e902ef9c4b5f75476262ba8176cb35979f014372a1a2829e4136bd001d07c3f3f2e4f25d4c934f63c71\
        09fba2e67628a0dc9a73c6058e6def22dcd50950e711ddc16d5586f2a7fa75ea8494c18083e0b65742f8a0d5\
        e73fb2d970f01947";
    const JWS_Q: &str = "b903c47e0995b632f4532cb1f3c199145d5f3ae9c7dfeedc7a92a6b47e29c61b\
        42a07aa95a64fc600999c5a7b01e01c08cb62ca756527bbcc56078fb0baba5ed38de2d07990ff6300faeadeb\
        6c039a97bf1e507e4e7040fa78db8257c8b112ed5e59c3cd092fe5d4e5b51275d41281072a5e785ebaf3dae3\
        709203133f5159d7";
    const JWS_DP: &str = "07029f577024ab9fcc1590c56429d6fb0ce5f820a8f375a866f9cb430093783b\
        fcbb396e4529e6ef52374022dd86ba84d9ef58931beec5d05fa53fcf23b633f8538a9eed51e87b097830a39f\
        5d92937be6024b55db36f7e0c09dcbb72975387f615afbb6cb36bbabe7793c2b03ceab66dbb931baf50b55ec\
        9af9311d001d628d";
    const JWS_DQ: &str = "87ff7afa62b547fee0961b2e9bcd5d6718d39d8ca73db6691f38998de7877176\
        2c5da68cc243a5383b166bb23dc570e84706ca801ef5f6bae6236a0aafa3770e8f54d1a8da1c5f8d2899f082\
        331ddb0f5c8f3dfffa4c8d97102bdafe082a118da6633988880e4b55599ce67af26ebfa5b2c14a9de7b2c4dd\
        96abddd2d2224c75";
    const JWS_QI: &str = "21877b0c73a1ad6bf19303d0b11336b4e82b8db72b7efb50262a5df8395cc725\
        6eb8cf6c40b7608d5936a32dba174126a527062ead8ca305fb7e177f409437c9dcb9718ed82018bcef0f7720\
        a2c475f9db26da0e3cb516d084eb25178e828d5cabd49bb3161ac0181fa7f821e80e7ad37936f9943054ad09\
        2921ee2c592e4375";
    const JWS_RS256_SIG: &str = "702e218943e88fd11eb5d82dbf7845f34106ae1b81fff7731116add1717d\
        83656d420afd3c96eedd73a2663e5166687b000b87226e0187ed1073f945e582adfcef16d85a798ee8c66ddb\
        3db8975b17d09402beedd5d9d97007108db28160d5f8040ca7445762b81fbe7ff9d92e0ae76f24f25b33bbe6\
        f44ae61eb1040acb20044d3ef9128ed40130795bd4bd3b41eecad066ab651981fde48df77f372dc38b9fafdd\
        3befb18b5da3cc3c2eb02f9e3a41d612caad15911273a05f23b9e838faaf849d698429ef5a1e88798236c3d4\
        0e604522a544c8f27a7a2db80663d16cf7caea56de405cb2215a45b2c25566b55ac1a748a070dfc8a32a4695\
        43d019eefb47";
    /// RFC 7515 A.3: ES256, the P-256 key of A.3.1 (x, y) and the `r ‖ s` signature of A.3.1.
    const JWS_ES256_X: &str = "7fcdce2770f6c45d4183cbee6fdb4b7b580733357be9ef13bacf6e3c7bd15445";
    const JWS_ES256_Y: &str = "c7f144cd1bbd9b7e872cdfedb9eeb9f4b3695d6ea90b24ad8a4623288588e5ad";
    const JWS_ES256_SIG: &str = "0ed1215379636c483c2f7f155807d402a3b228033af97c7e17819ac3169e\
        a665c50a07d38c3c70e5d8f12daf084a5480a66590c5f293509a8f3f7f8a83a354d5";
    /// The JWS Payload of RFC 7515 A.1–A.3, base64url.
    const JWS_PAYLOAD: &str = "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFt\
        cGxlLmNvbS9pc19yb290Ijp0cnVlfQ";

    fn jws_signing_input(protected: &str) -> Vec<u8> {
        format!("{protected}.{JWS_PAYLOAD}").into_bytes()
    }

    fn bn(s: &str) -> BigNum {
        BigNum::from_slice(&h(s)).unwrap()
    }

    fn jws_rsa_private() -> SigningKey {
        let rsa = Rsa::from_private_components(
            bn(JWS_N),
            bn("010001"),
            bn(JWS_D),
            bn(JWS_P),
            bn(JWS_Q),
            bn(JWS_DP),
            bn(JWS_DQ),
            bn(JWS_QI),
        )
        .unwrap();
        SigningKey::from(PKey::from_rsa(rsa).unwrap())
    }

    fn jws_rsa_public() -> VerifyingKey {
        let rsa = Rsa::from_public_components(bn(JWS_N), bn("010001")).unwrap();
        let der = PKey::from_rsa(rsa).unwrap().public_key_to_der().unwrap();
        VerifyingKey::from_spki_der(&der).unwrap()
    }

    #[test]
    fn rfc6979_p256_sha256_signatures_verify() {
        let key = rfc6979_key();
        assert_eq!(key.kind(), KeyKind::EcP256);
        for (msg, r, s) in RFC6979_SHA256 {
            let raw = [h(r), h(s)].concat();
            key.verify_ecdsa_raw(SigHash::Sha256, msg.as_bytes(), &raw)
                .unwrap();
            let der = ecdsa_raw_to_der(&raw).unwrap();
            key.verify(SigScheme::Ecdsa(SigHash::Sha256), msg.as_bytes(), &der)
                .unwrap();
            assert_eq!(ecdsa_der_to_raw(&der, 32).unwrap(), raw);
            // Another message, another hash, a flipped bit in r or s: all fail.
            assert_eq!(
                key.verify_ecdsa_raw(SigHash::Sha256, b"tampered", &raw),
                Err(CryptoError::AuthenticationFailed)
            );
            assert_eq!(
                key.verify_ecdsa_raw(SigHash::Sha384, msg.as_bytes(), &raw),
                Err(CryptoError::AuthenticationFailed)
            );
            for i in [0, 31, 32, 63] {
                let mut bad = raw.clone();
                bad[i] ^= 0x10;
                assert_eq!(
                    key.verify_ecdsa_raw(SigHash::Sha256, msg.as_bytes(), &bad),
                    Err(CryptoError::AuthenticationFailed)
                );
            }
            assert_eq!(
                key.verify_ecdsa_raw(SigHash::Sha256, msg.as_bytes(), &raw[..63]),
                Err(CryptoError::AuthenticationFailed)
            );
            let mut bad_der = der.clone();
            bad_der[0] = 0x31;
            assert_eq!(
                key.verify(SigScheme::Ecdsa(SigHash::Sha256), msg.as_bytes(), &bad_der),
                Err(CryptoError::AuthenticationFailed)
            );
        }
        // An ECDSA key does not do RSA.
        assert!(matches!(
            key.verify(SigScheme::RsaPkcs1v15(SigHash::Sha256), b"sample", &[0; 64]),
            Err(CryptoError::Unsupported(_))
        ));
    }

    #[test]
    fn rfc6979_key_signs_and_verifies() {
        let d = h(RFC6979_X);
        let ec = openssl::ec::EcKey::from_private_components(
            &openssl::ec::EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap(),
            &BigNum::from_slice(&d).unwrap(),
            rfc6979_key().key.ec_key().unwrap().public_key(),
        )
        .unwrap();
        let key = SigningKey::from(PKey::from_ec_key(ec).unwrap());
        assert_eq!(key.kind(), KeyKind::EcP256);
        assert_eq!(key.bits(), 256);
        assert_eq!(
            key.public_key_der().unwrap(),
            rfc6979_key().to_spki_der().unwrap()
        );
        assert!(!format!("{key:?}").contains("c9af"));
        let vk = key.verifying_key().unwrap();
        let raw = key.sign_ecdsa_raw(SigHash::Sha256, b"sample").unwrap();
        assert_eq!(raw.len(), 64);
        vk.verify_ecdsa_raw(SigHash::Sha256, b"sample", &raw)
            .unwrap();
        let der = key.sign(SigScheme::Ecdsa(SigHash::Sha256), b"msg").unwrap();
        vk.verify(SigScheme::Ecdsa(SigHash::Sha256), b"msg", &der)
            .unwrap();
        assert!(matches!(
            key.sign(SigScheme::RsaPkcs1v15(SigHash::Sha256), b"msg"),
            Err(CryptoError::Unsupported(_))
        ));
    }

    #[test]
    fn rfc7515_es256_verifies() {
        let xy = [h(JWS_ES256_X), h(JWS_ES256_Y)].concat();
        let spki = P256PublicKey::from_xy(&xy).unwrap().to_spki_der().unwrap();
        let key = VerifyingKey::from_spki_der(&spki).unwrap();
        let input = jws_signing_input("eyJhbGciOiJFUzI1NiJ9");
        let sig = h(JWS_ES256_SIG);
        key.verify_ecdsa_raw(SigHash::Sha256, &input, &sig).unwrap();
        let mut bad = input.clone();
        bad[0] ^= 1;
        assert_eq!(
            key.verify_ecdsa_raw(SigHash::Sha256, &bad, &sig),
            Err(CryptoError::AuthenticationFailed)
        );
    }

    /// PKCS#1 v1.5 is deterministic: the RFC's key must give the RFC's signature, octet for
    /// octet.
    #[test]
    fn rfc7515_rs256_signs_and_verifies() {
        let input = jws_signing_input("eyJhbGciOiJSUzI1NiJ9");
        let expected = h(JWS_RS256_SIG);
        let public = jws_rsa_public();
        assert_eq!(public.kind(), KeyKind::Rsa);
        assert_eq!(public.bits(), 2048);
        let scheme = SigScheme::RsaPkcs1v15(SigHash::Sha256);
        public.verify(scheme, &input, &expected).unwrap();

        let private = jws_rsa_private();
        assert_eq!(private.kind(), KeyKind::Rsa);
        assert_eq!(private.sign(scheme, &input).unwrap(), expected);
        assert_eq!(
            private.public_key_der().unwrap(),
            public.to_spki_der().unwrap()
        );

        // Tampered signature, tampered message, wrong hash, PSS padding: all fail.
        for i in [0, 128, 255] {
            let mut bad = expected.clone();
            bad[i] ^= 0x01;
            assert_eq!(
                public.verify(scheme, &input, &bad),
                Err(CryptoError::AuthenticationFailed)
            );
        }
        assert_eq!(
            public.verify(scheme, b"other", &expected),
            Err(CryptoError::AuthenticationFailed)
        );
        assert_eq!(
            public.verify(SigScheme::RsaPkcs1v15(SigHash::Sha1), &input, &expected),
            Err(CryptoError::AuthenticationFailed)
        );
        let pss = SigScheme::RsaPss {
            hash: SigHash::Sha256,
            salt_len: 32,
        };
        assert_eq!(
            public.verify(pss, &input, &expected),
            Err(CryptoError::AuthenticationFailed)
        );
        assert_eq!(
            public.verify(scheme, &input, &expected[..255]),
            Err(CryptoError::AuthenticationFailed)
        );
        assert!(matches!(
            public.verify(SigScheme::Ecdsa(SigHash::Sha256), &input, &expected),
            Err(CryptoError::Unsupported(_))
        ));
        assert!(matches!(
            public.verify_ecdsa_raw(SigHash::Sha256, &input, &expected[..64]),
            Err(CryptoError::Unsupported(_))
        ));
    }

    /// PSS is randomised, so this is a round trip with the RFC 7515 key, plus the checks that
    /// the salt length and the hash are bound into the signature.
    #[test]
    fn rsa_pss_round_trip() {
        let private = jws_rsa_private();
        let public = jws_rsa_public();
        let pss = |salt_len| SigScheme::RsaPss {
            hash: SigHash::Sha256,
            salt_len,
        };
        let sig = private.sign(pss(32), b"message").unwrap();
        assert_eq!(sig.len(), 256);
        public.verify(pss(32), b"message", &sig).unwrap();
        assert_eq!(
            public.verify(pss(20), b"message", &sig),
            Err(CryptoError::AuthenticationFailed)
        );
        assert_eq!(
            public.verify(SigScheme::RsaPkcs1v15(SigHash::Sha256), b"message", &sig),
            Err(CryptoError::AuthenticationFailed)
        );
        assert_eq!(
            public.verify(pss(32), b"massage", &sig),
            Err(CryptoError::AuthenticationFailed)
        );
        // SHA-1 PKCS#1 v1.5 round trip (legacy peers).
        let sha1 = SigScheme::RsaPkcs1v15(SigHash::Sha1);
        let sig = private.sign(sha1, b"message").unwrap();
        public.verify(sha1, b"message", &sig).unwrap();
    }

    #[test]
    fn ed25519_rfc8032_test_1_and_spki_parts() {
        let seed = h("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
        let public = h("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
        let sig = h(concat!(
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155",
            "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        ));
        let key = SigningKey::from(
            PKey::private_key_from_raw_bytes(&seed, openssl::pkey::Id::ED25519).unwrap(),
        );
        assert_eq!(key.kind(), KeyKind::Ed25519);
        assert_eq!(key.sign(SigScheme::Ed25519, b"").unwrap(), sig);
        assert_eq!(
            key.sign(SigScheme::Ecdsa(SigHash::Sha256), b""),
            Err(CryptoError::Unsupported(
                "signature scheme does not fit the key"
            ))
        );
        // The public key from its SPKI parts (id-Ed25519, RFC 8410), as a path validator has it.
        let v = VerifyingKey::from_spki_parts(&h("06032b6570"), &public).unwrap();
        assert_eq!(v.to_spki_der().unwrap(), key.public_key_der().unwrap());
        v.verify(SigScheme::Ed25519, b"", &sig).unwrap();
        let mut bad = sig.clone();
        bad[63] ^= 1;
        assert_eq!(
            v.verify(SigScheme::Ed25519, b"", &bad),
            Err(CryptoError::AuthenticationFailed)
        );
        assert!(v.verify(SigScheme::Ed25519, b"x", &sig).is_err());
        // SPKI parts of an RSA, a P-256 and a P-384 key give back the same SPKI.
        fn tlv(d: &[u8]) -> (&[u8], &[u8]) {
            let (len, at) = match d[1] {
                n if n < 0x80 => (usize::from(n), 2),
                0x81 => (usize::from(d[2]), 3),
                _ => (usize::from(u16::from_be_bytes([d[2], d[3]])), 4),
            };
            (&d[at..at + len], &d[at + len..])
        }
        let ec = |nid| {
            let group = openssl::ec::EcGroup::from_curve_name(nid).unwrap();
            PKey::from_ec_key(openssl::ec::EcKey::generate(&group).unwrap()).unwrap()
        };
        for k in [
            PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap(),
            ec(openssl::nid::Nid::X9_62_PRIME256V1),
            ec(openssl::nid::Nid::SECP384R1),
        ] {
            let k = SigningKey::from(k);
            let der = k.public_key_der().unwrap();
            let (body, _) = tlv(&der);
            let (algorithm, rest) = tlv(body);
            let (bits, _) = tlv(rest);
            let v = VerifyingKey::from_spki_parts(algorithm, &bits[1..]).unwrap();
            assert_eq!(v.to_spki_der().unwrap(), der);
        }
        // Not a key: refused.
        assert!(VerifyingKey::from_spki_parts(&h("06032b6570"), &[1, 2, 3]).is_err());
        // A P-256 signing key as `ecc::P256KeyPair`: its signatures verify with the SPKI key;
        // other kinds have none.
        let k = SigningKey::from(ec(openssl::nid::Nid::X9_62_PRIME256V1));
        let p256 = k.to_p256().unwrap();
        let sig = p256.sign_der(b"msg").unwrap();
        k.verifying_key()
            .unwrap()
            .verify(SigScheme::Ecdsa(SigHash::Sha256), b"msg", &sig)
            .unwrap();
        assert!(
            SigningKey::from(ec(openssl::nid::Nid::SECP384R1))
                .to_p256()
                .is_none()
        );
        assert!(key.to_p256().is_none());
    }

    #[test]
    fn key_parsing_and_raw_conversion_errors() {
        assert!(VerifyingKey::from_spki_der(b"not a key").is_err());
        assert!(SigningKey::from_pem(b"not a key").is_err());
        assert!(SigningKey::from_der(&[0x30, 0x00]).is_err());
        assert_eq!(
            ecdsa_raw_to_der(&[1; 63]),
            Err(CryptoError::Length {
                what: "ECDSA r||s",
                len: 63
            })
        );
        assert!(ecdsa_raw_to_der(&[]).is_err());
        assert!(ecdsa_der_to_raw(b"junk", 32).is_err());
        // r longer than the scalar length does not fit.
        let der = ecdsa_raw_to_der(&[0xff; 66]).unwrap();
        assert!(ecdsa_der_to_raw(&der, 32).is_err());
        let pem = jws_rsa_public().key.public_key_to_pem().unwrap();
        assert_eq!(VerifyingKey::from_pem(&pem).unwrap().kind(), KeyKind::Rsa);
        let pem = jws_rsa_private().key.private_key_to_pem_pkcs8().unwrap();
        assert_eq!(SigningKey::from_pem(&pem).unwrap().kind(), KeyKind::Rsa);
        let der = jws_rsa_private().key.private_key_to_der().unwrap();
        assert_eq!(SigningKey::from_der(&der).unwrap().kind(), KeyKind::Rsa);
        assert!(!format!("{:?}", jws_rsa_private()).contains("12ae71"));
    }
}
