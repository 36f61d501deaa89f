//! The IEEE 802.11-style 4-way handshake (KMP ID 6) and group-key handshake (KMP ID 7).
