//! One connection to one broker. Requests are written in call order and may
//! be pipelined; a reader task matches responses to requests by correlation
//! id. Each request picks the highest version both this client and the broker
//! speak (from ApiVersions at connect). A connection that fails is dead for
//! good: every waiting request gets `Disconnected`, and the cluster layer
//! opens a new one.
//!
//! The transport is TCP or TLS, and on a SASL listener the connection logs
//! in (SaslHandshake, then SaslAuthenticate rounds) before it is handed out,
//! as [`crate::security::Security`] says.
//!
//! Frame layout: `proto-spec/PROTOCOL.md` (4-byte length, header, body).

use crate::error::{ClientError, Result};
use crate::security::{Mechanism, SaslLogin, Security, Tls};
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader};
use kafka_protocol::messages::{
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use parking_lot::Mutex;
use relay_proto::sasl::scram::ScramClient;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// The halves of a TCP stream (`into_split`, no lock between them) or of a
/// TLS stream, behind one type each.
type Reader = Box<dyn AsyncRead + Send + Unpin>;
type Writer = Box<dyn AsyncWrite + Send + Unpin>;
use tokio::sync::oneshot;

/// Largest response accepted: a fetch of 50 MiB plus headroom; anything larger
/// means the stream is not Kafka.
pub const RESPONSE_BYTES_MAX: usize = 256 * 1024 * 1024;

/// (lowest, highest) version this client builds for each API it uses. The
/// lowest is the oldest with every field the client relies on; the highest
/// stops before topic ids replace names (Fetch 13, Produce 13).
pub const CLIENT_VERSIONS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 9),
    (ApiKey::Fetch, 4, 12),
    (ApiKey::ListOffsets, 1, 7),
    (ApiKey::Metadata, 1, 12),
    (ApiKey::OffsetCommit, 2, 8),
    (ApiKey::OffsetFetch, 1, 7),
    (ApiKey::FindCoordinator, 1, 3),
    (ApiKey::JoinGroup, 1, 7),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 4),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::ListGroups, 0, 4),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 5),
    (ApiKey::InitProducerId, 0, 4),
    (ApiKey::DescribeLogDirs, 1, 4),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::SaslHandshake, 1, 1),
    (ApiKey::SaslAuthenticate, 0, 2),
];

type Pending = Arc<Mutex<HashMap<i32, oneshot::Sender<Result<Bytes>>>>>;

pub struct Connection {
    address: String,
    client_id: StrBytes,
    writer: tokio::sync::Mutex<Writer>,
    pending: Pending,
    next_correlation_id: AtomicI32,
    dead: Arc<AtomicBool>,
    versions: HashMap<i16, (i16, i16)>,
    timeout: Duration,
}

/// A request that was written and whose response has not arrived yet.
pub struct InFlight<Res> {
    receiver: oneshot::Receiver<Result<Bytes>>,
    address: String,
    api: ApiKey,
    version: i16,
    timeout: Duration,
    _response: std::marker::PhantomData<Res>,
}

impl<Res: Decodable> InFlight<Res> {
    pub async fn response(self) -> Result<Res> {
        let frame = match tokio::time::timeout(self.timeout, self.receiver).await {
            Err(_) => {
                return Err(ClientError::Timeout {
                    address: self.address,
                    api: api_name(self.api),
                    timeout_ms: self.timeout.as_millis() as u64,
                })
            }
            Ok(Err(_)) => {
                return Err(ClientError::Disconnected {
                    address: self.address,
                    reason: "connection closed".into(),
                })
            }
            Ok(Ok(frame)) => frame?,
        };
        let mut body = frame;
        let protocol = |reason: String| ClientError::Protocol {
            address: self.address.clone(),
            reason,
        };
        ResponseHeader::decode(&mut body, self.api.response_header_version(self.version))
            .map_err(|e| protocol(format!("{:?} response header: {e:#}", self.api)))?;
        Res::decode(&mut body, self.version)
            .map_err(|e| protocol(format!("{:?} v{} response: {e:#}", self.api, self.version)))
    }
}

