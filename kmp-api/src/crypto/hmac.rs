//! SHA-1 / SHA-256 / SHA-384 digests (FIPS 180-4) and HMAC over them (RFC 2104).
//!
//! HMAC-SHA-1 is the MIKEY MAC and PRF core (RFC 3830 §4.1); HMAC-SHA-256/384 are the IKEv2,
//! HIPv2 and PANA PRFs. Keys may have any length, empty included (RFC 2104 §2).
//!
//! MD5 and HMAC-MD5 (RFC 1321, RFC 2104) are here only for RADIUS (RFC 2865, RFC 3579, RFC 2548).

use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use zeroize::Zeroize;

use super::CryptoError;

/// SHA-1 digest length.
pub const SHA1_LEN: usize = 20;
/// SHA-256 digest length.
pub const SHA256_LEN: usize = 32;
/// SHA-384 digest length.
pub const SHA384_LEN: usize = 48;

/// SHA-1 of `data`.
pub fn sha1(data: &[u8]) -> [u8; SHA1_LEN] {
    openssl::sha::sha1(data)
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; SHA256_LEN] {
    openssl::sha::sha256(data)
}

/// SHA-384 of `data`.
pub fn sha384(data: &[u8]) -> [u8; SHA384_LEN] {
    openssl::sha::sha384(data)
}

/// Octets of a SHA-512 digest.
pub const SHA512_LEN: usize = 64;

/// SHA-512 of `data`.
pub fn sha512(data: &[u8]) -> [u8; SHA512_LEN] {
    openssl::sha::sha512(data)
}

/// SHA-384 of the concatenation of `parts`.
pub fn sha384_parts(parts: &[&[u8]]) -> [u8; SHA384_LEN] {
    let mut h = openssl::sha::Sha384::new();
    for p in parts {
        h.update(p);
    }
    h.finish()
}

/// SHA-512 of the concatenation of `parts`.
pub fn sha512_parts(parts: &[&[u8]]) -> [u8; SHA512_LEN] {
    let mut h = openssl::sha::Sha512::new();
    for p in parts {
        h.update(p);
    }
    h.finish()
}

/// A SHA-2 hash computed incrementally, that can be copied mid-way (a TLS transcript hash).
#[derive(Clone)]
pub enum Sha2 {
    /// SHA-256.
    Sha256(openssl::sha::Sha256),
    /// SHA-384.
    Sha384(openssl::sha::Sha384),
}

impl core::fmt::Debug for Sha2 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Sha2::Sha256(_) => "Sha2::Sha256",
            Sha2::Sha384(_) => "Sha2::Sha384",
        })
    }
}

impl Sha2 {
    /// An empty SHA-256.
    pub fn sha256() -> Sha2 {
        Sha2::Sha256(openssl::sha::Sha256::new())
    }

    /// An empty SHA-384.
    pub fn sha384() -> Sha2 {
        Sha2::Sha384(openssl::sha::Sha384::new())
    }

    /// The digest length.
    pub fn len(&self) -> usize {
        match self {
            Sha2::Sha256(_) => SHA256_LEN,
            Sha2::Sha384(_) => SHA384_LEN,
        }
    }

    /// Always false: a digest is never empty (for clippy's `len_without_is_empty`).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Hashes `data` in.
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Sha2::Sha256(h) => h.update(data),
            Sha2::Sha384(h) => h.update(data),
        }
    }

    /// The digest, in the first [`Sha2::len`] octets of the result.
    pub fn finish(self) -> [u8; SHA512_LEN] {
        let mut out = [0u8; SHA512_LEN];
        match self {
            Sha2::Sha256(h) => out[..SHA256_LEN].copy_from_slice(&h.finish()),
            Sha2::Sha384(h) => out[..SHA384_LEN].copy_from_slice(&h.finish()),
        }
        out
    }
}

/// SHA-256 of the concatenation of `parts`.
pub fn sha256_parts(parts: &[&[u8]]) -> [u8; SHA256_LEN] {
    let mut h = openssl::sha::Sha256::new();
    for part in parts {
        h.update(part);
    }
    h.finish()
}

/// A FIPS 180-4 hash as HMAC needs it: OpenSSL's one-shot `SHA*_Init/Update/Final` contexts
/// (`openssl::sha`), which, unlike the EVP and `PKey` HMAC interfaces of OpenSSL 3, do no
/// provider lookup per call (about 10 µs each, 30 times the hash itself, measured in
/// BENCHMARKS.md "kmp-ikev2").
trait BlockHash {
    const BLOCK: usize;
    const LEN: usize;
    fn start() -> Self;
    fn feed(&mut self, data: &[u8]);
    /// Writes the digest into `out[..LEN]`.
    fn finish_into(self, out: &mut [u8]);
}

