//! `unserialize`: reads PHP's `serialize()` format into a [`Value`], for input that may be hostile.
//!
//! Every declared length and count is checked against the bytes that remain before anything is
//! allocated, nesting is bounded by [`Limits::max_depth`] (checked before recursing), and every
//! malformed or truncated input is a [`ParseError`] naming the byte offset, never a panic. It must
//! not resolve back-references or apply PHP runtime rules (numeric-string keys, duplicate keys):
//! it keeps what was written so that `serialize` can write it back byte for byte.

use thiserror::Error;

use super::value::{Key, Object, Prop, Value, Visibility};

/// Bounds on hostile input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Maximum nesting of arrays and objects (the root container is level 1). Default 512.
    /// Each level costs a few stack frames, so keep it in the thousands at most (a tokio worker
    /// thread has 2 MiB of stack).
    pub max_depth: usize,
    /// Maximum total of declared array elements and object properties. Default 1 000 000.
    pub max_elements: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 512,
            max_elements: 1_000_000,
        }
    }
}

/// Why and where `unserialize` failed.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("at byte {offset}: {kind}")]
pub struct ParseError {
    /// Byte offset in the input where the problem was found.
    pub offset: usize,
    /// What was wrong.
    pub kind: ParseErrorKind,
}

/// What `unserialize` found wrong.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ParseErrorKind {
    /// The input ended where more was required.
    #[error("expected {expected}, found end of input")]
    UnexpectedEnd {
        /// What the grammar required here.
        expected: &'static str,
    },
    /// A byte that the grammar does not allow here.
    #[error("expected {expected}, found {}", show_byte(*found))]
    Unexpected {
        /// What the grammar required here.
        expected: &'static str,
        /// The byte that was there.
        found: u8,
    },
    /// An `i:` outside the i64 range. PHP saturates it with a warning; we refuse it.
    #[error("integer does not fit in 64 bits (PHP would saturate it; refused)")]
    IntegerOverflow,
    /// A length or count too large to represent.
    #[error("length or count does not fit in memory addressing")]
    LengthOverflow,
    /// A string or blob length longer than the input that remains.
    #[error("declared length {declared} runs past the end of the input ({available} bytes left)")]
    LengthPastEnd {
        /// The declared byte length.
        declared: usize,
        /// Bytes left for it.
        available: usize,
    },
    /// An element count that the remaining input cannot possibly hold.
    #[error(
        "declared {declared} elements need at least {} bytes, only {available} left",
        declared.saturating_mul(*min_size)
    )]
    CountPastEnd {
        /// The declared count.
        declared: usize,
        /// The smallest size of one element (6 for arrays, 9 for object properties).
        min_size: usize,
        /// Bytes left for them.
        available: usize,
    },
    /// A class or enum name with a byte PHP does not allow in class names.
    #[error("invalid byte {} in class name", show_byte(*found))]
    InvalidClassName {
        /// The offending byte.
        found: u8,
    },
    /// An empty class name.
    #[error("empty class name")]
    EmptyClassName,
    /// A name that is not valid UTF-8.
    #[error("{what} is not valid UTF-8")]
    InvalidUtf8 {
        /// Which name.
        what: &'static str,
    },
    /// A property name starting with NUL that is neither `\0*\0name` nor `\0Class\0name`.
    #[error("malformed mangled property name (expected \\0*\\0name or \\0Class\\0name)")]
    InvalidPropertyName,
    /// An `E:` name without `Class:Case`, or with an invalid case name.
    #[error("enum must be \"Class:Case\"")]
    InvalidEnum,
    /// A `\` in an `S:` string not followed by two hex digits.
    #[error("expected two hex digits after '\\' in S: string")]
    InvalidEscape,
    /// `r:n` / `R:n` with n = 0 or past the values read so far.
    #[error("back-reference {n} is out of range (1..={count})")]
    BadReference {
        /// The number written.
        n: u64,
        /// Values read so far.
        count: u64,
    },
    /// `r:n` naming a slot that does not hold an object.
    #[error("r:{n} must name an object, but value {n} is not one")]
    NotAnObject {
        /// The number written.
        n: u32,
    },
    /// Nesting deeper than [`Limits::max_depth`].
    #[error("nesting deeper than {max} levels")]
    TooDeep {
        /// The limit.
        max: usize,
    },
    /// More elements in total than [`Limits::max_elements`].
    #[error("more than {max} array elements and properties in total")]
    TooManyElements {
        /// The limit.
        max: usize,
    },
    /// Bytes after the root value.
    #[error("{count} unexpected bytes after the value")]
    TrailingBytes {
        /// How many.
        count: usize,
    },
}

/// `'x'` for printable ASCII, `'\xNN'` otherwise.
fn show_byte(b: u8) -> String {
    if b.is_ascii_graphic() || b == b' ' {
        format!("'{}'", b as char)
    } else {
        format!("'\\x{b:02x}'")
    }
}

/// Unserializes with [`Limits::default`].
pub fn unserialize(input: &[u8]) -> Result<Value, ParseError> {
    unserialize_with(input, &Limits::default())
}

/// Unserializes one value; the whole input must be that value (trailing bytes are an error).
///
/// Back-references: `r:n`/`R:n` count value slots 1-based in reading order: the root, every array,
/// object, scalar, enum, `C:` blob and `r:` itself count, `R:` does not, keys and property names do
/// not. `n` must be at least 1 and at most the slots read before it (as in PHP, which rejects a
/// reference to itself), and `r:` must name an object or enum. After a `C:` blob these checks stop
/// (only `n >= 1` remains): PHP also numbers the values that the class's own `serialize()` wrote
/// inside the blob, which we cannot parse.
///
/// Strings in the escaped `S:` form become ordinary [`Value::Str`] and are written back as `s:`;
/// PHP's `serialize()` never writes `S:`.
pub fn unserialize_with(input: &[u8], limits: &Limits) -> Result<Value, ParseError> {
    let mut p = Parser {
        input,
        pos: 0,
        limits,
        slots: Vec::new(),
        opaque: false,
        elements: 0,
        owed: 0,
    };
    let value = p.value(0)?;
    if p.pos < input.len() {
        return Err(p.err_at(
            p.pos,
            ParseErrorKind::TrailingBytes {
                count: input.len() - p.pos,
            },
        ));
    }
    Ok(value)
}

