//! The security-level table (802.15.4-2015 9.5 `secSecurityLevelTable`) and the incoming
//! security level checking procedure (802.15.4-2015 9.2.6).
//!
//! One deliberate deviation: where no descriptor matches a frame, 9.2.6 passes it. Here an
//! *unsecured* frame without a descriptor fails (the table must say which frame types may
//! arrive unsecured, e.g. the data frames that carry KMP messages before keys exist); a secured
//! frame without a descriptor passes, as in the standard.

use kmp_api::SecurityLevel;

use crate::pib::FrameType;

/// A set of security levels (the AllowedSecurityLevels of a descriptor), bit `n` for the level
/// whose field value is `n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SecurityLevelSet(pub u8);

impl SecurityLevelSet {
    /// The empty set: no restriction beyond the minimum.
    pub const ANY: SecurityLevelSet = SecurityLevelSet(0);

    /// This set plus `level`.
    pub const fn with(self, level: SecurityLevel) -> SecurityLevelSet {
        SecurityLevelSet(self.0 | (1 << level.bits()))
    }

    /// Whether `level` is in the set.
    pub const fn contains(self, level: SecurityLevel) -> bool {
        self.0 & (1 << level.bits()) != 0
    }

    /// Whether the set is empty (meaning: any level that satisfies the minimum).
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// One security-level descriptor (802.15.4-2015 9.5 SecurityLevelDescriptor).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SecurityLevelDescriptor {
    /// The frame type it applies to.
    pub frame_type: FrameType,
    /// For [`FrameType::MacCommand`]: the command frame identifier, or `None` for every
    /// command that has no descriptor of its own. Must be `None` for other frame types.
    pub command_id: Option<u8>,
    /// SecurityMinimum: the weakest protection accepted ([`SecurityLevel::satisfies`]).
    pub security_minimum: SecurityLevel,
    /// DeviceOverrideSecurityMinimum: an exempt device may send these frames unsecured.
    pub device_override: bool,
    /// AllowedSecurityLevels: if not empty, a secured frame's level must also be one of these.
    pub allowed: SecurityLevelSet,
}

impl SecurityLevelDescriptor {
    /// The table key of this descriptor.
    pub(crate) fn table_key(&self) -> (FrameType, Option<u8>) {
        table_key(self.frame_type, self.command_id)
    }

    /// 9.2.6 for one matching descriptor.
    pub fn check(&self, level: SecurityLevel) -> SecurityLevelCheck {
        let allowed = self.allowed.is_empty() || self.allowed.contains(level);
        if level == SecurityLevel::None {
            if self.security_minimum == SecurityLevel::None && allowed {
                SecurityLevelCheck::Passed
            } else if self.device_override {
                SecurityLevelCheck::ConditionallyPassed
            } else {
                SecurityLevelCheck::Failed
            }
        } else if level.satisfies(self.security_minimum) && allowed {
            SecurityLevelCheck::Passed
        } else {
            SecurityLevelCheck::Failed
        }
    }
}

pub(crate) fn table_key(frame_type: FrameType, command_id: Option<u8>) -> (FrameType, Option<u8>) {
    match frame_type {
        FrameType::MacCommand => (frame_type, command_id),
        other => (other, None),
    }
}

/// The result of the incoming security level checking procedure (802.15.4-2015 9.2.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecurityLevelCheck {
    /// The frame's protection is sufficient.
    Passed,
    /// An unsecured frame that passes only if its source device is exempt.
    ConditionallyPassed,
    /// The frame must be dropped (IMPROPER_SECURITY_LEVEL).
    Failed,
}

/// Why a frame's security level is refused (802.15.4-2015 IMPROPER_SECURITY_LEVEL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SecurityLevelError {
    /// The frame's level does not satisfy the table (or is not among the allowed levels).
    #[error("security level {level} not accepted for {frame_type:?} frames")]
    ImproperSecurityLevel {
        /// The frame type.
        frame_type: FrameType,
        /// The frame's level.
        level: SecurityLevel,
    },
}

/// The in-memory security-level table.
#[derive(Debug, Default)]
pub(crate) struct SecurityLevelTable {
    pub(crate) map: crate::pib::Map<(FrameType, Option<u8>), SecurityLevelDescriptor>,
}

