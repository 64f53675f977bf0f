//! The sender's line splitter, fed arbitrary bytes in arbitrary reads.

use bytes::Bytes;
use relay_sender::lines::{LineSplitter, Piece};

/// The first byte sets `line_bytes_max` (1..=64), the second the start
/// position; the rest is the file, cut into reads at points derived from it.
pub fn line_splitter(data: &[u8]) {
    if data.len() < 2 {
        return;
    }
    let max = usize::from(data[0] % 64) + 1;
    let start = u64::from(data[1]) * 1000;
    let input = &data[2..];
    let mut splitter = LineSplitter::new(start, max);
    let mut pieces = Vec::new();
    let mut at = 0;
    let mut seed = input.len() as u64 + u64::from(data[0]);
    while at < input.len() {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let read = ((seed >> 33) as usize % 17 + 1).min(input.len() - at);
        splitter.push(&Bytes::copy_from_slice(&input[at..at + read]), &mut pieces);
        assert!(
            splitter.buffered_bytes() <= max,
            "never more than a line's limit is held"
        );
        at += read;
    }
    // Reassemble what came out: whole lines, and overlong lines from their pieces.
    let mut got: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut open: Option<(u64, Vec<u8>)> = None;
    for piece in pieces {
        match piece {
            Piece::Line { position, line } => {
                assert!(open.is_none(), "an overlong line is finished before the next line");
                assert!(line.len() <= max);
                got.push((position, line.to_vec()));
            }
            Piece::Overlong {
                line_position,
                bytes,
                last,
            } => {
                let entry = open.get_or_insert((line_position, Vec::new()));
                assert_eq!(entry.0, line_position);
                entry.1.extend_from_slice(&bytes);
                if last {
                    let (position, line) = open.take().expect("open");
                    assert!(line.len() > max, "only lines over the limit come in pieces");
                    got.push((position, line));
                }
            }
        }
    }
    let mut expected = Vec::new();
    let mut line_start = 0;
    for (index, byte) in input.iter().enumerate() {
        if *byte == b'\n' {
            expected.push((start + line_start as u64, input[line_start..index].to_vec()));
            line_start = index + 1;
        }
    }
    if open.is_none() {
        assert_eq!(got, expected, "exactly the complete lines, at their positions");
        assert_eq!(splitter.resume_position(), start + line_start as u64);
    } else {
        // The trailing partial line is overlong and partly streamed already.
        assert_eq!(got, expected);
    }
}
