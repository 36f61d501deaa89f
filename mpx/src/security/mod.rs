//! IEEE 802.15.4-2015 frame security (9.2 security procedures, 9.3 CCM* transformation).
//!
//! Two layers:
//! - [`protect_in_place`] / [`unprotect_in_place`]: the CCM* transformation of one frame with a
//!   given key, source address and frame counter. No tables. Used by the procedures below, by
//!   `kmpctl decode --key` and by tests against published vectors.
//! - [`procedures`]: the outgoing and incoming frame security procedures with the PIB: key
//!   lookup by key identifier mode or by device, device lookup, replay check per device and
//!   key, the security-level table, and the own frame counter.
//!
//! What is protected (9.3.5): the MHR, auxiliary security header, header IEs and their
//! termination IE are authenticated only (CCM* `a`); the payload IEs and the payload are the
//! private payload (`m`), encrypted at levels 4–7 and authenticated only at levels 1–3. The
//! nonce is source EUI-64 ‖ frame counter (big-endian) ‖ security level (9.3.2.2).

use kmp_api::addr::ExtendedAddress;
use kmp_api::crypto::CryptoError;
use kmp_api::crypto::ccm::AesCcm;
use kmp_api::security::SecurityLevel;

use crate::wire::ie::HeaderTermination;
use crate::wire::{self, FcsLen, Frame, FrameType};

pub mod procedures;

pub use procedures::{FrameSecurity, IncomingSecurity, SecurityCounters};

/// Length of the CCM* nonce.
pub const NONCE_LEN: usize = 13;

/// Why a frame could not be protected or unprotected. Each variant maps onto an
/// MCPS/MLME status of 802.15.4-2015 where one exists.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SecurityError {
    /// The frame does not parse.
    #[error(transparent)]
    Wire(#[from] wire::Error),
    /// The frame has no auxiliary security header (or level 0 where protection was asked for).
    #[error("frame is not secured")]
    NotSecured,
    /// The nonce needs the frame counter, but it is suppressed (TSCH, ASN in nonce): not
    /// supported by this implementation.
    #[error("frame counter suppression / ASN in nonce is not supported")]
    UnsupportedNonce,
    /// The source's extended address is needed for the nonce and is not known.
    #[error("source extended address unknown (UNAVAILABLE_DEVICE)")]
    UnavailableDevice,
    /// No key for this key identifier and device (UNAVAILABLE_KEY).
    #[error("no key for this frame (UNAVAILABLE_KEY)")]
    UnavailableKey,
    /// The key may not be used for this frame type or direction (IMPROPER_KEY_TYPE).
    #[error("key not allowed for this frame (IMPROPER_KEY_TYPE)")]
    ImproperKeyType,
    /// The security level is below what the security-level table asks (IMPROPER_SECURITY_LEVEL).
    #[error("security level not allowed for this frame (IMPROPER_SECURITY_LEVEL)")]
    ImproperSecurityLevel,
    /// The frame counter was not above the last one accepted (replay).
    #[error("replayed frame counter {counter} (last accepted {last:?})")]
    Replay {
        /// Counter in the frame.
        counter: u32,
        /// Last counter accepted from this device under this key.
        last: Option<u32>,
    },
    /// Our outgoing frame counter is exhausted or could not be reserved (COUNTER_ERROR).
    #[error("frame counter error: {0}")]
    CounterError(String),
    /// The MIC did not verify (SECURITY_ERROR).
    #[error("MIC check failed (SECURITY_ERROR)")]
    AuthenticationFailed,
    /// The crypto library failed.
    #[error(transparent)]
    Crypto(CryptoError),
}

impl From<CryptoError> for SecurityError {
    fn from(e: CryptoError) -> Self {
        match e {
            CryptoError::AuthenticationFailed => SecurityError::AuthenticationFailed,
            other => SecurityError::Crypto(other),
        }
    }
}

impl SecurityError {
    /// A stable short name for counters and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            SecurityError::Wire(_) => "malformed",
            SecurityError::NotSecured => "not_secured",
            SecurityError::UnsupportedNonce => "unsupported_nonce",
            SecurityError::UnavailableDevice => "unavailable_device",
            SecurityError::UnavailableKey => "unavailable_key",
            SecurityError::ImproperKeyType => "improper_key_type",
            SecurityError::ImproperSecurityLevel => "improper_security_level",
            SecurityError::Replay { .. } => "replay",
            SecurityError::CounterError(_) => "counter_error",
            SecurityError::AuthenticationFailed => "authentication_failed",
            SecurityError::Crypto(_) => "crypto",
        }
    }
}