pub fn api_name(api: ApiKey) -> &'static str {
    match api {
        ApiKey::Produce => "Produce",
        ApiKey::Fetch => "Fetch",
        ApiKey::ListOffsets => "ListOffsets",
        ApiKey::Metadata => "Metadata",
        ApiKey::OffsetCommit => "OffsetCommit",
        ApiKey::OffsetFetch => "OffsetFetch",
        ApiKey::FindCoordinator => "FindCoordinator",
        ApiKey::JoinGroup => "JoinGroup",
        ApiKey::Heartbeat => "Heartbeat",
        ApiKey::LeaveGroup => "LeaveGroup",
        ApiKey::SyncGroup => "SyncGroup",
        ApiKey::DescribeGroups => "DescribeGroups",
        ApiKey::ListGroups => "ListGroups",
        ApiKey::ApiVersions => "ApiVersions",
        ApiKey::CreateTopics => "CreateTopics",
        ApiKey::DeleteTopics => "DeleteTopics",
        ApiKey::InitProducerId => "InitProducerId",
        ApiKey::DescribeLogDirs => "DescribeLogDirs",
        ApiKey::DeleteGroups => "DeleteGroups",
        ApiKey::SaslHandshake => "SaslHandshake",
        ApiKey::SaslAuthenticate => "SaslAuthenticate",
        _ => "request",
    }
}

async fn read_responses(mut reader: Reader, pending: Pending, dead: Arc<AtomicBool>, address: String) {
    // Responses are read into one buffer and split off it: once the records
    // of earlier responses are dropped, `reserve` takes their memory back
    // instead of faulting in fresh pages for every large fetch.
    let mut buffer = BytesMut::new();
    let reason = loop {
        let mut prefix = [0u8; 4];
        if let Err(error) = reader.read_exact(&mut prefix).await {
            break format!("reading: {error}");
        }
        let length = i32::from_be_bytes(prefix);
        if prefix[0] == 0x15 && prefix[1] == 0x03 {
            // A TLS alert record: the listener speaks TLS and we do not.
            break "the broker answered with TLS; use security protocol SSL or SASL_SSL".to_owned();
        }
        if length < 4 || length as usize > RESPONSE_BYTES_MAX {
            break format!("response length {length} is not plausible");
        }
        let length = length as usize;
        buffer.reserve(length);
        let mut frame = (&mut reader).take(length as u64);
        let mut failed = None;
        while buffer.len() < length {
            match frame.read_buf(&mut buffer).await {
                Ok(0) => failed = Some("reading: the connection closed mid-response".to_owned()),
                Ok(_) => continue,
                Err(error) => failed = Some(format!("reading: {error}")),
            }
            break;
        }
        if let Some(reason) = failed {
            break reason;
        }
        let body = buffer.split_to(length);
        let correlation_id = i32::from_be_bytes([body[0], body[1], body[2], body[3]]);
        match pending.lock().remove(&correlation_id) {
            Some(waiter) => {
                let _ = waiter.send(Ok(body.freeze()));
            }
            None => break format!("response with unknown correlation id {correlation_id}"),
        }
    };
    // Dead and drained under the lock a new request registers under: a
    // request is either drained here or refused as dead, never left to
    // wait out its whole timeout on a connection nobody reads.
    let mut pending = pending.lock();
    dead.store(true, Ordering::Release);
    for (_, waiter) in pending.drain() {
        let _ = waiter.send(Err(ClientError::Disconnected {
            address: address.clone(),
            reason: reason.clone(),
        }));
    }
}

/// Opens the TCP connection to `address` within `timeout`, without delay
/// on small writes.
async fn dial(address: &str, timeout: Duration) -> Result<TcpStream> {
    let connect_error = |source| ClientError::Connect {
        address: address.to_owned(),
        source,
    };
    let stream = match tokio::time::timeout(timeout, TcpStream::connect(address)).await {
        Err(_) => {
            return Err(connect_error(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "connect timed out",
            )))
        }
        Ok(result) => result.map_err(connect_error)?,
    };
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// Runs the TLS handshake over `stream` within `timeout`, checking the
/// certificate against the host part of `address`.
async fn tls_handshake(address: &str, timeout: Duration, tls: &Tls, stream: TcpStream) -> Result<(Reader, Writer)> {
    let host = address.rsplit_once(':').map_or(address, |(host, _)| host);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let name = rustls::pki_types::ServerName::try_from(host.to_owned()).map_err(|e| ClientError::Tls {
        address: address.to_owned(),
        reason: format!("{host:?} is not a host name or IP address: {e}"),
    })?;
    let tls_error = |reason: String| ClientError::Tls {
        address: address.to_owned(),
        reason,
    };
    match tokio::time::timeout(timeout, tls.connector.connect(name, stream)).await {
        Err(_) => Err(tls_error("handshake timed out".into())),
        Ok(Err(error)) => Err(tls_error(format!(
            "{error} (CA file {}; is the listener TLS, and does its certificate name {host}?)",
            tls.ca_path.display()
        ))),
        Ok(Ok(stream)) => {
            let (reader, writer) = tokio::io::split(stream);
            Ok((Box::new(reader), Box::new(writer)))
        }
    }
}