macro_rules! block_hash {
    ($t:ty, $block:expr, $len:expr) => {
        impl BlockHash for $t {
            const BLOCK: usize = $block;
            const LEN: usize = $len;
            fn start() -> Self {
                <$t>::new()
            }
            fn feed(&mut self, data: &[u8]) {
                self.update(data);
            }
            fn finish_into(self, out: &mut [u8]) {
                let mut d = self.finish();
                out[..$len].copy_from_slice(&d);
                d.zeroize();
            }
        }
    };
}

block_hash!(openssl::sha::Sha1, 64, SHA1_LEN);
block_hash!(openssl::sha::Sha256, 64, SHA256_LEN);
block_hash!(openssl::sha::Sha384, 128, SHA384_LEN);
block_hash!(openssl::sha::Sha512, 128, SHA512_LEN);

/// The largest block (SHA-384/512).
const MAX_BLOCK: usize = 128;

/// RFC 2104 §2: H((K0 ⊕ opad) ‖ H((K0 ⊕ ipad) ‖ text)), where K0 is the key zero-padded to
/// the block, or its hash when longer than the block. `out` holds exactly `H::LEN` octets.
/// Our copies of the key, the pads and the inner digest are zeroized; OpenSSL clears its
/// data block at each `Final` (its chaining values are not secret beyond the digests).
fn hmac_with<H: BlockHash>(key: &[u8], parts: &[&[u8]], out: &mut [u8]) {
    let mut k0 = [0u8; MAX_BLOCK];
    if key.len() > H::BLOCK {
        let mut h = H::start();
        h.feed(key);
        h.finish_into(&mut k0);
    } else {
        k0[..key.len()].copy_from_slice(key);
    }
    let mut pad = [0u8; MAX_BLOCK];
    for (p, k) in pad.iter_mut().zip(&k0).take(H::BLOCK) {
        *p = k ^ 0x36;
    }
    let mut inner = H::start();
    inner.feed(&pad[..H::BLOCK]);
    for part in parts {
        inner.feed(part);
    }
    let mut digest = [0u8; 64];
    inner.finish_into(&mut digest);
    for (p, k) in pad.iter_mut().zip(&k0).take(H::BLOCK) {
        *p = k ^ 0x5c;
    }
    let mut outer = H::start();
    outer.feed(&pad[..H::BLOCK]);
    outer.feed(&digest[..H::LEN]);
    outer.finish_into(out);
    k0.zeroize();
    pad.zeroize();
    digest.zeroize();
}

/// HMAC with `md` (SHA-1, SHA-256, SHA-384 or SHA-512) over the concatenation of `parts`,
/// written into `out` (which must be exactly the digest length).
pub(crate) fn hmac_into(
    md: MessageDigest,
    key: &[u8],
    parts: &[&[u8]],
    out: &mut [u8],
) -> Result<(), CryptoError> {
    if out.len() != md.size() {
        return Err(CryptoError::Length {
            what: "HMAC output",
            len: out.len(),
        });
    }
    match md.type_() {
        Nid::SHA1 => hmac_with::<openssl::sha::Sha1>(key, parts, out),
        Nid::SHA256 => hmac_with::<openssl::sha::Sha256>(key, parts, out),
        Nid::SHA384 => hmac_with::<openssl::sha::Sha384>(key, parts, out),
        Nid::SHA512 => hmac_with::<openssl::sha::Sha512>(key, parts, out),
        other => {
            return Err(CryptoError::Library(format!(
                "HMAC with an unsupported digest {:?}",
                other.short_name().unwrap_or("?")
            )));
        }
    }
    Ok(())
}

/// HMAC-SHA-1 of the concatenation of `parts`.
pub fn hmac_sha1_parts(key: &[u8], parts: &[&[u8]]) -> Result<[u8; SHA1_LEN], CryptoError> {
    let mut out = [0u8; SHA1_LEN];
    hmac_into(MessageDigest::sha1(), key, parts, &mut out)?;
    Ok(out)
}

/// HMAC-SHA-256 of the concatenation of `parts`.
pub fn hmac_sha256_parts(key: &[u8], parts: &[&[u8]]) -> Result<[u8; SHA256_LEN], CryptoError> {
    let mut out = [0u8; SHA256_LEN];
    hmac_into(MessageDigest::sha256(), key, parts, &mut out)?;
    Ok(out)
}

