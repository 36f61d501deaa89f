//! The key table (802.15.4-2015 9.5 `secKeyTable`): key descriptors, their lookup index and the
//! KeyDescriptor lookup (9.2.5) and key usage policy check (9.2.7) of the data path.

use core::fmt;

use kmp_api::session::{KeyDirection, KeyScope};
use kmp_api::{ExtendedAddress, Instant, KeyIdentifier, KmpId, SecurityLevel};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::wire::FrameType;

/// Length of an 802.15.4 (AES-128) key in octets.
pub const KEY_LEN: usize = 16;

/// A stable handle of one key-table entry. Allocated from a persisted counter and never reused
/// for another key, so incoming frame-counter state keyed by it cannot outlive its key's
/// replacement by accident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyRef(pub u32);

impl fmt::Display for KeyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "key#{}", self.0)
    }
}

/// 128 bits of key material. Zeroized on drop; `Debug` never shows it.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct KeyMaterial([u8; KEY_LEN]);

impl KeyMaterial {
    /// Wraps the key octets.
    pub const fn new(key: [u8; KEY_LEN]) -> KeyMaterial {
        KeyMaterial(key)
    }

    /// From a slice; `None` unless it is exactly [`KEY_LEN`] octets.
    pub fn from_slice(key: &[u8]) -> Option<KeyMaterial> {
        <[u8; KEY_LEN]>::try_from(key).ok().map(KeyMaterial)
    }

    /// The secret octets, for the CCM* code only.
    pub const fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyMaterial(..)")
    }
}

/// Which frames a key may protect: the KeyUsageList of a key descriptor (802.15.4-2015 9.5),
/// as a set of frame types plus, for MAC command frames, a set of command frame identifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyUsage {
    frame_types: u8,
    commands: [u64; 4],
}

impl KeyUsage {
    /// Every frame type and every command.
    pub const ALL: KeyUsage = KeyUsage {
        frame_types: 0xef,
        commands: [u64::MAX; 4],
    };
    /// Nothing.
    pub const NONE: KeyUsage = KeyUsage {
        frame_types: 0,
        commands: [0; 4],
    };

    /// From the raw bitmaps: bit `t` of `frame_types` for frame type value `t`, bit `c % 64`
    /// of `commands[c / 64]` for command frame identifier `c`. The reserved frame type bit is
    /// cleared.
    pub const fn from_bits(frame_types: u8, commands: [u64; 4]) -> KeyUsage {
        KeyUsage {
            frame_types: frame_types & 0xef,
            commands,
        }
    }

    /// The raw bitmaps (see [`KeyUsage::from_bits`]).
    pub const fn to_bits(&self) -> (u8, [u64; 4]) {
        (self.frame_types, self.commands)
    }

    /// This usage plus `frame_type`. Adding [`FrameType::MacCommand`] permits no command yet:
    /// add them with [`KeyUsage::with_command`].
    pub const fn with_frame_type(mut self, frame_type: FrameType) -> KeyUsage {
        self.frame_types |= 1 << frame_type.bits();
        self
    }

    /// This usage plus MAC command `command_id` (and the MAC command frame type).
    pub const fn with_command(mut self, command_id: u8) -> KeyUsage {
        self.frame_types |= 1 << FrameType::MacCommand.bits();
        self.commands[(command_id / 64) as usize] |= 1 << (command_id % 64);
        self
    }

    /// Whether a frame of `frame_type` (with `command_id` for MAC commands) may use the key
    /// (802.15.4-2015 9.2.7). A MAC command whose identifier is not known (`None`) needs only
    /// the frame type.
    pub const fn permits(&self, frame_type: FrameType, command_id: Option<u8>) -> bool {
        if self.frame_types & (1 << frame_type.bits()) == 0 {
            return false;
        }
        match (frame_type, command_id) {
            (FrameType::MacCommand, Some(c)) => {
                self.commands[(c / 64) as usize] & (1 << (c % 64)) != 0
            }
            _ => true,
        }
    }
}

impl Default for KeyUsage {
    fn default() -> Self {
        KeyUsage::ALL
    }
}

