//! Kafka framing: every request and response is a 4-byte big-endian length
//! followed by that many bytes. A length below the smallest request header or
//! above `request_bytes_max` is a protocol violation that closes the connection
//! before any of the body is read (so a 2 GiB prefix costs nothing).

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

/// Smallest request: api key (2) + api version (2) + correlation id (4) + client id length (2).
pub const REQUEST_BYTES_MIN: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame length {length} is outside {REQUEST_BYTES_MIN}..={max} bytes")]
    BadLength { length: i64, max: usize },
    #[error("connection closed in the middle of a {expected}-byte frame after {received} bytes")]
    Truncated { expected: usize, received: usize },
    #[error("reading: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads one frame; `Ok(None)` at a clean end of stream between frames.
pub async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    request_bytes_max: usize,
) -> Result<Option<Bytes>, FrameError> {
    match read_length(reader, request_bytes_max).await? {
        Some(length) => read_body(reader, length).await.map(Some),
        None => Ok(None),
    }
}

/// Reads and checks a frame's length prefix; `Ok(None)` at a clean end of
/// stream. The caller can then reserve memory before reading the body.
pub async fn read_length<R: AsyncRead + Unpin>(
    reader: &mut R,
    request_bytes_max: usize,
) -> Result<Option<usize>, FrameError> {
    let mut prefix = [0u8; 4];
    let mut filled = 0;
    while filled < 4 {
        let n = reader.read(&mut prefix[filled..]).await?;
        if n == 0 {
            return if filled == 0 {
                Ok(None)
            } else {
                Err(FrameError::Truncated {
                    expected: 4,
                    received: filled,
                })
            };
        }
        filled += n;
    }
    let length = i32::from_be_bytes(prefix) as i64;
    if length < REQUEST_BYTES_MIN as i64 || length > request_bytes_max as i64 {
        return Err(FrameError::BadLength {
            length,
            max: request_bytes_max,
        });
    }
    Ok(Some(length as usize))
}

/// Reads the `length` bytes of a frame's body.
pub async fn read_body<R: AsyncRead + Unpin>(reader: &mut R, length: usize) -> Result<Bytes, FrameError> {
    let mut body = BytesMut::zeroed(length);
    let mut received = 0;
    while received < length {
        let n = reader.read(&mut body[received..]).await?;
        if n == 0 {
            return Err(FrameError::Truncated {
                expected: length,
                received,
            });
        }
        received += n;
    }
    Ok(body.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_are_read_and_bad_lengths_refused() {
        let mut input: &[u8] = &[0, 0, 0, 10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
        assert_eq!(read_frame(&mut input, 1024).await.unwrap().unwrap().len(), 10);
        assert!(read_frame(&mut input, 1024).await.unwrap().is_none());
        let mut huge: &[u8] = &[0x7f, 0xff, 0xff, 0xff];
        assert!(matches!(
            read_frame(&mut huge, 1024).await,
            Err(FrameError::BadLength { .. })
        ));
        let mut negative: &[u8] = &[0xff, 0xff, 0xff, 0xff];
        assert!(matches!(
            read_frame(&mut negative, 1024).await,
            Err(FrameError::BadLength { .. })
        ));
        let mut short: &[u8] = &[0, 0, 0, 20, 1, 2];
        assert!(matches!(
            read_frame(&mut short, 1024).await,
            Err(FrameError::Truncated { .. })
        ));
        let mut torn_prefix: &[u8] = &[0, 0];
        assert!(matches!(
            read_frame(&mut torn_prefix, 1024).await,
            Err(FrameError::Truncated { .. })
        ));
    }
}