/// HMAC-SHA-384 of the concatenation of `parts`.
pub fn hmac_sha384_parts(key: &[u8], parts: &[&[u8]]) -> Result<[u8; SHA384_LEN], CryptoError> {
    let mut out = [0u8; SHA384_LEN];
    hmac_into(MessageDigest::sha384(), key, parts, &mut out)?;
    Ok(out)
}

/// HMAC-SHA-512 of the concatenation of `parts`.
pub fn hmac_sha512_parts(key: &[u8], parts: &[&[u8]]) -> Result<[u8; SHA512_LEN], CryptoError> {
    let mut out = [0u8; SHA512_LEN];
    hmac_into(MessageDigest::sha512(), key, parts, &mut out)?;
    Ok(out)
}

/// HMAC-SHA-512 of `data` (RFC 4231 vectors).
pub fn hmac_sha512(key: &[u8], data: &[u8]) -> Result<[u8; SHA512_LEN], CryptoError> {
    hmac_sha512_parts(key, &[data])
}

/// HMAC-SHA-1 of `data` (RFC 2104, RFC 2202 vectors).
pub fn hmac_sha1(key: &[u8], data: &[u8]) -> Result<[u8; SHA1_LEN], CryptoError> {
    hmac_sha1_parts(key, &[data])
}

/// HMAC-SHA-256 of `data` (RFC 4231 vectors).
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> Result<[u8; SHA256_LEN], CryptoError> {
    hmac_sha256_parts(key, &[data])
}

/// HMAC-SHA-384 of `data` (RFC 4231 vectors).
pub fn hmac_sha384(key: &[u8], data: &[u8]) -> Result<[u8; SHA384_LEN], CryptoError> {
    hmac_sha384_parts(key, &[data])
}

/// MD5 digest length (RFC 1321).
pub const MD5_LEN: usize = 16;

/// MD5 block length (RFC 1321 §3.4): the HMAC key block.
const MD5_BLOCK: usize = 64;

/// OpenSSL's MD5 implementation, fetched from the default provider once per process
/// (`EVP_MD_fetch`); `None` when no provider offers it (a FIPS-only configuration), kept as the
/// error text.
fn md5_md() -> Result<&'static openssl::md::MdRef, CryptoError> {
    static MD5: std::sync::OnceLock<Result<openssl::md::Md, String>> = std::sync::OnceLock::new();
    match MD5.get_or_init(|| openssl::md::Md::fetch(None, "MD5", None).map_err(|e| e.to_string())) {
        Ok(md) => Ok(md),
        Err(e) => Err(CryptoError::Library(format!("MD5 unavailable: {e}"))),
    }
}

thread_local! {
    /// One digest context per thread, re-initialised for every MD5: no allocation and no
    /// provider lookup per call.
    static MD5_CTX: std::cell::RefCell<Option<openssl::md_ctx::MdCtx>> =
        const { std::cell::RefCell::new(None) };
}

/// MD5 (RFC 1321) of the concatenation of `parts`.
///
/// Only for protocols that mandate it (RADIUS: Response Authenticator, RFC 2865 §3; MS-MPPE key
/// hiding, RFC 2548 §2.4.2), never as a new design choice. `openssl::sha` has no MD5 context,
/// so this uses the EVP interface with the MD5 implementation fetched once per process and a
/// digest context reused per thread (the generic `Hasher` did a provider lookup and two
/// allocations per call: about 3 times slower, see `cargo bench -p radius --bench md5`).
/// OpenSSL 3 can refuse MD5 (FIPS provider only), which comes back as
/// [`CryptoError::Library`].
pub fn md5_parts(parts: &[&[u8]]) -> Result<[u8; MD5_LEN], CryptoError> {
    let md = md5_md()?;
    let mut out = [0u8; MD5_LEN];
    MD5_CTX.with(|cell| -> Result<(), CryptoError> {
        // A re-entrant call on this thread (not made today) gets a context of its own.
        let mut slot = cell.try_borrow_mut().ok();
        let mut local = None;
        let ctx = match slot.as_deref_mut() {
            Some(Some(ctx)) => ctx,
            Some(empty) => empty.insert(openssl::md_ctx::MdCtx::new()?),
            None => local.insert(openssl::md_ctx::MdCtx::new()?),
        };
        ctx.digest_init(md)?;
        for part in parts {
            ctx.digest_update(part)?;
        }
        let n = ctx.digest_final(&mut out)?;
        if n != MD5_LEN {
            return Err(CryptoError::Length {
                what: "MD5 digest",
                len: n,
            });
        }
        Ok(())
    })?;
    Ok(out)
}

/// MD5 (RFC 1321) of `data`; see [`md5_parts`].
pub fn md5(data: &[u8]) -> Result<[u8; MD5_LEN], CryptoError> {
    md5_parts(&[data])
}