/// One key-table entry (802.15.4-2015 9.5 KeyDescriptor, plus the ownership the KMPs need).
#[derive(Debug, Clone)]
pub struct KeyDescriptor {
    /// The stable handle.
    pub key_ref: KeyRef,
    /// The KMP that installed it.
    pub owner: KmpId,
    /// The peer of the KMP session that installed it (for `KeyRemoval`).
    pub installed_for: ExtendedAddress,
    /// How frames name the key (KeyIdLookupDescriptor): mode 0 keys are found by the peer
    /// device, modes 1–3 by key index and key source.
    pub lookup: KeyIdentifier,
    /// Pairwise with one device, or a group key.
    pub scope: KeyScope,
    /// Transmit, receive or both.
    pub direction: KeyDirection,
    /// Frame types and MAC commands it may protect (KeyUsageList).
    pub usage: KeyUsage,
    /// Lowest security level frames under it may use.
    pub min_security_level: SecurityLevel,
    /// When it was installed.
    pub installed_at: Instant,
    /// When it stops being usable; `None` for never.
    pub expires_at: Option<Instant>,
    /// The key itself.
    pub key: KeyMaterial,
}

impl KeyDescriptor {
    /// Whether the key has expired at `now`.
    pub fn is_expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|t| t <= now)
    }

    /// Whether it can be used in `direction` ([`KeyDirection::Both`] asks for both).
    pub const fn allows(&self, direction: KeyDirection) -> bool {
        matches!(
            (self.direction, direction),
            (KeyDirection::Both, _)
                | (KeyDirection::Transmit, KeyDirection::Transmit)
                | (KeyDirection::Receive, KeyDirection::Receive)
        )
    }

    /// The peer device of a pairwise key.
    pub const fn peer_device(&self) -> Option<ExtendedAddress> {
        match self.scope {
            KeyScope::Pairwise(p) => Some(p),
            KeyScope::Group => None,
        }
    }
}

/// What the data path asks the key table (802.15.4-2015 9.2.2 outgoing and 9.2.4 incoming
/// frame key retrieval).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyQuery {
    /// The Key Identifier the frame carries (receive) or the request names (transmit).
    pub key_id: KeyIdentifier,
    /// The other device: the frame's source on receive, the destination on transmit. Needed
    /// for mode 0 (implicit) and for pairwise keys named by index; resolve short addresses
    /// through the device table first.
    pub device: Option<ExtendedAddress>,
    /// The frame's type.
    pub frame_type: FrameType,
    /// The command frame identifier of a MAC command frame, if known.
    pub command_id: Option<u8>,
    /// [`KeyDirection::Transmit`] to protect, [`KeyDirection::Receive`] to unprotect.
    pub direction: KeyDirection,
}

/// A key found for a frame: what the CCM* code needs. Copied out of the table without
/// allocating; the key octets are zeroized when it is dropped.
#[derive(Debug, Clone)]
pub struct KeyLookup {
    /// The key's handle, for [`crate::pib::Pib::check_and_update_frame_counter`] and
    /// [`crate::pib::Pib::allocate_frame_counter`].
    pub key_ref: KeyRef,
    /// The key.
    pub key: KeyMaterial,
    /// The key's minimum security level; the frame's level must satisfy it.
    pub min_security_level: SecurityLevel,
}

/// Why the key table has no key for a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyLookupError {
    /// No key matches the identifier, device and direction (802.15.4-2015 UNAVAILABLE_KEY).
    #[error("no key for this key identifier, device and direction")]
    UnavailableKey,
    /// Mode 0 (implicit) needs the device's extended address.
    #[error("implicit key lookup without a device address")]
    NoDevice,
    /// The key matched but has expired.
    #[error("{0} has expired")]
    Expired(KeyRef),
    /// The key matched but may not protect this frame type or command (802.15.4-2015 9.2.7,
    /// IMPROPER_KEY_TYPE).
    #[error("{0} may not be used for this frame type or command")]
    ImproperKeyType(KeyRef),
}

/// Which half of a key's use an index entry serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Slot {
    Transmit,
    Receive,
}

impl Slot {
    pub(crate) fn of(direction: KeyDirection) -> &'static [Slot] {
        match direction {
            KeyDirection::Both => &[Slot::Transmit, Slot::Receive],
            KeyDirection::Transmit => &[Slot::Transmit],
            KeyDirection::Receive => &[Slot::Receive],
        }
    }
}

/// Index key: the lookup descriptor plus the device it is bound to (pairwise keys) and the
/// direction slot. Two keys with the same index key cannot both be found, so installing a key
/// replaces any key it shares an index key with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct IndexKey {
    pub(crate) id: KeyIdentifier,
    pub(crate) device: Option<ExtendedAddress>,
    pub(crate) slot: Slot,
}