impl Connection {
    /// Connects (TLS when `security` says), learns the broker's API
    /// versions, and logs in when `security` has a SASL login.
    pub async fn connect(address: &str, client_id: &str, timeout: Duration, security: &Security) -> Result<Arc<Self>> {
        let stream = dial(address, timeout).await?;
        let (reader, writer): (Reader, Writer) = match &security.tls {
            None => {
                let (reader, writer) = stream.into_split();
                (Box::new(reader), Box::new(writer))
            }
            Some(tls) => tls_handshake(address, timeout, tls, stream).await?,
        };
        let mut connection = Self::start_reading(address, client_id, timeout, reader, writer);
        connection.versions = connection.learn_versions().await?;
        if let Some(login) = &security.sasl {
            connection.authenticate(login).await?;
        }
        Ok(Arc::new(connection))
    }

    /// A connection over `reader` and `writer` whose responses a spawned
    /// task reads; it knows no API versions yet.
    fn start_reading(address: &str, client_id: &str, timeout: Duration, reader: Reader, writer: Writer) -> Self {
        let pending: Pending = Arc::default();
        let dead = Arc::new(AtomicBool::new(false));
        tokio::spawn(read_responses(
            reader,
            Arc::clone(&pending),
            Arc::clone(&dead),
            address.to_owned(),
        ));
        Self {
            address: address.to_owned(),
            client_id: StrBytes::from_string(client_id.to_owned()),
            writer: tokio::sync::Mutex::new(writer),
            pending,
            next_correlation_id: AtomicI32::new(1),
            dead,
            versions: HashMap::new(),
            timeout,
        }
    }

    /// The (lowest, highest) version of each API the broker speaks, from
    /// ApiVersions v3, or v0 when the broker refuses v3.
    async fn learn_versions(&self) -> Result<HashMap<i16, (i16, i16)>> {
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("relay"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let mut response: ApiVersionsResponse = self.start(ApiKey::ApiVersions, 3, &request).await?.response().await?;
        if response.error_code != 0 {
            response = self
                .start(ApiKey::ApiVersions, 0, &ApiVersionsRequest::default())
                .await?
                .response()
                .await?;
        }
        Ok(response
            .api_keys
            .iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect())
    }

    /// SaslHandshake v1 then the mechanism's SaslAuthenticate rounds; for
    /// SCRAM the broker's final signature is checked too.
    async fn authenticate(&self, login: &SaslLogin) -> Result<()> {
        let failed = |reason: String| ClientError::Authentication {
            address: self.address.clone(),
            reason,
        };
        let mechanism = login.mechanism.name();
        let handshake: SaslHandshakeResponse = self
            .send(
                ApiKey::SaslHandshake,
                &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(mechanism)),
            )
            .await?;
        if handshake.error_code != 0 {
            let offered: Vec<&str> = handshake.mechanisms.iter().map(|m| m.as_str()).collect();
            return Err(failed(if offered.is_empty() {
                "the listener does not use SASL (try security protocol PLAINTEXT or SSL)".to_owned()
            } else {
                format!(
                    "the broker does not offer {mechanism}; it offers {}",
                    offered.join(", ")
                )
            }));
        }
        match login.mechanism {
            Mechanism::Plain => {
                self.sasl_round(&relay_proto::sasl::plain::message(&login.user, &login.password))
                    .await?;
            }
            Mechanism::ScramSha256 => {
                let mut scram = ScramClient::new(&login.user, &login.password);
                let server_first = self.sasl_round(&scram.client_first()).await?;
                let client_final = scram.client_final(&server_first).map_err(|e| failed(e.to_string()))?;
                let server_final = self.sasl_round(&client_final).await?;
                scram
                    .verify_server_final(&server_final)
                    .map_err(|e| failed(e.to_string()))?;
            }
        }
        tracing::debug!(address = %self.address, user = %login.user, mechanism, "authenticated");
        Ok(())
    }

    async fn sasl_round(&self, message: &[u8]) -> Result<Bytes> {
        let request = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::copy_from_slice(message));
        let response: SaslAuthenticateResponse = self.send(ApiKey::SaslAuthenticate, &request).await?;
        if response.error_code != 0 {
            let message = response.error_message.as_ref().map(|m| m.as_str().to_owned());
            return Err(ClientError::Authentication {
                address: self.address.clone(),
                reason: message.unwrap_or_else(|| format!("Kafka error code {}", response.error_code)),
            });
        }
        Ok(response.auth_bytes)
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    pub fn is_dead(&self) -> bool {
        self.dead.load(Ordering::Acquire)
    }

