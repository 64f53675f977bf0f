//! SaslAuthenticate: carries the chosen mechanism's messages. PLAIN is one
//! round (the password is checked against the user's stored credential, off
//! the async threads: it costs a PBKDF2); SCRAM-SHA-256 is two. A failed
//! login is answered SASL_AUTHENTICATION_FAILED with a message that does not
//! say whether the user exists, and the connection is closed.

use crate::context::Context;
use crate::security::Users;
use crate::server::request::{DispatchError, Reply, RequestMeta};
use crate::server::session::{Exchange, Session};
use bytes::Bytes;
use kafka_protocol::messages::{SaslAuthenticateRequest, SaslAuthenticateResponse};
use kafka_protocol::ResponseError;
use relay_proto::sasl::credential::{ITERATIONS_DEFAULT, SALT_BYTES};
use relay_proto::sasl::scram::ServerStep;
use relay_proto::sasl::{plain, Credential, SaslError, PLAIN};

pub async fn handle(
    ctx: &Context,
    session: &mut Session,
    meta: &RequestMeta,
    request: SaslAuthenticateRequest,
) -> Result<Reply, DispatchError> {
    let refuse = |message: &str, last: bool| {
        let response = SaslAuthenticateResponse::default()
            .with_error_code(ResponseError::IllegalSaslState.code())
            .with_error_message(Some(super::text(message)));
        meta.encode(&response)
            .map(if last { Reply::Last } else { Reply::Ready })
    };
    let Some(users) = &ctx.security.sasl else {
        return refuse("this listener does not use SASL", false);
    };
    let exchange = match session {
        Session::AwaitAuthenticate(exchange) => exchange,
        Session::Open | Session::Authenticated { .. } => return refuse("already authenticated", false),
        Session::AwaitHandshake => {
            tracing::warn!(peer = %meta.peer, "closing connection: SaslAuthenticate before SaslHandshake");
            return refuse("SaslAuthenticate before SaslHandshake", true);
        }
    };
    let mechanism = exchange.mechanism();
    let outcome = match exchange {
        Exchange::Scram(scram) => scram.step(&request.auth_bytes, |user| users.credential(user)),
        Exchange::Plain => plain_login(users, request.auth_bytes).await,
    };
    match outcome {
        Ok(ServerStep::Continue(challenge)) => {
            let response = SaslAuthenticateResponse::default().with_auth_bytes(Bytes::from(challenge));
            meta.encode(&response).map(Reply::Ready)
        }
        Ok(ServerStep::Authenticated { user, response }) => {
            tracing::debug!(peer = %meta.peer, %user, mechanism, "authenticated");
            crate::metrics::authentication(mechanism, true);
            *session = Session::Authenticated { user: user.into() };
            meta.encode(&SaslAuthenticateResponse::default().with_auth_bytes(Bytes::from(response)))
                .map(Reply::Ready)
        }
        Err(error) => {
            tracing::warn!(peer = %meta.peer, mechanism, %error, "closing connection: authentication failed");
            crate::metrics::authentication(mechanism, false);
            let response = SaslAuthenticateResponse::default()
                .with_error_code(ResponseError::SaslAuthenticationFailed.code())
                .with_error_message(Some(super::text(&error.to_string())));
            meta.encode(&response).map(Reply::Last)
        }
    }
}

/// Checks a PLAIN login. An unknown user costs the same PBKDF2 as a known
/// one, so timing does not tell who exists.
async fn plain_login(users: &Users, message: Bytes) -> Result<ServerStep, SaslError> {
    let login = plain::parse(&message)?;
    let user = login.user.to_owned();
    let password = login.password.to_vec();
    let credential = users.credential(&user);
    let verified = tokio::task::spawn_blocking(move || match credential {
        Some(credential) => credential.verify_password(&password),
        None => {
            let _ = Credential::derive(&password, vec![0; SALT_BYTES], ITERATIONS_DEFAULT);
            false
        }
    })
    .await
    .unwrap_or(false);
    if !verified {
        return Err(SaslError::BadCredentials { mechanism: PLAIN });
    }
    Ok(ServerStep::Authenticated {
        user,
        response: Vec::new(),
    })
}