/// Smallest array element: `i:0;N;`.
const MIN_ARRAY_ELEMENT: usize = 6;
/// Smallest object property: `s:0:"";N;`.
const MIN_PROPERTY: usize = 9;
/// Capacity reserved up front for a container; it grows past this only as elements really parse.
const MAX_PREALLOC: usize = 64;

struct Parser<'a> {
    input: &'a [u8],
    pos: usize,
    limits: &'a Limits,
    /// One entry per value slot read so far (for `r:`/`R:`): whether it holds an object.
    slots: Vec<bool>,
    /// A `C:` blob was read: PHP may have numbered slots inside it, so later reference numbers
    /// cannot be checked.
    opaque: bool,
    /// Declared elements so far (for `max_elements`).
    elements: usize,
    /// Bytes that enclosing containers still need after the current item, at the least. Keeping it
    /// out of the "available" figure makes the sum of all declared counts linear in the input.
    owed: usize,
}

type Result<T, E = ParseError> = std::result::Result<T, E>;

impl<'a> Parser<'a> {
    fn err_at(&self, offset: usize, kind: ParseErrorKind) -> ParseError {
        ParseError { offset, kind }
    }

    /// Bytes the current item may still use.
    fn available(&self) -> usize {
        (self.input.len() - self.pos).saturating_sub(self.owed)
    }

    fn peek(&self, expected: &'static str) -> Result<u8> {
        self.input.get(self.pos).copied().ok_or_else(|| {
            self.err_at(self.input.len(), ParseErrorKind::UnexpectedEnd { expected })
        })
    }

    fn expect(&mut self, byte: u8, expected: &'static str) -> Result<()> {
        let found = self.peek(expected)?;
        if found != byte {
            return Err(self.err_at(self.pos, ParseErrorKind::Unexpected { expected, found }));
        }
        self.pos += 1;
        Ok(())
    }

    /// `[0-9]+` as an unsigned number; `None` on overflow. Returns the start offset too.
    fn digits(&mut self, expected: &'static str) -> Result<(usize, Option<u64>)> {
        let start = self.pos;
        let mut n: Option<u64> = Some(0);
        while let Some(&b) = self.input.get(self.pos).filter(|b| b.is_ascii_digit()) {
            n = n
                .and_then(|n| n.checked_mul(10))
                .and_then(|n| n.checked_add(u64::from(b - b'0')));
            self.pos += 1;
        }
        if self.pos == start {
            let found = self.peek(expected)?;
            return Err(self.err_at(start, ParseErrorKind::Unexpected { expected, found }));
        }
        Ok((start, n))
    }

