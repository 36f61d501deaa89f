//! Radio drivers for IEEE 802.15.9 KMP over IEEE 802.15.4.
//!
//! This crate holds the driver side of the runtime: today a sans-IO simulated medium
//! ([`sim`], feature `driver-sim`) and a pcap tap with a Wireshark key log ([`pcap`]), usable
//! with any driver. The driver actors that wrap them come later.

#[cfg(feature = "driver-sim")]
pub mod sim;

pub mod pcap;