impl IndexKey {
    /// The index keys a key occupies.
    pub(crate) fn of(
        lookup: KeyIdentifier,
        scope: KeyScope,
        direction: KeyDirection,
    ) -> impl Iterator<Item = IndexKey> {
        let device = match scope {
            KeyScope::Pairwise(p) => Some(p),
            KeyScope::Group => None,
        };
        Slot::of(direction).iter().map(move |&slot| IndexKey {
            id: lookup,
            device,
            slot,
        })
    }
}

/// The in-memory key table.
#[derive(Debug, Default)]
pub(crate) struct KeyTable {
    pub(crate) by_ref: crate::pib::Map<KeyRef, KeyDescriptor>,
    pub(crate) index: crate::pib::Map<IndexKey, KeyRef>,
}

impl KeyTable {
    /// Inserts a descriptor and points its index keys at it. The caller has removed (or is about
    /// to remove) any key those index keys pointed at.
    pub(crate) fn insert(&self, d: KeyDescriptor) {
        let key_ref = d.key_ref;
        let index_keys: Vec<IndexKey> = IndexKey::of(d.lookup, d.scope, d.direction).collect();
        self.by_ref.insert(key_ref, d);
        for ik in index_keys {
            self.index.insert(ik, key_ref);
        }
    }

    /// Removes a key and the index entries that still point at it.
    pub(crate) fn remove(&self, key_ref: KeyRef) -> Option<KeyDescriptor> {
        let (_, d) = self.by_ref.remove(&key_ref)?;
        for ik in IndexKey::of(d.lookup, d.scope, d.direction) {
            self.index.remove_if(&ik, |_, r| *r == key_ref);
        }
        Some(d)
    }

    /// The key an index key points at, if any.
    pub(crate) fn find(&self, ik: &IndexKey) -> Option<KeyRef> {
        self.index.get(ik).map(|r| *r)
    }

