//! One pass over a JSON object's text that both checks it and finds the
//! text of every configured pointer's value ([`PointerSet`]), without
//! building anything. The check is conservative: it accepts only text that
//! serde_json certainly accepts (strict JSON, UTF-8, numbers well inside a
//! double's range, no surrogate escapes, shallow nesting); for anything
//! else it answers "not sure" (`None`) and serde_json decides, so a
//! refusal always carries serde_json's own words ([`crate::document`]).

use crate::pointer::array_index;

/// Deepest nesting the scan follows (serde_json's own limit is 128).
const DEPTH_MAX: usize = 100;
/// Longest number the scan reads; longer ones are left to serde_json.
const NUMBER_BYTES_MAX: usize = 64;
/// Decimal magnitude (integer digits plus exponent) the scan accepts:
/// far inside a double's range (1.8e308), where serde_json never refuses.
const NUMBER_MAGNITUDE_MAX: i64 = 300;

/// The pointers one loader reads (columns, dedup keys, route conditions),
/// as a tree of their tokens: node 0 is the whole event.
#[derive(Debug, Clone)]
pub struct PointerSet {
    /// Each pointer and its node (`None`: a pointer that names nothing,
    /// not starting with `/`).
    pointers: Vec<(String, Option<usize>)>,
    nodes: Vec<Node>,
}

#[derive(Debug, Clone)]
struct Node {
    /// The token, unescaped (`~1` is `/`, `~0` is `~`).
    key: String,
    /// The token as an array index, when it is one.
    index: Option<usize>,
    children: Vec<usize>,
}

/// Where a pointer's value is, per [`PointerSet::node_of`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    Node(usize),
    /// The pointer names nothing in any event.
    Nowhere,
    /// Not in the set.
    Unknown,
}

impl PointerSet {
    pub fn new<'p>(pointers: impl IntoIterator<Item = &'p str>) -> PointerSet {
        let mut set = PointerSet {
            pointers: Vec::new(),
            nodes: vec![Node {
                key: String::new(),
                index: None,
                children: Vec::new(),
            }],
        };
        for pointer in pointers {
            if set.pointers.iter().all(|(p, _)| p != pointer) {
                let node = set.insert(pointer);
                set.pointers.push((pointer.to_owned(), node));
            }
        }
        set
    }

    fn insert(&mut self, pointer: &str) -> Option<usize> {
        if pointer.is_empty() {
            return Some(0);
        }
        let mut node = 0;
        for token in pointer.strip_prefix('/')?.split('/') {
            let key = token.replace("~1", "/").replace("~0", "~");
            let existing = self.nodes[node].children.iter().find(|c| self.nodes[**c].key == key);
            node = match existing {
                Some(child) => *child,
                None => {
                    self.nodes.push(Node {
                        index: array_index(&key),
                        key,
                        children: Vec::new(),
                    });
                    let child = self.nodes.len() - 1;
                    self.nodes[node].children.push(child);
                    child
                }
            };
        }
        Some(node)
    }

    pub fn node_of(&self, pointer: &str) -> Place {
        match self.pointers.iter().find(|(p, _)| p == pointer) {
            Some((_, Some(node))) => Place::Node(*node),
            Some((_, None)) => Place::Nowhere,
            None => Place::Unknown,
        }
    }

    /// Checks `text` as a JSON object and finds the text of every node's
    /// value (a repeated key: its last value, as serde_json reads it);
    /// `None` when serde_json must decide.
    pub fn scan<'a>(&self, text: &'a str) -> Option<Vec<Option<&'a str>>> {
        let mut scan = Scan {
            text,
            bytes: text.as_bytes(),
            at: 0,
            depth: 0,
            set: self,
            found: vec![None; self.nodes.len()],
        };
        scan.skip_space();
        let start = scan.at;
        if scan.peek()? != b'{' {
            return None;
        }
        scan.object(Some(0))?;
        scan.found[0] = Some(&text[start..scan.at]);
        scan.skip_space();
        (scan.at == text.len()).then_some(scan.found)
    }
}

