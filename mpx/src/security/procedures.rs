//! The outgoing and incoming frame security procedures (IEEE 802.15.4-2015 9.2.1 and 9.2.3)
//! with the PIB: key lookup (by key identifier mode, and by device for mode 0 and pairwise
//! keys), device lookup (extended, or PAN ID + short address), the security-level table
//! (9.2.6, exempt devices included), the replay check per device and key, and the own frame
//! counter (reserved durably ahead by the PIB store).
//!
//! [`FrameSecurity`] is owned by whoever runs the data path (the MPX actor). It reads the PIB
//! through its shared [`Pib`] handle, keeps one [`AesCcm`] per key so the AES key schedule is
//! computed once per key, and counts every rejected frame in [`SecurityCounters`].

use std::collections::HashMap;

use kmp_api::addr::{Address, ExtendedAddress, PanId};
use kmp_api::crypto::ccm::AesCcm;
use kmp_api::crypto::ct_eq;
use kmp_api::security::{KeyIdentifier, SecurityLevel};
use kmp_api::session::KeyDirection;
use kmp_api::time::Instant;

use super::{SecurityError, protect_in_place, unprotect_frame};
use crate::pib::{
    CounterError, DeviceDescriptor, FrameCounterError, KeyLookup, KeyLookupError, KeyQuery, KeyRef,
    Pib,
};
use crate::wire::ie::HeaderTermination;
use crate::wire::{FcsLen, Frame, FrameType};

/// Keys whose cipher contexts are kept; past this the cache is cleared (keys are few; this only
/// bounds memory under key churn).
const MAX_CACHED_KEYS: usize = 4096;

/// Why frames were refused, by cause. Plain counters for reports and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecurityCounters {
    /// Frames protected.
    pub tx_protected: u64,
    /// Outgoing frames refused (no key, level, counter).
    pub tx_refused: u64,
    /// Secured frames accepted.
    pub rx_accepted_secured: u64,
    /// Unsecured frames accepted by the security-level table.
    pub rx_accepted_unsecured: u64,
    /// Frames that did not parse (or had a bad FCS).
    pub rx_malformed: u64,
    /// No key for the frame (UNAVAILABLE_KEY) or the key has expired.
    pub rx_unavailable_key: u64,
    /// The source device is unknown where it must be known (UNAVAILABLE_DEVICE).
    pub rx_unavailable_device: u64,
    /// Key usage forbids this frame (IMPROPER_KEY_TYPE).
    pub rx_improper_key_type: u64,
    /// Security level below the table's or the key's minimum (IMPROPER_SECURITY_LEVEL).
    pub rx_improper_security_level: u64,
    /// Frame counter not above the last accepted one.
    pub rx_replay: u64,
    /// MIC failed (SECURITY_ERROR).
    pub rx_mic_failure: u64,
    /// Frame-counter suppression / ASN nonce (not supported).
    pub rx_unsupported: u64,
}

/// What the incoming procedure found out about an accepted frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IncomingSecurity {
    /// The level the frame was received with (`None` for unsecured frames).
    pub level: SecurityLevel,
    /// Its key identifier (`Implicit` for unsecured frames).
    pub key_id: KeyIdentifier,
    /// The key that unprotected it.
    pub key_ref: Option<KeyRef>,
    /// The source device, if it is in the device table.
    pub device: Option<DeviceDescriptor>,
    /// The source's EUI-64, if known.
    pub source: Option<ExtendedAddress>,
    /// Its frame counter.
    pub frame_counter: Option<u32>,
}

struct CachedKey {
    key: [u8; 16],
    ccm: AesCcm,
}

impl Drop for CachedKey {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.key);
    }
}

/// Runs the frame security procedures for one interface.
pub struct FrameSecurity {
    pib: Pib,
    fcs: FcsLen,
    ciphers: HashMap<KeyRef, CachedKey, ahash::RandomState>,
    counters: SecurityCounters,
}