    /// The version to use for `api`: the highest both sides speak.
    pub fn version(&self, api: ApiKey) -> Result<i16> {
        let (_, ours_min, ours_max) = *CLIENT_VERSIONS.iter().find(|(k, ..)| *k == api).expect("API listed");
        let unsupported = || ClientError::UnsupportedVersion {
            address: self.address.clone(),
            api: api_name(api),
            ours: format!("v{ours_min}-v{ours_max}"),
        };
        let (theirs_min, theirs_max) = *self.versions.get(&(api as i16)).ok_or_else(unsupported)?;
        let version = ours_max.min(theirs_max);
        if version < ours_min.max(theirs_min) {
            return Err(unsupported());
        }
        Ok(version)
    }

    /// Writes a request now; the returned handle awaits its response.
    pub async fn start<Req: Encodable, Res: Decodable>(
        &self,
        api: ApiKey,
        version: i16,
        request: &Req,
    ) -> Result<InFlight<Res>> {
        let (receiver, frame) = self.frame(api, version, request, true)?;
        self.write(frame).await?;
        Ok(InFlight {
            receiver: receiver.expect("a response is expected"),
            address: self.address.clone(),
            api,
            version,
            timeout: self.timeout,
            _response: std::marker::PhantomData,
        })
    }

    /// Sends a request with the negotiated version and waits for its response.
    pub async fn send<Req: Encodable, Res: Decodable>(&self, api: ApiKey, request: &Req) -> Result<Res> {
        let version = self.version(api)?;
        self.start(api, version, request).await?.response().await
    }

    /// Sends a request that gets no response (Produce with acks = 0).
    pub async fn send_without_response<Req: Encodable>(&self, api: ApiKey, version: i16, request: &Req) -> Result<()> {
        let (_, frame) = self.frame(api, version, request, false)?;
        self.write(frame).await
    }

    #[allow(clippy::type_complexity)]
    fn frame<Req: Encodable>(
        &self,
        api: ApiKey,
        version: i16,
        request: &Req,
        expect_response: bool,
    ) -> Result<(Option<oneshot::Receiver<Result<Bytes>>>, Bytes)> {
        if self.is_dead() {
            return Err(ClientError::Disconnected {
                address: self.address.clone(),
                reason: "connection closed".into(),
            });
        }
        let correlation_id = self.next_correlation_id.fetch_add(1, Ordering::Relaxed);
        let header = RequestHeader::default()
            .with_request_api_key(api as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(self.client_id.clone()));
        let mut buffer = BytesMut::with_capacity(128);
        buffer.put_i32(0);
        header
            .encode(&mut buffer, api.request_header_version(version))
            .and_then(|()| request.encode(&mut buffer, version))
            .map_err(|e| ClientError::Protocol {
                address: self.address.clone(),
                reason: format!("encoding {:?} v{version}: {e:#}", api),
            })?;
        let length = (buffer.len() - 4) as i32;
        buffer[..4].copy_from_slice(&length.to_be_bytes());
        let receiver = match expect_response {
            true => Some(self.register(correlation_id)?),
            false => None,
        };
        Ok((receiver, buffer.freeze()))
    }

    /// The waiter for a response, registered where the reading task will
    /// answer it — or an error when that task has already ended (see
    /// `read_responses`: it marks the connection dead under the same lock).
    fn register(&self, correlation_id: i32) -> Result<oneshot::Receiver<Result<Bytes>>> {
        let mut pending = self.pending.lock();
        if self.is_dead() {
            return Err(ClientError::Disconnected {
                address: self.address.clone(),
                reason: "connection closed".into(),
            });
        }
        let (sender, receiver) = oneshot::channel();
        pending.insert(correlation_id, sender);
        Ok(receiver)
    }

    async fn write(&self, frame: Bytes) -> Result<()> {
        let mut writer = self.writer.lock().await;
        // flush: TLS may hold the tail of a large request when the socket
        // was full (a no-op on plain TCP).
        let written = match writer.write_all(&frame).await {
            Ok(()) => writer.flush().await,
            Err(error) => Err(error),
        };
        if let Err(error) = written {
            self.dead.store(true, Ordering::Release);
            return Err(ClientError::Disconnected {
                address: self.address.clone(),
                reason: format!("writing: {error}"),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A broker stopping while a client connects accepts and closes at once
    /// (its last connections, or the listen queue when it exits). The
    /// client's first request must fail as disconnected right away, never
    /// wait out its whole timeout on a connection nobody reads any more.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_connection_closed_at_once_fails_its_first_request_without_waiting() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                drop(stream);
            }
        });
        let timeout = Duration::from_secs(5);
        for attempt in 0..200 {
            let started = std::time::Instant::now();
            let outcome = Connection::connect(&address, "test", timeout, &Security::plaintext()).await;
            assert!(
                matches!(outcome, Err(ClientError::Disconnected { .. })),
                "attempt {attempt}: {:?} after {:?}",
                outcome.err(),
                started.elapsed()
            );
        }
    }
}
