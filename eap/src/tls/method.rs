//! EAP-TLS behind the method interface of the EAP state machines ([`crate::method`]).
//!
//! - Peer: during the handshake the method is `MayCont` with decision `Fail` (an EAP-Failure
//!   ends it, an EAP-Success is unauthenticated and fails the peer); after the server's
//!   Finished (TLS 1.2) or the success indication (TLS 1.3) it is `Done` with `CondSucc`, so
//!   the server may still refuse with EAP-Failure. A TLS failure is `Done`/`Fail` with the
//!   alert (or acknowledgement) as the response; a malformed message is `Done`/`Fail` with no
//!   response. EAP-TLS never asks the state machine to ignore a packet: OpenSSL has consumed
//!   it, and the fragment reassembly cannot be rolled back.
//! - Server: [`Step::Send`] and [`Step::Fail`] are requests; success and failure are
//!   [`ServerStep::Success`] and [`ServerStep::Failure`]. Calls after the method finished are
//!   [`MethodError::WrongState`].

use super::{ServerState, Step, TlsKeys, TlsPeer, TlsServer};
use crate::method::{
    Decision, MethodContext, MethodError, MethodKeys, MethodState, PeerMethod, PeerStep,
    ServerMethod, ServerStep,
};
use crate::wire::{EapType, MethodId};

impl From<&TlsKeys> for MethodKeys {
    fn from(k: &TlsKeys) -> MethodKeys {
        MethodKeys {
            msk: k.msk.clone(),
            emsk: k.emsk.clone(),
            session_id: k.session_id.clone(),
        }
    }
}

impl PeerMethod for TlsPeer {
    fn method_id(&self) -> MethodId {
        MethodId::Legacy(EapType::TLS)
    }

    fn process(
        &mut self,
        _ctx: &MethodContext<'_>,
        request: &[u8],
    ) -> Result<PeerStep, MethodError> {
        if self.is_finished() {
            return Err(MethodError::WrongState("EAP-TLS already finished"));
        }
        Ok(match TlsPeer::process(self, request) {
            Ok(Step::Send(response)) => PeerStep {
                response: Some(response),
                state: MethodState::MayCont,
                decision: Decision::Fail,
            },
            Ok(Step::Done { send, .. }) => PeerStep {
                response: send,
                state: MethodState::Done,
                decision: Decision::CondSucc,
            },
            Ok(Step::Fail { send, error }) => {
                tracing::debug!(%error, "EAP-TLS peer failed");
                PeerStep {
                    response: Some(send),
                    state: MethodState::Done,
                    decision: Decision::Fail,
                }
            }
            Err(error) => {
                tracing::debug!(%error, "EAP-TLS peer failed");
                PeerStep {
                    response: None,
                    state: MethodState::Done,
                    decision: Decision::Fail,
                }
            }
        })
    }

    fn keys(&self) -> Option<MethodKeys> {
        self.tls_keys().map(MethodKeys::from)
    }
}

impl ServerMethod for TlsServer {
    fn method_id(&self) -> MethodId {
        MethodId::Legacy(EapType::TLS)
    }

    fn start(&mut self, _ctx: &MethodContext<'_>, identity: &[u8]) -> Result<Vec<u8>, MethodError> {
        if self.name_from_identity {
            // A non-UTF-8 identity keeps its replacement characters and matches no name.
            self.expected_peer_name = Some(String::from_utf8_lossy(identity).into_owned());
        }
        TlsServer::start(self).map_err(|e| MethodError::Other(e.to_string()))
    }

    fn process(
        &mut self,
        _ctx: &MethodContext<'_>,
        response: &[u8],
    ) -> Result<ServerStep, MethodError> {
        match self.state {
            ServerState::Idle => return Err(MethodError::WrongState("EAP-TLS not started")),
            ServerState::Finished(_) => {
                return Err(MethodError::WrongState("EAP-TLS already finished"));
            }
            _ => {}
        }
        Ok(match TlsServer::process(self, response) {
            Ok(Step::Send(request)) => ServerStep::Request(request),
            Ok(Step::Fail { send, error }) => {
                tracing::debug!(%error, "EAP-TLS server failed; sending the alert");
                ServerStep::Request(send)
            }
            Ok(Step::Done { .. }) => ServerStep::Success,
            Err(error) => {
                tracing::debug!(%error, "EAP-TLS server failed");
                ServerStep::Failure
            }
        })
    }

    fn keys(&self) -> Option<MethodKeys> {
        self.tls_keys().map(MethodKeys::from)
    }
}