impl core::fmt::Debug for FrameSecurity {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FrameSecurity")
            .field("fcs", &self.fcs)
            .field("cached_keys", &self.ciphers.len())
            .field("counters", &self.counters)
            .finish()
    }
}

impl FrameSecurity {
    /// Procedures over `pib` for frames with an FCS of `fcs`.
    pub fn new(pib: Pib, fcs: FcsLen) -> FrameSecurity {
        FrameSecurity {
            pib,
            fcs,
            ciphers: HashMap::default(),
            counters: SecurityCounters::default(),
        }
    }

    /// The counters.
    pub fn counters(&self) -> &SecurityCounters {
        &self.counters
    }

    /// The cipher for a looked-up key, made once per key (and again if a key handle was
    /// reinstalled with other material).
    fn cipher(&mut self, found: &KeyLookup) -> Result<&mut AesCcm, SecurityError> {
        let material = found.key.expose();
        let fresh = match self.ciphers.get(&found.key_ref) {
            Some(c) => !ct_eq(&c.key, material),
            None => true,
        };
        if fresh {
            if self.ciphers.len() >= MAX_CACHED_KEYS {
                self.ciphers.clear();
            }
            let mut key = [0u8; 16];
            key.copy_from_slice(material);
            let ccm = AesCcm::new(material)?;
            self.ciphers.insert(found.key_ref, CachedKey { key, ccm });
        }
        match self.ciphers.get_mut(&found.key_ref) {
            Some(c) => Ok(&mut c.ccm),
            None => Err(SecurityError::UnavailableKey),
        }
    }

    /// The outgoing frame security procedure (9.2.1) for a frame emitted in plaintext with an
    /// auxiliary security header (any frame counter) and a zeroed MIC. Finds the key for the
    /// destination, checks the level against the key's minimum, takes the next frame counter
    /// from the PIB, protects the frame in place and re-fills the FCS. Returns the counter used.
    ///
    /// A frame that needs no protection (no auxiliary header) is left alone and `Ok(None)` is
    /// returned.
    pub fn protect(&mut self, buf: &mut [u8], now: Instant) -> Result<Option<u32>, SecurityError> {
        let r = self.protect_inner(buf, now);
        match &r {
            Ok(Some(_)) => self.counters.tx_protected += 1,
            Ok(None) => {}
            Err(e) => {
                self.counters.tx_refused += 1;
                tracing::warn!(error = %e, "outgoing frame refused by the security procedure");
            }
        }
        r
    }

    fn protect_inner(
        &mut self,
        buf: &mut [u8],
        now: Instant,
    ) -> Result<Option<u32>, SecurityError> {
        let frame = Frame::new_checked(&*buf, self.fcs)?;
        let Some(aux) = frame.aux_security_header() else {
            return Ok(None);
        };
        let level = aux.security_level();
        let key_id = aux.key_identifier();
        let own = self
            .pib
            .own_identity()
            .ok_or(SecurityError::UnavailableDevice)?;
        let pan = frame.dst_pan_id().unwrap_or(own.pan_id);
        let device = self.resolve(pan, frame.dst_addr());
        let query = KeyQuery {
            key_id,
            device,
            frame_type: frame.frame_type(),
            command_id: command_id(&frame),
            direction: KeyDirection::Transmit,
        };
        let found = self.pib.lookup_key(&query, now).map_err(lookup_error)?;
        if !level.satisfies(found.min_security_level) {
            return Err(SecurityError::ImproperSecurityLevel);
        }
        let counter = self
            .pib
            .allocate_frame_counter(found.key_ref)
            .map_err(counter_error)?;
        let fcs = self.fcs;
        let ccm = self.cipher(&found)?;
        protect_in_place(buf, fcs, ccm, own.ext_address, counter)?;
        Ok(Some(counter))
    }

