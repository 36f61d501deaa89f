//! EAPOL codec: round trips of every packet type and of KDE lists, and decoding of garbage,
//! truncations and lying length fields.

#![allow(clippy::unwrap_used)]

use kmp_mka::eapol::{
    EapolBody, EapolRepr, Error, GtkKde, Kde, KeyDescriptor, KeyInformation, ProtocolVersion,
};
use proptest::prelude::*;

fn version() -> impl Strategy<Value = ProtocolVersion> {
    prop_oneof![
        Just(ProtocolVersion::V2001),
        Just(ProtocolVersion::V2004),
        Just(ProtocolVersion::V2010)
    ]
}

proptest! {
    #[test]
    fn opaque_bodies_round_trip(v in version(), t in 0u8..9, body in proptest::collection::vec(any::<u8>(), 0..300)) {
        prop_assume!(t != 3);
        let b: &[u8] = &body;
        let body = match t {
            0 => EapolBody::EapPacket(b),
            1 => EapolBody::Start(b),
            2 => EapolBody::Logoff(b),
            4 => EapolBody::AsfAlert(b),
            5 => EapolBody::Mka(b),
            6 => EapolBody::AnnouncementGeneric(b),
            7 => EapolBody::AnnouncementSpecific(b),
            _ => EapolBody::AnnouncementReq(b),
        };
        let r = EapolRepr { version: v, body };
        let pdu = r.to_vec().unwrap();
        prop_assert_eq!(pdu.len(), r.buffer_len());
        prop_assert_eq!(pdu[1], t);
        prop_assert_eq!(EapolRepr::parse_bytes(&pdu).unwrap(), r);
    }

    #[test]
    fn key_frames_round_trip(
        v in version(),
        info in any::<u16>(),
        key_length in any::<u16>(),
        replay in any::<u64>(),
        nonce in any::<[u8; 32]>(),
        iv in any::<[u8; 16]>(),
        rsc in any::<[u8; 8]>(),
        reserved in any::<[u8; 8]>(),
        mic in any::<[u8; 16]>(),
        data in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let kd = KeyDescriptor {
            key_information: KeyInformation(info),
            key_length,
            replay_counter: replay,
            key_nonce: nonce,
            key_iv: iv,
            key_rsc: rsc,
            reserved,
            key_mic: mic,
            key_data: &data,
        };
        let pdu = kd.to_pdu(v).unwrap();
        prop_assert_eq!(pdu.len(), 4 + 95 + data.len());
        let (pv, back) = KeyDescriptor::parse_pdu(&pdu).unwrap();
        prop_assert_eq!(pv, v);
        prop_assert_eq!(&back, &kd);
        // Every truncation is refused, and so is every extension.
        for cut in 0..pdu.len() {
            prop_assert!(EapolRepr::parse_bytes(&pdu[..cut]).is_err());
        }
        let mut longer = pdu.clone();
        longer.push(0);
        prop_assert!(EapolRepr::parse_bytes(&longer).is_err());
        // A Key Data Length that lies, with the EAPOL length kept consistent.
        let mut lie = pdu.clone();
        let kdl = u16::try_from(data.len()).unwrap().wrapping_add(1);
        lie[4 + 93..4 + 95].copy_from_slice(&kdl.to_be_bytes());
        let lied = matches!(KeyDescriptor::parse_pdu(&lie), Err(Error::LengthMismatch { .. }));
        prop_assert!(lied);
    }

    #[test]
    fn kde_lists_round_trip(
        key_id in 0u8..4, tx in any::<bool>(), gtk in proptest::collection::vec(any::<u8>(), 5..=32),
        pmkid in any::<[u8; 16]>(), life in any::<u32>(), gtkl in any::<u8>(),
        other in proptest::collection::vec(any::<u8>(), 0..50), oui in any::<[u8; 3]>(), dt in any::<u8>(),
    ) {
        prop_assume!(oui != kmp_mka::eapol::OUI_IEEE80211 && oui != kmp_mka::eapol::OUI_WISUN);
        let kdes = vec![
            Kde::Gtk(GtkKde { key_id, tx, gtk: &gtk }),
            Kde::Pmkid(pmkid),
            Kde::Lifetime(life),
            Kde::WisunGtkl(gtkl),
            Kde::WisunPtkid(pmkid),
            Kde::Other { oui, data_type: dt, data: &other },
        ];
        let enc = Kde::emit_all(&kdes).unwrap();
        prop_assert_eq!(Kde::parse_all(&enc).unwrap(), kdes);
    }

    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        if let Ok(r) = EapolRepr::parse_bytes(&bytes) {
            prop_assert_eq!(r.to_vec().unwrap(), bytes.clone());
        }
        let _ = Kde::parse_all(&bytes);
    }
}

#[test]
fn oversize_key_data_is_refused_on_emit() {
    let data = vec![0u8; 70_000];
    let mut kd = KeyDescriptor::new(KeyInformation(0x008a));
    kd.key_data = &data;
    assert_eq!(kd.to_pdu(ProtocolVersion::V2010), Err(Error::TooLong));
}
