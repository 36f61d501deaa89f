//! The one audited place where KMPs get their cryptography, on OpenSSL.
//!
//! Every primitive is tested against a public vector in its module. Secrets are held in types
//! that zeroize on drop, and comparisons of secrets and MACs are constant-time ([`ct_eq`]).

/// A crypto primitive failed or was misused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// A key of the wrong length.
    #[error("invalid key length {0}")]
    KeyLength(usize),
    /// A nonce, IV or tag of the wrong length.
    #[error("invalid {what} length {len}")]
    Length {
        /// Which parameter.
        what: &'static str,
        /// Its length.
        len: usize,
    },
    /// Authentication (MIC, tag, signature, unwrap integrity check) failed.
    #[error("authentication failed")]
    AuthenticationFailed,
    /// A point or scalar is invalid (not on the curve, out of range).
    #[error("invalid public value: {0}")]
    InvalidPublicValue(&'static str),
    /// Certificate or chain verification failed.
    #[error("certificate verification failed: {0}")]
    Certificate(String),
    /// OpenSSL reported an error.
    #[error("openssl: {0}")]
    Library(String),
}

impl From<openssl::error::ErrorStack> for CryptoError {
    fn from(e: openssl::error::ErrorStack) -> Self {
        CryptoError::Library(e.to_string())
    }
}

/// Constant-time equality of two octet strings (lengths are not secret).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && openssl::memcmp::eq(a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ct_eq_basics() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
        assert!(ct_eq(b"", b""));
    }
}
