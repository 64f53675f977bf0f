//! SASL as Kafka uses it (SaslHandshake + SaslAuthenticate carry these
//! messages): PLAIN (RFC 4616) and SCRAM-SHA-256 (RFC 5802, RFC 7677), both
//! sides of each, and the hashed credential format users are stored in.
//!
//! No I/O here: the broker's connection and the client's connection move the
//! bytes; this module only says what they mean. Message layouts and the
//! credential format: `proto-spec/PROTOCOL.md`, "Security".
//!
//! # Layout
//! - [`credential`]: `SCRAM-SHA-256$<iterations>:<salt>$<stored key>:<server key>`,
//!   derived from a password and checked against one.
//! - [`scram`]: the SCRAM exchange, server ([`scram::ScramServer`]) and client
//!   ([`scram::ScramClient`]).
//! - [`plain`]: the single PLAIN message.

pub mod credential;
pub mod plain;
pub mod scram;

pub use credential::Credential;

/// Mechanism names as clients send them in SaslHandshake.
pub const PLAIN: &str = "PLAIN";
pub const SCRAM_SHA_256: &str = "SCRAM-SHA-256";

/// The offered mechanism spelled `name` (exactly as clients send it), or
/// `None` for a mechanism Relay does not implement.
pub fn mechanism(name: &str) -> Option<&'static str> {
    [PLAIN, SCRAM_SHA_256].into_iter().find(|m| *m == name)
}

/// Kafka's name for a listener's (or client's) security protocol.
pub fn security_protocol(sasl: bool, tls: bool) -> &'static str {
    match (sasl, tls) {
        (false, false) => "PLAINTEXT",
        (false, true) => "SSL",
        (true, false) => "SASL_PLAINTEXT",
        (true, true) => "SASL_SSL",
    }
}

/// Why an exchange failed. `Display` is safe to send to the peer: it never
/// says whether the user exists.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaslError {
    #[error("malformed {mechanism} message: {reason}")]
    Malformed { mechanism: &'static str, reason: String },
    #[error("authentication failed: invalid credentials with SASL mechanism {mechanism}")]
    BadCredentials { mechanism: &'static str },
    #[error("{mechanism} exchange is already complete or out of order")]
    OutOfOrder { mechanism: &'static str },
    #[error("the server's {mechanism} signature does not match: it does not know this user's credential")]
    ServerNotVerified { mechanism: &'static str },
    #[error("unsupported {mechanism} feature: {feature}")]
    Unsupported { mechanism: &'static str, feature: String },
    #[error("credential {0}")]
    BadCredential(String),
}

/// Constant-time equality, so a comparison's duration says nothing about
/// where two secrets differ.
pub(crate) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
