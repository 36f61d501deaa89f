//! The state the handshakes share: the PMKSA cache (PMK, PMKID, replay counter, PTK per pair of
//! EUI-64s) and the authenticator's GTK set.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use kmp_api::addr::ExtendedAddress;
use kmp_api::crypto::CryptoError;
use kmp_api::session::SecretBytes;

use super::keys::{PMK_LEN, PMKID_LEN, Ptk, pmkid};

/// Which side of the PMKSA the local node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaeRole {
    /// The authenticator (AA = local).
    Authenticator,
    /// The supplicant (SPA = local).
    Supplicant,
}

impl PaeRole {
    /// (AA, SPA) for `local` and `peer` in this role.
    pub const fn aa_spa(
        self,
        local: ExtendedAddress,
        peer: ExtendedAddress,
    ) -> (ExtendedAddress, ExtendedAddress) {
        match self {
            PaeRole::Authenticator => (local, peer),
            PaeRole::Supplicant => (peer, local),
        }
    }
}

/// One PMKSA as the local node holds it.
#[derive(Debug, Clone)]
pub struct PmkEntry {
    /// The 32-octet PMK.
    pub pmk: SecretBytes,
    /// HMAC-SHA1-128(PMK, "PMK Name" ‖ AA ‖ SPA).
    pub pmkid: [u8; PMKID_LEN],
    /// The local node's role in it.
    pub role: PaeRole,
    /// The last Key Replay Counter used (authenticator) or accepted (supplicant) under this
    /// PMKSA; shared by the 4-way and the group-key handshake, as in 802.11.
    pub replay_counter: Option<u64>,
    /// The PTK of the last completed 4-way handshake (the group-key handshake needs its KCK
    /// and KEK).
    pub ptk: Option<Ptk>,
}

/// A thread-safe map (local EUI-64, peer EUI-64) → PMKSA, shared (`Clone` shares) between the
/// KMP ID 1 session that fills it from the EAP MSK and the KMP ID 6 / 7 sessions that use it.
///
/// The key includes the local address so that a simulator running many nodes in one process
/// can use a single cache without one node's replay counters leaking into another's.
#[derive(Debug, Clone, Default)]
pub struct PmkCache(Arc<Mutex<HashMap<(ExtendedAddress, ExtendedAddress), PmkEntry>>>);

impl PmkCache {
    /// An empty cache.
    pub fn new() -> PmkCache {
        PmkCache::default()
    }

    /// The process-wide cache the factories registered with `inventory` use (a product that
    /// builds its factories itself may pass its own).
    pub fn global() -> PmkCache {
        static GLOBAL: OnceLock<PmkCache> = OnceLock::new();
        GLOBAL.get_or_init(PmkCache::new).clone()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<(ExtendedAddress, ExtendedAddress), PmkEntry>> {
        // A panic while holding the lock cannot leave a half-written entry (every update is a
        // single insert or field store), so a poisoned map is still consistent.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Installs a PMK for the pair (replacing any PMKSA, its counter and PTK). The PMK must be
    /// 32 octets.
    pub fn insert(
        &self,
        local: ExtendedAddress,
        peer: ExtendedAddress,
        role: PaeRole,
        pmk: SecretBytes,
    ) -> Result<[u8; PMKID_LEN], CryptoError> {
        if pmk.len() != PMK_LEN {
            return Err(CryptoError::KeyLength(pmk.len()));
        }
        let (aa, spa) = role.aa_spa(local, peer);
        let id = pmkid(pmk.expose(), aa, spa)?;
        self.lock().insert(
            (local, peer),
            PmkEntry {
                pmk,
                pmkid: id,
                role,
                replay_counter: None,
                ptk: None,
            },
        );
        Ok(id)
    }

    /// Installs PMK = MSK[0..32] (802.11-2020 12.7.1.3, the 802.1X AKM) from an EAP MSK.
    pub fn insert_from_msk(
        &self,
        local: ExtendedAddress,
        peer: ExtendedAddress,
        role: PaeRole,
        msk: &[u8],
    ) -> Result<[u8; PMKID_LEN], CryptoError> {
        let pmk = msk
            .get(..PMK_LEN)
            .ok_or(CryptoError::KeyLength(msk.len()))?;
        self.insert(local, peer, role, SecretBytes::from_slice(pmk))
    }

    /// A copy of the PMKSA for the pair.
    pub fn get(&self, local: ExtendedAddress, peer: ExtendedAddress) -> Option<PmkEntry> {
        self.lock().get(&(local, peer)).cloned()
    }

    /// Removes the PMKSA for the pair.
    pub fn remove(&self, local: ExtendedAddress, peer: ExtendedAddress) -> Option<PmkEntry> {
        self.lock().remove(&(local, peer))
    }

    /// Runs `f` on the entry for the pair, if there is one.
    pub(crate) fn update<R>(
        &self,
        local: ExtendedAddress,
        peer: ExtendedAddress,
        f: impl FnOnce(&mut PmkEntry) -> R,
    ) -> Option<R> {
        self.lock().get_mut(&(local, peer)).map(f)
    }

    /// Installs the entry for the pair unless there is one; returns the entry.
    pub(crate) fn get_or_insert(
        &self,
        local: ExtendedAddress,
        peer: ExtendedAddress,
        make: impl FnOnce() -> Option<PmkEntry>,
    ) -> Option<PmkEntry> {
        let mut m = self.lock();
        if let Some(e) = m.get(&(local, peer)) {
            return Some(e.clone());
        }
        let e = make()?;
        m.insert((local, peer), e.clone());
        Some(e)
    }
}

/// One GTK of the authenticator's set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gtk {
    /// Key ID (0–3); sent as 802.15.4 key index `key_id + 1` (Wi-SUN).
    pub key_id: u8,
    /// The 16-octet GTK.
    pub key: SecretBytes,
    /// Remaining lifetime in seconds, sent in the Key Lifetime KDE (0 = none sent).
    pub lifetime_secs: u32,
}

#[derive(Debug, Default)]
struct GtkSlots {
    slots: [Option<Gtk>; 4],
    /// The key ID new members get and the group transmits with.
    active: Option<u8>,
    /// The key ID inserted last (what a group-key handshake distributes).
    newest: Option<u8>,
}

/// The authenticator's GTKs (up to four, by key ID), shared between its 4-way handshake
/// sessions (message 3 carries the active GTK) and its group-key handshake sessions (message 1
/// carries the newest). Rekeying: [`GtkSet::insert`] a new GTK, run the group-key handshake
/// with every member, then [`GtkSet::activate`] it and later [`GtkSet::remove`] the old one.
#[derive(Debug, Clone, Default)]
pub struct GtkSet(Arc<Mutex<GtkSlots>>);

impl GtkSet {
    /// An empty set.
    pub fn new() -> GtkSet {
        GtkSet::default()
    }