    /// The incoming frame security procedure (9.2.3) for a received frame, FCS included:
    /// checks the FCS, applies the security-level table, finds the source device and the key,
    /// checks the key's minimum level, rejects replays before spending the MIC check, verifies
    /// and decrypts in place, and only then records the frame counter. On success the private
    /// payload is plaintext: parse it with `ParseOptions { unprotected: true, check_fcs: false }`
    /// (the FCS was checked here, over the ciphertext).
    ///
    /// On any error the frame must be dropped (its private payload may have been zeroed); the
    /// PIB is unchanged.
    pub fn unprotect(
        &mut self,
        buf: &mut [u8],
        now: Instant,
    ) -> Result<IncomingSecurity, SecurityError> {
        let r = self.unprotect_inner(buf, now);
        match &r {
            Ok(s) if s.level == SecurityLevel::None => self.counters.rx_accepted_unsecured += 1,
            Ok(_) => self.counters.rx_accepted_secured += 1,
            Err(e) => {
                let c = &mut self.counters;
                match e {
                    SecurityError::Wire(_) | SecurityError::NotSecured => c.rx_malformed += 1,
                    SecurityError::UnavailableKey => c.rx_unavailable_key += 1,
                    SecurityError::UnavailableDevice => c.rx_unavailable_device += 1,
                    SecurityError::ImproperKeyType => c.rx_improper_key_type += 1,
                    SecurityError::ImproperSecurityLevel => c.rx_improper_security_level += 1,
                    SecurityError::Replay { .. } => c.rx_replay += 1,
                    SecurityError::AuthenticationFailed | SecurityError::Crypto(_) => {
                        c.rx_mic_failure += 1
                    }
                    SecurityError::UnsupportedNonce | SecurityError::CounterError(_) => {
                        c.rx_unsupported += 1
                    }
                }
                tracing::debug!(error = %e, kind = e.kind(), "incoming frame dropped");
            }
        }
        r
    }

    fn unprotect_inner(
        &mut self,
        buf: &mut [u8],
        now: Instant,
    ) -> Result<IncomingSecurity, SecurityError> {
        let frame = Frame::new_checked(buf, self.fcs)?;
        if !frame.fcs_ok() {
            return Err(SecurityError::Wire(crate::wire::Error::BadFcs));
        }
        let frame_type = frame.frame_type();
        let cmd = command_id(&frame);
        let pan = frame
            .src_pan_id()
            .or(frame.dst_pan_id())
            .unwrap_or(PanId::BROADCAST);
        let device = self.pib.device_by_address(pan, frame.src_addr());
        let source = frame
            .src_addr()
            .extended()
            .or(device.map(|d| d.ext_address));
        let Some(aux) = frame.aux_security_header() else {
            self.pib
                .check_incoming_security_level(
                    frame_type,
                    cmd,
                    SecurityLevel::None,
                    device.as_ref(),
                )
                .map_err(|_| SecurityError::ImproperSecurityLevel)?;
            return Ok(IncomingSecurity {
                level: SecurityLevel::None,
                key_id: KeyIdentifier::Implicit,
                key_ref: None,
                device,
                source,
                frame_counter: None,
            });
        };
        let level = aux.security_level();
        let key_id = aux.key_identifier();
        let counter = aux.frame_counter().ok_or(SecurityError::UnsupportedNonce)?;
        self.pib
            .check_incoming_security_level(frame_type, cmd, level, device.as_ref())
            .map_err(|_| SecurityError::ImproperSecurityLevel)?;
        let src = source.ok_or(SecurityError::UnavailableDevice)?;
        let query = KeyQuery {
            key_id,
            device: Some(src),
            frame_type,
            command_id: cmd,
            direction: KeyDirection::Receive,
        };
        let found = self.pib.lookup_key(&query, now).map_err(lookup_error)?;
        if !level.satisfies(found.min_security_level) {
            return Err(SecurityError::ImproperSecurityLevel);
        }
        // Cheap replay check first, so a flood of replays costs no AES.
        self.pib
            .frame_counter_acceptable(src, found.key_ref, counter)
            .map_err(|e| replay_error(e, counter))?;
        let ccm = self.cipher(&found)?;
        unprotect_frame(frame, ccm, src)?;
        // Record the counter only after the MIC verified: a forged frame must not advance it.
        self.pib
            .check_and_update_frame_counter(src, found.key_ref, counter)
            .map_err(|e| replay_error(e, counter))?;
        Ok(IncomingSecurity {
            level,
            key_id,
            key_ref: Some(found.key_ref),
            device,
            source: Some(src),
            frame_counter: Some(counter),
        })
    }

