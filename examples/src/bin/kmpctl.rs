//! kmpctl: inspect IEEE 802.15.4 / 802.15.9 frames.
fn main() {}
