//! Where one connection stands with SASL: a listener without SASL is open
//! from the first byte; with SASL, a connection may only ask ApiVersions,
//! SaslHandshake and SaslAuthenticate until it has proven who it is, and
//! anything else closes it (the client gets nothing but the auth error).
//!
//! The exchange itself is `api::sasl_handshake` and `api::sasl_authenticate`.

use crate::security::Security;
use kafka_protocol::messages::ApiKey;
use relay_proto::sasl::scram::ScramServer;

/// Largest request an unauthenticated connection may send (SASL tokens are
/// small), as Kafka's `sasl.server.max.receive.size`: a stranger cannot make
/// the broker read `request_bytes_max` bytes.
pub const UNAUTHENTICATED_REQUEST_BYTES_MAX: usize = 512 * 1024;

pub enum Session {
    /// The listener asks for no authentication.
    Open,
    /// SASL required; no mechanism chosen yet.
    AwaitHandshake,
    /// Mechanism chosen; SaslAuthenticate messages under way.
    AwaitAuthenticate(Exchange),
    Authenticated {
        user: std::sync::Arc<str>,
    },
}

/// The chosen mechanism and, for SCRAM, where its exchange stands.
pub enum Exchange {
    Plain,
    Scram(Box<ScramServer>),
}

impl Exchange {
    pub fn mechanism(&self) -> &'static str {
        match self {
            Self::Plain => relay_proto::sasl::PLAIN,
            Self::Scram(_) => relay_proto::sasl::SCRAM_SHA_256,
        }
    }
}

impl Session {
    pub fn new(security: &Security) -> Self {
        if security.sasl.is_some() {
            Self::AwaitHandshake
        } else {
            Self::Open
        }
    }

    /// May this connection's next request be `api`?
    pub fn admits(&self, api: ApiKey) -> bool {
        self.may_use_broker()
            || matches!(
                api,
                ApiKey::ApiVersions | ApiKey::SaslHandshake | ApiKey::SaslAuthenticate
            )
    }

    /// Authenticated, or nothing to authenticate.
    pub fn may_use_broker(&self) -> bool {
        matches!(self, Self::Open | Self::Authenticated { .. })
    }

    /// Who is asking: the logged-in user (`None` on a listener without SASL).
    pub fn user(&self) -> Option<std::sync::Arc<str>> {
        match self {
            Self::Authenticated { user } => Some(user.clone()),
            _ => None,
        }
    }

    /// The largest request this connection may send right now.
    pub fn request_bytes_max(&self, configured: usize) -> usize {
        if self.may_use_broker() {
            configured
        } else {
            configured.min(UNAUTHENTICATED_REQUEST_BYTES_MAX)
        }
    }
}
