//! The envelope read in one pass over the payload's bytes, for the payloads Laravel writes: one
//! object whose known keys hold strings, integers, booleans or null. It is [`super::Payload::parse`]'s
//! fast path; serde_json's reader spent ~18 k instructions on a 722-byte payload, most of them on the
//! escapes of `data.command` (short runs between `\"` and `\\`, each copied through a growing buffer),
//! a quarter of the worker's own cost per job; this reader ~14 k (README.md, Performance: callgrind on
//! the benchmark's drain through `DEFER_WORKER_WRAP`).
//!
//! It gives up (`None`) on whatever it does not read exactly as the serde path does, and that path
//! then reads the payload as before, errors included: a key written twice or with an escape in it, a
//! number that is not a plain integer of at most 18 digits, a known key with an unexpected type, an
//! object or an array longer than 100 bytes under an unknown key, bad JSON anywhere. So a payload it
//! reads gives the same [`Envelope`] the serde path gives, which the tests below and the `envelope`
//! fuzz target check against each other.

use serde::de::IgnoredAny;

use super::{Data, Envelope};

/// The envelope of `text`, or `None` when the serde path must read it.
pub(super) fn envelope(text: &str) -> Option<Envelope> {
    let mut s = Scan { text, at: 0 };
    let mut env = Envelope::default();
    let mut seen = 0u32;
    s.object(|s, key| {
        let field = Field::of(key);
        if let Some(f) = field {
            let bit = 1 << f as u32;
            if seen & bit != 0 {
                return None;
            }
            seen |= bit;
        }
        match field {
            Some(Field::Uuid) => env.uuid = s.string_or_null()?,
            Some(Field::DisplayName) => env.display_name = s.string_or_null()?,
            Some(Field::Job) => env.job = s.string_or_null()?,
            Some(Field::MaxTries) => env.max_tries = s.lenient_int()?,
            Some(Field::MaxExceptions) => env.max_exceptions = s.lenient_int()?,
            Some(Field::FailOnTimeout) => env.fail_on_timeout = s.bool_or_null()?,
            Some(Field::Backoff) => env.backoff = s.string_or_null()?.filter(|b| !b.is_empty()),
            Some(Field::Timeout) => env.timeout = s.lenient_int()?,
            Some(Field::RetryUntil) => env.retry_until = s.lenient_int()?,
            Some(Field::Data) => env.data = s.data()?,
            Some(Field::Id) => env.id = s.string_or_null()?,
            Some(Field::Attempts) => env.attempts = s.lenient_int()?,
            Some(Field::CreatedAt) => env.created_at = s.lenient_int()?,
            Some(Field::Delay) => env.delay = s.lenient_int()?,
            None => s.skip_unknown()?,
        }
        Some(())
    })?;
    s.ws();
    (s.at == text.len()).then_some(env)
}

/// The envelope's keys, as Laravel spells them.
#[derive(Clone, Copy)]
enum Field {
    Uuid,
    DisplayName,
    Job,
    MaxTries,
    MaxExceptions,
    FailOnTimeout,
    Backoff,
    Timeout,
    RetryUntil,
    Data,
    Id,
    Attempts,
    CreatedAt,
    Delay,
}

impl Field {
    fn of(key: &str) -> Option<Field> {
        Some(match key {
            "uuid" => Field::Uuid,
            "displayName" => Field::DisplayName,
            "job" => Field::Job,
            "maxTries" => Field::MaxTries,
            "maxExceptions" => Field::MaxExceptions,
            "failOnTimeout" => Field::FailOnTimeout,
            "backoff" => Field::Backoff,
            "timeout" => Field::Timeout,
            "retryUntil" => Field::RetryUntil,
            "data" => Field::Data,
            "id" => Field::Id,
            "attempts" => Field::Attempts,
            "createdAt" => Field::CreatedAt,
            "delay" => Field::Delay,
            _ => return None,
        })
    }
}

