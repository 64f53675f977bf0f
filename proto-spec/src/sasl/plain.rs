//! PLAIN (RFC 4616): one message, `[authzid] NUL authcid NUL passwd`, checked
//! against the user's stored SCRAM credential. Sends the password itself, so
//! it belongs on TLS listeners only (the broker warns otherwise).

use super::{SaslError, PLAIN};

/// Bytes of the one PLAIN message; larger is refused before parsing.
pub const MESSAGE_BYTES_MAX: usize = 1024;

/// The parts of a PLAIN message.
#[derive(Debug, PartialEq, Eq)]
pub struct PlainMessage<'a> {
    pub authzid: &'a str,
    pub user: &'a str,
    pub password: &'a [u8],
}

pub fn parse(message: &[u8]) -> Result<PlainMessage<'_>, SaslError> {
    let malformed = |reason: &str| SaslError::Malformed {
        mechanism: PLAIN,
        reason: reason.into(),
    };
    if message.len() > MESSAGE_BYTES_MAX {
        return Err(malformed("longer than 1024 bytes"));
    }
    let mut parts = message.splitn(3, |b| *b == 0);
    let (Some(authzid), Some(user), Some(password)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(malformed("expected authzid NUL user NUL password"));
    };
    let authzid = std::str::from_utf8(authzid).map_err(|_| malformed("authzid is not UTF-8"))?;
    let user = std::str::from_utf8(user).map_err(|_| malformed("user name is not UTF-8"))?;
    if user.is_empty() {
        return Err(malformed("empty user name"));
    }
    if !authzid.is_empty() && authzid != user {
        return Err(SaslError::Unsupported {
            mechanism: PLAIN,
            feature: "acting as another user (authzid)".into(),
        });
    }
    Ok(PlainMessage {
        authzid,
        user,
        password,
    })
}

/// The message a client sends.
pub fn message(user: &str, password: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(user.len() + password.len() + 2);
    out.push(0);
    out.extend_from_slice(user.as_bytes());
    out.push(0);
    out.extend_from_slice(password.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        assert_eq!(
            parse(&message("alice", "s3cret")).unwrap(),
            PlainMessage {
                authzid: "",
                user: "alice",
                password: b"s3cret"
            }
        );
        assert!(parse(b"alice\0alice\0pw").is_ok());
        assert!(parse(b"bob\0alice\0pw").is_err());
        assert!(parse(b"alice").is_err());
        assert!(parse(b"\0\0pw").is_err());
        assert!(parse(&[0u8; 2000]).is_err());
    }
}
