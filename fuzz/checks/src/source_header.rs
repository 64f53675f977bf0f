//! The sender's compact source headers as any reader meets them
//! (`proto-spec/SOURCE_HEADERS.md`): the bytes as a `relay_source` value, as
//! an `rp` value, through `LineSource::read`, and as a fetched record set
//! walked by a consumer that inherits sticky `relay_source` headers.
//! Invariants: nothing panics; whatever decodes encodes to bytes that decode
//! to the same fields, never longer than the input.

use bytes::Bytes;
use relay_proto::source_headers::{
    decode_position, decode_source, encode_source, put_position, LineSource, HEADER_LINE_POSITION, HEADER_SOURCE,
    STICKY_HEADER_KEYS,
};

pub fn source_header(data: &[u8]) {
    if let Ok(source) = decode_source(data) {
        let encoded = encode_source(&source);
        assert!(
            encoded.len() <= data.len(),
            "{} bytes re-encode to {}",
            data.len(),
            encoded.len()
        );
        assert_eq!(decode_source(&encoded), Ok(source));
    }
    if let Ok(position) = decode_position(data) {
        let mut encoded = Vec::new();
        put_position(&mut encoded, position);
        assert!(encoded.len() <= data.len());
        assert_eq!(decode_position(&encoded), Ok(position));
    }
    let header = |name: &str| (name == HEADER_SOURCE || name == HEADER_LINE_POSITION).then_some(data);
    if let Ok(Some(source)) = LineSource::read(header) {
        let _ = source.identity();
        let _ = source.position_number();
    }
    let sticky: Vec<Bytes> = STICKY_HEADER_KEYS
        .iter()
        .map(|key| Bytes::from_static(key.as_bytes()))
        .collect();
    let _ = relay_client::records::decode("events", 0, &Bytes::copy_from_slice(data), 0, &sticky);
}