/// The CCM* nonce (802.15.4-2015 9.3.2.2): source address ‖ frame counter ‖ security level.
pub fn nonce(src: ExtendedAddress, frame_counter: u32, level: SecurityLevel) -> [u8; NONCE_LEN] {
    let mut n = [0u8; NONCE_LEN];
    n[..8].copy_from_slice(&src.0);
    n[8..12].copy_from_slice(&frame_counter.to_be_bytes());
    n[12] = level.bits();
    n
}

/// What an unprotected frame was secured with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unprotected {
    /// The security level it was received with.
    pub level: SecurityLevel,
    /// Its frame counter.
    pub frame_counter: u32,
}

/// Applies CCM* to a frame emitted in plaintext by `FrameRepr::emit` (with an auxiliary
/// security header and a zeroed MIC): writes `frame_counter` into the auxiliary header,
/// encrypts and/or authenticates, writes the MIC and re-fills the FCS.
///
/// `src` is our own extended address (the nonce uses it even when the frame carries a short
/// source address).
pub fn protect_in_place(
    buf: &mut [u8],
    fcs: FcsLen,
    key: &mut AesCcm,
    src: ExtendedAddress,
    frame_counter: u32,
) -> Result<(), SecurityError> {
    let mut frame = Frame::new_checked(&mut *buf, fcs)?;
    let aux = frame
        .aux_security_header()
        .ok_or(SecurityError::NotSecured)?;
    let level = aux.security_level();
    if aux.frame_counter_suppressed() || aux.asn_in_nonce() {
        return Err(SecurityError::UnsupportedNonce);
    }
    if level == SecurityLevel::None {
        return Err(SecurityError::NotSecured);
    }
    frame.set_frame_counter(frame_counter);
    let n = nonce(src, frame_counter, level);
    transform(frame, key, &n, level, true)?;
    crate::wire::fcs::fill(buf, fcs);
    Ok(())
}

/// Verifies and decrypts a secured frame in place with one key. `src` is the originator's
/// extended address (from the frame, or from the device table when it sent a short address).
/// The FCS is not checked here. On failure the private payload is zeroed: keep a copy if the
/// frame must be tried with another key.
pub fn unprotect_in_place(
    buf: &mut [u8],
    fcs: FcsLen,
    key: &mut AesCcm,
    src: ExtendedAddress,
) -> Result<Unprotected, SecurityError> {
    unprotect_frame(Frame::new_checked(buf, fcs)?, key, src)
}

/// [`unprotect_in_place`] for a frame whose layout was already checked.
pub(crate) fn unprotect_frame(
    frame: Frame<&mut [u8]>,
    key: &mut AesCcm,
    src: ExtendedAddress,
) -> Result<Unprotected, SecurityError> {
    let aux = frame
        .aux_security_header()
        .ok_or(SecurityError::NotSecured)?;
    let level = aux.security_level();
    let frame_counter = aux.frame_counter().ok_or(SecurityError::UnsupportedNonce)?;
    if aux.asn_in_nonce() {
        return Err(SecurityError::UnsupportedNonce);
    }
    if level != SecurityLevel::None {
        let n = nonce(src, frame_counter, level);
        transform(frame, key, &n, level, false)?;
    }
    Ok(Unprotected {
        level,
        frame_counter,
    })
}

/// Byte ranges of one secured frame for CCM*: `a` = `..open_end`, `m` = `open_end..mic_at`,
/// MIC = `mic_at..fcs_at`.
struct Regions {
    open_end: usize,
    mic_at: usize,
    fcs_at: usize,
}

impl Regions {
    fn of(frame: &Frame<&mut [u8]>) -> Regions {
        let private = frame.private_payload_range();
        // MAC command frames without payload IEs keep the Command Frame Identifier in the open
        // payload: authenticated, never encrypted (802.15.4-2015 9.3.5; Annex C.2.3).
        let open = usize::from(
            frame.frame_type() == FrameType::MacCommand
                && frame.header_termination() != HeaderTermination::Ht1
                && !private.is_empty(),
        );
        Regions {
            open_end: private.start + open,
            mic_at: private.end,
            fcs_at: frame.mic_range().end,
        }
    }
}