    /// A length or count (`uiv`), followed by `sep`.
    fn length(&mut self, expected: &'static str, sep: u8, after: &'static str) -> Result<usize> {
        let (start, n) = self.digits(expected)?;
        let n = n
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| self.err_at(start, ParseErrorKind::LengthOverflow))?;
        self.expect(sep, after)?;
        Ok(n)
    }

    /// Takes `len` raw bytes, which must leave `reserve` more bytes for the item's own tail.
    fn take(&mut self, len: usize, reserve: usize, len_at: usize) -> Result<&'a [u8]> {
        let available = self.available().saturating_sub(reserve);
        if len > available {
            let kind = ParseErrorKind::LengthPastEnd {
                declared: len,
                available,
            };
            return Err(self.err_at(len_at, kind));
        }
        let bytes = &self.input[self.pos..self.pos + len];
        self.pos += len;
        Ok(bytes)
    }

    fn value(&mut self, depth: usize) -> Result<Value> {
        let start = self.pos;
        let tag = self.peek("a value (N, b, i, d, s, S, a, O, C, E, r or R)")?;
        if tag == b'R' {
            // `R:` is the one form that takes no slot of its own.
            return self.reference(start, false).map(Value::Ref);
        }
        if tag == b'r' {
            let n = self.reference(start, true)?;
            self.slots.push(true);
            return Ok(Value::ObjRef(n));
        }
        // Pushed before the children are read: a container's slot comes before theirs.
        self.slots.push(matches!(tag, b'O' | b'C' | b'E'));
        match tag {
            b'N' => {
                self.pos += 1;
                self.expect(b';', "';' after N")?;
                Ok(Value::Null)
            }
            b'b' => {
                self.pos += 1;
                self.expect(b':', "':' after b")?;
                let b = match self.peek("0 or 1")? {
                    b'0' => false,
                    b'1' => true,
                    found => {
                        let kind = ParseErrorKind::Unexpected {
                            expected: "0 or 1",
                            found,
                        };
                        return Err(self.err_at(self.pos, kind));
                    }
                };
                self.pos += 1;
                self.expect(b';', "';' after boolean")?;
                Ok(Value::Bool(b))
            }
            b'i' => self.int().map(Value::Int),
            b'd' => self.float().map(Value::Float),
            b's' | b'S' => self.string().map(Value::Str),
            b'a' => self.array(start, depth),
            b'O' => self.object(start, depth),
            b'C' => self.custom(),
            b'E' => self.enumeration(),
            found => {
                let expected = "a value (N, b, i, d, s, S, a, O, C, E, r or R)";
                Err(self.err_at(start, ParseErrorKind::Unexpected { expected, found }))
            }
        }
    }

    /// `r:<n>;` or `R:<n>;`, checked against the slots read so far; `r:` must name an object
    /// (as PHP requires). After a `C:` blob only `n >= 1` can be checked.
    fn reference(&mut self, start: usize, object: bool) -> Result<u32> {
        self.pos += 1;
        self.expect(b':', "':' after r or R")?;
        let (_, n) = self.digits("reference number")?;
        self.expect(b';', "';' after reference")?;
        let count = self.slots.len() as u64;
        let in_range = |n: &u64| *n >= 1 && (self.opaque || *n <= count);
        let Some(n) = n.filter(in_range).and_then(|n| u32::try_from(n).ok()) else {
            let kind = ParseErrorKind::BadReference {
                n: n.unwrap_or(u64::MAX),
                count,
            };
            return Err(self.err_at(start, kind));
        };
        let target_is_object = self.slots.get(n as usize - 1).copied().unwrap_or(true);
        if object && !self.opaque && !target_is_object {
            return Err(self.err_at(start, ParseErrorKind::NotAnObject { n }));
        }
        Ok(n)
    }

    /// `i:[+-]?[0-9]+;`
    fn int(&mut self) -> Result<i64> {
        self.pos += 1;
        self.expect(b':', "':' after i")?;
        let start = self.pos;
        let negative = self.input.get(self.pos) == Some(&b'-');
        if matches!(self.input.get(self.pos), Some(b'-' | b'+')) {
            self.pos += 1;
        }
        let (_, magnitude) = self.digits("digits of integer")?;
        let value = magnitude.and_then(|m| {
            if negative {
                0i64.checked_sub_unsigned(m)
            } else {
                i64::try_from(m).ok()
            }
        });
        let value = value.ok_or_else(|| self.err_at(start, ParseErrorKind::IntegerOverflow))?;
        self.expect(b';', "';' after integer")?;
        Ok(value)
    }

    /// `d:` then `NAN`, `INF`, `-INF` or
    /// `[+-]? (digits [. digits] | . digits) ([eE] [+-]? digits)?`.
    fn float(&mut self) -> Result<f64> {
        self.pos += 1;
        self.expect(b':', "':' after d")?;
        let rest = &self.input[self.pos..];
        for (word, value) in [
            ("NAN;", f64::NAN),
            ("INF;", f64::INFINITY),
            ("-INF;", f64::NEG_INFINITY),
        ] {
            if rest.starts_with(word.as_bytes()) {
                self.pos += word.len();
                return Ok(value);
            }
        }
        let start = self.pos;
        if matches!(self.input.get(self.pos), Some(b'+' | b'-')) {
            self.pos += 1;
        }
        let int_digits = self.skip_digits();
        let mut frac_digits = 0;
        if self.input.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            frac_digits = self.skip_digits();
        }
        if int_digits + frac_digits == 0 {
            let expected = "digits of float (or NAN, INF, -INF)";
            let found = self.peek(expected)?;
            return Err(self.err_at(self.pos, ParseErrorKind::Unexpected { expected, found }));
        }
        if matches!(self.input.get(self.pos), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.input.get(self.pos), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if self.skip_digits() == 0 {
                let expected = "digits of exponent";
                let found = self.peek(expected)?;
                return Err(self.err_at(self.pos, ParseErrorKind::Unexpected { expected, found }));
            }
        }
        let text = &self.input[start..self.pos];
        // The grammar above is a subset of what Rust's float parser accepts, so this cannot fail;
        // still, a failure is reported rather than unwrapped.
        let value = std::str::from_utf8(text)
            .ok()
            .and_then(|t| t.parse::<f64>().ok())
            .ok_or_else(|| {
                self.err_at(
                    start,
                    ParseErrorKind::Unexpected {
                        expected: "a float",
                        found: b'd',
                    },
                )
            })?;
        self.expect(b';', "';' after float")?;
        Ok(value)
    }

    fn skip_digits(&mut self) -> usize {
        let start = self.pos;
        while self.input.get(self.pos).is_some_and(u8::is_ascii_digit) {
            self.pos += 1;
        }
        self.pos - start
    }

    /// `s:<len>:"<bytes>";` or the escaped `S:<len>:"<…>";` (len = decoded length).
    fn string(&mut self) -> Result<Vec<u8>> {
        let escaped = self.input.get(self.pos) == Some(&b'S');
        self.pos += 1;
        self.expect(b':', "':' after s")?;
        let len_at = self.pos;
        let len = self.length("string length", b':', "':' after string length")?;
        self.expect(b'"', "'\"' before string bytes")?;
        let bytes = if escaped {
            self.escaped(len, len_at)?
        } else {
            self.take(len, 2, len_at)?.to_vec()
        };
        self.expect(b'"', "'\"' after string bytes (is the length right?)")?;
        self.expect(b';', "';' after string")?;
        Ok(bytes)
    }

    /// The body of an `S:` string: `len` decoded bytes, each literal or `\xx`.
    fn escaped(&mut self, len: usize, len_at: usize) -> Result<Vec<u8>> {
        // Each decoded byte takes at least one input byte.
        let available = self.available().saturating_sub(2);
        if len > available {
            let kind = ParseErrorKind::LengthPastEnd {
                declared: len,
                available,
            };
            return Err(self.err_at(len_at, kind));
        }
        let mut out = Vec::with_capacity(len);
        for _ in 0..len {
            let b = self.peek("string byte")?;
            if b == b'\\' {
                let hex = |b: Option<&u8>| b.and_then(|b| (*b as char).to_digit(16));
                match (
                    hex(self.input.get(self.pos + 1)),
                    hex(self.input.get(self.pos + 2)),
                ) {
                    (Some(hi), Some(lo)) => out.push((hi * 16 + lo) as u8),
                    _ => return Err(self.err_at(self.pos, ParseErrorKind::InvalidEscape)),
                }
                self.pos += 3;
            } else {
                out.push(b);
                self.pos += 1;
            }
        }
        Ok(out)
    }

    /// `<len>:"<Class>"` for `O:`, `C:` (after the tag and its colon).
    fn class_name(&mut self) -> Result<String> {
        let len_at = self.pos;
        let len = self.length("class name length", b':', "':' after class name length")?;
        self.expect(b'"', "'\"' before class name")?;
        let at = self.pos;
        let name = self.take(len, 2, len_at)?;
        let name = validate_class(name).map_err(|(i, kind)| self.err_at(at + i, kind))?;
        self.expect(b'"', "'\"' after class name (is the length right?)")?;
        Ok(name)
    }

    /// Opens a container of `n` elements of at least `min_size` bytes each: checks depth, the
    /// element budget and the remaining input, then consumes `{`.
    fn open(&mut self, start: usize, depth: usize, n: usize, min_size: usize) -> Result<()> {
        if depth >= self.limits.max_depth {
            return Err(self.err_at(
                start,
                ParseErrorKind::TooDeep {
                    max: self.limits.max_depth,
                },
            ));
        }
        self.expect(b'{', "'{' after count")?;
        let available = self.available().saturating_sub(1);
        if n.checked_mul(min_size).is_none_or(|need| need > available) {
            let kind = ParseErrorKind::CountPastEnd {
                declared: n,
                min_size,
                available,
            };
            return Err(self.err_at(self.pos - 1, kind));
        }
        self.elements = self.elements.saturating_add(n);
        if self.elements > self.limits.max_elements {
            let kind = ParseErrorKind::TooManyElements {
                max: self.limits.max_elements,
            };
            return Err(self.err_at(start, kind));
        }
        Ok(())
    }

    /// Runs `f` with `extra` more bytes owed to the enclosing container.
    fn owing<T>(&mut self, extra: usize, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        let saved = self.owed;
        self.owed = saved.saturating_add(extra);
        let result = f(self);
        self.owed = saved;
        result
    }

    /// `a:<n>:{<key><value>…}`
    fn array(&mut self, start: usize, depth: usize) -> Result<Value> {
        self.pos += 1;
        self.expect(b':', "':' after a")?;
        let n = self.length("array count", b':', "':' after array count")?;
        self.open(start, depth, n, MIN_ARRAY_ELEMENT)?;
        let mut items = Vec::with_capacity(n.min(MAX_PREALLOC));
        for i in 0..n {
            // After this element: the others and the closing brace.
            let after = (n - 1 - i) * MIN_ARRAY_ELEMENT + 1;
            let key = self.owing(after + 2, Self::key)?;
            let value = self.owing(after, |p| p.value(depth + 1))?;
            items.push((key, value));
        }
        self.expect(b'}', "'}' after array elements (is the count right?)")?;
        Ok(Value::Array(items))
    }

    /// An array key: `i:` or `s:`/`S:`; keys take no reference slot.
    fn key(&mut self) -> Result<Key> {
        let expected = "array key (i: or s:)";
        match self.peek(expected)? {
            b'i' => self.int().map(Key::Int),
            b's' | b'S' => self.string().map(Key::Str),
            found => Err(self.err_at(self.pos, ParseErrorKind::Unexpected { expected, found })),
        }
    }

    /// `O:<len>:"<Class>":<n>:{<name><value>…}`
    fn object(&mut self, start: usize, depth: usize) -> Result<Value> {
        self.pos += 1;
        self.expect(b':', "':' after O")?;
        let class = self.class_name()?;
        self.expect(b':', "':' after class name")?;
        let n = self.length("property count", b':', "':' after property count")?;
        self.open(start, depth, n, MIN_PROPERTY)?;
        let mut props = Vec::with_capacity(n.min(MAX_PREALLOC));
        for i in 0..n {
            let after = (n - 1 - i) * MIN_PROPERTY + 1;
            let prop = self.owing(after + 2, Self::prop)?;
            let value = self.owing(after, |p| p.value(depth + 1))?;
            props.push((prop, value));
        }
        self.expect(b'}', "'}' after object properties (is the count right?)")?;
        Ok(Value::Object(Object { class, props }))
    }

    /// A property name (`s:`/`S:` only) with its mangling decoded.
    fn prop(&mut self) -> Result<Prop> {
        let at = self.pos;
        let expected = "property name (s:)";
        match self.peek(expected)? {
            b's' | b'S' => {}
            found => return Err(self.err_at(at, ParseErrorKind::Unexpected { expected, found })),
        }
        let raw = self.string()?;
        unmangle(raw).map_err(|kind| self.err_at(at, kind))
    }

    /// `C:<len>:"<Class>":<n>:{<raw n bytes>}`
    fn custom(&mut self) -> Result<Value> {
        self.pos += 1;
        self.expect(b':', "':' after C")?;
        let class = self.class_name()?;
        self.expect(b':', "':' after class name")?;
        let len_at = self.pos;
        let len = self.length("data length", b':', "':' after data length")?;
        self.expect(b'{', "'{' before data")?;
        let data = self.take(len, 1, len_at)?.to_vec();
        self.expect(b'}', "'}' after data (is the length right?)")?;
        // The class's own serialize() may have called serialize(), and PHP numbers those slots too.
        self.opaque = true;
        Ok(Value::Custom { class, data })
    }

    /// `E:<len>:"<Class>:<Case>";`
    fn enumeration(&mut self) -> Result<Value> {
        self.pos += 1;
        self.expect(b':', "':' after E")?;
        let len_at = self.pos;
        let len = self.length("enum name length", b':', "':' after enum name length")?;
        self.expect(b'"', "'\"' before enum name")?;
        let at = self.pos;
        let name = self.take(len, 2, len_at)?;
        let colon = name.iter().position(|&b| b == b':');
        let (class, case) = match colon {
            Some(i) => (&name[..i], &name[i + 1..]),
            None => return Err(self.err_at(at, ParseErrorKind::InvalidEnum)),
        };
        let class = validate_class(class).map_err(|(i, kind)| self.err_at(at + i, kind))?;
        let case_ok = !case.is_empty() && case.iter().all(|&b| is_name_byte(b));
        let case = std::str::from_utf8(case)
            .ok()
            .filter(|_| case_ok)
            .map(str::to_owned);
        let case = case.ok_or_else(|| self.err_at(at, ParseErrorKind::InvalidEnum))?;
        self.expect(b'"', "'\"' after enum name (is the length right?)")?;
        self.expect(b';', "';' after enum")?;
        Ok(Value::Enum { class, case })
    }
}