/// HMAC-MD5 (RFC 2104) of the concatenation of `parts`: the RADIUS Message-Authenticator
/// (RFC 3579 §3.2). Built like the other HMACs here (K0 padded or hashed to the 64-octet block), over
/// [`md5_parts`] since MD5 has no `openssl::sha` context; our copies of the key, the pads and
/// the inner digest are zeroized.
pub fn hmac_md5_parts(key: &[u8], parts: &[&[u8]]) -> Result<[u8; MD5_LEN], CryptoError> {
    let mut k0 = [0u8; MD5_BLOCK];
    if key.len() > MD5_BLOCK {
        let mut hk = md5(key)?;
        k0[..MD5_LEN].copy_from_slice(&hk);
        hk.zeroize();
    } else {
        k0[..key.len()].copy_from_slice(key);
    }
    let mut pad = [0u8; MD5_BLOCK];
    for (p, k) in pad.iter_mut().zip(&k0) {
        *p = k ^ 0x36;
    }
    let mut inner_parts: Vec<&[u8]> = Vec::with_capacity(parts.len() + 1);
    inner_parts.push(&pad);
    inner_parts.extend_from_slice(parts);
    let inner = md5_parts(&inner_parts);
    drop(inner_parts);
    let mut inner = match inner {
        Ok(d) => d,
        Err(e) => {
            k0.zeroize();
            pad.zeroize();
            return Err(e);
        }
    };
    for (p, k) in pad.iter_mut().zip(&k0) {
        *p = k ^ 0x5c;
    }
    let out = md5_parts(&[&pad, &inner]);
    k0.zeroize();
    pad.zeroize();
    inner.zeroize();
    out
}

