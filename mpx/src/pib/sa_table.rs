//! Upper-layer security associations (RKMP routing SAs, AMIKEY crypto sessions, IKE/child SAs)
//! kept in the PIB store under their owner, with the calls a routing KMP needs: get, insert,
//! rekey, delete and revoke-all for a failed parent SA.
//!
//! An SA is named by `(owner KMP, peer, sa_id)`. Its `parent` names another SA of the same owner
//! and peer; revoking an SA revokes every SA whose parent chain leads to it.

use std::collections::{HashMap, HashSet, VecDeque};

use kmp_api::session::UpperLayerSa;
use kmp_api::{ExtendedAddress, Instant, KmpId};

/// An upper-layer SA as the PIB keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSa {
    /// The KMP that owns it.
    pub owner: KmpId,
    /// The peer it is shared with.
    pub peer: ExtendedAddress,
    /// The SA as the KMP handed it over (its keys zeroize on drop).
    pub sa: UpperLayerSa,
    /// When it was installed or last rekeyed.
    pub installed_at: Instant,
    /// `installed_at + lifetime`, if it has a lifetime.
    pub expires_at: Option<Instant>,
}

impl StoredSa {
    /// Whether the SA has expired at `now`.
    pub fn is_expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|t| t <= now)
    }
}

/// Key of the SA table.
pub(crate) type SaKey = (KmpId, ExtendedAddress, Vec<u8>);

/// The in-memory SA table.
#[derive(Debug, Default)]
pub(crate) struct SaTable {
    pub(crate) map: crate::pib::Map<SaKey, StoredSa>,
}

impl SaTable {
    pub(crate) fn get(
        &self,
        owner: KmpId,
        peer: ExtendedAddress,
        sa_id: &[u8],
    ) -> Option<StoredSa> {
        self.map
            .get(&(owner, peer, sa_id.to_vec()))
            .map(|s| s.clone())
    }

    pub(crate) fn of_peer(&self, owner: KmpId, peer: ExtendedAddress) -> Vec<StoredSa> {
        let mut v: Vec<StoredSa> = self
            .map
            .iter()
            .filter(|e| e.key().0 == owner && e.key().1 == peer)
            .map(|e| e.value().clone())
            .collect();
        v.sort_by(|a, b| a.sa.sa_id.cmp(&b.sa.sa_id));
        v
    }

    /// The ids of `root` and every SA of `(owner, peer)` whose parent chain leads to it,
    /// root first. Empty if `root` does not exist.
    pub(crate) fn descendants(
        &self,
        owner: KmpId,
        peer: ExtendedAddress,
        root: &[u8],
    ) -> Vec<Vec<u8>> {
        let edges: Vec<(Vec<u8>, Option<Vec<u8>>)> = self
            .map
            .iter()
            .filter(|e| e.key().0 == owner && e.key().1 == peer)
            .map(|e| (e.key().2.clone(), e.value().sa.parent.clone()))
            .collect();
        revoke_closure(&edges, root)
    }
}

/// The closure of `root` under "is the parent of" over `(sa_id, parent)` pairs: `root` (if
/// present) and every SA whose parent chain reaches it. Terminates on cycles.
pub(crate) fn revoke_closure(edges: &[(Vec<u8>, Option<Vec<u8>>)], root: &[u8]) -> Vec<Vec<u8>> {
    if !edges.iter().any(|(id, _)| id.as_slice() == root) {
        return Vec::new();
    }
    let mut children: HashMap<&[u8], Vec<&[u8]>> = HashMap::new();
    for (id, parent) in edges {
        if let Some(p) = parent {
            children
                .entry(p.as_slice())
                .or_default()
                .push(id.as_slice());
        }
    }
    let mut seen: HashSet<&[u8]> = HashSet::new();
    let mut queue: VecDeque<&[u8]> = VecDeque::from([root]);
    let mut out = Vec::new();
    while let Some(id) = queue.pop_front() {
        if !seen.insert(id) {
            continue;
        }
        out.push(id.to_vec());
        if let Some(kids) = children.get(id) {
            queue.extend(kids.iter().copied());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(id: &str, parent: Option<&str>) -> (Vec<u8>, Option<Vec<u8>>) {
        (
            id.as_bytes().to_vec(),
            parent.map(|p| p.as_bytes().to_vec()),
        )
    }

    fn ids(v: Vec<Vec<u8>>) -> Vec<String> {
        let mut v: Vec<String> = v
            .into_iter()
            .map(|b| String::from_utf8(b).unwrap())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn closure_follows_parent_chains() {
        let edges = vec![
            e("ike", None),
            e("child1", Some("ike")),
            e("child2", Some("ike")),
            e("grand", Some("child1")),
            e("other", None),
            e("orphan", Some("gone")),
        ];
        assert_eq!(
            ids(revoke_closure(&edges, b"ike")),
            ["child1", "child2", "grand", "ike"]
        );
        assert_eq!(ids(revoke_closure(&edges, b"child1")), ["child1", "grand"]);
        assert_eq!(ids(revoke_closure(&edges, b"other")), ["other"]);
        assert!(revoke_closure(&edges, b"gone").is_empty());
        assert_eq!(revoke_closure(&edges, b"ike")[0], b"ike");
    }

    #[test]
    fn closure_terminates_on_cycles() {
        let edges = vec![e("a", Some("b")), e("b", Some("a")), e("c", Some("c"))];
        assert_eq!(ids(revoke_closure(&edges, b"a")), ["a", "b"]);
        assert_eq!(ids(revoke_closure(&edges, b"c")), ["c"]);
    }
}
