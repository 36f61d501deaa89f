//! MKA, the MACsec Key Agreement protocol (IEEE 802.1X-2020 clause 9).