impl SecurityLevelTable {
    /// The descriptor that applies: the exact one, or for MAC commands the catch-all.
    pub(crate) fn find(
        &self,
        frame_type: FrameType,
        command_id: Option<u8>,
    ) -> Option<SecurityLevelDescriptor> {
        let key = table_key(frame_type, command_id);
        if let Some(d) = self.map.get(&key) {
            return Some(*d);
        }
        if key.1.is_some() {
            return self.map.get(&(frame_type, None)).map(|d| *d);
        }
        None
    }

    pub(crate) fn check(
        &self,
        frame_type: FrameType,
        command_id: Option<u8>,
        level: SecurityLevel,
    ) -> SecurityLevelCheck {
        match self.find(frame_type, command_id) {
            Some(d) => d.check(level),
            None if level == SecurityLevel::None => SecurityLevelCheck::Failed,
            None => SecurityLevelCheck::Passed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(
        frame_type: FrameType,
        command_id: Option<u8>,
        min: SecurityLevel,
        device_override: bool,
    ) -> SecurityLevelDescriptor {
        SecurityLevelDescriptor {
            frame_type,
            command_id,
            security_minimum: min,
            device_override,
            allowed: SecurityLevelSet::ANY,
        }
    }

    #[test]
    fn checking_procedure() {
        let t = SecurityLevelTable::default();
        use SecurityLevel as L;
        use SecurityLevelCheck::*;
        // No descriptor: unsecured fails (project rule), secured passes.
        assert_eq!(t.check(FrameType::Data, None, L::None), Failed);
        assert_eq!(t.check(FrameType::Data, None, L::Mic32), Passed);
        let d = desc(FrameType::Data, None, L::EncMic32, true);
        t.map.insert(d.table_key(), d);
        assert_eq!(t.check(FrameType::Data, None, L::EncMic32), Passed);
        assert_eq!(t.check(FrameType::Data, None, L::EncMic128), Passed);
        assert_eq!(t.check(FrameType::Data, None, L::Mic128), Failed);
        assert_eq!(t.check(FrameType::Data, None, L::Enc), Failed);
        assert_eq!(t.check(FrameType::Data, None, L::None), ConditionallyPassed);
        // A command id given for a non-command frame is ignored.
        assert_eq!(
            t.check(FrameType::Data, Some(3), L::None),
            ConditionallyPassed
        );
        let d = desc(FrameType::Beacon, None, L::None, false);
        t.map.insert(d.table_key(), d);
        assert_eq!(t.check(FrameType::Beacon, None, L::None), Passed);
        assert_eq!(t.check(FrameType::Beacon, None, L::Mic32), Passed);
        let d = desc(FrameType::Ack, None, L::Mic32, false);
        t.map.insert(d.table_key(), d);
        assert_eq!(t.check(FrameType::Ack, None, L::None), Failed);
    }

    #[test]
    fn commands_and_allowed_levels() {
        let t = SecurityLevelTable::default();
        use SecurityLevel as L;
        use SecurityLevelCheck::*;
        let any_cmd = desc(FrameType::MacCommand, None, L::EncMic64, false);
        t.map.insert(any_cmd.table_key(), any_cmd);
        let mut assoc = desc(FrameType::MacCommand, Some(0x01), L::None, false);
        assoc.allowed = SecurityLevelSet::ANY.with(L::None).with(L::EncMic32);
        t.map.insert(assoc.table_key(), assoc);
        assert_eq!(t.check(FrameType::MacCommand, Some(0x01), L::None), Passed);
        assert_eq!(
            t.check(FrameType::MacCommand, Some(0x01), L::EncMic32),
            Passed
        );
        // Satisfies the minimum but is not in the allowed set.
        assert_eq!(
            t.check(FrameType::MacCommand, Some(0x01), L::EncMic64),
            Failed
        );
        // Other commands fall back to the catch-all descriptor.
        assert_eq!(
            t.check(FrameType::MacCommand, Some(0x02), L::EncMic64),
            Passed
        );
        assert_eq!(
            t.check(FrameType::MacCommand, Some(0x02), L::EncMic32),
            Failed
        );
        assert_eq!(t.check(FrameType::MacCommand, None, L::None), Failed);
        // Minimum None but the allowed set excludes None: unsecured fails.
        let mut d = desc(FrameType::Multipurpose, None, L::None, false);
        d.allowed = SecurityLevelSet::ANY.with(L::Mic64);
        assert_eq!(d.check(L::None), Failed);
        assert_eq!(d.check(L::Mic64), Passed);
        assert_eq!(d.check(L::Mic128), Failed);
        assert!(SecurityLevelSet::ANY.is_empty());
        assert!(!d.allowed.contains(L::None));
    }
}