/// PHP's class-name bytes (`zend_is_valid_class_name`): `[A-Za-z0-9_\x80-\xff\\]`.
fn is_class_byte(b: u8) -> bool {
    is_name_byte(b) || b == b'\\'
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

/// A class name PHP would accept that is also UTF-8; on error, the offset within `name`.
fn validate_class(name: &[u8]) -> Result<String, (usize, ParseErrorKind)> {
    if name.is_empty() {
        return Err((0, ParseErrorKind::EmptyClassName));
    }
    if let Some(i) = name.iter().position(|&b| !is_class_byte(b)) {
        return Err((i, ParseErrorKind::InvalidClassName { found: name[i] }));
    }
    match std::str::from_utf8(name) {
        Ok(s) => Ok(s.to_owned()),
        Err(e) => Err((
            e.valid_up_to(),
            ParseErrorKind::InvalidUtf8 { what: "class name" },
        )),
    }
}

/// Splits PHP's mangled property name: `name`, `\0*\0name` or `\0Class\0name`.
fn unmangle(raw: Vec<u8>) -> Result<Prop, ParseErrorKind> {
    if raw.first() != Some(&0) {
        return Ok(Prop {
            name: raw,
            visibility: Visibility::Public,
        });
    }
    let end = raw[1..]
        .iter()
        .position(|&b| b == 0)
        .ok_or(ParseErrorKind::InvalidPropertyName)?
        + 1;
    let name = raw[end + 1..].to_vec();
    let visibility = match &raw[1..end] {
        b"" => return Err(ParseErrorKind::InvalidPropertyName),
        b"*" => Visibility::Protected,
        class => match std::str::from_utf8(class) {
            Ok(c) => Visibility::Private(c.to_owned()),
            Err(_) => {
                return Err(ParseErrorKind::InvalidUtf8 {
                    what: "private property class",
                })
            }
        },
    };
    Ok(Prop { name, visibility })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::php::serialize;

    /// Strings printed by PHP 8.2.x's `serialize()` on this machine (the PHP expression is above
    /// each one); every one must read and write back byte for byte.
    const PHP_VECTORS: &[&[u8]] = &[
        // [1.0, 0.1, -0.0, 1e15, 1e16, 1e17, 1.5e-7, 0.0001, 0.00001, 1/3, INF, -INF, NAN, 25.5,
        //  1e25, -1.5e300, 5e-324, 123456789.125]
        b"a:18:{i:0;d:1;i:1;d:0.1;i:2;d:-0;i:3;d:1000000000000000;i:4;d:10000000000000000;\
i:5;d:1.0E+17;i:6;d:1.5E-7;i:7;d:0.0001;i:8;d:1.0E-5;i:9;d:0.3333333333333333;i:10;d:INF;\
i:11;d:-INF;i:12;d:NAN;i:13;d:25.5;i:14;d:1.0E+25;i:15;d:-1.5E+300;i:16;d:5.0E-324;\
i:17;d:123456789.125;}",
        // $o=new stdClass; $a=[1,$o,2,$o]; $a[]=&$a[0];
        b"a:5:{i:0;i:1;i:1;O:8:\"stdClass\":0:{}i:2;i:2;i:3;r:3;i:4;R:2;}",
        // $a=[]; $a[0]=1; $a[1]=&$a[0]; $a[2]=$o; $a[3]=$o;
        // (R: takes no slot, so the object is slot 3)
        b"a:4:{i:0;i:1;i:1;R:2;i:2;O:8:\"stdClass\":0:{}i:3;r:3;}",
        // [1,[2,$o,[$o]],&$a] with $a as above   (r: takes a slot: R:9 is $a[0])
        b"a:3:{i:0;i:1;i:1;a:3:{i:0;i:2;i:1;O:8:\"stdClass\":0:{}i:2;a:1:{i:0;r:5;}}\
i:2;a:4:{i:0;i:1;i:1;R:9;i:2;r:5;i:3;r:5;}}",
        // class B { function __serialize(): array { $o=new stdClass; return ["a"=>1,"b"=>$o,"c"=>$o]; } }
        b"O:1:\"B\":3:{s:1:\"a\";i:1;s:1:\"b\";O:8:\"stdClass\":0:{}s:1:\"c\";r:3;}",
        // $x=new stdClass; $x->self=$x; [$x, $x]   (a reference to an object still being read)
        b"a:2:{i:0;O:8:\"stdClass\":1:{s:4:\"self\";r:2;}i:1;r:2;}",
        // class P { private $secret='s'; protected $prot=[1]; public $pub=null; }
        // class K extends P { private $secret='k'; public $e; }  $k->e = Suit::Hearts;
        b"O:1:\"K\":5:{s:9:\"\0P\0secret\";s:1:\"s\";s:7:\"\0*\0prot\";a:1:{i:0;i:1;}s:3:\"pub\";N;\
s:9:\"\0K\0secret\";s:1:\"k\";s:1:\"e\";E:11:\"Suit:Hearts\";}",
        // ['a'=>1, 5=>-7, 'str'=>"quo\"te\0nul\nline", 'utf'=>"héllo", 'f'=>0.1,
        //  'neg'=>PHP_INT_MIN, 'max'=>PHP_INT_MAX, 'std'=>$o (with ->{'0'}='zero', ->b=true),
        //  'e'=>Suit::Spades, 'same'=>Suit::Spades, 'o2'=>$o]
        b"a:11:{s:1:\"a\";i:1;i:5;i:-7;s:3:\"str\";s:15:\"quo\"te\0nul\nline\";s:3:\"utf\";\
s:6:\"h\xc3\xa9llo\";s:1:\"f\";d:0.1;s:3:\"neg\";i:-9223372036854775808;s:3:\"max\";\
i:9223372036854775807;s:3:\"std\";O:8:\"stdClass\":2:{s:1:\"0\";s:4:\"zero\";s:1:\"b\";b:1;}\
s:1:\"e\";E:11:\"Suit:Spades\";s:4:\"same\";r:12;s:2:\"o2\";r:9;}",
        // [new Ser, 'x'] with Ser implements Serializable, serialize() returning `raw:"}{`
        b"a:2:{i:0;C:3:\"Ser\":7:{raw:\"}{}i:1;s:1:\"x\";}",
        // Ser::serialize() returning serialize([1,$this->o]); [$ser, $o, 5, $o]: PHP numbers the
        // slots inside the C: blob, so r:5 is the stdClass inside it.
        b"a:4:{i:0;C:3:\"Ser\":37:{a:2:{i:0;i:1;i:1;O:8:\"stdClass\":0:{}}}i:1;r:5;i:2;i:5;i:3;r:5;}",
        // new DateTime('2024-01-02 03:04:05.123456', new DateTimeZone('UTC'))
        b"O:8:\"DateTime\":3:{s:4:\"date\";s:26:\"2024-01-02 03:04:05.123456\";\
s:13:\"timezone_type\";i:3;s:8:\"timezone\";s:3:\"UTC\";}",
        // The RestroSaaS DeferredJob command (docs/restrosaas.md §2.3).
        DEFERRED_JOB,
    ];

    const DEFERRED_JOB: &[u8] = b"O:20:\"App\\Jobs\\DeferredJob\":2:{s:9:\"\0*\0action\";\
s:21:\"whatsapp_notification\";s:7:\"\0*\0data\";a:1:{s:8:\"order_id\";i:42;}}";

    fn ok(input: &[u8]) -> Value {
        unserialize(input).unwrap_or_else(|e| panic!("{e} in {:?}", String::from_utf8_lossy(input)))
    }

    /// The error's offset and kind.
    fn err(input: &[u8]) -> (usize, ParseErrorKind) {
        let e = unserialize(input).expect_err("input must be rejected");
        (e.offset, e.kind)
    }

    fn unexpected(expected: &'static str, found: u8) -> ParseErrorKind {
        ParseErrorKind::Unexpected { expected, found }
    }

    #[test]
    fn php_vectors_round_trip_byte_for_byte() {
        for input in PHP_VECTORS {
            let v = ok(input);
            assert_eq!(
                String::from_utf8_lossy(&serialize(&v)),
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn every_truncation_is_an_error() {
        for input in PHP_VECTORS {
            for end in 0..input.len() {
                assert!(
                    unserialize(&input[..end]).is_err(),
                    "prefix {end} of {:?} was accepted",
                    String::from_utf8_lossy(input)
                );
            }
        }
    }

    #[test]
    fn deferred_job_sample() {
        let v = ok(DEFERRED_JOB);
        let o = v.as_object().expect("object");
        assert_eq!(o.class, "App\\Jobs\\DeferredJob");
        assert_eq!(o.props[0].0, Prop::protected("action"));
        assert_eq!(
            v.get("action").and_then(Value::as_str),
            Some("whatsapp_notification")
        );
        assert_eq!(
            v.get("data").and_then(|d| d.get("order_id")),
            Some(&Value::Int(42))
        );
    }

    #[test]
    fn scalars() {
        assert_eq!(ok(b"N;"), Value::Null);
        assert_eq!(ok(b"b:0;"), Value::Bool(false));
        assert_eq!(ok(b"b:1;"), Value::Bool(true));
        assert_eq!(ok(b"i:0;"), Value::Int(0));
        assert_eq!(ok(b"i:+5;"), Value::Int(5));
        assert_eq!(ok(b"i:007;"), Value::Int(7));
        assert_eq!(ok(b"i:-0;"), Value::Int(0));
        assert_eq!(ok(b"i:-9223372036854775808;"), Value::Int(i64::MIN));
        assert_eq!(ok(b"i:9223372036854775807;"), Value::Int(i64::MAX));
    }

    #[test]
    fn floats_in_every_spelling_php_accepts() {
        let cases: &[(&[u8], f64)] = &[
            (b"d:1;", 1.0),
            (b"d:0.1;", 0.1),
            (b"d:1.e5;", 1e5),
            (b"d:.5;", 0.5),
            (b"d:+.5;", 0.5),
            (b"d:5.;", 5.0),
            (b"d:-.5e-2;", -0.005),
            (b"d:1E3;", 1000.0),
            (b"d:1e+3;", 1000.0),
            (b"d:1.5E-7;", 1.5e-7),
            (b"d:INF;", f64::INFINITY),
            (b"d:-INF;", f64::NEG_INFINITY),
            (b"d:1e400;", f64::INFINITY),
        ];
        for (input, want) in cases {
            assert_eq!(
                ok(input),
                Value::Float(*want),
                "{}",
                String::from_utf8_lossy(input)
            );
        }
        assert!(ok(b"d:NAN;").as_float().is_some_and(f64::is_nan));
        assert!(ok(b"d:-0;")
            .as_float()
            .is_some_and(|f| f == 0.0 && f.is_sign_negative()));
    }

    #[test]
    fn strings_are_raw_bytes_of_the_declared_length() {
        assert_eq!(ok(b"s:5:\"a\"\0\n;\";"), Value::Str(b"a\"\0\n;".to_vec()));
        assert_eq!(ok(b"s:0:\"\";"), Value::Str(vec![]));
        assert_eq!(ok(b"s:6:\"h\xc3\xa9llo\";").as_str(), Some("h\u{e9}llo"));
        assert_eq!(ok(b"s:1:\"\xff\";"), Value::Str(vec![0xff]));
    }

    #[test]
    fn escaped_strings_are_read_and_written_back_as_s() {
        // PHP 8.2: unserialize('S:4:"a\62\0aZ";') === "ab\nZ"
        let v = ok(b"S:4:\"a\\62\\0aZ\";");
        assert_eq!(v, Value::Str(b"ab\nZ".to_vec()));
        assert_eq!(serialize(&v), b"s:4:\"ab\nZ\";");
        assert_eq!(ok(b"S:1:\"\\4A\";"), Value::Str(b"J".to_vec()));
        assert_eq!(ok(b"a:1:{S:1:\"k\";N;}").get("k"), Some(&Value::Null));
    }

    #[test]
    fn objects_keep_visibility_and_order() {
        let v = ok(PHP_VECTORS[6]);
        let o = v.as_object().expect("object");
        let names: Vec<_> = o.props.iter().map(|(p, _)| p.clone()).collect();
        assert_eq!(
            names,
            vec![
                Prop::private("P", "secret"),
                Prop::protected("prot"),
                Prop::public("pub"),
                Prop::private("K", "secret"),
                Prop::public("e"),
            ]
        );
        assert_eq!(o.prop("secret").and_then(Value::as_str), Some("s"));
        assert_eq!(
            o.prop("e"),
            Some(&Value::Enum {
                class: "Suit".into(),
                case: "Hearts".into()
            })
        );
        // A private name may itself contain NUL after the class part.
        let v = ok(b"O:1:\"A\":1:{s:6:\"\0A\0b\0c\";N;}");
        assert_eq!(
            v.as_object().map(|o| o.props[0].0.clone()),
            Some(Prop::private("A", "b\0c"))
        );
    }

    #[test]
    fn custom_blobs_are_kept_raw() {
        let v = ok(PHP_VECTORS[8]);
        assert_eq!(
            v.index(0),
            Some(&Value::Custom {
                class: "Ser".into(),
                data: b"raw:\"}{".to_vec()
            })
        );
    }

    #[test]
    fn references_count_slots_like_php() {
        let v = ok(PHP_VECTORS[3]);
        let inner = v.index(2).expect("third element");
        assert_eq!(inner.index(1), Some(&Value::Ref(9)));
        assert_eq!(inner.index(2), Some(&Value::ObjRef(5)));
        // Slot 4 is the scalar 2, which r: may not name.
        let bad = b"a:2:{i:0;i:1;i:1;a:3:{i:0;i:2;i:1;O:8:\"stdClass\":0:{}i:2;r:4;}}";
        assert_eq!(err(bad), (57, ParseErrorKind::NotAnObject { n: 4 }));
        // At R:10 only 9 values have been read.
        let mut bad = PHP_VECTORS[3].to_vec();
        let at = bad.windows(4).position(|w| w == b"R:9;").expect("R:9");
        bad[at + 2] = b'8';
        assert!(unserialize(&bad).is_ok(), "R:8 is in range");
        bad.splice(at + 2..at + 3, *b"10");
        let count = 9;
        assert_eq!(
            err(&bad),
            (at, ParseErrorKind::BadReference { n: 10, count })
        );
    }

    #[test]
    fn reference_errors() {
        let bad_ref = |n, count| ParseErrorKind::BadReference { n, count };
        assert_eq!(err(b"r:1;"), (0, bad_ref(1, 0)));
        assert_eq!(
            err(b"a:1:{i:0;r:2;}"),
            (9, bad_ref(2, 1)),
            "r: may not name itself"
        );
        assert_eq!(err(b"a:1:{i:0;R:0;}"), (9, bad_ref(0, 1)));
        assert_eq!(err(b"a:1:{i:0;R:2;}"), (9, bad_ref(2, 1)));
        let huge = b"a:1:{i:0;R:99999999999999999999999;}";
        assert_eq!(err(huge), (9, bad_ref(u64::MAX, 1)));
        assert_eq!(
            err(b"a:2:{i:0;i:1;i:1;r:2;}"),
            (17, ParseErrorKind::NotAnObject { n: 2 })
        );
        // R: may name any value, including the array still being read.
        assert_eq!(ok(b"a:1:{i:0;R:1;}").index(0), Some(&Value::Ref(1)));
        // After a C: blob the numbers cannot be checked, so only 0 is refused.
        assert!(unserialize(b"a:2:{i:0;C:1:\"A\":0:{}i:1;r:99;}").is_ok());
        assert_eq!(
            err(b"a:2:{i:0;C:1:\"A\":0:{}i:1;r:0;}"),
            (25, bad_ref(0, 2))
        );
    }

    #[test]
    fn syntax_errors_name_offset_and_expectation() {
        let value = "a value (N, b, i, d, s, S, a, O, C, E, r or R)";
        let cases: &[(&[u8], usize, ParseErrorKind)] = &[
            (b"", 0, ParseErrorKind::UnexpectedEnd { expected: value }),
            (b"x", 0, unexpected(value, b'x')),
            (
                b"i:5",
                3,
                ParseErrorKind::UnexpectedEnd {
                    expected: "';' after integer",
                },
            ),
            (b"i:5x", 3, unexpected("';' after integer", b'x')),
            (b"i:;", 2, unexpected("digits of integer", b';')),
            (b"N:", 1, unexpected("';' after N", b':')),
            (b"b:2;", 2, unexpected("0 or 1", b'2')),
            (b"d:1e;", 4, unexpected("digits of exponent", b';')),
            (
                b"d:.;",
                3,
                unexpected("digits of float (or NAN, INF, -INF)", b';'),
            ),
            (
                b"d:-NAN;",
                3,
                unexpected("digits of float (or NAN, INF, -INF)", b'N'),
            ),
            (
                b"d:1.5",
                5,
                ParseErrorKind::UnexpectedEnd {
                    expected: "';' after float",
                },
            ),
            (b"s:+1:\"a\";", 2, unexpected("string length", b'+')),
            (
                b"s:1:\"ab\";",
                6,
                unexpected("'\"' after string bytes (is the length right?)", b'b'),
            ),
            (
                b"a:1:{d:1;i:1;}",
                5,
                unexpected("array key (i: or s:)", b'd'),
            ),
            (
                b"a:1:{i:0;N;N;}",
                11,
                unexpected("'}' after array elements (is the count right?)", b'N'),
            ),
            (
                b"O:1:\"A\":1:{i:0;s:0:\"\";}",
                11,
                unexpected("property name (s:)", b'i'),
            ),
            (
                b"C:1:\"A\":1:{ab}",
                12,
                unexpected("'}' after data (is the length right?)", b'b'),
            ),
            (b"N;N;", 2, ParseErrorKind::TrailingBytes { count: 2 }),
        ];
        for (input, offset, kind) in cases {
            let got = err(input);
            assert_eq!(
                got,
                (*offset, kind.clone()),
                "{}",
                String::from_utf8_lossy(input)
            );
        }
        let e = unserialize(b"i:5x").expect_err("rejected");
        assert_eq!(
            e.to_string(),
            "at byte 3: expected ';' after integer, found 'x'"
        );
        let e = unserialize(b"i:5\0").expect_err("rejected");
        assert_eq!(
            e.to_string(),
            "at byte 3: expected ';' after integer, found '\\x00'"
        );
    }

    #[test]
    fn number_errors() {
        let overflow = ParseErrorKind::IntegerOverflow;
        assert_eq!(err(b"i:9223372036854775808;"), (2, overflow.clone()));
        assert_eq!(err(b"i:-9223372036854775809;"), (2, overflow));
        let long = b"s:99999999999999999999999:\"\";";
        assert_eq!(err(long), (2, ParseErrorKind::LengthOverflow));
    }

    #[test]
    fn name_errors() {
        let class = |found| ParseErrorKind::InvalidClassName { found };
        assert_eq!(err(b"O:3:\"A-b\":0:{}"), (6, class(b'-')));
        assert_eq!(err(b"O:0:\"\":0:{}"), (5, ParseErrorKind::EmptyClassName));
        let utf8 = |what| ParseErrorKind::InvalidUtf8 { what };
        assert_eq!(err(b"O:2:\"A\xff\":0:{}"), (6, utf8("class name")));
        assert_eq!(err(b"C:2:\"\xc3A\":0:{}"), (5, utf8("class name")));
        assert_eq!(err(b"E:6:\"S\xff:Case\";"), (6, utf8("class name")));
        let private = b"O:1:\"A\":1:{s:4:\"\0\xff\0x\";N;}";
        assert_eq!(err(private), (11, utf8("private property class")));
        let bad_prop = ParseErrorKind::InvalidPropertyName;
        assert_eq!(
            err(b"O:1:\"A\":1:{s:3:\"\0ab\";N;}"),
            (11, bad_prop.clone())
        );
        assert_eq!(err(b"O:1:\"A\":1:{s:4:\"\0\0ab\";N;}"), (11, bad_prop));
        assert_eq!(err(b"E:4:\"Suit\";"), (5, ParseErrorKind::InvalidEnum));
        assert_eq!(err(b"E:5:\"Suit:\";"), (5, ParseErrorKind::InvalidEnum));
        assert_eq!(err(b"E:6:\"Suit:-\";"), (5, ParseErrorKind::InvalidEnum));
        assert_eq!(err(b"S:1:\"\\zz\";"), (5, ParseErrorKind::InvalidEscape));
        assert_eq!(err(b"S:2:\"\\6\";"), (5, ParseErrorKind::InvalidEscape));
    }

    #[test]
    fn hostile_lengths_fail_before_allocating() {
        let past = |declared, available| ParseErrorKind::LengthPastEnd {
            declared,
            available,
        };
        assert_eq!(err(b"s:999999999:\""), (2, past(999_999_999, 0)));
        assert_eq!(err(b"s:2:\"a\";"), (2, past(2, 1)));
        assert_eq!(err(b"S:999999999:\"abc\";"), (2, past(999_999_999, 3)));
        assert_eq!(err(b"C:1:\"A\":99:{}"), (8, past(99, 0)));
        assert_eq!(err(b"O:99:\"A\":0:{}"), (2, past(99, 5)));
        let count = |declared, min_size, available| ParseErrorKind::CountPastEnd {
            declared,
            min_size,
            available,
        };
        assert_eq!(err(b"a:999999999:{"), (12, count(999_999_999, 6, 0)));
        assert_eq!(
            err(b"O:1:\"A\":999999999:{}"),
            (18, count(999_999_999, 9, 0))
        );
        assert_eq!(
            err(b"a:18446744073709551615:{}"),
            (23, count(usize::MAX, 6, 0))
        );
        // The inner array may not use the 6 bytes its sibling needs: declared counts in total
        // stay within what the whole input can hold.
        assert_eq!(err(b"a:2:{i:0;a:2:{i:0;N;i:1;N;}}"), (13, count(2, 6, 6)));
        assert!(unserialize(b"a:2:{i:0;a:1:{i:0;N;}i:1;N;}").is_ok());
    }

    #[test]
    fn depth_is_bounded_before_recursing() {
        let input = b"a:1:{i:0;".repeat(10_000);
        assert_eq!(err(&input), (512 * 9, ParseErrorKind::TooDeep { max: 512 }));
        let limits = Limits {
            max_depth: 2,
            ..Limits::default()
        };
        assert!(unserialize_with(b"a:1:{i:0;a:0:{}}", &limits).is_ok());
        let deep = unserialize_with(b"a:1:{i:0;a:1:{i:0;a:0:{}}}", &limits);
        assert_eq!(
            deep.map_err(|e| (e.offset, e.kind)),
            Err((18, ParseErrorKind::TooDeep { max: 2 }))
        );
        let obj = unserialize_with(b"a:1:{i:0;a:1:{i:0;O:1:\"A\":0:{}}}", &limits);
        assert_eq!(obj.map_err(|e| e.offset), Err(18));
    }

    #[test]
    fn element_budget_counts_declared_totals() {
        let limits = Limits {
            max_elements: 3,
            ..Limits::default()
        };
        let input = b"a:2:{i:0;a:2:{i:0;N;i:1;N;}i:1;N;}";
        let got = unserialize_with(input, &limits).map_err(|e| (e.offset, e.kind));
        assert_eq!(got, Err((9, ParseErrorKind::TooManyElements { max: 3 })));
        assert!(unserialize(input).is_ok());
    }
}
