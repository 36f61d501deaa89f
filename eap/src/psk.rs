//! EAP-PSK (RFC 4764, EAP Type 47), both sides, interoperable with hostapd.
//!
//! ```text
//! #1 S->P  Flags(T=0) | RAND_S(16) | ID_S
//! #2 P->S  Flags(T=1) | RAND_S | RAND_P(16) | MAC_P(16) | ID_P
//! #3 S->P  Flags(T=2) | RAND_S | MAC_S(16) | PCHANNEL
//! #4 P->S  Flags(T=3) | RAND_S | PCHANNEL
//! PCHANNEL = Nonce(4) | Tag(16) | EAX-encrypted (R(2 bits) E(1 bit) reserved(5 bits) | ...)
//! ```
//!
//! Keys (RFC 4764 §3.1, §3.2; the "modified counter mode" XORs a counter into the last octet):
//! AK = AES(PSK, AES(PSK, 0) ⊕ 1), KDK = AES(PSK, AES(PSK, 0) ⊕ 2); with X = AES(KDK, RAND_P),
//! TEK = AES(KDK, X ⊕ 1), MSK = AES(KDK, X ⊕ 2..5), EMSK = AES(KDK, X ⊕ 6..9).
//! MAC_P = CMAC(AK, ID_P ‖ ID_S ‖ RAND_S ‖ RAND_P), MAC_S = CMAC(AK, ID_S ‖ RAND_P).
//! The PCHANNEL is AES-128-EAX under TEK with a 16-octet tag, the nonce N as the last 4 octets
//! of a zero block, and the first 22 octets of the EAP packet (header, Type, Flags, RAND_S) as
//! header. Session-Id = 0x2F ‖ RAND_P ‖ RAND_S (RFC 5247 Appendix A).
//!
//! Behaviour on errors follows hostapd (`eap_peer/eap_psk.c`, `eap_server/eap_server_psk.c`):
//! - a message of the wrong shape, with the wrong T, or with another RAND_S is ignored;
//! - the server fails (sends Failure) on an unknown ID_P or a wrong MAC_P (a wrong PSK);
//! - the peer fails without a response on a wrong MAC_S or a PCHANNEL that does not open;
//! - the peer answers a result other than DONE_SUCCESS, or the E (extension) flag, which is not
//!   supported, with DONE_FAILURE and fails;
//! - the server ignores a message #4 whose nonce is not 1 (it keeps retransmitting #3), and
//!   fails on a PCHANNEL that does not open and on any result but DONE_SUCCESS.

use std::sync::Arc;

use kmp_api::crypto::aes::{AesBlockCipher, Block};
use kmp_api::crypto::cmac::aes_cmac_parts;
use kmp_api::crypto::eax::AesEax;
use kmp_api::crypto::{CryptoError, Key128, ct_eq};
use kmp_api::session::SecretBytes;
use zeroize::Zeroize;

use crate::method::{
    Decision, MSK_LEN, MethodContext, MethodError, MethodKeys, MethodState, PeerMethod, PeerStep,
    ServerMethod, ServerStep,
};
use crate::wire::{self, Code, EapType, HEADER_LEN, MethodId};

/// Length of RAND_S and RAND_P.
pub const RAND_LEN: usize = 16;
/// Length of MAC_P, MAC_S and the PCHANNEL tag.
pub const MAC_LEN: usize = 16;
/// Length of the PCHANNEL nonce on the wire.
const NONCE_LEN: usize = 4;
/// Octets of the EAP packet the PCHANNEL authenticates: header, Type, Flags, RAND_S.
const AD_LEN: usize = HEADER_LEN + 1 + 1 + RAND_LEN;
/// Length of the PCHANNEL without its encrypted part.
const PCHANNEL_HEAD: usize = NONCE_LEN + MAC_LEN;

/// PCHANNEL result flag R (RFC 4764 §5.3), in bits 7–6 of the first encrypted octet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PchannelResult {
    Cont = 1,
    DoneSuccess = 2,
    DoneFailure = 3,
}

/// The E flag (an extension follows).
const E_FLAG: u8 = 0x20;

fn flags(t: u8) -> u8 {
    t << 6
}

/// The T field of a Flags octet (reserved bits are ignored, as hostapd does).
fn msg_number(flags: u8) -> u8 {
    flags >> 6
}

