//! Byte encoding of the PIB records kept in the store.
//!
//! Each record starts with a version octet ([`RECORD_VERSION`]); multi-octet integers are
//! little-endian; addresses are in display order. Decoding never panics: every read is
//! bounds-checked and a record must be consumed exactly. Buffers that may hold key material are
//! [`Zeroizing`].

use kmp_api::security::KeySource;
use kmp_api::session::{KeyDirection, KeyScope, SecretBytes, UpperLayerSa};
use kmp_api::{
    Duration, ExtendedAddress, Instant, KeyIdentifier, KmpId, Oui, PanId, SecurityLevel,
    ShortAddress,
};
use zeroize::Zeroizing;

use crate::pib::{
    DeviceDescriptor, FrameType, KeyDescriptor, KeyMaterial, KeyRef, KeyUsage, OwnIdentity,
    SecurityLevelDescriptor, SecurityLevelSet, StoredSa,
};
use std::borrow::Cow;

/// Version octet of every record this code writes.
pub(crate) const RECORD_VERSION: u8 = 1;

/// A record does not decode; the text says which field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DecodeError(pub(crate) &'static str);

type Result<T> = core::result::Result<T, DecodeError>;

#[derive(Default)]
pub(crate) struct Writer(Zeroizing<Vec<u8>>);

impl Writer {
    fn new() -> Writer {
        let mut w = Writer::default();
        w.u8(RECORD_VERSION);
        w
    }
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn raw(&mut self, b: &[u8]) {
        self.0.extend_from_slice(b);
    }
    fn bool(&mut self, v: bool) {
        self.u8(u8::from(v));
    }
    /// A string or octet string of at most 255 octets; longer input is an encoding error the
    /// caller has ruled out by validation.
    fn var8(&mut self, b: &[u8]) -> Result<()> {
        self.u8(u8::try_from(b.len()).map_err(|_| DecodeError("field longer than 255 octets"))?);
        self.raw(b);
        Ok(())
    }
    fn var16(&mut self, b: &[u8]) -> Result<()> {
        self.u16(
            u16::try_from(b.len()).map_err(|_| DecodeError("field longer than 65535 octets"))?,
        );
        self.raw(b);
        Ok(())
    }
    fn ext(&mut self, a: ExtendedAddress) {
        self.raw(&a.0);
    }
    fn kmp_id(&mut self, id: KmpId) {
        self.u8(id.value());
        if let KmpId::VendorSpecific(oui) = id {
            self.raw(&oui.0);
        }
    }
    fn key_id(&mut self, id: &KeyIdentifier) {
        self.u8(id.mode().bits());
        match id {
            KeyIdentifier::Implicit => {}
            KeyIdentifier::Index(i) => self.u8(*i),
            KeyIdentifier::SourceIndex(src, i) => {
                self.raw(src.as_bytes());
                self.u8(*i);
            }
        }
    }
    fn opt_instant(&mut self, t: Option<Instant>) {
        self.bool(t.is_some());
        self.u64(t.map_or(0, Instant::as_micros));
    }
    fn finish(self) -> Zeroizing<Vec<u8>> {
        self.0
    }
}

pub(crate) struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn new(b: &'a [u8]) -> Result<Reader<'a>> {
        let mut r = Reader(b);
        match r.u8()? {
            RECORD_VERSION => Ok(r),
            _ => Err(DecodeError("unsupported record version")),
        }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(DecodeError("record truncated"));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    fn bool(&mut self) -> Result<bool> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError("invalid flag")),
        }
    }
    fn var8(&mut self) -> Result<&'a [u8]> {
        let n = self.u8()?;
        self.take(usize::from(n))
    }
    fn var16(&mut self) -> Result<&'a [u8]> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }
    fn ext(&mut self) -> Result<ExtendedAddress> {
        Ok(ExtendedAddress(self.array()?))
    }
    fn kmp_id(&mut self) -> Result<KmpId> {
        match self.u8()? {
            255 => Ok(KmpId::VendorSpecific(Oui(self.array()?))),
            v => KmpId::from_value(v).ok_or(DecodeError("KMP ID")),
        }
    }
    fn key_id(&mut self) -> Result<KeyIdentifier> {
        Ok(match self.u8()? {
            0 => KeyIdentifier::Implicit,
            1 => KeyIdentifier::Index(self.u8()?),
            2 => {
                let s = KeySource::Four(self.array()?);
                KeyIdentifier::SourceIndex(s, self.u8()?)
            }
            3 => {
                let s = KeySource::Eight(self.array()?);
                KeyIdentifier::SourceIndex(s, self.u8()?)
            }
            _ => return Err(DecodeError("key identifier mode")),
        })
    }
    fn level(&mut self) -> Result<SecurityLevel> {
        match self.u8()? {
            b @ 0..=7 => Ok(SecurityLevel::from_bits(b)),
            _ => Err(DecodeError("security level")),
        }
    }
    fn frame_type(&mut self) -> Result<FrameType> {
        let b = self.u8()?;
        if b > 7 {
            return Err(DecodeError("frame type"));
        }
        FrameType::from_bits(b).ok_or(DecodeError("frame type"))
    }
    fn opt_instant(&mut self) -> Result<Option<Instant>> {
        let present = self.bool()?;
        let t = self.u64()?;
        Ok(present.then_some(Instant::from_micros(t)))
    }
    fn str(&mut self) -> Result<&'a str> {
        core::str::from_utf8(self.var8()?).map_err(|_| DecodeError("name is not UTF-8"))
    }
    fn end(&self) -> Result<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(DecodeError("trailing octets"))
        }
    }
}

