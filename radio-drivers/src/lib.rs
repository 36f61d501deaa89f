//! Radio drivers for IEEE 802.15.9 KMP over IEEE 802.15.4.
//!
//! This crate holds the driver side of the runtime: today a sans-IO simulated medium
//! ([`sim`], feature `driver-sim`) and a pcap tap with a Wireshark key log ([`pcap`]), usable
//! with any driver. The driver actors that wrap them come later.
//!
//! With feature `driver-udp`, [`udp`] is a virtual 802.15.4 radio over UDP: an actix actor
//! that implements `mpx::runtime::RadioDriver`, so that several processes on one host (or
//! several radios in one process) form one network, with Imm-Acks, retries and optional
//! simulated loss.

#[cfg(feature = "driver-sim")]
pub mod sim;

pub mod pcap;

#[cfg(feature = "driver-udp")]
pub mod udp;