    /// The EUI-64 of a destination or source: extended addresses as they are, short ones
    /// through the device table.
    fn resolve(&self, pan: PanId, addr: Address) -> Option<ExtendedAddress> {
        match addr {
            Address::Extended(e) => Some(e),
            Address::Short(_) => self.pib.device_by_address(pan, addr).map(|d| d.ext_address),
            Address::Absent => None,
        }
    }
}

/// The Command Frame Identifier of a MAC command frame without payload IEs: the open payload's
/// first octet (it is never encrypted, so it can be read before unprotecting).
fn command_id<T: AsRef<[u8]>>(frame: &Frame<T>) -> Option<u8> {
    if frame.frame_type() != FrameType::MacCommand
        || frame.header_termination() == HeaderTermination::Ht1
    {
        return None;
    }
    frame.private_payload().first().copied()
}

fn lookup_error(e: KeyLookupError) -> SecurityError {
    match e {
        KeyLookupError::UnavailableKey | KeyLookupError::Expired(_) => {
            SecurityError::UnavailableKey
        }
        KeyLookupError::NoDevice => SecurityError::UnavailableDevice,
        KeyLookupError::ImproperKeyType(_) => SecurityError::ImproperKeyType,
    }
}

fn counter_error(e: CounterError) -> SecurityError {
    SecurityError::CounterError(e.to_string())
}