    /// KeyDescriptor lookup (802.15.4-2015 9.2.5) plus the usage policy check (9.2.7).
    ///
    /// Mode 0 is looked up by `(implicit, device)`. Modes 1–3 look for a group key first and then
    /// for a pairwise key of `device` named by the same identifier.
    pub(crate) fn lookup(&self, q: &KeyQuery, now: Instant) -> Result<KeyLookup, KeyLookupError> {
        let slot = match q.direction {
            KeyDirection::Receive => Slot::Receive,
            KeyDirection::Transmit | KeyDirection::Both => Slot::Transmit,
        };
        let key_ref = if q.key_id == KeyIdentifier::Implicit {
            let device = q.device.ok_or(KeyLookupError::NoDevice)?;
            self.find(&IndexKey {
                id: q.key_id,
                device: Some(device),
                slot,
            })
        } else {
            self.find(&IndexKey {
                id: q.key_id,
                device: None,
                slot,
            })
            .or_else(|| {
                q.device.and_then(|d| {
                    self.find(&IndexKey {
                        id: q.key_id,
                        device: Some(d),
                        slot,
                    })
                })
            })
        }
        .ok_or(KeyLookupError::UnavailableKey)?;
        let d = self
            .by_ref
            .get(&key_ref)
            .ok_or(KeyLookupError::UnavailableKey)?;
        if !d.allows(q.direction) {
            return Err(KeyLookupError::UnavailableKey);
        }
        if d.is_expired(now) {
            return Err(KeyLookupError::Expired(key_ref));
        }
        if !d.usage.permits(q.frame_type, q.command_id) {
            return Err(KeyLookupError::ImproperKeyType(key_ref));
        }
        Ok(KeyLookup {
            key_ref,
            key: d.key.clone(),
            min_security_level: d.min_security_level,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use kmp_api::security::KeySource;

    pub(crate) fn descriptor(
        key_ref: u32,
        lookup: KeyIdentifier,
        scope: KeyScope,
        direction: KeyDirection,
    ) -> KeyDescriptor {
        KeyDescriptor {
            key_ref: KeyRef(key_ref),
            owner: KmpId::Ikev2,
            installed_for: ExtendedAddress::from_u64(0x99),
            lookup,
            scope,
            direction,
            usage: KeyUsage::ALL,
            min_security_level: SecurityLevel::EncMic32,
            installed_at: Instant::ZERO,
            expires_at: None,
            key: KeyMaterial::new([key_ref.to_le_bytes()[0]; 16]),
        }
    }

    fn q(key_id: KeyIdentifier, device: Option<u64>, direction: KeyDirection) -> KeyQuery {
        KeyQuery {
            key_id,
            device: device.map(ExtendedAddress::from_u64),
            frame_type: FrameType::Data,
            command_id: None,
            direction,
        }
    }

    pub(crate) const ALL_FRAME_TYPES: [FrameType; 7] = [
        FrameType::Beacon,
        FrameType::Data,
        FrameType::Ack,
        FrameType::MacCommand,
        FrameType::Multipurpose,
        FrameType::Fragment,
        FrameType::Extended,
    ];

    #[test]
    fn key_usage() {
        let u = KeyUsage::NONE
            .with_frame_type(FrameType::Data)
            .with_command(0x1d);
        assert!(u.permits(FrameType::Data, None));
        assert!(!u.permits(FrameType::Beacon, None));
        assert!(u.permits(FrameType::MacCommand, Some(0x1d)));
        assert!(u.permits(FrameType::MacCommand, None));
        assert!(!u.permits(FrameType::MacCommand, Some(0x01)));
        assert!(!u.permits(FrameType::MacCommand, Some(0xdd)));
        let u = u.with_command(0xff);
        assert!(u.permits(FrameType::MacCommand, Some(0xff)));
        for t in ALL_FRAME_TYPES {
            assert!(KeyUsage::ALL.permits(t, Some(7)));
            assert!(!KeyUsage::NONE.permits(t, None));
        }
        let (f, c) = u.to_bits();
        assert_eq!(KeyUsage::from_bits(f, c), u);
        assert_eq!(KeyUsage::from_bits(0xff, [0; 4]).to_bits().0, 0xef);
    }

    #[test]
    fn key_material_is_redacted() {
        let k = KeyMaterial::new([0xab; 16]);
        assert_eq!(format!("{k:?}"), "KeyMaterial(..)");
        let d = descriptor(
            1,
            KeyIdentifier::Index(1),
            KeyScope::Group,
            KeyDirection::Both,
        );
        assert!(!format!("{d:?}").contains("171"));
        assert!(!format!("{d:?}").to_lowercase().contains("ab, ab"));
        assert!(KeyMaterial::from_slice(&[0; 15]).is_none());
        assert_eq!(
            KeyMaterial::from_slice(&[7; 16]).unwrap().expose(),
            &[7; 16]
        );
    }

    #[test]
    fn implicit_lookup_by_device_and_direction() {
        let t = KeyTable::default();
        let peer = ExtendedAddress::from_u64(0x1111);
        t.insert(descriptor(
            1,
            KeyIdentifier::Implicit,
            KeyScope::Pairwise(peer),
            KeyDirection::Transmit,
        ));
        t.insert(descriptor(
            2,
            KeyIdentifier::Implicit,
            KeyScope::Pairwise(peer),
            KeyDirection::Receive,
        ));
        let now = Instant::ZERO;
        let tx = t.lookup(
            &q(
                KeyIdentifier::Implicit,
                Some(0x1111),
                KeyDirection::Transmit,
            ),
            now,
        );
        assert_eq!(tx.unwrap().key_ref, KeyRef(1));
        let rx = t.lookup(
            &q(KeyIdentifier::Implicit, Some(0x1111), KeyDirection::Receive),
            now,
        );
        assert_eq!(rx.unwrap().key_ref, KeyRef(2));
        assert_eq!(
            rx_err(&t, KeyIdentifier::Implicit, Some(0x2222)),
            KeyLookupError::UnavailableKey
        );
        assert_eq!(
            rx_err(&t, KeyIdentifier::Implicit, None),
            KeyLookupError::NoDevice
        );
        // Asking for a key usable both ways finds neither directional key.
        let both = t.lookup(
            &q(KeyIdentifier::Implicit, Some(0x1111), KeyDirection::Both),
            now,
        );
        assert_eq!(both.unwrap_err(), KeyLookupError::UnavailableKey);
        assert!(t.remove(KeyRef(1)).is_some());
        assert!(t.remove(KeyRef(1)).is_none());
        assert!(
            t.lookup(
                &q(
                    KeyIdentifier::Implicit,
                    Some(0x1111),
                    KeyDirection::Transmit
                ),
                now
            )
            .is_err()
        );
        assert_eq!(t.index.len(), 1);
    }

    fn rx_err(t: &KeyTable, id: KeyIdentifier, dev: Option<u64>) -> KeyLookupError {
        t.lookup(&q(id, dev, KeyDirection::Receive), Instant::ZERO)
            .unwrap_err()
    }

    #[test]
    fn explicit_lookup_prefers_group_then_pairwise() {
        let t = KeyTable::default();
        let src = KeyIdentifier::SourceIndex(KeySource::Four([1, 2, 3, 4]), 5);
        t.insert(descriptor(
            1,
            KeyIdentifier::Index(1),
            KeyScope::Group,
            KeyDirection::Both,
        ));
        t.insert(descriptor(2, src, KeyScope::Group, KeyDirection::Both));
        let peer = ExtendedAddress::from_u64(7);
        t.insert(descriptor(
            3,
            KeyIdentifier::Index(2),
            KeyScope::Pairwise(peer),
            KeyDirection::Both,
        ));
        let now = Instant::ZERO;
        let f = |id, dev| {
            t.lookup(&q(id, dev, KeyDirection::Receive), now)
                .map(|k| k.key_ref)
        };
        assert_eq!(f(KeyIdentifier::Index(1), None), Ok(KeyRef(1)));
        assert_eq!(f(KeyIdentifier::Index(1), Some(7)), Ok(KeyRef(1)));
        assert_eq!(f(src, None), Ok(KeyRef(2)));
        assert_eq!(f(KeyIdentifier::Index(2), Some(7)), Ok(KeyRef(3)));
        assert_eq!(
            f(KeyIdentifier::Index(2), Some(8)),
            Err(KeyLookupError::UnavailableKey)
        );
        assert_eq!(
            f(KeyIdentifier::Index(2), None),
            Err(KeyLookupError::UnavailableKey)
        );
        assert_eq!(
            f(KeyIdentifier::Index(9), None),
            Err(KeyLookupError::UnavailableKey)
        );
        let k = t
            .lookup(
                &q(KeyIdentifier::Index(1), None, KeyDirection::Transmit),
                now,
            )
            .unwrap();
        assert_eq!(k.key.expose(), &[1; 16]);
        assert_eq!(k.min_security_level, SecurityLevel::EncMic32);
    }

    #[test]
    fn expiry_and_usage_policy() {
        let t = KeyTable::default();
        let mut d = descriptor(
            4,
            KeyIdentifier::Index(4),
            KeyScope::Group,
            KeyDirection::Both,
        );
        d.expires_at = Some(Instant::from_micros(100));
        d.usage = KeyUsage::NONE
            .with_frame_type(FrameType::Data)
            .with_command(0x0a);
        t.insert(d);
        let mut query = q(KeyIdentifier::Index(4), None, KeyDirection::Receive);
        assert!(t.lookup(&query, Instant::from_micros(99)).is_ok());
        assert_eq!(
            t.lookup(&query, Instant::from_micros(100)).unwrap_err(),
            KeyLookupError::Expired(KeyRef(4))
        );
        query.frame_type = FrameType::Beacon;
        assert_eq!(
            t.lookup(&query, Instant::ZERO).unwrap_err(),
            KeyLookupError::ImproperKeyType(KeyRef(4))
        );
        query.frame_type = FrameType::MacCommand;
        query.command_id = Some(0x0a);
        assert!(t.lookup(&query, Instant::ZERO).is_ok());
        query.command_id = Some(0x0b);
        assert!(t.lookup(&query, Instant::ZERO).is_err());
    }

    #[test]
    fn replacing_an_index_entry_keeps_the_new_key() {
        let t = KeyTable::default();
        t.insert(descriptor(
            1,
            KeyIdentifier::Index(1),
            KeyScope::Group,
            KeyDirection::Both,
        ));
        t.insert(descriptor(
            2,
            KeyIdentifier::Index(1),
            KeyScope::Group,
            KeyDirection::Receive,
        ));
        // Removing the old key must not remove the index entry that now points at key 2.
        t.remove(KeyRef(1));
        let f = |dir| t.lookup(&q(KeyIdentifier::Index(1), None, dir), Instant::ZERO);
        assert_eq!(f(KeyDirection::Receive).unwrap().key_ref, KeyRef(2));
        assert_eq!(
            f(KeyDirection::Transmit).unwrap_err(),
            KeyLookupError::UnavailableKey
        );
    }
}
