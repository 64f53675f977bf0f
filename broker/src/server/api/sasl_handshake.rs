//! SaslHandshake v1: the client names a mechanism; the answer lists those
//! offered. An unoffered mechanism is answered UNSUPPORTED_SASL_MECHANISM and
//! the connection closed; a handshake where none is due (no SASL on this
//! listener, or already authenticated) gets ILLEGAL_SASL_STATE, as in Kafka.
//! Version 0 (SASL tokens outside Kafka framing) is not served.

use crate::context::Context;
use crate::server::request::{DispatchError, Reply, RequestMeta};
use crate::server::session::{Exchange, Session};
use kafka_protocol::messages::{SaslHandshakeRequest, SaslHandshakeResponse};
use kafka_protocol::ResponseError;
use relay_proto::sasl::scram::ScramServer;
use relay_proto::sasl::PLAIN;

pub fn handle(
    ctx: &Context,
    session: &mut Session,
    meta: &RequestMeta,
    request: SaslHandshakeRequest,
) -> Result<Reply, DispatchError> {
    let Some(users) = &ctx.security.sasl else {
        let response = SaslHandshakeResponse::default().with_error_code(ResponseError::IllegalSaslState.code());
        return meta.encode(&response).map(Reply::Ready);
    };
    let offered = users.mechanisms.iter().map(|m| super::text(m)).collect();
    let response = SaslHandshakeResponse::default().with_mechanisms(offered);
    match session {
        Session::AwaitHandshake => {}
        Session::Open | Session::Authenticated { .. } => {
            let response = response.with_error_code(ResponseError::IllegalSaslState.code());
            return meta.encode(&response).map(Reply::Ready);
        }
        Session::AwaitAuthenticate { .. } => {
            tracing::warn!(peer = %meta.peer, "closing connection: a second SaslHandshake before authenticating");
            let response = response.with_error_code(ResponseError::IllegalSaslState.code());
            return meta.encode(&response).map(Reply::Last);
        }
    }
    let Some(mechanism) = users.mechanisms.iter().find(|m| **m == request.mechanism.as_str()) else {
        tracing::warn!(peer = %meta.peer, mechanism = %request.mechanism.as_str(), offered = ?users.mechanisms,
            "closing connection: SASL mechanism not offered");
        crate::metrics::authentication(&request.mechanism, false);
        let response = response.with_error_code(ResponseError::UnsupportedSaslMechanism.code());
        return meta.encode(&response).map(Reply::Last);
    };
    *session = Session::AwaitAuthenticate(if *mechanism == PLAIN {
        Exchange::Plain
    } else {
        Exchange::Scram(Box::new(ScramServer::new(users.scram_secret)))
    });
    meta.encode(&response).map(Reply::Ready)
}