/// The CCM* transformation over the frame's regions.
fn transform(
    frame: Frame<&mut [u8]>,
    key: &mut AesCcm,
    nonce: &[u8; NONCE_LEN],
    level: SecurityLevel,
    seal: bool,
) -> Result<(), SecurityError> {
    let r = Regions::of(&frame);
    let buf = frame.into_inner();
    let (a, rest) = buf[..r.fcs_at].split_at_mut(r.open_end);
    let (m, mic) = rest.split_at_mut(r.mic_at - r.open_end);
    if level.encrypts() {
        if seal {
            key.seal_in_place(nonce, a, m, mic)?;
        } else {
            key.open_in_place(nonce, a, m, mic)?;
        }
    } else {
        // MIC-only levels authenticate everything up to the MIC: `a` is the whole frame before
        // the MIC, `m` is empty. The header and private payload are contiguous in the buffer.
        let (a, mic) = buf[..r.fcs_at].split_at_mut(r.mic_at);
        if seal {
            key.seal_in_place(nonce, a, &mut [], mic)?;
        } else {
            key.open_in_place(nonce, a, &mut [], mic)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANNEX_C_KEY: [u8; 16] = [
        0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xcb, 0xcc, 0xcd, 0xce,
        0xcf,
    ];
    const ANNEX_C_SRC: ExtendedAddress = ExtendedAddress([0xac, 0xde, 0x48, 0, 0, 0, 0, 1]);

    fn check_vector(plain: &str, secured: &str) {
        let plain = hex::decode(plain).unwrap();
        let secured = hex::decode(secured).unwrap();
        let mut key = AesCcm::new(&ANNEX_C_KEY).unwrap();
        let mut buf = plain.clone();
        protect_in_place(&mut buf, FcsLen::None, &mut key, ANNEX_C_SRC, 5).unwrap();
        assert_eq!(hex::encode(&buf), hex::encode(&secured), "protect");
        let u = unprotect_in_place(&mut buf, FcsLen::None, &mut key, ANNEX_C_SRC).unwrap();
        assert_eq!(u.frame_counter, 5);
        // Everything but the MIC is back to plaintext.
        let mic_at = plain.len() - u.level.mic_len();
        assert_eq!(buf[..mic_at], plain[..mic_at], "unprotect");
        // One flipped bit anywhere before the MIC, or in the MIC, fails the check.
        for i in [0, mic_at - 1, secured.len() - 1] {
            let mut bad = secured.clone();
            bad[i] ^= 0x01;
            let r = unprotect_in_place(&mut bad, FcsLen::None, &mut key, ANNEX_C_SRC);
            assert!(r.is_err(), "tampered octet {i} accepted");
        }
        // The wrong source address (nonce) fails too.
        let mut bad = secured.clone();
        let other = ExtendedAddress([0xac, 0xde, 0x48, 0, 0, 0, 0, 2]);
        assert_eq!(
            unprotect_in_place(&mut bad, FcsLen::None, &mut key, other),
            Err(SecurityError::AuthenticationFailed)
        );
    }

    /// IEEE Std 802.15.4-2006 Annex C.2.1: beacon frame, MIC-64 (level 2), frame counter 5.
    /// Bytes as reproduced in OpenThread `tests/unit/test_aes.cpp` (`TestMacBeaconFrame`).
    #[test]
    fn annex_c_2_1_beacon_mic64() {
        check_vector(
            "08d0842143010000000048deac020500000055cf000051525354 0000000000000000"
                .replace(' ', "")
                .as_str(),
            "08d0842143010000000048deac020500000055cf000051525354223bc1ec841ab553",
        );
    }

    /// IEEE Std 802.15.4-2006 Annex C.2.3: MAC command frame (association request), ENC-MIC-64
    /// (level 6); the Command Frame Identifier stays in the clear. Bytes as reproduced in
    /// OpenThread `tests/unit/test_aes.cpp` (`TestMacCommandFrame`).
    #[test]
    fn annex_c_2_3_command_enc_mic64() {
        check_vector(
            "2bdc842143020000000048deacffff010000000048deac060500000001ce0000000000000000",
            "2bdc842143020000000048deacffff010000000048deac060500000001d84fde529061f9c6f1",
        );
    }

    #[test]
    fn nonce_layout() {
        let n = nonce(ANNEX_C_SRC, 5, SecurityLevel::EncMic64);
        assert_eq!(
            hex::encode(n),
            "acde48000000000100000005 06".replace(' ', "")
        );
    }

    #[test]
    fn unsecured_frames_are_refused() {
        let mut ex1 =
            hex::decode("21ee05cdab01000000000000020200000000000002003f08980001000103010000caa4")
                .unwrap();
        let mut key = AesCcm::new(&ANNEX_C_KEY).unwrap();
        assert_eq!(
            protect_in_place(&mut ex1, FcsLen::Two, &mut key, ANNEX_C_SRC, 1),
            Err(SecurityError::NotSecured)
        );
        assert_eq!(
            unprotect_in_place(&mut ex1, FcsLen::Two, &mut key, ANNEX_C_SRC),
            Err(SecurityError::NotSecured)
        );
        assert!(unprotect_in_place(&mut [1, 2], FcsLen::Two, &mut key, ANNEX_C_SRC).is_err());
    }
}
