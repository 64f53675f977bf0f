//! A bare Kafka-protocol connection for tests that must send exact bytes:
//! retried batches, malformed frames, specific API versions.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

pub struct RawConnection {
    pub stream: TcpStream,
    correlation_id: i32,
}

impl RawConnection {
    pub fn connect(address: &str) -> Self {
        let stream = TcpStream::connect(address).expect("connect to broker");
        stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        stream.set_nodelay(true).unwrap();
        Self {
            stream,
            correlation_id: 0,
        }
    }

    /// Sends one request and reads its response.
    pub fn request<Req: Encodable, Res: Decodable>(&mut self, api: ApiKey, version: i16, request: &Req) -> Res {
        self.send(api, version, request);
        self.receive(api, version)
    }

    pub fn send<Req: Encodable>(&mut self, api: ApiKey, version: i16, request: &Req) {
        self.correlation_id += 1;
        let header = RequestHeader::default()
            .with_request_api_key(api as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("relay-tests")));
        let mut body = BytesMut::new();
        header.encode(&mut body, api.request_header_version(version)).unwrap();
        request.encode(&mut body, version).unwrap();
        let mut frame = BytesMut::with_capacity(body.len() + 4);
        frame.put_i32(body.len() as i32);
        frame.extend_from_slice(&body);
        self.stream.write_all(&frame).unwrap();
    }

    pub fn receive<Res: Decodable>(&mut self, api: ApiKey, version: i16) -> Res {
        let mut frame = self.read_frame().expect("a response frame");
        let header = ResponseHeader::decode(&mut frame, api.response_header_version(version)).unwrap();
        assert_eq!(
            header.correlation_id, self.correlation_id,
            "responses come in request order"
        );
        Res::decode(&mut frame, version).unwrap()
    }

    /// The next frame, or `None` when the broker closed the connection.
    pub fn read_frame(&mut self) -> Option<Bytes> {
        let mut prefix = [0u8; 4];
        if self.stream.read_exact(&mut prefix).is_err() {
            return None;
        }
        let mut body = vec![0u8; i32::from_be_bytes(prefix) as usize];
        self.stream.read_exact(&mut body).ok()?;
        Some(Bytes::from(body))
    }

    /// Whether the broker has closed this connection (reads end of stream).
    pub fn is_closed_by_broker(&mut self) -> bool {
        let mut byte = [0u8; 1];
        matches!(self.stream.read(&mut byte), Ok(0) | Err(_))
    }
}

/// Reads a big-endian i16 at the front of `bytes`.
pub fn peek_i16(bytes: &Bytes) -> i16 {
    bytes.clone().get_i16()
}