    fn lock(&self) -> MutexGuard<'_, GtkSlots> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Puts `gtk` into its slot (key ID 0–3, 16 octets). The first GTK becomes active.
    pub fn insert(&self, gtk: Gtk) -> Result<(), CryptoError> {
        if gtk.key_id > 3 {
            return Err(CryptoError::Length {
                what: "GTK key ID",
                len: usize::from(gtk.key_id),
            });
        }
        if gtk.key.len() != 16 {
            return Err(CryptoError::KeyLength(gtk.key.len()));
        }
        let mut s = self.lock();
        let id = gtk.key_id;
        s.slots[usize::from(id)] = Some(gtk);
        s.newest = Some(id);
        if s.active.is_none() {
            s.active = Some(id);
        }
        Ok(())
    }

    /// Makes the GTK with `key_id` the one new members receive and the group transmits with;
    /// false if there is none.
    pub fn activate(&self, key_id: u8) -> bool {
        let mut s = self.lock();
        let present = s
            .slots
            .get(usize::from(key_id))
            .is_some_and(Option::is_some);
        if present {
            s.active = Some(key_id);
        }
        present
    }

    /// Removes the GTK with `key_id`.
    pub fn remove(&self, key_id: u8) -> Option<Gtk> {
        let mut s = self.lock();
        let g = s.slots.get_mut(usize::from(key_id))?.take();
        if s.active == Some(key_id) {
            s.active = s.slots.iter().flatten().map(|g| g.key_id).next();
        }
        if s.newest == Some(key_id) {
            s.newest = s.active;
        }
        g
    }

    /// The active GTK.
    pub fn active(&self) -> Option<Gtk> {
        let s = self.lock();
        s.active.and_then(|i| s.slots[usize::from(i)].clone())
    }

    /// The GTK inserted last.
    pub fn newest(&self) -> Option<Gtk> {
        let s = self.lock();
        s.newest.and_then(|i| s.slots[usize::from(i)].clone())
    }

    /// The Wi-SUN GTKL bitmap: bit n set when key ID n holds a GTK.
    pub fn liveness(&self) -> u8 {
        self.lock()
            .slots
            .iter()
            .enumerate()
            .filter(|(_, g)| g.is_some())
            .fold(0u8, |m, (i, _)| m | (1 << i))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const A: ExtendedAddress = ExtendedAddress([2, 0, 0, 0, 0, 0, 0, 1]);
    const B: ExtendedAddress = ExtendedAddress([2, 0, 0, 0, 0, 0, 0, 2]);

    #[test]
    fn pmk_cache_pairs_and_roles() {
        let c = PmkCache::new();
        let msk = [7u8; 64];
        let id_a = c
            .insert_from_msk(A, B, PaeRole::Authenticator, &msk)
            .unwrap();
        let id_b = c.insert_from_msk(B, A, PaeRole::Supplicant, &msk).unwrap();
        assert_eq!(id_a, id_b, "both ends name the PMKSA alike");
        assert_eq!(c.get(A, B).unwrap().pmk.expose(), &[7u8; 32]);
        assert!(c.get(A, A).is_none());
        assert!(
            c.insert_from_msk(A, B, PaeRole::Authenticator, &[0; 31])
                .is_err()
        );
        assert!(
            c.insert(A, B, PaeRole::Authenticator, SecretBytes::new(vec![0; 16]))
                .is_err()
        );
        c.update(A, B, |e| e.replay_counter = Some(9));
        assert_eq!(c.get(A, B).unwrap().replay_counter, Some(9));
        assert_eq!(c.get(B, A).unwrap().replay_counter, None);
        assert!(c.remove(A, B).is_some());
        assert!(c.get(A, B).is_none());
    }

    #[test]
    fn gtk_set_rotation() {
        let s = GtkSet::new();
        let g = |id, b| Gtk {
            key_id: id,
            key: SecretBytes::new(vec![b; 16]),
            lifetime_secs: 0,
        };
        assert!(s.active().is_none());
        s.insert(g(0, 1)).unwrap();
        s.insert(g(1, 2)).unwrap();
        assert_eq!(s.active().unwrap().key_id, 0);
        assert_eq!(s.newest().unwrap().key_id, 1);
        assert_eq!(s.liveness(), 0b11);
        assert!(s.activate(1));
        assert!(!s.activate(3));
        s.remove(0).unwrap();
        assert_eq!(s.liveness(), 0b10);
        assert_eq!(s.active().unwrap().key_id, 1);
        assert!(s.insert(g(4, 1)).is_err());
        assert!(
            s.insert(Gtk {
                key: SecretBytes::new(vec![0; 8]),
                ..g(2, 0)
            })
            .is_err()
        );
    }
}
