//! The static registry of KMP factories.
//!
//! Each `kmp-*` crate registers itself with [`inventory::submit!`]:
//!
//! ```ignore
//! kmp_api::inventory::submit! {
//!     kmp_api::KmpRegistration::new(kmp_api::KmpId::Dragonfly, "dragonfly", make_factory)
//! }
//! ```
//!
//! A product links the crates its cargo features select and calls [`Registry::from_inventory`]
//! once at startup, which refuses two registrations for one KMP ID. Dynamic plugins are added
//! with [`Registry::register`] of [`crate::plugin::LoadedPlugin::registration`] (inventory
//! cannot see registrations inside a `cdylib`).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::id::KmpId;
use crate::session::{KmpFactory, SessionError};

pub use inventory;

/// Builds a factory from the KMP's configuration section (TOML text; empty for defaults).
pub type MakeFactory = fn(config: &str) -> Result<Arc<dyn KmpFactory>, SessionError>;

/// Builds factories of a KMP that is not a plain function: a loaded plugin
/// ([`crate::plugin::LoadedPlugin`]), which lives for the rest of the process.
pub trait DynamicMaker: Send + Sync + fmt::Debug {
    /// Builds a factory from the KMP's configuration section (TOML text).
    fn make(&'static self, config: &str) -> Result<Arc<dyn KmpFactory>, SessionError>;
}

/// How a registration builds its factory.
#[derive(Debug, Clone, Copy)]
pub enum Maker {
    /// A KMP linked into the binary.
    Static(MakeFactory),
    /// A dynamically loaded plugin.
    Dynamic(&'static dyn DynamicMaker),
}

/// One KMP implementation available to the runtime.
#[derive(Debug, Clone, Copy)]
pub struct KmpRegistration {
    /// The KMP ID it serves.
    pub kmp_id: KmpId,
    /// Short name (also the name of its configuration section and cargo feature).
    pub name: &'static str,
    /// Factory constructor.
    pub make: Maker,
}

impl KmpRegistration {
    /// A registration of a linked-in KMP, usable in `inventory::submit!`.
    pub const fn new(kmp_id: KmpId, name: &'static str, make: MakeFactory) -> KmpRegistration {
        KmpRegistration {
            kmp_id,
            name,
            make: Maker::Static(make),
        }
    }

    /// Builds a factory from the KMP's configuration section (TOML text; empty for defaults).
    pub fn make_factory(&self, config: &str) -> Result<Arc<dyn KmpFactory>, SessionError> {
        match self.make {
            Maker::Static(f) => f(config),
            Maker::Dynamic(d) => d.make(config),
        }
    }
}

inventory::collect!(KmpRegistration);

/// Error building the registry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// Two implementations claim one KMP ID.
    #[error("KMP ID {kmp_id} registered twice: by {first} and by {second}")]
    Duplicate {
        /// The contested ID.
        kmp_id: KmpId,
        /// The one already registered.
        first: &'static str,
        /// The one refused.
        second: &'static str,
    },
    /// A reserved KMP ID cannot be registered.
    #[error("KMP ID {0} is reserved and cannot be registered")]
    Reserved(KmpId),
}

/// The KMP implementations known to a process, by KMP ID.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    entries: BTreeMap<KmpId, KmpRegistration>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Every registration linked into this binary. Fails on duplicate KMP IDs.
    pub fn from_inventory() -> Result<Registry, RegistryError> {
        let mut r = Registry::new();
        for reg in inventory::iter::<KmpRegistration> {
            r.register(*reg)?;
        }
        Ok(r)
    }

    /// Adds one registration (a dynamic plugin, a test double). Fails on a duplicate or a
    /// reserved KMP ID; the registry is unchanged then.
    pub fn register(&mut self, reg: KmpRegistration) -> Result<(), RegistryError> {
        if reg.kmp_id.is_reserved() {
            return Err(RegistryError::Reserved(reg.kmp_id));
        }
        if let Some(first) = self.entries.get(&reg.kmp_id) {
            return Err(RegistryError::Duplicate {
                kmp_id: reg.kmp_id,
                first: first.name,
                second: reg.name,
            });
        }
        self.entries.insert(reg.kmp_id, reg);
        Ok(())
    }

    /// The registration for a KMP ID.
    pub fn lookup(&self, kmp_id: KmpId) -> Option<&KmpRegistration> {
        self.entries.get(&kmp_id)
    }

    /// All registrations, ordered by KMP ID.
    pub fn iter(&self) -> impl Iterator<Item = &KmpRegistration> {
        self.entries.values()
    }

    /// Number of registrations.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::Oui;
    use crate::session::{KmpSession, SessionContext};

    struct NoFactory(KmpId);
    impl KmpFactory for NoFactory {
        fn kmp_id(&self) -> KmpId {
            self.0
        }
        fn new_initiator(&self, _: SessionContext) -> Result<Box<dyn KmpSession>, SessionError> {
            Err(SessionError::Config("test factory".into()))
        }
        fn new_responder(
            &self,
            _: SessionContext,
            _: &[u8],
        ) -> Result<Box<dyn KmpSession>, SessionError> {
            Err(SessionError::Config("test factory".into()))
        }
    }

    fn make_vendor(_: &str) -> Result<Arc<dyn KmpFactory>, SessionError> {
        Ok(Arc::new(NoFactory(KmpId::VendorSpecific(Oui([
            0, 0x50, 0xc2,
        ])))))
    }

    // Registered through inventory, as a KMP crate would.
    inventory::submit! {
        KmpRegistration::new(KmpId::VendorSpecific(Oui([0, 0x50, 0xc2])), "test-vendor", make_vendor)
    }

    #[test]
    fn inventory_and_duplicates() {
        let mut r = Registry::from_inventory().unwrap();
        let id = KmpId::VendorSpecific(Oui([0, 0x50, 0xc2]));
        let reg = *r.lookup(id).unwrap();
        assert_eq!(reg.name, "test-vendor");
        let f = reg.make_factory("").unwrap();
        assert_eq!(f.kmp_id(), id);
        let dup = KmpRegistration::new(id, "other", make_vendor);
        assert_eq!(
            r.register(dup),
            Err(RegistryError::Duplicate {
                kmp_id: id,
                first: "test-vendor",
                second: "other"
            })
        );
        assert_eq!(r.len(), 1);
        // A different OUI is a different KMP.
        let other = KmpRegistration::new(KmpId::VendorSpecific(Oui([1, 2, 3])), "v2", make_vendor);
        r.register(other).unwrap();
        assert_eq!(r.len(), 2);
        let reserved = KmpRegistration::new(KmpId::Reserved(9), "x", make_vendor);
        assert_eq!(
            r.register(reserved),
            Err(RegistryError::Reserved(KmpId::Reserved(9)))
        );
    }
}
