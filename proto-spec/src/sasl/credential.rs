//! A user's stored secret: never the password, only what SCRAM-SHA-256 needs
//! to check one (RFC 5802 section 3), in PostgreSQL's textual layout:
//!
//! ```text
//! SCRAM-SHA-256$<iterations>:<base64 salt>$<base64 StoredKey>:<base64 ServerKey>
//! ```
//!
//! PLAIN logins are checked against the same credential by deriving the keys
//! from the offered password, so one stored form serves both mechanisms.

use super::{same_bytes, SaslError};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ring::{digest, hmac, pbkdf2, rand::SecureRandom};
use std::num::NonZeroU32;

/// RFC 7677's minimum, and Kafka's.
pub const ITERATIONS_MIN: u32 = 4096;
/// A credential (or a server, on the client side) asking for more work than
/// this is refused: it would make each login a denial of service.
pub const ITERATIONS_MAX: u32 = 1_000_000;
/// What `relay hash-password` uses.
pub const ITERATIONS_DEFAULT: u32 = 8192;
pub const SALT_BYTES: usize = 16;
const KEY_BYTES: usize = 32;
const PREFIX: &str = "SCRAM-SHA-256$";

#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    pub iterations: u32,
    pub salt: Vec<u8>,
    pub stored_key: [u8; KEY_BYTES],
    pub server_key: [u8; KEY_BYTES],
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

/// SaltedPassword := Hi(Normalize(password), salt, i)
pub(crate) fn salted_password(password: &[u8], salt: &[u8], iterations: u32) -> [u8; KEY_BYTES] {
    let mut out = [0u8; KEY_BYTES];
    let iterations = NonZeroU32::new(iterations.max(1)).expect("at least 1");
    pbkdf2::derive(pbkdf2::PBKDF2_HMAC_SHA256, iterations, salt, password, &mut out);
    out
}

pub(crate) fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; KEY_BYTES] {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data);
    tag.as_ref().try_into().expect("HMAC-SHA-256 is 32 bytes")
}

pub(crate) fn sha256(data: &[u8]) -> [u8; KEY_BYTES] {
    digest::digest(&digest::SHA256, data)
        .as_ref()
        .try_into()
        .expect("SHA-256 is 32 bytes")
}

pub(crate) fn random_bytes(out: &mut [u8]) {
    ring::rand::SystemRandom::new()
        .fill(out)
        .expect("the operating system's random source works");
}

impl Credential {
    /// Derives a credential with a fresh random salt.
    pub fn from_password(password: &str, iterations: u32) -> Result<Self, SaslError> {
        let mut salt = vec![0u8; SALT_BYTES];
        random_bytes(&mut salt);
        Self::derive(password.as_bytes(), salt, iterations)
    }

    pub fn derive(password: &[u8], salt: Vec<u8>, iterations: u32) -> Result<Self, SaslError> {
        check_iterations(iterations)?;
        let salted = salted_password(password, &salt, iterations);
        let client_key = hmac_sha256(&salted, b"Client Key");
        Ok(Self {
            iterations,
            salt,
            stored_key: sha256(&client_key),
            server_key: hmac_sha256(&salted, b"Server Key"),
        })
    }

    /// True when `password` is the one this credential was made from.
    pub fn verify_password(&self, password: &[u8]) -> bool {
        let salted = salted_password(password, &self.salt, self.iterations);
        let stored_key = sha256(&hmac_sha256(&salted, b"Client Key"));
        same_bytes(&stored_key, &self.stored_key)
    }

    pub fn parse(text: &str) -> Result<Self, SaslError> {
        let bad = |reason: &str| {
            SaslError::BadCredential(format!(
                "{reason} (expected {PREFIX}<iterations>:<salt>$<stored key>:<server key>)"
            ))
        };
        let rest = text
            .trim()
            .strip_prefix(PREFIX)
            .ok_or_else(|| bad("does not start with SCRAM-SHA-256$"))?;
        let (params, keys) = rest.split_once('$').ok_or_else(|| bad("has no '$' before the keys"))?;
        let (iterations, salt) = params
            .split_once(':')
            .ok_or_else(|| bad("has no ':' after the iteration count"))?;
        let (stored_key, server_key) = keys.split_once(':').ok_or_else(|| bad("has no ':' between the keys"))?;
        let iterations: u32 = iterations.parse().map_err(|_| bad("iteration count is not a number"))?;
        check_iterations(iterations)?;
        let salt = BASE64.decode(salt).map_err(|_| bad("salt is not base64"))?;
        if salt.is_empty() {
            return Err(bad("salt is empty"));
        }
        let key = |text: &str, name: &str| -> Result<[u8; KEY_BYTES], SaslError> {
            let bytes = BASE64.decode(text).map_err(|_| bad(&format!("{name} is not base64")))?;
            bytes.try_into().map_err(|_| bad(&format!("{name} is not 32 bytes")))
        };
        Ok(Self {
            iterations,
            salt,
            stored_key: key(stored_key, "stored key")?,
            server_key: key(server_key, "server key")?,
        })
    }
}

impl std::fmt::Display for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{PREFIX}{}:{}${}:{}",
            self.iterations,
            BASE64.encode(&self.salt),
            BASE64.encode(self.stored_key),
            BASE64.encode(self.server_key)
        )
    }
}

pub(crate) fn check_iterations(iterations: u32) -> Result<(), SaslError> {
    if !(ITERATIONS_MIN..=ITERATIONS_MAX).contains(&iterations) {
        return Err(SaslError::BadCredential(format!(
            "iteration count {iterations} is outside {ITERATIONS_MIN}..={ITERATIONS_MAX}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_checks_passwords() {
        let credential = Credential::from_password("pencil", ITERATIONS_MIN).unwrap();
        let parsed = Credential::parse(&credential.to_string()).unwrap();
        assert_eq!(parsed, credential);
        assert!(parsed.verify_password(b"pencil"));
        assert!(!parsed.verify_password(b"pencil "));
        assert!(!format!("{parsed:?}").contains(&BASE64.encode(parsed.stored_key)));
    }

    #[test]
    fn rfc7677_test_vector() {
        // RFC 7677 section 3: user "user", password "pencil", 4096 iterations.
        let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let credential = Credential::derive(b"pencil", salt, 4096).unwrap();
        let salted = salted_password(b"pencil", &credential.salt, 4096);
        let client_key = hmac_sha256(&salted, b"Client Key");
        let auth_message = "n=user,r=rOprNGfwEbeRWgbNEkqO,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let signature = hmac_sha256(&credential.stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(signature).map(|(k, s)| k ^ s).collect();
        assert_eq!(BASE64.encode(proof), "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
        let server_signature = hmac_sha256(&credential.server_key, auth_message.as_bytes());
        assert_eq!(
            BASE64.encode(server_signature),
            "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
    }

    #[test]
    fn bad_credentials_say_what_is_wrong() {
        for (text, expected) in [
            ("md5$abc", "does not start"),
            ("SCRAM-SHA-256$12:AAAA$AAAA:AAAA", "outside"),
            ("SCRAM-SHA-256$4096:!!$AAAA:AAAA", "salt is not base64"),
            ("SCRAM-SHA-256$4096:AAAA$AAAA:AAAA", "not 32 bytes"),
            ("SCRAM-SHA-256$4096:AAAA", "no '$'"),
        ] {
            let error = Credential::parse(text).unwrap_err().to_string();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }
}