/// A position in the payload. Every method returns `None` to give up.
struct Scan<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Scan<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn literal(&mut self, word: &str) -> Option<()> {
        self.text[self.at..]
            .starts_with(word)
            .then(|| self.at += word.len())
    }

    /// `{ "key": value, … }`, `value` read by `member` (which is called at the value).
    fn object(&mut self, mut member: impl FnMut(&mut Self, &'a str) -> Option<()>) -> Option<()> {
        self.ws();
        (self.peek()? == b'{').then(|| self.at += 1)?;
        self.ws();
        if self.peek()? == b'}' {
            self.at += 1;
            return Some(());
        }
        loop {
            let key = self.plain_key()?;
            self.ws();
            (self.peek()? == b':').then(|| self.at += 1)?;
            self.ws();
            member(self, key)?;
            self.ws();
            match self.peek()? {
                b',' => {
                    self.at += 1;
                    self.ws();
                }
                b'}' => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// A key without escapes or control characters.
    fn plain_key(&mut self) -> Option<&'a str> {
        (self.peek()? == b'"').then(|| self.at += 1)?;
        let start = self.at;
        let len = self.text.as_bytes()[start..]
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
        self.at = start + len;
        (self.peek()? == b'"').then(|| self.at += 1)?;
        Some(&self.text[start..start + len])
    }

    /// `null` or a string.
    fn string_or_null(&mut self) -> Option<Option<String>> {
        match self.peek()? {
            b'n' => self.literal("null").map(|()| None),
            b'"' => self.string().map(Some),
            _ => None,
        }
    }

    fn bool_or_null(&mut self) -> Option<Option<bool>> {
        match self.peek()? {
            b'n' => self.literal("null").map(|()| None),
            b't' => self.literal("true").map(|()| Some(true)),
            b'f' => self.literal("false").map(|()| Some(false)),
            _ => None,
        }
    }

    /// What `lenient_int` makes of a plain integer, a string, a boolean or null.
    fn lenient_int(&mut self) -> Option<Option<i64>> {
        match self.peek()? {
            b'"' => Some(self.string()?.trim().parse().ok()),
            b'n' => self.literal("null").map(|()| None),
            b't' => self.literal("true").map(|()| None),
            b'f' => self.literal("false").map(|()| None),
            _ => self.integer().map(Some),
        }
    }

    /// `-?(0|[1-9][0-9]*)` of at most 18 digits (so it fits an i64), not followed by a fraction or
    /// an exponent; `-0` is left to serde_json.
    fn integer(&mut self) -> Option<i64> {
        let neg = self.peek()? == b'-';
        let start = self.at + usize::from(neg);
        let digits = self.text.as_bytes()[start..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        let body = &self.text.as_bytes()[start..start + digits];
        if digits == 0 || digits > 18 || (body[0] == b'0' && (digits > 1 || neg)) {
            return None;
        }
        self.at = start + digits;
        if matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        let n = body.iter().fold(0i64, |n, &d| n * 10 + i64::from(d - b'0'));
        Some(if neg { -n } else { n })
    }

    /// `data`: null, an object whose known keys hold strings or null, or any other value (no field).
    fn data(&mut self) -> Option<Option<Data>> {
        match self.peek()? {
            b'n' => return self.literal("null").map(|()| None),
            // A string job's data of another shape: no field (as the serde path reads it).
            b'{' => {}
            _ => return self.skip_unknown().map(|()| Some(Data::default())),
        }
        let mut data = Data::default();
        self.object(|s, key| {
            match key {
                "commandName" => data.command_name = s.string_or_null()?,
                "command" => data.command = s.string_or_null()?,
                "batchId" => data.batch_id = s.string_or_null()?,
                _ => s.skip_unknown()?,
            }
            Some(())
        })?;
        Some(Some(data))
    }

    /// Skips the value of an unknown key as serde_json validates it. An object or an array longer
    /// than [`NESTED_MAX`] bytes is left to serde_json, whose nesting limit counts from the top.
    fn skip_unknown(&mut self) -> Option<()> {
        let nested = matches!(self.peek()?, b'{' | b'[');
        let mut values =
            serde_json::Deserializer::from_str(&self.text[self.at..]).into_iter::<IgnoredAny>();
        values.next()?.ok()?;
        let len = values.byte_offset();
        if nested && len > NESTED_MAX {
            return None;
        }
        self.at += len;
        Some(())
    }

    /// A string at its opening quote, unescaped: one pass over plain runs to find its end, then one
    /// copy into a string of that size (a string without escapes is one copy of its bytes).
    fn string(&mut self) -> Option<String> {
        let (text, bytes) = (self.text, self.text.as_bytes());
        let start = self.at + 1;
        let mut end = start;
        let mut escapes = false;
        loop {
            while !STOP[usize::from(*bytes.get(end)?)] {
                end += 1;
            }
            match bytes[end] {
                b'"' => break,
                b'\\' => {
                    escapes = true;
                    end += 2;
                }
                _ => return None,
            }
        }
        self.at = end + 1;
        let raw = text.get(start..end)?;
        if !escapes {
            return Some(raw.to_owned());
        }
        let mut out = String::with_capacity(raw.len());
        let mut run = 0;
        let mut i = 0;
        while i < raw.len() {
            if raw.as_bytes()[i] != b'\\' {
                i += 1;
                continue;
            }
            out.push_str(&raw[run..i]);
            let (c, used) = unescape(&raw.as_bytes()[i + 1..])?;
            out.push(c);
            i += 1 + used;
            run = i;
        }
        out.push_str(&raw[run..]);
        Some(out)
    }
}

/// The longest object or array under an unknown key that is skipped here: too short to nest
/// anywhere near serde_json's limit of 128 levels (Horizon's `tags`, Laravel 11's log context).
const NESTED_MAX: usize = 100;

/// The bytes that end a plain run in a string: the closing quote, a backslash, a control character.
const STOP: [bool; 256] = {
    let mut stop = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        stop[b] = true;
        b += 1;
    }
    stop[b'"' as usize] = true;
    stop[b'\\' as usize] = true;
    stop
};

/// One escape, after its backslash: the character and how many bytes it took.
fn unescape(b: &[u8]) -> Option<(char, usize)> {
    let c = match *b.first()? {
        b'"' => '"',
        b'\\' => '\\',
        b'/' => '/',
        b'b' => '\u{8}',
        b'f' => '\u{c}',
        b'n' => '\n',
        b'r' => '\r',
        b't' => '\t',
        b'u' => {
            let high = hex4(b.get(1..5)?)?;
            return match high {
                0xD800..=0xDBFF => {
                    if b.get(5..7)? != b"\\u" {
                        return None;
                    }
                    let low = hex4(b.get(7..11)?)?;
                    if !(0xDC00..=0xDFFF).contains(&low) {
                        return None;
                    }
                    let c = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00);
                    Some((char::from_u32(c)?, 11))
                }
                _ => Some((char::from_u32(high)?, 5)),
            };
        }
        _ => return None,
    };
    Some((c, 1))
}

fn hex4(b: &[u8]) -> Option<u32> {
    b.iter()
        .try_fold(0u32, |n, &d| Some(n * 16 + char::from(d).to_digit(16)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The serde path of `Payload::parse`: the derive, else the tree (a key given twice).
    fn serde_path(text: &str) -> Option<Envelope> {
        serde_json::from_str::<Envelope>(text).ok().or_else(|| {
            serde_json::from_str::<serde_json::Value>(text)
                .ok()
                .filter(serde_json::Value::is_object)
                .and_then(|v| serde_json::from_value(v).ok())
        })
    }

    /// Whenever the scan reads a payload, the serde path reads the same envelope from it.
    fn agrees(text: &str) -> Option<Envelope> {
        let fast = envelope(text);
        if let Some(fast) = &fast {
            assert_eq!(Some(fast), serde_path(text).as_ref(), "{text}");
        }
        fast
    }

    fn fixtures() -> Vec<(String, String)> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/payloads");
        let mut all: Vec<_> = std::fs::read_dir(&dir)
            .expect("fixtures/payloads")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .map(|p| {
                let text = std::fs::read_to_string(&p).expect("fixture");
                (p.file_name().unwrap().to_string_lossy().into_owned(), text)
            })
            .collect();
        all.sort();
        all
    }

    #[test]
    fn every_fixture_payload_is_read_by_the_scan_as_serde_reads_it() {
        let all = fixtures();
        assert!(all.len() >= 20, "{} fixtures", all.len());
        for (name, text) in &all {
            let env = agrees(text.trim_end()).unwrap_or_else(|| panic!("{name}: not scanned"));
            assert!(env.uuid.is_some() || env.job.is_some(), "{name}");
        }
    }

    #[test]
    fn escapes_are_undone_as_json_defines_them() {
        let env = agrees(
            r#"{"data":{"command":"a\"b\\c\/d\b\f\n\r\t\u0000\u00e9\ud83d\ude00 z","commandName":""},"id":"x"}"#,
        )
        .unwrap();
        assert_eq!(
            env.data.unwrap().command.as_deref(),
            Some("a\"b\\c/d\u{8}\u{c}\n\r\t\0é😀 z")
        );
    }

    #[test]
    fn lenient_keys_take_what_serde_takes() {
        let env = agrees(
            r#" { "attempts" : "  3 ", "tags":["a",{"b":[]}], "maxTries":true, "timeout":-60, "delay":"x", "backoff":"", "failOnTimeout":null, "data":null, "type":"job", "pushedAt":"1.5", "n":-1.5e3 } "#,
        )
        .unwrap();
        assert_eq!(env.attempts, Some(3));
        assert_eq!(
            (env.max_tries, env.timeout, env.delay),
            (None, Some(-60), None)
        );
        assert_eq!(
            (env.backoff, env.fail_on_timeout, env.data),
            (None, None, None)
        );
        assert_eq!(agrees("{}"), Some(Envelope::default()));
    }

    #[test]
    fn what_serde_must_read_is_left_to_it() {
        for text in [
            r#"{"uuid":"a","uuid":"b"}"#, // a key twice: the last one (the tree path)
            r#"{"attempts":1.0}"#,        // cjson's float
            r#"{"attempts":-0}"#,         // negative zero
            r#"{"attempts":1234567890123456789}"#,
            r#"{"attempts":01}"#,        // bad JSON
            r#"{"backoff":[1,2]}"#,      // a list
            r#"{"backoff":5}"#,          // a number
            r#"{"id":7}"#,               // a number as a string key
            r#"{"u\u0075id":"a"}"#,      // an escaped key
            r#"{"uuid":"\ud800"}"#,      // a lone surrogate
            r#"{"uuid":"a"} x"#,         // trailing text
            r#"{"uuid":"a",}"#,          // trailing comma
            "{\"uuid\":\"a\u{1}\"}",     // a raw control character
            r#"{"data":{"command":1}}"#, // a number for a string
            r#"[1]"#,
            "",
        ] {
            assert_eq!(envelope(text), None, "{text}");
        }
        let deep = format!(r#"{{"tags":{}{}}}"#, "[".repeat(60), "]".repeat(60));
        assert_eq!(envelope(&deep), None, "a long nested value");
    }

    /// A JSON value of any kind an envelope key might hold, as text.
    fn value() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("null".to_owned()),
            Just("true".to_owned()),
            Just("false".to_owned()),
            any::<i64>().prop_map(|n| n.to_string()),
            (-1000i64..1000).prop_map(|n| n.to_string()),
            any::<f64>().prop_map(|f| serde_json::to_string(&f).unwrap()),
            Just("-0".to_owned()),
            Just("1e3".to_owned()),
            "[ -~\u{e9}\u{1F600}\u{0}\n]{0,12}".prop_map(|s| serde_json::to_string(&s).unwrap()),
            r#"[a-z\\"/ ]{0,6}(\\u[0-9a-fA-F]{4}|\\[nrtbf/"\\]|\\x)?[a-z]{0,3}"#
                .prop_map(|s| format!("\"{s}\"")),
        ];
        leaf.prop_recursive(2, 8, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3)
                    .prop_map(|v| format!("[{}]", v.join(","))),
                prop::collection::vec((key(), inner), 0..4).prop_map(|kv| object(&kv)),
            ]
        })
    }

    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "uuid",
                "displayName",
                "job",
                "maxTries",
                "maxExceptions",
                "failOnTimeout",
                "backoff",
                "timeout",
                "retryUntil",
                "data",
                "id",
                "attempts",
                "createdAt",
                "delay",
                "commandName",
                "command",
                "batchId",
                "type",
                "tags",
            ])
            .prop_map(str::to_owned),
            "[a-zA-Z]{1,4}",
        ]
    }

    fn object(kv: &[(String, String)]) -> String {
        let members: Vec<String> = kv.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        format!("{{{}}}", members.join(","))
    }

    proptest! {
        #[test]
        fn any_envelope_is_read_as_serde_reads_it_or_left_to_it(
            kv in prop::collection::vec((key(), value()), 0..10),
        ) {
            agrees(&object(&kv));
        }

        #[test]
        fn an_envelope_of_the_kinds_it_reads_is_read(
            kv in prop::collection::vec((
                prop::sample::select(vec![
                    "maxTries", "maxExceptions", "timeout", "retryUntil", "attempts", "createdAt",
                    "delay", "type", "pushedAt", "zz",
                ]).prop_map(str::to_owned),
                prop_oneof![
                    Just("null".to_owned()),
                    Just("false".to_owned()),
                    any::<i32>().prop_map(|n| n.to_string()),
                    "[ -~\u{e9}\u{1F600}\u{0}\n]{0,12}".prop_map(|s| serde_json::to_string(&s).unwrap()),
                ],
            ), 0..8),
            command in "[ -~\u{e9}\n]{0,40}",
        ) {
            let mut seen = std::collections::HashSet::new();
            let mut kv: Vec<_> = kv.into_iter().filter(|(k, _)| seen.insert(k.clone())).collect();
            let data = format!(r#"{{"command":{}}}"#, serde_json::to_string(&command).unwrap());
            kv.push(("data".to_owned(), data));
            let env = agrees(&object(&kv));
            prop_assert!(env.is_some(), "{}", object(&kv));
            prop_assert_eq!(env.unwrap().data.unwrap().command, Some(command));
        }

        #[test]
        fn a_damaged_fixture_is_read_as_serde_reads_it_or_left_to_it(
            pick in any::<prop::sample::Index>(),
            at in any::<prop::sample::Index>(),
            cut in 0usize..4,
            insert in prop::sample::select(vec!["", "\"", "\\", ",", "}", "{", " ", "1", "\\u", "null", ":", "\u{1}"]),
        ) {
            let all = fixtures();
            let (_, text) = &all[pick.index(all.len())];
            let mut bytes = text.as_bytes().to_vec();
            let i = at.index(bytes.len());
            bytes.splice(i..(i + cut).min(bytes.len()), insert.bytes());
            if let Ok(text) = std::str::from_utf8(&bytes) {
                agrees(text);
            }
        }
    }
}