/// AK and KDK from the PSK (RFC 4764 §3.1).
pub fn derive_ak_kdk(psk: &Key128) -> Result<(Key128, Key128), CryptoError> {
    let mut aes = AesBlockCipher::new(psk.expose())?;
    let mut z: Block = [0; 16];
    aes.encrypt_block(&mut z)?;
    let mut ak = z;
    ak[15] ^= 1;
    aes.encrypt_block(&mut ak)?;
    let mut kdk = z;
    kdk[15] ^= 2;
    aes.encrypt_block(&mut kdk)?;
    z.zeroize();
    Ok((Key128::new(ak), Key128::new(kdk)))
}

/// TEK, MSK and EMSK from KDK and RAND_P (RFC 4764 §3.2).
pub fn derive_session_keys(
    kdk: &Key128,
    rand_p: &[u8; RAND_LEN],
) -> Result<(Key128, SecretBytes, SecretBytes), CryptoError> {
    let mut aes = AesBlockCipher::new(kdk.expose())?;
    let mut x = *rand_p;
    aes.encrypt_block(&mut x)?;
    let mut block = |i: u8| -> Result<Block, CryptoError> {
        let mut b = x;
        b[15] ^= i;
        aes.encrypt_block(&mut b)?;
        Ok(b)
    };
    let tek = Key128::new(block(1)?);
    let mut msk = Vec::with_capacity(MSK_LEN);
    for i in 2..=5 {
        msk.extend_from_slice(&block(i)?);
    }
    let mut emsk = Vec::with_capacity(MSK_LEN);
    for i in 6..=9 {
        emsk.extend_from_slice(&block(i)?);
    }
    x.zeroize();
    Ok((tek, SecretBytes::new(msk), SecretBytes::new(emsk)))
}

fn mac_p(
    ak: &Key128,
    id_p: &[u8],
    id_s: &[u8],
    rand_s: &[u8],
    rand_p: &[u8],
) -> Result<[u8; MAC_LEN], CryptoError> {
    aes_cmac_parts(ak.expose(), &[id_p, id_s, rand_s, rand_p])
}

fn mac_s(ak: &Key128, id_s: &[u8], rand_p: &[u8]) -> Result<[u8; MAC_LEN], CryptoError> {
    aes_cmac_parts(ak.expose(), &[id_s, rand_p])
}

fn eax_nonce(n: u32) -> Block {
    let mut b = [0u8; 16];
    b[12..].copy_from_slice(&n.to_be_bytes());
    b
}

/// The PCHANNEL header (associated data): the first 22 octets of the EAP packet whose
/// type-data has `type_data_len` octets and starts with `flags_rand_s` (Flags and RAND_S).
fn pchannel_ad(
    (code, identifier): (Code, u8),
    type_data_len: usize,
    flags_rand_s: &[u8; 1 + RAND_LEN],
) -> [u8; AD_LEN] {
    let mut ad = [0u8; AD_LEN];
    ad[..HEADER_LEN].copy_from_slice(&wire::header(
        code,
        identifier,
        HEADER_LEN + 1 + type_data_len,
    ));
    ad[HEADER_LEN] = EapType::PSK.0;
    ad[HEADER_LEN + 1..].copy_from_slice(flags_rand_s);
    ad
}

/// Builds `Flags | RAND_S | [MAC_S] | Nonce | Tag | Enc(R)`, sealing the PCHANNEL.
fn build_pchannel_message(
    to: (Code, u8),
    t: u8,
    rand_s: &[u8; RAND_LEN],
    mac: Option<&[u8; MAC_LEN]>,
    eax: &mut AesEax,
    nonce: u32,
    result: PchannelResult,
) -> Result<Vec<u8>, CryptoError> {
    let mut out = Vec::with_capacity(1 + RAND_LEN + MAC_LEN + PCHANNEL_HEAD + 1);
    out.push(flags(t));
    out.extend_from_slice(rand_s);
    if let Some(mac) = mac {
        out.extend_from_slice(mac);
    }
    out.extend_from_slice(&nonce.to_be_bytes());
    let tag_at = out.len();
    out.extend_from_slice(&[0; MAC_LEN]);
    let mut plain = [(result as u8) << 6];
    let mut head = [0u8; 1 + RAND_LEN];
    head[0] = flags(t);
    head[1..].copy_from_slice(rand_s);
    let ad = pchannel_ad(to, out.len() + plain.len(), &head);
    let tag = eax.seal_in_place(&eax_nonce(nonce), &ad, &mut plain, MAC_LEN)?;
    out[tag_at..tag_at + MAC_LEN].copy_from_slice(&tag);
    out.extend_from_slice(&plain);
    Ok(out)
}

