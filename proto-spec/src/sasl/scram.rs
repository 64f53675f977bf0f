//! The SCRAM-SHA-256 exchange (RFC 5802 with RFC 7677's hash), as Kafka runs
//! it inside SaslAuthenticate: client-first, server-first, client-final,
//! server-final. Both ends prove they know the credential; neither sends it.
//!
//! ```text
//! client-first  n,[a=authzid],n=<user>,r=<client nonce>[,ext...]
//! server-first  r=<client nonce><server nonce>,s=<base64 salt>,i=<iterations>
//! client-final  c=<base64 gs2 header>,r=<nonce>,p=<base64 ClientProof>
//! server-final  v=<base64 ServerSignature>      (or e=<error>)
//! ```
//!
//! The client-final nonce is accepted when it ends with the server's nonce,
//! as Kafka's broker does, because librdkafka repeats its own nonce in front.
//! Channel binding (`p=`) is not offered (`y`/`n` only), as in Kafka. An
//! unknown user gets a believable server-first (a salt derived from the name
//! with a per-process secret) and fails only at the proof, like a wrong
//! password, so the exchange does not tell who exists.

use super::credential::{check_iterations, hmac_sha256, random_bytes, salted_password, sha256, Credential};
use super::{same_bytes, SaslError, SCRAM_SHA_256};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;

/// Bytes of one client message; larger is refused before parsing.
pub const MESSAGE_BYTES_MAX: usize = 4096;
const NONCE_BYTES: usize = 24;

fn malformed(reason: impl Into<String>) -> SaslError {
    SaslError::Malformed {
        mechanism: SCRAM_SHA_256,
        reason: reason.into(),
    }
}

fn failed() -> SaslError {
    SaslError::BadCredentials {
        mechanism: SCRAM_SHA_256,
    }
}

fn nonce() -> String {
    let mut bytes = [0u8; NONCE_BYTES];
    random_bytes(&mut bytes);
    BASE64.encode(bytes)
}

/// `saslname`: ',' and '=' escaped as `=2C` and `=3D`.
fn escape_name(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

fn unescape_name(name: &str) -> Result<String, SaslError> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(at) = rest.find('=') {
        out.push_str(&rest[..at]);
        match rest.get(at..at + 3) {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err(malformed("user name has an '=' that is not =2C or =3D")),
        }
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

fn text(message: &[u8]) -> Result<&str, SaslError> {
    if message.len() > MESSAGE_BYTES_MAX {
        return Err(malformed(format!("longer than {MESSAGE_BYTES_MAX} bytes")));
    }
    std::str::from_utf8(message).map_err(|_| malformed("not UTF-8"))
}

fn xor(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (o, (x, y)) in out.iter_mut().zip(a.iter().zip(b)) {
        *o = x ^ y;
    }
    out
}

/// One exchange, server side.
pub struct ScramServer {
    state: ServerState,
    /// Per-process secret for unknown users' stand-in salts.
    secret: [u8; 32],
}

enum ServerState {
    AwaitClientFirst,
    AwaitClientFinal {
        user: String,
        gs2_header: String,
        nonce: String,
        /// client-first-bare "," server-first
        auth_prefix: String,
        /// None for an unknown user: the proof can never match.
        credential: Option<Credential>,
    },
    Done,
}

/// What the server sends back after a client message.
#[derive(Debug, PartialEq, Eq)]
pub enum ServerStep {
    /// Send these bytes and wait for the client's next message.
    Continue(Vec<u8>),
    /// The client proved it knows `user`'s credential; send these bytes.
    Authenticated { user: String, response: Vec<u8> },
}

impl ScramServer {
    /// `secret` keeps unknown users' salts stable across exchanges (one per broker).
    pub fn new(secret: [u8; 32]) -> Self {
        Self {
            state: ServerState::AwaitClientFirst,
            secret,
        }
    }

    /// A fresh per-process secret for [`ScramServer::new`].
    pub fn new_secret() -> [u8; 32] {
        let mut secret = [0u8; 32];
        random_bytes(&mut secret);
        secret
    }

    /// Takes the client's next message; `lookup` finds a user's credential.
    pub fn step(
        &mut self,
        message: &[u8],
        lookup: impl FnOnce(&str) -> Option<Credential>,
    ) -> Result<ServerStep, SaslError> {
        match std::mem::replace(&mut self.state, ServerState::Done) {
            ServerState::AwaitClientFirst => self.client_first(text(message)?, lookup),
            ServerState::AwaitClientFinal {
                user,
                gs2_header,
                nonce,
                auth_prefix,
                credential,
            } => client_final(text(message)?, user, &gs2_header, &nonce, &auth_prefix, credential),
            ServerState::Done => Err(SaslError::OutOfOrder {
                mechanism: SCRAM_SHA_256,
            }),
        }
    }

    fn client_first(
        &mut self,
        message: &str,
        lookup: impl FnOnce(&str) -> Option<Credential>,
    ) -> Result<ServerStep, SaslError> {
        let first = parse_client_first(message)?;
        let credential = lookup(&first.user);
        let (salt, iterations) = match &credential {
            Some(credential) => (credential.salt.clone(), credential.iterations),
            None => (
                hmac_sha256(&self.secret, first.user.as_bytes())[..16].to_vec(),
                super::credential::ITERATIONS_DEFAULT,
            ),
        };
        let nonce = format!("{}{}", first.client_nonce, nonce());
        let server_first = format!("r={nonce},s={},i={iterations}", BASE64.encode(salt));
        self.state = ServerState::AwaitClientFinal {
            user: first.user,
            gs2_header: first.gs2_header,
            nonce,
            auth_prefix: format!("{},{server_first}", first.bare),
            credential,
        };
        Ok(ServerStep::Continue(server_first.into_bytes()))
    }
}

/// A client-first message, parsed and checked.
struct ClientFirst<'a> {
    /// `<cbind>,<authzid>,`, repeated (base64) in client-final.
    gs2_header: String,
    /// The message after the GS2 header, signed by both sides.
    bare: &'a str,
    user: String,
    client_nonce: &'a str,
}

/// Parses `n,[a=authzid],n=<user>,r=<nonce>[,ext...]`, refusing what Relay
/// does not offer (channel binding, mandatory extensions, acting as another
/// user, delegation tokens).
fn parse_client_first(message: &str) -> Result<ClientFirst<'_>, SaslError> {
    let (cbind, rest) = message.split_once(',').ok_or_else(|| malformed("no GS2 header"))?;
    check_channel_binding(cbind)?;
    let (authzid, bare) = rest
        .split_once(',')
        .ok_or_else(|| malformed("GS2 header has no second ','"))?;
    let mut fields = bare.split(',');
    let user = parse_user(fields.next())?;
    check_authzid(authzid, &user)?;
    let client_nonce = parse_client_nonce(fields.next())?;
    refuse_extensions(fields)?;
    Ok(ClientFirst {
        gs2_header: format!("{cbind},{authzid},"),
        bare,
        user,
        client_nonce,
    })
}