/// A u64 meta value.
pub(crate) fn encode_u64(v: u64) -> Vec<u8> {
    v.to_le_bytes().to_vec()
}

pub(crate) fn decode_u64(b: &[u8]) -> Result<u64> {
    <[u8; 8]>::try_from(b)
        .map(u64::from_le_bytes)
        .map_err(|_| DecodeError("meta value length"))
}

pub(crate) fn encode_key(d: &KeyDescriptor) -> Zeroizing<Vec<u8>> {
    let mut w = Writer::new();
    w.u32(d.key_ref.0);
    w.kmp_id(d.owner);
    w.ext(d.installed_for);
    w.key_id(&d.lookup);
    match d.scope {
        KeyScope::Group => w.u8(0),
        KeyScope::Pairwise(p) => {
            w.u8(1);
            w.ext(p);
        }
    }
    w.u8(match d.direction {
        KeyDirection::Both => 0,
        KeyDirection::Transmit => 1,
        KeyDirection::Receive => 2,
    });
    let (types, commands) = d.usage.to_bits();
    w.u8(types);
    for c in commands {
        w.u64(c);
    }
    w.u8(d.min_security_level.bits());
    w.u64(d.installed_at.as_micros());
    w.opt_instant(d.expires_at);
    w.raw(d.key.expose());
    w.finish()
}

pub(crate) fn decode_key(b: &[u8]) -> Result<KeyDescriptor> {
    let mut r = Reader::new(b)?;
    let key_ref = KeyRef(r.u32()?);
    let owner = r.kmp_id()?;
    let installed_for = r.ext()?;
    let lookup = r.key_id()?;
    let scope = match r.u8()? {
        0 => KeyScope::Group,
        1 => KeyScope::Pairwise(r.ext()?),
        _ => return Err(DecodeError("key scope")),
    };
    let direction = match r.u8()? {
        0 => KeyDirection::Both,
        1 => KeyDirection::Transmit,
        2 => KeyDirection::Receive,
        _ => return Err(DecodeError("key direction")),
    };
    let types = r.u8()?;
    let commands = [r.u64()?, r.u64()?, r.u64()?, r.u64()?];
    let min_security_level = r.level()?;
    let installed_at = Instant::from_micros(r.u64()?);
    let expires_at = r.opt_instant()?;
    let key = KeyMaterial::new(r.array()?);
    r.end()?;
    Ok(KeyDescriptor {
        key_ref,
        owner,
        installed_for,
        lookup,
        scope,
        direction,
        usage: KeyUsage::from_bits(types, commands),
        min_security_level,
        installed_at,
        expires_at,
        key,
    })
}

pub(crate) fn encode_device(d: &DeviceDescriptor) -> Vec<u8> {
    let mut w = Writer::new();
    w.u16(d.pan_id.0);
    w.u16(d.short_address.0);
    w.ext(d.ext_address);
    w.bool(d.exempt);
    w.finish().to_vec()
}

pub(crate) fn decode_device(b: &[u8]) -> Result<DeviceDescriptor> {
    let mut r = Reader::new(b)?;
    let d = DeviceDescriptor {
        pan_id: PanId(r.u16()?),
        short_address: ShortAddress(r.u16()?),
        ext_address: r.ext()?,
        exempt: r.bool()?,
    };
    r.end()?;
    Ok(d)
}

/// An incoming counter record: the next acceptable counter and the number of frames accepted
/// in the interval this record closed.
pub(crate) fn encode_rx(next: u32, interval_frames: u32) -> Vec<u8> {
    let mut w = Writer::new();
    w.u32(next);
    w.u32(interval_frames);
    w.finish().to_vec()
}