fn replay_error(e: FrameCounterError, counter: u32) -> SecurityError {
    match e {
        FrameCounterError::Replay {
            next_acceptable, ..
        } => SecurityError::Replay {
            counter,
            last: next_acceptable.checked_sub(1),
        },
        FrameCounterError::Exhausted => SecurityError::Replay {
            counter,
            last: None,
        },
        _ => SecurityError::UnavailableDevice,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pib::{OwnIdentity, PibConfig, PibStore, SecurityLevelDescriptor, SecurityLevelSet};
    use crate::wire::{AuxSecurityHeaderRepr, FrameRepr, FrameVersion, MpxIeRepr, ParseOptions};
    use kmp_api::addr::ShortAddress;
    use kmp_api::id::{KmpId, MultiplexId};
    use kmp_api::session::{KeyInstall, KeyScope, LinkKey, SecretBytes};

    const ALICE: ExtendedAddress = ExtendedAddress([2, 0, 0, 0, 0, 0, 0, 0xa1]);
    const BOB: ExtendedAddress = ExtendedAddress([2, 0, 0, 0, 0, 0, 0, 0xb0]);
    const PAN: PanId = PanId(0xabcd);
    const T0: Instant = Instant::from_micros(1_000_000);

    fn node(
        me: ExtendedAddress,
        peer: ExtendedAddress,
        key: [u8; 16],
    ) -> (PibStore, FrameSecurity) {
        let mut store = PibStore::in_memory(PibConfig::default(), T0).unwrap();
        store
            .set_own_identity(OwnIdentity {
                ext_address: me,
                short_address: ShortAddress::NONE_ASSIGNED,
                pan_id: PAN,
            })
            .unwrap();
        store
            .set_security_level(SecurityLevelDescriptor {
                frame_type: FrameType::Data,
                command_id: None,
                security_minimum: SecurityLevel::EncMic32,
                device_override: true,
                allowed: SecurityLevelSet::default(),
            })
            .unwrap();
        store
            .install_keys(
                &KeyInstall {
                    owner: KmpId::Dragonfly,
                    peer,
                    link_keys: vec![LinkKey {
                        key: SecretBytes::from_slice(&key),
                        lookup: KeyIdentifier::Implicit,
                        scope: KeyScope::Pairwise(peer),
                        direction: KeyDirection::Both,
                        min_security_level: SecurityLevel::EncMic32,
                        lifetime: None,
                    }],
                    upper_layer_sas: vec![],
                },
                T0,
            )
            .unwrap();
        // The store owner reserves outgoing counters ahead (the PIB actor's job at run time).
        store.maintain(T0).unwrap();
        let sec = FrameSecurity::new(store.pib(), FcsLen::Two);
        (store, sec)
    }

    fn frame(src: ExtendedAddress, dst: ExtendedAddress, level: SecurityLevel, seq: u8) -> Vec<u8> {
        let mpx = MpxIeRepr::FullFrame {
            transaction_id: 0,
            multiplex_id: MultiplexId::Kmp,
            data: &[5, 1, 2, 3, 4],
        };
        let ies = mpx.to_payload_ie().unwrap();
        let repr = FrameRepr {
            frame_type: FrameType::Data,
            frame_version: FrameVersion::V2015,
            frame_pending: false,
            ack_request: true,
            seq: Some(seq),
            dst_pan: Some(PAN),
            dst_addr: Address::Extended(dst),
            src_pan: None,
            src_addr: Address::Extended(src),
            security: (level != SecurityLevel::None).then_some(AuxSecurityHeaderRepr {
                level,
                key_id: KeyIdentifier::Implicit,
                frame_counter: Some(0),
                asn_in_nonce: false,
            }),
            header_ies: &[],
            payload_ies: &ies,
            payload_termination: false,
            payload: &[],
        };
        let mut buf = vec![0u8; repr.buffer_len(FcsLen::Two)];
        repr.emit(&mut buf, FcsLen::Two).unwrap();
        buf
    }

    fn kmp_data(buf: &[u8]) -> Vec<u8> {
        let f = Frame::new_checked(buf, FcsLen::Two).unwrap();
        // The FCS covered the ciphertext; it was checked before unprotecting.
        let opts = ParseOptions {
            check_fcs: false,
            unprotected: true,
        };
        let repr = FrameRepr::parse_with(&f, opts).unwrap();
        let ie = repr.payload_ies().next().unwrap();
        MpxIeRepr::parse_bytes(ie.content).unwrap().data().to_vec()
    }

    #[test]
    fn alice_to_bob_and_replay() {
        let key = [7u8; 16];
        let (_a_store, mut alice) = node(ALICE, BOB, key);
        let (_b_store, mut bob) = node(BOB, ALICE, key);
        let mut sent = Vec::new();
        for seq in 0..3 {
            let mut buf = frame(ALICE, BOB, SecurityLevel::EncMic64, seq);
            let counter = alice.protect(&mut buf, T0).unwrap().unwrap();
            assert_eq!(counter, u32::from(seq));
            sent.push(buf);
        }
        for buf in &sent {
            let mut rx = buf.clone();
            let s = bob.unprotect(&mut rx, T0).unwrap();
            assert_eq!(s.level, SecurityLevel::EncMic64);
            assert_eq!(s.source, Some(ALICE));
            assert_eq!(kmp_data(&rx), vec![5, 1, 2, 3, 4]);
        }
        // Every frame again: replays.
        for buf in &sent {
            let mut rx = buf.clone();
            assert!(matches!(
                bob.unprotect(&mut rx, T0),
                Err(SecurityError::Replay { .. })
            ));
        }
        assert_eq!(bob.counters().rx_accepted_secured, 3);
        assert_eq!(bob.counters().rx_replay, 3);
    }

    #[test]
    fn forged_frame_does_not_advance_the_counter() {
        let key = [9u8; 16];
        let (_a, mut alice) = node(ALICE, BOB, key);
        let (_b, mut bob) = node(BOB, ALICE, key);
        let mut good = frame(ALICE, BOB, SecurityLevel::EncMic32, 1);
        alice.protect(&mut good, T0).unwrap();
        // A forgery with a far higher frame counter and a wrong MIC.
        let mut forged = good.clone();
        let f = Frame::new_checked(&forged[..], FcsLen::Two).unwrap();
        let aux = f.aux_security_header_range();
        forged[aux.start + 1..aux.start + 5].copy_from_slice(&1000u32.to_le_bytes());
        crate::wire::fcs::fill(&mut forged, FcsLen::Two);
        assert_eq!(
            bob.unprotect(&mut forged, T0),
            Err(SecurityError::AuthenticationFailed)
        );
        assert_eq!(bob.counters().rx_mic_failure, 1);
        // The genuine frame (counter 0) is still accepted.
        bob.unprotect(&mut good, T0).unwrap();
    }

    #[test]
    fn wrong_key_level_and_unknown_sources() {
        let (_a, mut alice) = node(ALICE, BOB, [1u8; 16]);
        let (_b, mut bob) = node(BOB, ALICE, [2u8; 16]);
        // Different keys: MIC failure.
        let mut buf = frame(ALICE, BOB, SecurityLevel::EncMic64, 1);
        alice.protect(&mut buf, T0).unwrap();
        assert_eq!(
            bob.unprotect(&mut buf, T0),
            Err(SecurityError::AuthenticationFailed)
        );
        // Below the security-level table's minimum (MIC-only).
        let mut buf = frame(ALICE, BOB, SecurityLevel::Mic64, 2);
        assert_eq!(
            alice.protect(&mut buf, T0),
            Err(SecurityError::ImproperSecurityLevel)
        );
        // Unsecured data frame from a non-exempt device: refused.
        let mut buf = frame(ALICE, BOB, SecurityLevel::None, 3);
        assert_eq!(
            bob.unprotect(&mut buf, T0),
            Err(SecurityError::ImproperSecurityLevel)
        );
        // A source with no key.
        let stranger = ExtendedAddress([9; 8]);
        let (_c, mut carol) = node(stranger, BOB, [2u8; 16]);
        let mut buf = frame(stranger, BOB, SecurityLevel::EncMic64, 4);
        carol.protect(&mut buf, T0).unwrap();
        assert_eq!(
            bob.unprotect(&mut buf, T0),
            Err(SecurityError::UnavailableKey)
        );
        // No key towards an unknown destination.
        let mut buf = frame(ALICE, stranger, SecurityLevel::EncMic64, 5);
        assert_eq!(
            alice.protect(&mut buf, T0),
            Err(SecurityError::UnavailableKey)
        );
        // Bad FCS, garbage.
        let mut buf = frame(ALICE, BOB, SecurityLevel::EncMic64, 6);
        alice.protect(&mut buf, T0).unwrap();
        buf[3] ^= 1;
        assert!(matches!(
            bob.unprotect(&mut buf, T0),
            Err(SecurityError::Wire(_))
        ));
        assert!(bob.unprotect(&mut [0xff, 0xff, 0xff], T0).is_err());
        let c = bob.counters();
        assert_eq!(
            (
                c.rx_mic_failure,
                c.rx_improper_security_level,
                c.rx_unavailable_key,
                c.rx_malformed
            ),
            (1, 1, 1, 2)
        );
        assert_eq!(alice.counters().tx_refused, 2);
    }

    #[test]
    fn exempt_device_may_send_unsecured() {
        let (mut b_store, mut bob) = node(BOB, ALICE, [2u8; 16]);
        let mut d = DeviceDescriptor::new(PAN, ALICE);
        d.exempt = true;
        b_store.set_device(d).unwrap();
        let mut buf = frame(ALICE, BOB, SecurityLevel::None, 1);
        let s = bob.unprotect(&mut buf, T0).unwrap();
        assert_eq!(s.level, SecurityLevel::None);
        assert_eq!(bob.counters().rx_accepted_unsecured, 1);
    }
}