/// The GS2 channel-binding flag: `n` or `y`; `p=` (binding) is not offered.
fn check_channel_binding(cbind: &str) -> Result<(), SaslError> {
    match cbind {
        "n" | "y" => Ok(()),
        flag if flag.starts_with("p=") => Err(SaslError::Unsupported {
            mechanism: SCRAM_SHA_256,
            feature: "channel binding".into(),
        }),
        _ => Err(malformed("GS2 header must start with n, y or p=")),
    }
}

/// The user of the first field of the bare message (`n=<saslname>`), unescaped.
fn parse_user(field: Option<&str>) -> Result<String, SaslError> {
    let user = match field {
        Some(field) if field.starts_with("m=") => {
            return Err(SaslError::Unsupported {
                mechanism: SCRAM_SHA_256,
                feature: "mandatory extension".into(),
            })
        }
        Some(field) => field.strip_prefix("n=").ok_or_else(|| malformed("expected n=<user>"))?,
        None => return Err(malformed("empty client-first message")),
    };
    let user = unescape_name(user)?;
    if user.is_empty() {
        return Err(malformed("empty user name"));
    }
    Ok(user)
}

/// An authzid is accepted only when empty or naming `user` itself.
fn check_authzid(authzid: &str, user: &str) -> Result<(), SaslError> {
    if let Some(authzid) = authzid.strip_prefix("a=") {
        if unescape_name(authzid)? != user {
            return Err(SaslError::Unsupported {
                mechanism: SCRAM_SHA_256,
                feature: "acting as another user (authzid)".into(),
            });
        }
    } else if !authzid.is_empty() {
        return Err(malformed("authzid must be a=<name>"));
    }
    Ok(())
}

/// The client nonce (`r=<printable ASCII without ','>`).
fn parse_client_nonce(field: Option<&str>) -> Result<&str, SaslError> {
    let client_nonce = field
        .and_then(|f| f.strip_prefix("r="))
        .ok_or_else(|| malformed("expected r=<nonce> after the user"))?;
    if client_nonce.is_empty() || !client_nonce.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b',') {
        return Err(malformed("the nonce must be printable ASCII without ','"));
    }
    Ok(client_nonce)
}

