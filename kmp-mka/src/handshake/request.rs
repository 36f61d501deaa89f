//! The EAPOL-Key request of a Wi-SUN supplicant (Wi-SUN FAN 6.5.2.2), which travels under
//! KMP ID 1, not 6 or 7.
//!
//! Handoff: the KMP ID 1 (802.1X) session on the authenticator receives an EAPOL-Key PDU,
//! decodes it with [`KeyRequest::parse`], and then starts EAP (no PMKID, or one it does not
//! know), the 4-way handshake (known PMKID, missing or unknown PTKID) or the group-key
//! handshake (known PTKID, GTKL lacking a live GTK) with KMP-CREATE.request for KMP ID 1, 6 or
//! 7. The request carries no MIC (the supplicant may not hold a PTK yet).

use crate::eapol::{Kde, KeyDescriptor, KeyInformation as KI, ProtocolVersion};

/// The content of a key request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyRequest {
    /// Key Replay Counter.
    pub replay_counter: u64,
    /// The PMKID the supplicant holds.
    pub pmkid: Option<[u8; 16]>,
    /// The PTKID the supplicant holds.
    pub ptkid: Option<[u8; 16]>,
    /// GTK liveness as the supplicant sees it.
    pub gtkl: Option<u8>,
    /// The supplicant's node role (FAN 1.1).
    pub node_role: Option<u8>,
}

impl KeyRequest {
    /// The EAPOL PDU: EAPOL-Key, Request and Key Type pairwise set, descriptor version 2, KDEs
    /// in the order PMKID, PTKID, GTKL, NR.
    pub fn to_pdu(&self) -> Result<Vec<u8>, crate::eapol::Error> {
        let mut kdes = vec![];
        kdes.extend(self.pmkid.map(Kde::Pmkid));
        kdes.extend(self.ptkid.map(Kde::WisunPtkid));
        kdes.extend(self.gtkl.map(Kde::WisunGtkl));
        kdes.extend(self.node_role.map(Kde::WisunNodeRole));
        let data = Kde::emit_all(&kdes)?;
        let mut kd = KeyDescriptor::new(
            KI::default()
                .with_descriptor_version(2)
                .with(KI::KEY_TYPE, true)
                .with(KI::REQUEST, true),
        );
        kd.replay_counter = self.replay_counter;
        kd.key_data = &data;
        kd.to_pdu(ProtocolVersion::V2010)
    }

    /// Decodes a key request; `None` when the PDU is an EAPOL-Key frame without the Request
    /// bit, an error when it is not a well-formed EAPOL-Key frame.
    pub fn parse(pdu: &[u8]) -> Result<Option<KeyRequest>, crate::eapol::Error> {
        let (_, kd) = KeyDescriptor::parse_pdu(pdu)?;
        if !kd.key_information.request() {
            return Ok(None);
        }
        let mut r = KeyRequest {
            replay_counter: kd.replay_counter,
            ..KeyRequest::default()
        };
        for k in Kde::parse_all(kd.key_data)? {
            match k {
                Kde::Pmkid(p) => r.pmkid = Some(p),
                Kde::WisunPtkid(p) => r.ptkid = Some(p),
                Kde::WisunGtkl(g) => r.gtkl = Some(g),
                Kde::WisunNodeRole(n) => r.node_role = Some(n),
                _ => {}
            }
        }
        Ok(Some(r))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn round_trip_and_non_requests() {
        let r = KeyRequest {
            replay_counter: 3,
            pmkid: Some([1; 16]),
            ptkid: Some([2; 16]),
            gtkl: Some(0b1001),
            node_role: Some(1),
        };
        let pdu = r.to_pdu().unwrap();
        assert_eq!(&pdu[..2], &[3, 3]);
        assert_eq!(KeyRequest::parse(&pdu).unwrap(), Some(r));
        let mut not_req = pdu.clone();
        not_req[5] &= !0x08; // Request is bit 11: the high octet of Key Information.
        assert_eq!(KeyRequest::parse(&not_req).unwrap(), None);
        assert!(KeyRequest::parse(&pdu[..50]).is_err());
    }
}
