//! EAPOL (IEEE 802.1X-2020 clause 11): the packet codec.