/// Optional extensions are ignored, except the ones Relay cannot honour.
fn refuse_extensions<'a>(extensions: impl Iterator<Item = &'a str>) -> Result<(), SaslError> {
    for extension in extensions {
        // Kafka's delegation tokens ride here as tokenauth=true.
        if extension.starts_with("tokenauth=") {
            return Err(SaslError::Unsupported {
                mechanism: SCRAM_SHA_256,
                feature: "delegation tokens".into(),
            });
        }
    }
    Ok(())
}

fn client_final(
    message: &str,
    user: String,
    gs2_header: &str,
    nonce: &str,
    auth_prefix: &str,
    credential: Option<Credential>,
) -> Result<ServerStep, SaslError> {
    let (without_proof, proof) = message
        .rsplit_once(",p=")
        .ok_or_else(|| malformed("client-final has no p=<proof>"))?;
    let mut fields = without_proof.split(',');
    let binding = fields
        .next()
        .and_then(|f| f.strip_prefix("c="))
        .ok_or_else(|| malformed("client-final must start with c=<binding>"))?;
    if BASE64.decode(binding).ok().as_deref() != Some(gs2_header.as_bytes()) {
        return Err(malformed("channel binding does not repeat the GS2 header"));
    }
    let echoed = fields
        .next()
        .and_then(|f| f.strip_prefix("r="))
        .ok_or_else(|| malformed("expected r=<nonce> after c="))?;
    // Kafka's rule: the echoed nonce must end with the server-first nonce.
    // librdkafka sends the client nonce followed by the whole server-first
    // nonce (which itself starts with the client nonce); the AuthMessage
    // both sides sign uses the message as sent, so this stays sound.
    if !echoed.ends_with(nonce) {
        return Err(malformed("nonce does not match the server's"));
    }
    let proof = BASE64.decode(proof).map_err(|_| malformed("proof is not base64"))?;
    let proof: [u8; 32] = proof.try_into().map_err(|_| malformed("proof is not 32 bytes"))?;
    let credential = credential.ok_or_else(failed)?;
    let auth_message = format!("{auth_prefix},{without_proof}");
    let client_signature = hmac_sha256(&credential.stored_key, auth_message.as_bytes());
    let client_key = xor(&proof, &client_signature);
    if !same_bytes(&sha256(&client_key), &credential.stored_key) {
        return Err(failed());
    }
    let server_signature = hmac_sha256(&credential.server_key, auth_message.as_bytes());
    Ok(ServerStep::Authenticated {
        user,
        response: format!("v={}", BASE64.encode(server_signature)).into_bytes(),
    })
}

/// One exchange, client side.
pub struct ScramClient {
    user: String,
    password: String,
    client_first_bare: String,
    client_nonce: String,
    expected_server_signature: Option<[u8; 32]>,
}

impl ScramClient {
    pub fn new(user: &str, password: &str) -> Self {
        Self::with_nonce(user, password, nonce())
    }