/// Opens a PCHANNEL starting at `at` in `type_data`: returns (N, decrypted payload).
fn open_pchannel(
    from: (Code, u8),
    type_data: &[u8],
    at: usize,
    eax: &mut AesEax,
) -> Result<(u32, Vec<u8>), MethodError> {
    let pch = type_data
        .get(at..)
        .filter(|p| p.len() > PCHANNEL_HEAD)
        .ok_or(MethodError::Invalid("EAP-PSK PCHANNEL too short"))?;
    let n = u32::from_be_bytes([pch[0], pch[1], pch[2], pch[3]]);
    let tag = &pch[NONCE_LEN..PCHANNEL_HEAD];
    let mut data = pch[PCHANNEL_HEAD..].to_vec();
    let head: &[u8; 1 + RAND_LEN] = type_data
        .get(..1 + RAND_LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or(MethodError::Invalid("EAP-PSK message too short"))?;
    let ad = pchannel_ad(from, type_data.len(), head);
    eax.open_in_place(&eax_nonce(n), &ad, &mut data, tag)?;
    Ok((n, data))
}

fn keys(
    msk: &SecretBytes,
    emsk: &SecretBytes,
    rand_p: &[u8; RAND_LEN],
    rand_s: &[u8; RAND_LEN],
) -> MethodKeys {
    let mut session_id = Vec::with_capacity(1 + 2 * RAND_LEN);
    session_id.push(EapType::PSK.0);
    session_id.extend_from_slice(rand_p);
    session_id.extend_from_slice(rand_s);
    MethodKeys {
        msk: msk.clone(),
        emsk: emsk.clone(),
        session_id,
    }
}

fn rand_s_of(type_data: &[u8]) -> Option<[u8; RAND_LEN]> {
    type_data.get(1..1 + RAND_LEN)?.try_into().ok()
}

// ---------------------------------------------------------------------------------------------
// Peer

enum PeerState {
    ExpectFirst,
    ExpectThird {
        rand_s: [u8; RAND_LEN],
        rand_p: [u8; RAND_LEN],
        id_s: Vec<u8>,
        ak: Key128,
        kdk: Key128,
    },
    Done(Option<MethodKeys>),
}

/// The peer side of EAP-PSK, for one authentication.
pub struct PskPeer {
    id_p: Vec<u8>,
    psk: Key128,
    state: PeerState,
}

impl PskPeer {
    /// A peer that authenticates as `id_p` (an NAI, RFC 4764 §5.2) with `psk`.
    pub fn new(id_p: impl Into<Vec<u8>>, psk: Key128) -> PskPeer {
        PskPeer {
            id_p: id_p.into(),
            psk,
            state: PeerState::ExpectFirst,
        }
    }

    /// The server's identity ID_S, once message #1 arrived.
    pub fn server_identity(&self) -> Option<&[u8]> {
        match &self.state {
            PeerState::ExpectThird { id_s, .. } => Some(id_s),
            _ => None,
        }
    }

    fn first(&mut self, ctx: &MethodContext<'_>, req: &[u8]) -> Result<PeerStep, MethodError> {
        let rand_s = rand_s_of(req).ok_or(MethodError::Invalid("EAP-PSK #1 too short"))?;
        let id_s = req[1 + RAND_LEN..].to_vec();
        let rand_p: [u8; RAND_LEN] = ctx.rng.array()?;
        let (ak, kdk) = derive_ak_kdk(&self.psk)?;
        let mac = mac_p(&ak, &self.id_p, &id_s, &rand_s, &rand_p)?;
        let mut resp = Vec::with_capacity(1 + 2 * RAND_LEN + MAC_LEN + self.id_p.len());
        resp.push(flags(1));
        resp.extend_from_slice(&rand_s);
        resp.extend_from_slice(&rand_p);
        resp.extend_from_slice(&mac);
        resp.extend_from_slice(&self.id_p);
        self.state = PeerState::ExpectThird {
            rand_s,
            rand_p,
            id_s,
            ak,
            kdk,
        };
        Ok(PeerStep {
            response: Some(resp),
            state: MethodState::MayCont,
            decision: Decision::Fail,
        })
    }

    fn third(&mut self, ctx: &MethodContext<'_>, req: &[u8]) -> Result<PeerStep, MethodError> {
        let PeerState::ExpectThird {
            rand_s,
            rand_p,
            id_s,
            ak,
            kdk,
        } = &self.state
        else {
            return Err(MethodError::WrongState("EAP-PSK peer not expecting #3"));
        };
        if req.len() < 1 + RAND_LEN + MAC_LEN + PCHANNEL_HEAD + 1 {
            return Err(MethodError::Invalid("EAP-PSK #3 too short"));
        }
        if rand_s_of(req).as_ref() != Some(rand_s) {
            return Err(MethodError::Invalid("EAP-PSK #3 with another RAND_S"));
        }
        let fail = PeerStep {
            response: None,
            state: MethodState::Done,
            decision: Decision::Fail,
        };
        let expected = mac_s(ak, id_s, rand_p)?;
        if !ct_eq(&expected, &req[1 + RAND_LEN..1 + RAND_LEN + MAC_LEN]) {
            tracing::debug!("EAP-PSK: invalid MAC_S");
            self.state = PeerState::Done(None);
            return Ok(fail);
        }
        let (tek, msk, emsk) = derive_session_keys(kdk, rand_p)?;
        // One EAX key schedule for both PCHANNELs (#3 opened, #4 sealed).
        let mut eax = AesEax::new(tek.expose())?;
        let (n, plain) = match open_pchannel(
            (Code::Request, ctx.in_identifier),
            req,
            1 + RAND_LEN + MAC_LEN,
            &mut eax,
        ) {
            Ok(x) => x,
            Err(MethodError::Crypto(CryptoError::AuthenticationFailed)) => {
                tracing::debug!("EAP-PSK: PCHANNEL of #3 does not open");
                self.state = PeerState::Done(None);
                return Ok(fail);
            }
            Err(e) => return Err(e),
        };
        let next_n = n
            .checked_add(1)
            .ok_or(MethodError::Invalid("EAP-PSK nonce at its maximum"))?;
        let r = plain[0] >> 6;
        let success = r == PchannelResult::DoneSuccess as u8 && plain[0] & E_FLAG == 0;
        if r == PchannelResult::Cont as u8 || plain[0] & E_FLAG != 0 {
            tracing::debug!("EAP-PSK: extensions (CONT or E) are not supported");
        }
        let result = if success {
            PchannelResult::DoneSuccess
        } else {
            PchannelResult::DoneFailure
        };
        let resp = build_pchannel_message(
            (Code::Response, ctx.out_identifier),
            3,
            rand_s,
            None,
            &mut eax,
            next_n,
            result,
        )?;
        let k = success.then(|| keys(&msk, &emsk, rand_p, rand_s));
        self.state = PeerState::Done(k);
        Ok(PeerStep {
            response: Some(resp),
            state: MethodState::Done,
            decision: if success {
                Decision::UncondSucc
            } else {
                Decision::Fail
            },
        })
    }
}

impl PeerMethod for PskPeer {
    fn method_id(&self) -> MethodId {
        MethodId::Legacy(EapType::PSK)
    }

    fn process(
        &mut self,
        ctx: &MethodContext<'_>,
        request: &[u8],
    ) -> Result<PeerStep, MethodError> {
        let Some(&f) = request.first() else {
            return Err(MethodError::Invalid("EAP-PSK without Flags"));
        };
        match (&self.state, msg_number(f)) {
            (PeerState::ExpectFirst, 0) => self.first(ctx, request),
            (PeerState::ExpectThird { .. }, 2) => self.third(ctx, request),
            (PeerState::Done(_), _) => Err(MethodError::WrongState("EAP-PSK peer is done")),
            _ => Err(MethodError::Invalid("EAP-PSK message out of order")),
        }
    }

    fn keys(&self) -> Option<MethodKeys> {
        match &self.state {
            PeerState::Done(k) => k.clone(),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Server

/// Where the server finds the PSK of a peer, by its ID_P.
pub trait PskStore: Send + Sync {
    /// The PSK of `id_p`, or `None` if the peer is unknown (authentication then fails).
    fn psk(&self, id_p: &[u8]) -> Option<Key128>;
}

impl<F> PskStore for F
where
    F: Fn(&[u8]) -> Option<Key128> + Send + Sync,
{
    fn psk(&self, id_p: &[u8]) -> Option<Key128> {
        self(id_p)
    }
}

enum ServerState {
    Idle,
    ExpectSecond {
        rand_s: [u8; RAND_LEN],
    },
    ExpectFourth {
        rand_s: [u8; RAND_LEN],
        rand_p: [u8; RAND_LEN],
        /// Keyed with TEK: sealed #3, opens #4.
        eax: AesEax,
        msk: SecretBytes,
        emsk: SecretBytes,
        id_p: Vec<u8>,
    },
    Done(Option<MethodKeys>),
}

/// The server side of EAP-PSK, for one authentication.
pub struct PskServer {
    id_s: Vec<u8>,
    store: Arc<dyn PskStore>,
    state: ServerState,
    peer_id: Option<Vec<u8>>,
}

impl PskServer {
    /// A server that calls itself `id_s` and looks peers up in `store`.
    pub fn new(id_s: impl Into<Vec<u8>>, store: Arc<dyn PskStore>) -> PskServer {
        PskServer {
            id_s: id_s.into(),
            store,
            state: ServerState::Idle,
            peer_id: None,
        }
    }

    /// The peer's ID_P, once message #2 named a known peer whose MAC_P was right.
    pub fn peer_identity(&self) -> Option<&[u8]> {
        self.peer_id.as_deref()
    }

    fn second(
        &mut self,
        ctx: &MethodContext<'_>,
        rand_s: [u8; RAND_LEN],
        resp: &[u8],
    ) -> Result<ServerStep, MethodError> {
        if resp.len() < 1 + 2 * RAND_LEN + MAC_LEN {
            return Err(MethodError::Invalid("EAP-PSK #2 too short"));
        }
        if rand_s_of(resp) != Some(rand_s) {
            return Err(MethodError::Invalid("EAP-PSK #2 with another RAND_S"));
        }
        let mut rand_p = [0u8; RAND_LEN];
        rand_p.copy_from_slice(&resp[1 + RAND_LEN..1 + 2 * RAND_LEN]);
        let their_mac = &resp[1 + 2 * RAND_LEN..1 + 2 * RAND_LEN + MAC_LEN];
        let id_p = &resp[1 + 2 * RAND_LEN + MAC_LEN..];
        let Some(psk) = self.store.psk(id_p) else {
            tracing::debug!("EAP-PSK: unknown ID_P");
            self.state = ServerState::Done(None);
            return Ok(ServerStep::Failure);
        };
        let (ak, kdk) = derive_ak_kdk(&psk)?;
        let mac = mac_p(&ak, id_p, &self.id_s, &rand_s, &rand_p)?;
        if !ct_eq(&mac, their_mac) {
            tracing::debug!("EAP-PSK: invalid MAC_P");
            self.state = ServerState::Done(None);
            return Ok(ServerStep::Failure);
        }
        let (tek, msk, emsk) = derive_session_keys(&kdk, &rand_p)?;
        let ms = mac_s(&ak, &self.id_s, &rand_p)?;
        let mut eax = AesEax::new(tek.expose())?;
        let req = build_pchannel_message(
            (Code::Request, ctx.out_identifier),
            2,
            &rand_s,
            Some(&ms),
            &mut eax,
            0,
            PchannelResult::DoneSuccess,
        )?;
        self.state = ServerState::ExpectFourth {
            rand_s,
            rand_p,
            eax,
            msk,
            emsk,
            id_p: id_p.to_vec(),
        };
        Ok(ServerStep::Request(req))
    }

    fn fourth(&mut self, ctx: &MethodContext<'_>, resp: &[u8]) -> Result<ServerStep, MethodError> {
        let ServerState::ExpectFourth {
            rand_s,
            rand_p,
            eax,
            msk,
            emsk,
            id_p,
        } = &mut self.state
        else {
            return Err(MethodError::WrongState("EAP-PSK server not expecting #4"));
        };
        if rand_s_of(resp).as_ref() != Some(rand_s) {
            return Err(MethodError::Invalid("EAP-PSK #4 with another RAND_S"));
        }
        // Our #3 carried N = 0, so #4 must carry 1 (hostapd, as server, only refuses 0).
        if resp.get(1 + RAND_LEN..1 + RAND_LEN + NONCE_LEN) != Some(&1u32.to_be_bytes()[..]) {
            return Err(MethodError::Invalid("EAP-PSK #4 with a wrong nonce"));
        }
        let plain =
            match open_pchannel((Code::Response, ctx.in_identifier), resp, 1 + RAND_LEN, eax) {
                Ok((_, plain)) => plain,
                Err(MethodError::Crypto(CryptoError::AuthenticationFailed)) => {
                    tracing::debug!("EAP-PSK: PCHANNEL of #4 does not open");
                    self.state = ServerState::Done(None);
                    return Ok(ServerStep::Failure);
                }
                Err(e) => return Err(e),
            };
        if plain[0] >> 6 == PchannelResult::DoneSuccess as u8 && plain[0] & E_FLAG == 0 {
            let k = keys(msk, emsk, rand_p, rand_s);
            self.peer_id = Some(id_p.clone());
            self.state = ServerState::Done(Some(k));
            Ok(ServerStep::Success)
        } else {
            tracing::debug!("EAP-PSK: peer reported failure in #4");
            self.state = ServerState::Done(None);
            Ok(ServerStep::Failure)
        }
    }
}

impl ServerMethod for PskServer {
    fn method_id(&self) -> MethodId {
        MethodId::Legacy(EapType::PSK)
    }

    fn start(&mut self, ctx: &MethodContext<'_>, _identity: &[u8]) -> Result<Vec<u8>, MethodError> {
        if !matches!(self.state, ServerState::Idle) {
            return Err(MethodError::WrongState("EAP-PSK server already started"));
        }
        let rand_s: [u8; RAND_LEN] = ctx.rng.array()?;
        let mut req = Vec::with_capacity(1 + RAND_LEN + self.id_s.len());
        req.push(flags(0));
        req.extend_from_slice(&rand_s);
        req.extend_from_slice(&self.id_s);
        self.state = ServerState::ExpectSecond { rand_s };
        Ok(req)
    }

    fn process(
        &mut self,
        ctx: &MethodContext<'_>,
        response: &[u8],
    ) -> Result<ServerStep, MethodError> {
        let Some(&f) = response.first() else {
            return Err(MethodError::Invalid("EAP-PSK without Flags"));
        };
        match (&self.state, msg_number(f)) {
            (ServerState::ExpectSecond { rand_s }, 1) => {
                let rand_s = *rand_s;
                self.second(ctx, rand_s, response)
            }
            (ServerState::ExpectFourth { .. }, 3) => self.fourth(ctx, response),
            (ServerState::Idle, _) => Err(MethodError::WrongState("EAP-PSK server not started")),
            (ServerState::Done(_), _) => Err(MethodError::WrongState("EAP-PSK server is done")),
            _ => Err(MethodError::Invalid("EAP-PSK message out of order")),
        }
    }

    fn keys(&self) -> Option<MethodKeys> {
        match &self.state {
            ServerState::Done(k) => k.clone(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kmp_api::rng::RngHandle;
    use kmp_api::time::Instant;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    fn key(s: &str) -> Key128 {
        Key128::from_slice(&h(s)).unwrap()
    }

    // Spec §8.7: computed with an independent implementation of the hostapd construction; RFC
    // 4764 has no test vectors and none were found elsewhere.
    #[test]
    fn key_derivation_known_answer() {
        let (ak, kdk) = derive_ak_kdk(&key("000102030405060708090a0b0c0d0e0f")).unwrap();
        assert_eq!(ak.expose().to_vec(), h("18b62d2c84c5e4571afc41a29db71f4d"));
        assert_eq!(kdk.expose().to_vec(), h("97b704350085028363924612565b9b0d"));
        let rand_p: [u8; 16] = h("101112131415161718191a1b1c1d1e1f").try_into().unwrap();
        let (tek, msk, emsk) = derive_session_keys(&kdk, &rand_p).unwrap();
        assert_eq!(tek.expose().to_vec(), h("4a60ff36b8435790bfc64569b677d613"));
        assert_eq!(
            msk.expose(),
            h(
                "3d57fffaa740360b2b43888b4ce41fa529e312778f8229003bb5bc14b27d6d2d\
               881186b8ae4d7c0ad958f78c47a6fa2b548f4f4a046f44e6ab57a80eb60c7fda"
            )
        );
        assert_eq!(emsk.len(), 64);
        assert_ne!(emsk.expose(), msk.expose());
    }

    fn ctx(rng: &RngHandle, id: u8) -> MethodContext<'_> {
        MethodContext {
            rng,
            now: Instant::ZERO,
            in_identifier: id,
            out_identifier: id,
        }
    }

    fn server(psk: &'static str) -> PskServer {
        PskServer::new(
            b"server".to_vec(),
            Arc::new(move |id: &[u8]| (id == b"alice").then(|| key(psk))),
        )
    }

    #[test]
    fn four_messages_and_tampering() {
        let rng = RngHandle::seeded(7);
        let psk = "00112233445566778899aabbccddeeff";
        let mut s = server(psk);
        let mut p = PskPeer::new(b"alice".to_vec(), key(psk));
        let m1 = s.start(&ctx(&rng, 1), b"").unwrap();
        assert_eq!(m1.len(), 1 + 16 + 6);
        let m2 = p.process(&ctx(&rng, 1), &m1).unwrap();
        assert_eq!(p.server_identity(), Some(&b"server"[..]));
        let m2 = m2.response.unwrap();
        assert_eq!(m2[0], 0x40);
        // A changed RAND_S is ignored without changing state.
        let mut bad = m2.clone();
        bad[1] ^= 1;
        assert!(matches!(
            s.process(&ctx(&rng, 1), &bad),
            Err(MethodError::Invalid(_))
        ));
        // The server answers Identifier 1 with #3 in Identifier 2, then #4 comes back in 2.
        let mut s_ctx = ctx(&rng, 1);
        s_ctx.out_identifier = 2;
        let ServerStep::Request(m3) = s.process(&s_ctx, &m2).unwrap() else {
            panic!("expected #3");
        };
        let c3 = ctx(&rng, 2);
        let wrong_id = ctx(&rng, 3);
        let step = p.process(&c3, &m3).unwrap();
        assert_eq!(step.state, MethodState::Done);
        assert_eq!(step.decision, Decision::UncondSucc);
        let m4 = step.response.unwrap();
        assert_eq!(m4.len(), 1 + 16 + 4 + 16 + 1);
        // A wrong nonce is ignored.
        let mut bad4 = m4.clone();
        bad4[20] ^= 1;
        assert!(matches!(
            s.process(&c3, &bad4),
            Err(MethodError::Invalid(_))
        ));
        assert_eq!(s.process(&c3, &m4).unwrap(), ServerStep::Success);
        let (kp, ks) = (p.keys().unwrap(), s.keys().unwrap());
        assert_eq!(kp, ks);
        assert_eq!(kp.session_id.len(), 33);
        assert_eq!(kp.session_id[0], 47);
        assert_eq!(s.peer_identity(), Some(&b"alice"[..]));
        // A peer whose #3 carries the wrong Identifier in its header cannot open the PCHANNEL.
        let mut p3 = PskPeer::new(b"alice".to_vec(), key(psk));
        let mut s3 = server(psk);
        let m1 = s3.start(&ctx(&rng, 1), b"").unwrap();
        let m2 = p3.process(&ctx(&rng, 1), &m1).unwrap().response.unwrap();
        let ServerStep::Request(m3) = s3.process(&s_ctx, &m2).unwrap() else {
            panic!("expected #3");
        };
        let step = p3.process(&wrong_id, &m3).unwrap();
        assert_eq!(step.response, None);
        assert_eq!(step.decision, Decision::Fail);
        assert!(p3.keys().is_none());
    }

    #[test]
    fn tampered_fourth_fails_at_the_server() {
        let rng = RngHandle::seeded(11);
        let psk = "00112233445566778899aabbccddeeff";
        let mut s = server(psk);
        let mut p = PskPeer::new(b"alice".to_vec(), key(psk));
        let m1 = s.start(&ctx(&rng, 1), b"").unwrap();
        let m2 = p.process(&ctx(&rng, 1), &m1).unwrap().response.unwrap();
        let ServerStep::Request(m3) = s.process(&ctx(&rng, 1), &m2).unwrap() else {
            panic!("expected #3");
        };
        let mut m4 = p.process(&ctx(&rng, 1), &m3).unwrap().response.unwrap();
        // Flip a bit of the encrypted result flag: the tag no longer matches.
        *m4.last_mut().unwrap() ^= 0x40;
        assert_eq!(s.process(&ctx(&rng, 1), &m4).unwrap(), ServerStep::Failure);
        assert!(s.keys().is_none());
        assert!(p.keys().is_some(), "the peer cannot know");
    }

    #[test]
    fn wrong_psk_fails_at_the_server() {
        let rng = RngHandle::seeded(8);
        let mut s = server("00112233445566778899aabbccddeeff");
        let mut p = PskPeer::new(b"alice".to_vec(), key("ffeeddccbbaa99887766554433221100"));
        let m1 = s.start(&ctx(&rng, 1), b"").unwrap();
        let m2 = p.process(&ctx(&rng, 1), &m1).unwrap().response.unwrap();
        assert_eq!(s.process(&ctx(&rng, 1), &m2).unwrap(), ServerStep::Failure);
        assert!(s.keys().is_none());
        // Unknown ID_P fails too.
        let mut s = server("00112233445566778899aabbccddeeff");
        let mut p = PskPeer::new(b"mallory".to_vec(), key("00112233445566778899aabbccddeeff"));
        let m1 = s.start(&ctx(&rng, 1), b"").unwrap();
        let m2 = p.process(&ctx(&rng, 1), &m1).unwrap().response.unwrap();
        assert_eq!(s.process(&ctx(&rng, 1), &m2).unwrap(), ServerStep::Failure);
    }

    #[test]
    fn wrong_mac_s_fails_at_the_peer() {
        // A server that knows another PSK for alice answers #2 ... it fails on MAC_P; so forge
        // #3 with a wrong MAC_S by flipping one bit of a good #3.
        let rng = RngHandle::seeded(9);
        let psk = "00112233445566778899aabbccddeeff";
        let mut s = server(psk);
        let mut p = PskPeer::new(b"alice".to_vec(), key(psk));
        let m1 = s.start(&ctx(&rng, 1), b"").unwrap();
        let m2 = p.process(&ctx(&rng, 1), &m1).unwrap().response.unwrap();
        let ServerStep::Request(mut m3) = s.process(&ctx(&rng, 1), &m2).unwrap() else {
            panic!("expected #3");
        };
        m3[17] ^= 1;
        let step = p.process(&ctx(&rng, 1), &m3).unwrap();
        assert_eq!(
            (step.response, step.state, step.decision),
            (None, MethodState::Done, Decision::Fail)
        );
        assert!(p.keys().is_none());
        assert!(matches!(
            p.process(&ctx(&rng, 1), &m3),
            Err(MethodError::WrongState(_))
        ));
    }

    #[test]
    fn malformed_messages_are_ignored() {
        let rng = RngHandle::seeded(10);
        let mut p = PskPeer::new(b"alice".to_vec(), key("00112233445566778899aabbccddeeff"));
        assert!(p.process(&ctx(&rng, 1), &[]).is_err());
        assert!(p.process(&ctx(&rng, 1), &[0x00; 16]).is_err());
        assert!(p.process(&ctx(&rng, 1), &[0x80; 60]).is_err());
        // Still able to process a good #1.
        let mut m1 = vec![0u8; 17];
        m1.extend_from_slice(b"server");
        assert!(p.process(&ctx(&rng, 1), &m1).is_ok());
        let mut s = server("00112233445566778899aabbccddeeff");
        assert!(matches!(
            s.process(&ctx(&rng, 1), &[0x40; 60]),
            Err(MethodError::WrongState(_))
        ));
        s.start(&ctx(&rng, 1), b"").unwrap();
        assert!(s.process(&ctx(&rng, 1), &[0x40; 40]).is_err());
        assert!(s.process(&ctx(&rng, 1), &[0xc0; 60]).is_err());
    }
}