/// Bytes of a string's text checked at once.
const WORD_BYTES: usize = 8;
const EVERY_BYTE: u64 = u64::from_le_bytes([1; WORD_BYTES]);
const HIGH_BITS: u64 = EVERY_BYTE * 0x80;

/// Whether a word of string text holds a quote, a backslash or a control
/// character (the bit tricks are exact for whether any byte does).
fn stops_string(word: u64) -> bool {
    let below = |word: u64, limit: u8| word.wrapping_sub(EVERY_BYTE * u64::from(limit)) & !word & HIGH_BITS;
    let quote = below(word ^ (EVERY_BYTE * u64::from(b'"')), 1);
    let backslash = below(word ^ (EVERY_BYTE * u64::from(b'\\')), 1);
    (quote | backslash | below(word, 0x20)) != 0
}

struct Scan<'a, 's> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
    depth: usize,
    set: &'s PointerSet,
    found: Vec<Option<&'a str>>,
}

impl<'a> Scan<'a, '_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn skip_space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.at += 1)
    }

    /// The value at `at` (space skipped), inside `node` when the node's
    /// children are wanted: its text.
    fn value(&mut self, node: Option<usize>) -> Option<&'a str> {
        let start = self.at;
        match self.peek()? {
            b'{' => self.object(node)?,
            b'[' => self.array(node)?,
            b'"' => {
                self.string()?;
            }
            b't' => self.literal(b"true")?,
            b'f' => self.literal(b"false")?,
            b'n' => self.literal(b"null")?,
            b'-' | b'0'..=b'9' => self.number()?,
            _ => return None,
        }
        Some(&self.text[start..self.at])
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.at + word.len();
        (self.bytes.get(self.at..end)? == word).then(|| self.at = end)
    }

    /// Enters a nested value, unless it is deeper than the scan follows.
    fn enter(&mut self) -> Option<()> {
        self.depth += 1;
        (self.depth <= DEPTH_MAX).then(|| self.at += 1)
    }

    /// The child of `node` that `key` (a key as written, with its quotes) names.
    fn child_by_key(&self, node: Option<usize>, key: &str, escaped: bool) -> Option<usize> {
        let children = &self.set.nodes[node?].children;
        if children.is_empty() {
            return None;
        }
        let inner = &key[1..key.len() - 1];
        let decoded;
        let key = if escaped {
            decoded = serde_json::from_str::<String>(key).ok()?;
            decoded.as_str()
        } else {
            inner
        };
        let key = key.as_bytes();
        // The first byte before the rest: most keys differ there.
        let same = |child: &usize| {
            let name = self.set.nodes[*child].key.as_bytes();
            name.len() == key.len() && name.first() == key.first() && name == key
        };
        children.iter().copied().find(same)
    }

    /// A found value: it and everything found under an earlier copy of it
    /// are replaced (a repeated key means its last value).
    fn forget(&mut self, node: usize) {
        self.found[node] = None;
        for index in 0..self.set.nodes[node].children.len() {
            self.forget(self.set.nodes[node].children[index]);
        }
    }

    /// The member or element `child`'s value, found or only checked.
    fn member(&mut self, child: Option<usize>) -> Option<()> {
        match child {
            Some(child) => {
                self.forget(child);
                let wanted = (!self.set.nodes[child].children.is_empty()).then_some(child);
                self.found[child] = Some(self.value(wanted)?);
            }
            None => {
                self.value(None)?;
            }
        }
        Some(())
    }

    fn object(&mut self, node: Option<usize>) -> Option<()> {
        self.enter()?;
        self.skip_space();
        if self.peek()? == b'}' {
            self.at += 1;
            self.depth -= 1;
            return Some(());
        }
        loop {
            let key_start = self.at;
            if self.peek()? != b'"' {
                return None;
            }
            let escaped = self.string()?;
            let child = self.child_by_key(node, &self.text[key_start..self.at], escaped);
            self.skip_space();
            self.expect(b':')?;
            self.skip_space();
            self.member(child)?;
            if self.after_member(b'}')? {
                break;
            }
        }
        self.at += 1;
        self.depth -= 1;
        Some(())
    }

    /// After a member of an object or array: past a `,` (false), or at the
    /// `close` that ends it (true); anything else is not JSON the scan takes.
    fn after_member(&mut self, close: u8) -> Option<bool> {
        self.skip_space();
        match self.peek()? {
            b',' => {
                self.at += 1;
                self.skip_space();
                Some(false)
            }
            c if c == close => Some(true),
            _ => None,
        }
    }

    fn array(&mut self, node: Option<usize>) -> Option<()> {
        self.enter()?;
        self.skip_space();
        if self.peek()? == b']' {
            self.at += 1;
            self.depth -= 1;
            return Some(());
        }
        for position in 0.. {
            let child = node.and_then(|n| {
                let children = &self.set.nodes[n].children;
                children
                    .iter()
                    .copied()
                    .find(|c| self.set.nodes[*c].index == Some(position))
            });
            self.member(child)?;
            if self.after_member(b']')? {
                break;
            }
        }
        self.at += 1;
        self.depth -= 1;
        Some(())
    }

    /// A string (at its opening quote); whether it holds an escape.
    fn string(&mut self) -> Option<bool> {
        self.at += 1;
        let mut escaped = false;
        loop {
            self.skip_plain_words();
            let rest = self.bytes.get(self.at..)?;
            let plain = rest.iter().position(|b| matches!(b, b'"' | b'\\' | 0x00..=0x1f))?;
            self.at += plain;
            match rest[plain] {
                b'"' => {
                    self.at += 1;
                    return Some(escaped);
                }
                b'\\' => {
                    escaped = true;
                    self.escape()?;
                }
                _ => return None,
            }
        }
    }

    /// Skips a string's plain text eight bytes at a time, up to the word
    /// holding a quote, a backslash or a control character.
    fn skip_plain_words(&mut self) {
        while let Some(word) = self.bytes.get(self.at..self.at + WORD_BYTES) {
            let word = u64::from_le_bytes(word.try_into().expect("eight bytes"));
            if stops_string(word) {
                return;
            }
            self.at += WORD_BYTES;
        }
    }

    /// An escape (at its backslash); a `\u` of a surrogate is left to serde_json.
    fn escape(&mut self) -> Option<()> {
        match *self.bytes.get(self.at + 1)? {
            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.at += 2,
            b'u' => {
                let hex = std::str::from_utf8(self.bytes.get(self.at + 2..self.at + 6)?).ok()?;
                if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return None;
                }
                let unit = u16::from_str_radix(hex, 16).ok()?;
                if (0xD800..=0xDFFF).contains(&unit) {
                    return None;
                }
                self.at += 6;
            }
            _ => return None,
        }
        Some(())
    }

    fn digits(&mut self) -> usize {
        let rest = &self.bytes[self.at.min(self.bytes.len())..];
        let count = rest.iter().position(|b| !b.is_ascii_digit()).unwrap_or(rest.len());
        self.at += count;
        count
    }

    /// A number as JSON writes it, well inside a double's range.
    fn number(&mut self) -> Option<()> {
        let start = self.at;
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        let whole = match self.peek()? {
            b'0' => {
                self.at += 1;
                1
            }
            b'1'..=b'9' => self.digits(),
            _ => return None,
        };
        if self.peek() == Some(b'.') {
            self.at += 1;
            if self.digits() == 0 {
                return None;
            }
        }
        let mut exponent = 0;
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            let negative = match self.peek()? {
                b'-' => true,
                b'+' => false,
                _ => false,
            };
            if matches!(self.peek(), Some(b'-' | b'+')) {
                self.at += 1;
            }
            let digits_at = self.at;
            let count = self.digits();
            if count == 0 || count > 3 {
                return None;
            }
            let magnitude: i64 = self.text[digits_at..self.at].parse().ok()?;
            exponent = if negative { -magnitude } else { magnitude };
        }
        let in_range = whole as i64 + exponent <= NUMBER_MAGNITUDE_MAX && exponent >= -NUMBER_MAGNITUDE_MAX;
        (in_range && self.at - start <= NUMBER_BYTES_MAX).then_some(())
    }
}