pub(crate) fn decode_rx(b: &[u8]) -> Result<(u32, u32)> {
    let mut r = Reader::new(b)?;
    let v = (r.u32()?, r.u32()?);
    r.end()?;
    Ok(v)
}

/// Store key of a security-level descriptor: frame type and command id (0x100 for none).
pub(crate) fn level_key(frame_type: FrameType, command_id: Option<u8>) -> u16 {
    (u16::from(frame_type.bits()) << 9) | command_id.map_or(0x100, u16::from)
}

pub(crate) fn encode_level(d: &SecurityLevelDescriptor) -> Vec<u8> {
    let mut w = Writer::new();
    w.u8(d.frame_type.bits());
    w.bool(d.command_id.is_some());
    w.u8(d.command_id.unwrap_or(0));
    w.u8(d.security_minimum.bits());
    w.bool(d.device_override);
    w.u8(d.allowed.0);
    w.finish().to_vec()
}

pub(crate) fn decode_level(b: &[u8]) -> Result<SecurityLevelDescriptor> {
    let mut r = Reader::new(b)?;
    let frame_type = r.frame_type()?;
    let has_cmd = r.bool()?;
    let cmd = r.u8()?;
    let d = SecurityLevelDescriptor {
        frame_type,
        command_id: has_cmd.then_some(cmd),
        security_minimum: r.level()?,
        device_override: r.bool()?,
        allowed: SecurityLevelSet(r.u8()?),
    };
    r.end()?;
    if d.command_id.is_some() && frame_type != FrameType::MacCommand {
        return Err(DecodeError("command id on a non-command descriptor"));
    }
    Ok(d)
}

pub(crate) fn encode_identity(id: &OwnIdentity) -> Vec<u8> {
    let mut w = Writer::new();
    w.ext(id.ext_address);
    w.u16(id.short_address.0);
    w.u16(id.pan_id.0);
    w.finish().to_vec()
}

pub(crate) fn decode_identity(b: &[u8]) -> Result<OwnIdentity> {
    let mut r = Reader::new(b)?;
    let id = OwnIdentity {
        ext_address: r.ext()?,
        short_address: ShortAddress(r.u16()?),
        pan_id: PanId(r.u16()?),
    };
    r.end()?;
    Ok(id)
}

/// Store key of an SA: owner, peer, sa_id.
pub(crate) fn sa_key(owner: KmpId, peer: ExtendedAddress, sa_id: &[u8]) -> Vec<u8> {
    let mut w = Writer::default();
    w.kmp_id(owner);
    w.ext(peer);
    w.raw(sa_id);
    w.finish().to_vec()
}

pub(crate) fn encode_sa(s: &StoredSa) -> Result<Zeroizing<Vec<u8>>> {
    let mut w = Writer::new();
    w.kmp_id(s.owner);
    w.ext(s.peer);
    w.var16(&s.sa.sa_id)?;
    w.var8(s.sa.kind.as_bytes())?;
    w.u16(u16::try_from(s.sa.keys.len()).map_err(|_| DecodeError("too many SA keys"))?);
    for (name, key) in &s.sa.keys {
        w.var8(name.as_bytes())?;
        w.var16(key.expose())?;
    }
    w.bool(s.sa.lifetime.is_some());
    w.u64(s.sa.lifetime.map_or(0, Duration::as_micros));
    w.bool(s.sa.parent.is_some());
    w.var16(s.sa.parent.as_deref().unwrap_or_default())?;
    w.u64(s.installed_at.as_micros());
    w.opt_instant(s.expires_at);
    Ok(w.finish())
}

