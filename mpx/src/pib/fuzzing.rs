//! Entry points for the fuzz targets (`--features __fuzz`); not a stable API.

use super::codec;

/// Runs every PIB record decoder over `data`; whatever decodes must re-encode to a record that
/// decodes to the same value. Panics only on such an asymmetry, never on bad input.
pub fn decode_records(data: &[u8]) {
    if let Ok(d) = codec::decode_key(data) {
        let again = codec::decode_key(&codec::encode_key(&d)).ok();
        assert!(
            again.is_some_and(|a| a.key_ref == d.key_ref),
            "key record round trip"
        );
    }
    if let Ok(d) = codec::decode_device(data) {
        assert_eq!(
            codec::decode_device(&codec::encode_device(&d)).ok(),
            Some(d)
        );
    }
    if let Ok((next, n)) = codec::decode_rx(data) {
        assert_eq!(
            codec::decode_rx(&codec::encode_rx(next, n)).ok(),
            Some((next, n))
        );
    }
    if let Ok(d) = codec::decode_level(data) {
        assert_eq!(codec::decode_level(&codec::encode_level(&d)).ok(), Some(d));
    }
    if let Ok(d) = codec::decode_identity(data) {
        assert_eq!(
            codec::decode_identity(&codec::encode_identity(&d)).ok(),
            Some(d)
        );
    }
    if let Ok(s) = codec::decode_sa(data)
        && let Ok(enc) = codec::encode_sa(&s)
    {
        let again = codec::decode_sa(&enc).ok();
        assert!(again.is_some_and(|a| a.sa == s.sa), "SA record round trip");
    }
    let _ = codec::decode_u64(data);
}
