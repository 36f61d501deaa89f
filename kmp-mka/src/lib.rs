//! IEEE 802.1X over IEEE 802.15.9: EAPOL carried as KMP ID 1, the supplicant and authenticator
//! PAEs, MKA (802.1X-2020 clause 9/11), and the IEEE 802.11-style 4-way handshake (KMP ID 6)
//! and group-key handshake (KMP ID 7) as Wi-SUN FAN sends them.

#![forbid(unsafe_code)]

pub mod eapol;
pub mod handshake;
pub mod mka;
pub mod pae;
