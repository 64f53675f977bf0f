//! Splitting a file's bytes into lines, across reads of any size, with the
//! byte position of each line's start. Only complete lines (ending in `\n`)
//! come out; a partial last line waits for more bytes. A line longer than
//! `line_bytes_max` never grows the buffer past that: it comes out in pieces
//! marked `Overlong`, so the caller can write it to the rejects file as it
//! streams by, and nothing is silently dropped. Also a JSON line's record
//! key ([`key_of`]).

use bytes::{Bytes, BytesMut};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// A complete line (without its newline) starting at `position`.
    Line { position: u64, line: Bytes },
    /// Part of a line longer than the limit, starting at `position` within
    /// the file; `last` is set on the piece that ends the line.
    Overlong {
        line_position: u64,
        bytes: Bytes,
        last: bool,
    },
}

pub struct LineSplitter {
    line_bytes_max: usize,
    /// Bytes of the current, unfinished line not yet handed out.
    partial: BytesMut,
    /// File position of the current line's first byte.
    line_position: u64,
    /// Bytes of the current (overlong) line already handed out as pieces.
    streamed: u64,
}

impl LineSplitter {
    pub fn new(start_position: u64, line_bytes_max: usize) -> Self {
        Self {
            line_bytes_max,
            partial: BytesMut::new(),
            line_position: start_position,
            streamed: 0,
        }
    }

    /// File position of the first byte not yet part of a complete line: where
    /// reading resumes after a restart without losing a partial line.
    pub fn resume_position(&self) -> u64 {
        self.line_position
    }

    /// Bytes held for an unfinished line.
    pub fn buffered_bytes(&self) -> usize {
        self.partial.len()
    }

    /// Takes the unfinished last line, for a file that goes away before it
    /// ends: its first byte's position, the bytes not yet handed out, and
    /// whether earlier pieces of it already went out as `Overlong`.
    pub fn take_unterminated(&mut self) -> Option<(u64, Bytes, bool)> {
        if self.partial.is_empty() && !self.overlong() {
            return None;
        }
        let bytes = std::mem::take(&mut self.partial).freeze();
        let streamed = self.overlong();
        let position = self.line_position;
        self.line_position += self.streamed + bytes.len() as u64;
        self.streamed = 0;
        Some((position, bytes, streamed))
    }

    fn overlong(&self) -> bool {
        self.streamed > 0
    }

    /// Feeds the next bytes of the file; appends what is complete to `out`.
    pub fn push(&mut self, chunk: &Bytes, out: &mut Vec<Piece>) {
        let mut start = 0;
        while start < chunk.len() {
            match chunk[start..].iter().position(|b| *b == b'\n') {
                Some(offset) => {
                    let end = start + offset;
                    self.finish_line(chunk.slice(start..end), out);
                    start = end + 1;
                }
                None => {
                    self.extend_partial(&chunk[start..], out);
                    break;
                }
            }
        }
    }

    fn finish_line(&mut self, tail: Bytes, out: &mut Vec<Piece>) {
        let held = self.partial.len() + tail.len();
        let line_length = self.streamed + held as u64;
        if self.overlong() || held > self.line_bytes_max {
            let mut bytes = std::mem::take(&mut self.partial);
            bytes.extend_from_slice(&tail);
            out.push(Piece::Overlong {
                line_position: self.line_position,
                bytes: bytes.freeze(),
                last: true,
            });
        } else if self.partial.is_empty() {
            out.push(Piece::Line {
                position: self.line_position,
                line: tail,
            });
        } else {
            let mut line = std::mem::take(&mut self.partial);
            line.extend_from_slice(&tail);
            out.push(Piece::Line {
                position: self.line_position,
                line: line.freeze(),
            });
        }
        self.line_position += line_length + 1;
        self.streamed = 0;
    }

    fn extend_partial(&mut self, bytes: &[u8], out: &mut Vec<Piece>) {
        if !self.overlong() && self.partial.len() + bytes.len() <= self.line_bytes_max {
            self.partial.extend_from_slice(bytes);
            return;
        }
        let mut piece = std::mem::take(&mut self.partial);
        piece.extend_from_slice(bytes);
        self.streamed += piece.len() as u64;
        out.push(Piece::Overlong {
            line_position: self.line_position,
            bytes: piece.freeze(),
            last: false,
        });
    }
}