pub(crate) fn decode_sa(b: &[u8]) -> Result<StoredSa> {
    let mut r = Reader::new(b)?;
    let owner = r.kmp_id()?;
    let peer = r.ext()?;
    let sa_id = r.var16()?.to_vec();
    let kind = Cow::Owned(r.str()?.to_owned());
    let n = r.u16()?;
    let mut keys = Vec::with_capacity(usize::from(n).min(64));
    for _ in 0..n {
        let name = Cow::Owned(r.str()?.to_owned());
        keys.push((name, SecretBytes::from_slice(r.var16()?)));
    }
    let has_lifetime = r.bool()?;
    let lifetime = Duration::from_micros(r.u64()?);
    let has_parent = r.bool()?;
    let parent = r.var16()?.to_vec();
    let installed_at = Instant::from_micros(r.u64()?);
    let expires_at = r.opt_instant()?;
    r.end()?;
    Ok(StoredSa {
        owner,
        peer,
        sa: UpperLayerSa {
            sa_id,
            kind,
            keys,
            lifetime: has_lifetime.then_some(lifetime),
            parent: has_parent.then_some(parent),
        },
        installed_at,
        expires_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pib::key_table::tests::descriptor;

    #[test]
    fn key_round_trip_and_truncation() {
        let mut d = descriptor(
            7,
            KeyIdentifier::SourceIndex(KeySource::Eight([1, 2, 3, 4, 5, 6, 7, 8]), 3),
            KeyScope::Pairwise(ExtendedAddress::from_u64(0x0102)),
            KeyDirection::Receive,
        );
        d.owner = KmpId::VendorSpecific(Oui([0, 0x50, 0xc2]));
        d.expires_at = Some(Instant::from_micros(99));
        d.usage = KeyUsage::NONE.with_command(200);
        let b = encode_key(&d);
        let e = decode_key(&b).unwrap();
        assert_eq!(e.key_ref, d.key_ref);
        assert_eq!(e.owner, d.owner);
        assert_eq!(e.lookup, d.lookup);
        assert_eq!(e.scope, d.scope);
        assert_eq!(e.direction, d.direction);
        assert_eq!(e.usage, d.usage);
        assert_eq!(e.expires_at, d.expires_at);
        assert_eq!(e.key.expose(), d.key.expose());
        for n in 0..b.len() {
            assert!(decode_key(&b[..n]).is_err(), "prefix of {n} octets decoded");
        }
        let mut long = b.to_vec();
        long.push(0);
        assert_eq!(
            decode_key(&long).unwrap_err(),
            DecodeError("trailing octets")
        );
        let mut bad = b.to_vec();
        bad[0] = 2;
        assert_eq!(
            decode_key(&bad).unwrap_err(),
            DecodeError("unsupported record version")
        );
    }

    #[test]
    fn small_records_round_trip() {
        let d = DeviceDescriptor {
            pan_id: PanId(0x1234),
            short_address: ShortAddress(0x0042),
            ext_address: ExtendedAddress::from_u64(0xdead_beef),
            exempt: true,
        };
        assert_eq!(decode_device(&encode_device(&d)).unwrap(), d);
        assert_eq!(decode_rx(&encode_rx(5, 6)).unwrap(), (5, 6));
        let l = SecurityLevelDescriptor {
            frame_type: FrameType::MacCommand,
            command_id: Some(0x1d),
            security_minimum: SecurityLevel::EncMic64,
            device_override: true,
            allowed: SecurityLevelSet(0x41),
        };
        assert_eq!(decode_level(&encode_level(&l)).unwrap(), l);
        let id = OwnIdentity {
            ext_address: ExtendedAddress::from_u64(1),
            short_address: ShortAddress(2),
            pan_id: PanId(3),
        };
        assert_eq!(decode_identity(&encode_identity(&id)).unwrap(), id);
        assert_ne!(
            level_key(FrameType::MacCommand, None),
            level_key(FrameType::MacCommand, Some(0))
        );
        assert_eq!(decode_u64(&encode_u64(77)).unwrap(), 77);
        assert!(decode_u64(&[1, 2]).is_err());
    }

    proptest::proptest! {
        /// Decoders never panic on arbitrary bytes.
        #[test]
        fn decoders_never_panic(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)
        ) {
            let mut b = bytes;
            for first in [b.first().copied().unwrap_or(1), RECORD_VERSION] {
                if let Some(f) = b.first_mut() {
                    *f = first;
                }
                let _ = decode_key(&b);
                let _ = decode_device(&b);
                let _ = decode_rx(&b);
                let _ = decode_level(&b);
                let _ = decode_identity(&b);
                let _ = decode_sa(&b);
                let _ = decode_u64(&b);
            }
        }
    }

    #[test]
    fn sa_round_trip() {
        let s = StoredSa {
            owner: KmpId::Ikev2,
            peer: ExtendedAddress::from_u64(5),
            sa: UpperLayerSa {
                sa_id: vec![1, 2, 3],
                kind: "rkmp-routing".into(),
                keys: vec![("SK_ei".into(), SecretBytes::from_slice(&[9; 32]))],
                lifetime: Some(Duration::from_secs(60)),
                parent: Some(vec![7]),
            },
            installed_at: Instant::from_micros(10),
            expires_at: Some(Instant::from_micros(60_000_010)),
        };
        let b = encode_sa(&s).unwrap();
        assert_eq!(decode_sa(&b).unwrap(), s);
        for n in 0..b.len() {
            assert!(decode_sa(&b[..n]).is_err());
        }
    }
}