    fn with_nonce(user: &str, password: &str, client_nonce: String) -> Self {
        Self {
            user: user.to_owned(),
            password: password.to_owned(),
            client_first_bare: format!("n={},r={client_nonce}", escape_name(user)),
            client_nonce,
            expected_server_signature: None,
        }
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    pub fn client_first(&self) -> Vec<u8> {
        format!("n,,{}", self.client_first_bare).into_bytes()
    }

    /// Answers the server-first message with the proof.
    pub fn client_final(&mut self, server_first: &[u8]) -> Result<Vec<u8>, SaslError> {
        let server_first = text(server_first)?;
        let mut fields = server_first.split(',');
        let nonce = fields
            .next()
            .and_then(|f| f.strip_prefix("r="))
            .ok_or_else(|| malformed("server-first must start with r=<nonce>"))?;
        if !nonce.starts_with(&self.client_nonce) || nonce.len() == self.client_nonce.len() {
            return Err(malformed("the server's nonce does not extend ours"));
        }
        let salt = fields
            .next()
            .and_then(|f| f.strip_prefix("s="))
            .and_then(|s| BASE64.decode(s).ok())
            .ok_or_else(|| malformed("expected s=<base64 salt>"))?;
        let iterations: u32 = fields
            .next()
            .and_then(|f| f.strip_prefix("i="))
            .and_then(|i| i.parse().ok())
            .ok_or_else(|| malformed("expected i=<iterations>"))?;
        check_iterations(iterations)?;
        let salted = salted_password(self.password.as_bytes(), &salt, iterations);
        let client_key = hmac_sha256(&salted, b"Client Key");
        let stored_key = sha256(&client_key);
        let server_key = hmac_sha256(&salted, b"Server Key");
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let proof = xor(&client_key, &hmac_sha256(&stored_key, auth_message.as_bytes()));
        self.expected_server_signature = Some(hmac_sha256(&server_key, auth_message.as_bytes()));
        Ok(format!("{without_proof},p={}", BASE64.encode(proof)).into_bytes())
    }

    /// Checks the server-final message: the server, too, knew the credential.
    pub fn verify_server_final(&self, server_final: &[u8]) -> Result<(), SaslError> {
        let server_final = text(server_final)?;
        if let Some(error) = server_final.strip_prefix("e=") {
            return Err(malformed(format!("server says {error}")));
        }
        let expected = self.expected_server_signature.ok_or(SaslError::OutOfOrder {
            mechanism: SCRAM_SHA_256,
        })?;
        let signature = server_final
            .strip_prefix("v=")
            .and_then(|v| BASE64.decode(v).ok())
            .ok_or_else(|| malformed("server-final must be v=<base64 signature>"))?;
        if !same_bytes(&signature, &expected) {
            return Err(SaslError::ServerNotVerified {
                mechanism: SCRAM_SHA_256,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sasl::credential::ITERATIONS_MIN;

    fn exchange(stored_for: &str, password: &str, user: &str) -> Result<String, SaslError> {
        let credential = Credential::from_password(stored_for, ITERATIONS_MIN).unwrap();
        let mut server = ScramServer::new(ScramServer::new_secret());
        let mut client = ScramClient::new(user, password);
        let lookup = |name: &str| (name == "al,i=ce").then(|| credential.clone());
        let ServerStep::Continue(server_first) = server.step(&client.client_first(), lookup)? else {
            panic!("first step authenticated");
        };
        let client_final = client.client_final(&server_first)?;
        match server.step(&client_final, |_| None)? {
            ServerStep::Authenticated { user, response } => {
                client.verify_server_final(&response)?;
                Ok(user)
            }
            ServerStep::Continue(_) => panic!("no third step"),
        }
    }

    #[test]
    fn right_password_authenticates_both_ways() {
        assert_eq!(exchange("pencil", "pencil", "al,i=ce").unwrap(), "al,i=ce");
    }

    #[test]
    fn wrong_password_and_unknown_user_fail_alike() {
        let wrong = exchange("pencil", "crayon", "al,i=ce").unwrap_err();
        let unknown = exchange("pencil", "pencil", "bob").unwrap_err();
        assert_eq!(wrong, unknown);
        assert!(matches!(wrong, SaslError::BadCredentials { .. }));
    }

    #[test]
    fn rfc7677_exchange_from_the_server_side() {
        let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let credential = Credential::derive(b"pencil", salt, 4096).unwrap();
        let mut client = ScramClient::with_nonce("user", "pencil", "rOprNGfwEbeRWgbNEkqO".into());
        assert_eq!(client.client_first(), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let server_first = b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let client_final = client.client_final(server_first).unwrap();
        assert_eq!(
            client_final,
            b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        client
            .verify_server_final(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap();
        assert!(client.verify_server_final(b"v=AAAA").is_err());
        let _ = credential;
    }

    #[test]
    fn tampering_is_refused() {
        let credential = Credential::from_password("pencil", ITERATIONS_MIN).unwrap();
        let lookup = |_: &str| Some(credential.clone());
        let start = || {
            let mut server = ScramServer::new([7; 32]);
            let mut client = ScramClient::new("alice", "pencil");
            let ServerStep::Continue(first) = server.step(&client.client_first(), lookup).unwrap() else {
                unreachable!()
            };
            let last = String::from_utf8(client.client_final(&first).unwrap()).unwrap();
            (server, last)
        };
        let (mut server, last) = start();
        let other_nonce = last.replacen(",p=", "x,p=", 1);
        assert!(matches!(
            server.step(other_nonce.as_bytes(), |_| None),
            Err(SaslError::Malformed { .. })
        ));
        // librdkafka's form (its nonce again in front) is proven like any other.
        let (mut server, last) = start();
        let doubled = last.replacen(",r=", ",r=abc", 1);
        assert!(matches!(
            server.step(doubled.as_bytes(), |_| None),
            Err(SaslError::BadCredentials { .. })
        ));
        let (mut server, last) = start();
        assert!(server
            .step(last.replacen("c=biws", "c=eSws", 1).as_bytes(), |_| None)
            .is_err());
        let (mut server, last) = start();
        assert!(server.step(last.as_bytes(), |_| None).is_ok());
        assert!(matches!(
            server.step(last.as_bytes(), |_| None),
            Err(SaslError::OutOfOrder { .. })
        ));
        for bad in [
            &b"p=tls-unique,,n=a,r=x"[..],
            b"n,,n=a",
            b"x,,n=a,r=b",
            b"n,,n=a=,r=b",
            b"n,,n=a,r=b,tokenauth=true",
            b"\xff",
        ] {
            assert!(ScramServer::new([0; 32]).step(bad, |_| None).is_err(), "{bad:?}");
        }
    }
}