/// The key of a JSON line: the field's string, or its JSON text for numbers
/// and booleans; `None` when the line is not a JSON object with that field.
pub fn key_of(line: &[u8], field: &str) -> Option<Bytes> {
    let value: serde_json::Value = serde_json::from_slice(line).ok()?;
    match value.get(field)? {
        serde_json::Value::String(text) => Some(Bytes::from(text.clone())),
        serde_json::Value::Null => None,
        other => Some(Bytes::from(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn split(input: &[u8], cuts: &[usize], max: usize) -> Vec<Piece> {
        let mut splitter = LineSplitter::new(0, max);
        let mut out = Vec::new();
        let mut start = 0;
        for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
            let cut = cut.clamp(start, input.len());
            splitter.push(&Bytes::copy_from_slice(&input[start..cut]), &mut out);
            start = cut;
        }
        out
    }

    #[test]
    fn partial_last_line_waits_for_its_newline() {
        let mut splitter = LineSplitter::new(100, 1024);
        let mut out = Vec::new();
        splitter.push(&Bytes::from_static(b"one\ntw"), &mut out);
        assert_eq!(
            out,
            vec![Piece::Line {
                position: 100,
                line: Bytes::from_static(b"one")
            }]
        );
        assert_eq!(splitter.resume_position(), 104);
        out.clear();
        splitter.push(&Bytes::from_static(b"o\n"), &mut out);
        assert_eq!(
            out,
            vec![Piece::Line {
                position: 104,
                line: Bytes::from_static(b"two")
            }]
        );
        assert_eq!(splitter.resume_position(), 108);
    }

    #[test]
    fn an_unterminated_line_is_taken_whole_with_its_position() {
        let mut splitter = LineSplitter::new(10, 1024);
        let mut out = Vec::new();
        splitter.push(&Bytes::from_static(b"one\ntw"), &mut out);
        splitter.push(&Bytes::from_static(b"o"), &mut out);
        assert_eq!(
            splitter.take_unterminated(),
            Some((14, Bytes::from_static(b"two"), false))
        );
        assert_eq!(splitter.take_unterminated(), None);
        let mut long = LineSplitter::new(0, 2);
        long.push(&Bytes::from_static(b"abcde"), &mut out);
        assert_eq!(long.take_unterminated(), Some((0, Bytes::new(), true)));
    }

    #[test]
    fn overlong_lines_stream_out_as_pieces_and_the_next_line_is_intact() {
        let mut input = vec![b'x'; 25];
        input.extend_from_slice(b"\nok\n");
        let pieces = split(&input, &[4, 9, 17], 8);
        let overlong: Vec<u8> = pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Overlong {
                    line_position: 0,
                    bytes,
                    ..
                } => Some(bytes.to_vec()),
                _ => None,
            })
            .flatten()
            .collect();
        assert_eq!(overlong, vec![b'x'; 25]);
        assert!(matches!(
            pieces.iter().rev().nth(1),
            Some(Piece::Overlong { last: true, .. })
        ));
        assert_eq!(
            pieces.last(),
            Some(&Piece::Line {
                position: 26,
                line: Bytes::from_static(b"ok")
            })
        );
    }

    proptest! {
        #[test]
        fn any_cuts_give_the_same_lines_and_positions(
            lines in proptest::collection::vec(proptest::collection::vec(b'a'..=b'z', 0..40), 0..30),
            cuts in proptest::collection::vec(0usize..1500, 0..20),
            max in 1usize..50,
        ) {
            let mut input = Vec::new();
            let mut expected = Vec::new();
            for line in &lines {
                expected.push((input.len() as u64, line.clone()));
                input.extend_from_slice(line);
                input.push(b'\n');
            }
            let mut cuts = cuts;
            cuts.sort();
            let pieces = split(&input, &cuts, max);
            // Reassemble: every line comes out whole or as overlong pieces, in order.
            let mut got: Vec<(u64, Vec<u8>)> = Vec::new();
            let mut open: Option<(u64, Vec<u8>)> = None;
            for piece in pieces {
                match piece {
                    Piece::Line { position, line } => {
                        prop_assert!(open.is_none());
                        prop_assert!(line.len() <= max);
                        got.push((position, line.to_vec()));
                    }
                    Piece::Overlong { line_position, bytes, last } => {
                        let entry = open.get_or_insert((line_position, Vec::new()));
                        prop_assert_eq!(entry.0, line_position);
                        entry.1.extend_from_slice(&bytes);
                        if last {
                            let (position, line) = open.take().unwrap();
                            prop_assert!(line.len() > max);
                            got.push((position, line));
                        }
                    }
                }
            }
            prop_assert_eq!(got, expected);
        }
    }
}