/// HMAC-MD5 of `data` (RFC 2104, RFC 2202 vectors); see [`hmac_md5_parts`].
pub fn hmac_md5(key: &[u8], data: &[u8]) -> Result<[u8; MD5_LEN], CryptoError> {
    hmac_md5_parts(key, &[data])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// FIPS 180-4 "abc" through the incremental hash, fed in pieces and forked half-way.
    #[test]
    fn sha2_incremental_and_forked() {
        let abc256 =
            hex::decode("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
                .unwrap();
        let abc384 = hex::decode(concat!(
            "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed",
            "8086072ba1e7cc2358baeca134c825a7"
        ))
        .unwrap();
        for (mut h, want) in [(Sha2::sha256(), abc256), (Sha2::sha384(), abc384)] {
            assert_eq!(h.len(), want.len());
            h.update(b"a");
            let fork = h.clone();
            h.update(b"bc");
            assert_eq!(&h.finish()[..want.len()], &want[..]);
            let mut f = fork;
            f.update(b"b");
            f.update(b"c");
            assert_eq!(&f.finish()[..want.len()], &want[..]);
        }
    }

    #[test]
    fn sha512_and_hmac_sha512_vectors() {
        // FIPS 180-4 example "abc".
        assert_eq!(
            hex::encode(sha512(b"abc")),
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
             2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
        );
        assert_eq!(sha512_parts(&[b"a", b"bc"]), sha512(b"abc"));
        assert_eq!(sha384_parts(&[b"ab", b"c"]), sha384(b"abc"));
        // RFC 4231 test case 1.
        assert_eq!(
            hex::encode(hmac_sha512(&[0x0b; 20], b"Hi There").unwrap()),
            "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cde\
             daa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854"
        );
    }

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    // FIPS 180-4 examples (NIST CSRC "SHA_All"): "abc".
    #[test]
    fn digests_of_abc() {
        assert_eq!(
            sha1(b"abc").to_vec(),
            h("a9993e364706816aba3e25717850c26c9cd0d89d")
        );
        assert_eq!(
            sha256(b"abc").to_vec(),
            h("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        assert_eq!(
            sha384(b"abc").to_vec(),
            h(
                "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed\
               8086072ba1e7cc2358baeca134c825a7"
            )
        );
        assert_eq!(sha256_parts(&[b"a", b"", b"bc"]), sha256(b"abc"));
    }

    // RFC 2202 §3 test cases 1 and 2 (HMAC-SHA-1).
    #[test]
    fn rfc2202() {
        assert_eq!(
            hmac_sha1(&[0x0b; 20], b"Hi There").unwrap().to_vec(),
            h("b617318655057264e28bc0b6fb378c8ef146be00")
        );
        assert_eq!(
            hmac_sha1(b"Jefe", b"what do ya want for nothing?")
                .unwrap()
                .to_vec(),
            h("effcdf6ae5eb2fa2d27416d5f184df9c259a7c79")
        );
    }

    // RFC 4231 §4.2 and §4.3 test cases 1 and 2 (HMAC-SHA-256 and HMAC-SHA-384).
    #[test]
    fn rfc4231() {
        assert_eq!(
            hmac_sha256(&[0x0b; 20], b"Hi There").unwrap().to_vec(),
            h("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
        );
        assert_eq!(
            hmac_sha256(b"Jefe", b"what do ya want for nothing?")
                .unwrap()
                .to_vec(),
            h("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        );
        assert_eq!(
            hmac_sha384(b"Jefe", b"what do ya want for nothing?")
                .unwrap()
                .to_vec(),
            h(
                "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e\
               8e2240ca5e69e2c78b3239ecfab21649"
            )
        );
        assert_eq!(
            hmac_sha256_parts(b"Jefe", &[b"what do ya ", b"want for nothing?"]).unwrap(),
            hmac_sha256(b"Jefe", b"what do ya want for nothing?").unwrap()
        );
    }

    // RFC 4231 §4.7 test case 6 and RFC 2202 §3 test case 6: keys longer than the block.
    #[test]
    fn long_keys() {
        assert_eq!(
            hmac_sha256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )
            .unwrap()
            .to_vec(),
            h("60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
        );
        assert_eq!(
            hmac_sha1(
                &[0xaa; 80],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )
            .unwrap()
            .to_vec(),
            h("aa4ae5e15272d00e95705637ce8a3b55ed402112")
        );
    }

    // An empty key is a valid HMAC key (RFC 2104 §2 pads it with zeros); the value is
    // HMAC-SHA-256("", "") as computed by every HMAC implementation.
    #[test]
    fn empty_key() {
        assert_eq!(
            hmac_sha256(b"", b"").unwrap().to_vec(),
            h("b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad")
        );
    }

    // RFC 1321 §A.5 test suite.
    #[test]
    fn rfc1321_md5() {
        for (input, digest) in [
            ("", "d41d8cd98f00b204e9800998ecf8427e"),
            ("a", "0cc175b9c0f1b6a831c399e269772661"),
            ("abc", "900150983cd24fb0d6963f7d28e17f72"),
            ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            (
                "abcdefghijklmnopqrstuvwxyz",
                "c3fcd3d76192e4007dfb496cca67e13b",
            ),
            (
                "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a",
            ),
        ] {
            assert_eq!(
                md5(input.as_bytes()).unwrap().to_vec(),
                h(digest),
                "{input:?}"
            );
        }
        assert_eq!(
            md5_parts(&[b"a", b"", b"bc"]).unwrap(),
            md5(b"abc").unwrap()
        );
    }

    // RFC 2202 §2 test cases 1, 2, 3, 6 and 7 (HMAC-MD5; 6 and 7 have keys longer than the
    // block).
    // The per-thread context: threads hashing at once get the same digests as one thread.
    #[test]
    fn md5_on_many_threads() {
        let expected = md5(b"message digest").unwrap();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(|| {
                    (0..200)
                        .map(|_| md5(b"message digest").unwrap())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for t in threads {
            assert!(t.join().unwrap().iter().all(|d| *d == expected));
        }
    }

    #[test]
    fn rfc2202_hmac_md5() {
        assert_eq!(
            hmac_md5(&[0x0b; 16], b"Hi There").unwrap().to_vec(),
            h("9294727a3638bb1c13f48ef8158bfc9d")
        );
        assert_eq!(
            hmac_md5(b"Jefe", b"what do ya want for nothing?")
                .unwrap()
                .to_vec(),
            h("750c783e6ab0b503eaa86e310a5db738")
        );
        assert_eq!(
            hmac_md5(&[0xaa; 16], &[0xdd; 50]).unwrap().to_vec(),
            h("56be34521d144c88dbb8c733f0e8b3f6")
        );
        assert_eq!(
            hmac_md5(
                &[0xaa; 80],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )
            .unwrap()
            .to_vec(),
            h("6b1ab7fe4bd7bf8f0b62e6ce61b9d0cd")
        );
        assert_eq!(
            hmac_md5(
                &[0xaa; 80],
                b"Test Using Larger Than Block-Size Key and Larger Than One Block-Size Data"
            )
            .unwrap()
            .to_vec(),
            h("6f630fad67cda0ee1fb1f562db3aa53e")
        );
        assert_eq!(
            hmac_md5_parts(b"Jefe", &[b"what do ya ", b"want for nothing?"]).unwrap(),
            hmac_md5(b"Jefe", b"what do ya want for nothing?").unwrap()
        );
    }
}
