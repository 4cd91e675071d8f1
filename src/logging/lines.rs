//! `--log-format text` and `json`: the lines of tracing's own formats, written by a layer of ours so
//! that a line costs what it shows and no more.
//!
//! - `text`: `2026-12-07T04:17:18.123456Z  INFO job{queue=emails uuid="9f1c…" attempt=1}: target:
//!   message key=value …`, as tracing-subscriber's default format writes it: strings given as strings
//!   quoted and escaped, values given to be shown (`%value`) bare, ANSI colours only when asked for.
//!   Control characters in a message or a shown value are escaped, so one event is always one line
//!   and a value cannot write escape codes to a terminal.
//! - `json`: one object per line, `timestamp`, `level`, the event's fields at the top (`message`
//!   first), `target`, and under `span` the innermost span's fields (the job's, when no other span is
//!   open inside it) in the order they were recorded
//!   (tracing-subscriber sorts them) and its name, as `name`, unless a field takes that key (the job
//!   span's `name` is the job's class: tracing-subscriber wrote the key twice).
//!
//! A line logged in a job shows the job's fields (`job`'s task-local) as the outermost span, `job{…}`,
//! unless a real job span is there to show them. Span fields are kept as values when they are recorded
//! ([`SpanFields`]) and formatted only into the lines that show them; an event's fields are written
//! straight into the line as they are visited.
//! Each line is built in a buffer of the thread's own and handed whole to the writer.

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::io::Write as _;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use super::clock::Stamp;
use super::fields::{SpanFields, ValRef};
use super::job::SPAN_NAME;

/// Which of the two shapes a [`LineLayer`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Text { colour: bool },
    Json,
}

/// The layer; `W` is where the lines go (the non-blocking writer).
pub struct LineLayer<W> {
    writer: W,
    style: Style,
}

impl<W> LineLayer<W> {
    pub fn new(writer: W, style: Style) -> Self {
        LineLayer { writer, style }
    }
}

/// The most a thread's line buffer keeps between lines.
const KEEP: usize = 16 * 1024;

thread_local! {
    /// The line being built on this thread, kept to be reused.
    static LINE: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(512));
}

impl<S, W> Layer<S> for LineLayer<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + 'static,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            let mut fields = SpanFields::for_span(attrs.metadata());
            attrs.record(&mut fields);
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            if let Some(fields) = span.extensions_mut().get_mut::<SpanFields>() {
                values.record(fields);
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let write = |line: &mut Vec<u8>| {
            line.clear();
            let normalized = event.normalized_metadata();
            let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
            match self.style {
                Style::Text { colour } => text_line(line, event, meta, &ctx, Paint(colour)),
                Style::Json => json_line(line, event, meta, &ctx),
            }
            let _ = self.writer.make_writer().write_all(line);
        };
        // An event logged while a line is being built (from a value's Debug), or while the thread is
        // ending and its buffer is gone, gets a buffer of its own.
        let kept = LINE.try_with(|cell| match cell.try_borrow_mut() {
            Ok(mut line) => {
                write(&mut line);
                // A rare long line (a debug dump) does not keep its memory for the thread's life.
                if line.capacity() > KEEP {
                    *line = Vec::with_capacity(512);
                }
                true
            }
            Err(_) => false,
        });
        if kept != Ok(true) {
            write(&mut Vec::new());
        }
    }
}

// ---- text ----

/// ANSI styles, or nothing when colour is off.
#[derive(Clone, Copy)]
struct Paint(bool);

impl Paint {
    #[inline]
    fn on(self, out: &mut Vec<u8>, code: &str) {
        if self.0 {
            out.extend_from_slice(code.as_bytes());
        }
    }

    #[inline]
    fn off(self, out: &mut Vec<u8>) {
        self.on(out, "\x1b[0m");
    }

    #[inline]
    fn wrap(self, out: &mut Vec<u8>, code: &str, text: &str) {
        self.on(out, code);
        out.extend_from_slice(text.as_bytes());
        self.off(out);
    }
}

const DIM: &str = "\x1b[2m";
const BOLD: &str = "\x1b[1m";
const ITALIC: &str = "\x1b[3m";

fn level_text(level: &Level) -> (&'static str, &'static str) {
    match *level {
        Level::TRACE => ("TRACE", "\x1b[35m"),
        Level::DEBUG => ("DEBUG", "\x1b[34m"),
        Level::INFO => (" INFO", "\x1b[32m"),
        Level::WARN => (" WARN", "\x1b[33m"),
        Level::ERROR => ("ERROR", "\x1b[31m"),
    }
}

fn text_line<S>(
    out: &mut Vec<u8>,
    event: &Event<'_>,
    meta: &Metadata<'_>,
    ctx: &Context<'_, S>,
    paint: Paint,
) where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    paint.on(out, DIM);
    out.extend_from_slice(Stamp::now().as_str().as_bytes());
    out.push(b'Z');
    paint.off(out);
    out.push(b' ');
    let (level, colour) = level_text(meta.level());
    paint.wrap(out, colour, level);
    out.push(b' ');
    let mut spans = false;
    super::job::with_current(|job| {
        if let Some(job) = job {
            text_span(out, SPAN_NAME, job.each(), paint);
            spans = true;
        }
    });
    if let Some(scope) = ctx.event_scope(event) {
        for span in scope.from_root() {
            let extensions = span.extensions();
            let fields = extensions.get::<SpanFields>().into_iter();
            text_span(out, span.name(), fields.flat_map(SpanFields::each), paint);
            spans = true;
        }
    }
    if spans {
        out.push(b' ');
    }
    paint.wrap(out, DIM, meta.target());
    paint.wrap(out, DIM, ":");
    out.push(b' ');
    event.record(&mut TextFields {
        out,
        paint,
        first: true,
    });
    out.push(b'\n');
}

/// `name{field=value …}:` (`name:` for a span without fields).
fn text_span<'n, 'v>(
    out: &mut Vec<u8>,
    name: &str,
    fields: impl Iterator<Item = (&'n str, ValRef<'v>)>,
    paint: Paint,
) {
    paint.wrap(out, BOLD, name);
    let mut fields = fields.peekable();
    if fields.peek().is_some() {
        paint.wrap(out, BOLD, "{");
        for (i, (name, value)) in fields.enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            text_name(out, name, paint);
            text_val(out, value);
        }
        paint.wrap(out, BOLD, "}");
    }
    paint.wrap(out, DIM, ":");
}

/// `name=`, the name without a raw identifier's `r#`.
fn text_name(out: &mut Vec<u8>, name: &str, paint: Paint) {
    paint.wrap(out, ITALIC, name.strip_prefix("r#").unwrap_or(name));
    paint.wrap(out, DIM, "=");
}

fn text_val(out: &mut Vec<u8>, value: ValRef<'_>) {
    match value {
        ValRef::Str(s) => quoted(out, s),
        ValRef::Shown(s) => bare(out, s),
        ValRef::Int(i) => out.extend_from_slice(itoa::Buffer::new().format(i).as_bytes()),
        ValRef::Uint(u) => out.extend_from_slice(itoa::Buffer::new().format(u).as_bytes()),
        ValRef::Float(f) => float(out, f),
        ValRef::Bool(b) => out.extend_from_slice(if b { b"true" } else { b"false" }),
    }
}

/// A float as `{:?}` writes it (`12.345`, `1e21`): by ryu, a few times faster, where the two write the
/// same (`a_float_is_written_as_debug_writes_it`), by `{:?}` elsewhere.
///
/// Both write the shortest digits that read back as the same float, with the same notation in
/// 1e-4..1e15. They differ only on a tie, a float exactly halfway between the two nearest shortest
/// candidates (`{:?}` rounds it up, ryu to even): such a float has at most 18 significant digits when
/// written out in full, so one with 22 or more binary places after the point (at least 19 digits in
/// that range) cannot be one. Durations have ~50 such places.
fn float(out: &mut Vec<u8>, f: f64) {
    const MANTISSA: u64 = (1 << 52) - 1;
    let bits = f.to_bits();
    let exponent = ((bits >> 52) & 0x7ff) as i64;
    let mantissa = (bits & MANTISSA) | (1 << 52);
    // f = mantissa × 2^(exponent − 1075): binary places after the point, trailing zeros left out.
    let places = 1075 - exponent - i64::from(mantissa.trailing_zeros());
    if (1e-4..1e15).contains(&f.abs()) && places >= 22 {
        out.extend_from_slice(ryu::Buffer::new().format_finite(f).as_bytes());
    } else {
        let _ = write!(out, "{f:?}");
    }
}

/// True when every byte is printable ASCII but `"` and `\` (nothing to escape), eight bytes at a time.
fn plain(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Nonzero when some byte of `x` is zero (exact for whether there is one).
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let word_plain = |x: u64| {
        let control = x.wrapping_sub(ONES * 0x20) & !x & HIGH; // a byte below 0x20
        let high = (x | x.wrapping_add(ONES)) & HIGH; // 0x7f and up (a carry only adds false alarms)
        let quote = zero(x ^ (ONES * u64::from(b'"')));
        let backslash = zero(x ^ (ONES * u64::from(b'\\')));
        control | high | quote | backslash == 0
    };
    let mut words = bytes.chunks_exact(8);
    let all_words = words
        .by_ref()
        .all(|w| word_plain(u64::from_le_bytes(w.try_into().expect("8 bytes"))));
    all_words
        && words
            .remainder()
            .iter()
            .all(|&b| b.wrapping_sub(0x20) < 0x5f && b != b'"' && b != b'\\')
}

/// A string as `{:?}` writes it: quoted, `"` `\` and control characters escaped.
fn quoted(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    let start = out.len();
    out.push(b'"');
    if plain(bytes) {
        out.extend_from_slice(bytes);
    } else {
        // Printable ASCII with `"` or `\` (a class name): escaped here, in one pass.
        let mut from = 0;
        for (i, &b) in bytes.iter().enumerate() {
            if b == b'"' || b == b'\\' {
                out.extend_from_slice(&bytes[from..i]);
                out.push(b'\\');
                from = i;
            } else if !(0x20..0x7f).contains(&b) {
                // Controls and non-ASCII: what `{:?}` escapes is a matter of Unicode tables; it says.
                out.truncate(start);
                let _ = write!(out, "{s:?}");
                return;
            }
        }
        out.extend_from_slice(&bytes[from..]);
    }
    out.push(b'"');
}

/// A string as it is, but for control characters, escaped as `{:?}` escapes them.
fn bare(out: &mut Vec<u8>, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != 0x7f) {
        out.extend_from_slice(s.as_bytes());
        return;
    }
    for c in s.chars() {
        if c.is_control() {
            let _ = write!(out, "{}", c.escape_debug());
        } else {
            let mut utf8 = [0; 4];
            out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
        }
    }
}

/// A `fmt::Write` into the line that writes what it is given as [`bare`] does.
struct Bare<'a>(&'a mut Vec<u8>);

impl fmt::Write for Bare<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        bare(self.0, s);
        Ok(())
    }
}

/// An event's fields, written as tracing's default format writes them, separated by spaces.
struct TextFields<'a> {
    out: &'a mut Vec<u8>,
    paint: Paint,
    first: bool,
}

impl TextFields<'_> {
    /// The separator and `name=` (nothing for the message); false for a field not to be written.
    fn start(&mut self, field: &Field) -> bool {
        let name = field.name();
        if name.starts_with("log.") {
            return false;
        }
        if !std::mem::take(&mut self.first) {
            self.out.push(b' ');
        }
        if name != "message" {
            text_name(self.out, name, self.paint);
        }
        true
    }
}

impl Visit for TextFields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if self.start(field) {
            if field.name() == "message" {
                bare(self.out, value);
            } else {
                quoted(self.out, value);
            }
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        if self.start(field) {
            text_val(self.out, ValRef::Int(value));
        }
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        if self.start(field) {
            text_val(self.out, ValRef::Uint(value));
        }
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        if self.start(field) {
            text_val(self.out, ValRef::Float(value));
        }
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        if self.start(field) {
            text_val(self.out, ValRef::Bool(value));
        }
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        if self.start(field) {
            let _ = write!(Bare(self.out), "{value}");
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.start(field) {
            let _ = write!(Bare(self.out), "{value:?}");
        }
    }
}

// ---- json ----

fn json_line<S>(out: &mut Vec<u8>, event: &Event<'_>, meta: &Metadata<'_>, ctx: &Context<'_, S>)
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    out.extend_from_slice(b"{\"timestamp\":\"");
    out.extend_from_slice(Stamp::now().as_str().as_bytes());
    out.extend_from_slice(b"Z\",\"level\":\"");
    out.extend_from_slice(meta.level().as_str().as_bytes());
    out.push(b'"');
    event.record(&mut JsonFields(out));
    out.extend_from_slice(b",\"target\":");
    json_str(out, meta.target());
    match ctx.event_span(event) {
        Some(span) => {
            let extensions = span.extensions();
            let fields = extensions.get::<SpanFields>().into_iter();
            json_span(out, span.name(), fields.flat_map(SpanFields::each));
        }
        None => super::job::with_current(|job| {
            if let Some(job) = job {
                json_span(out, SPAN_NAME, job.each());
            }
        }),
    }
    out.extend_from_slice(b"}\n");
}

/// `,"span":{fields…}`, with the span's name as `name` unless a field takes that key (the job span's
/// `name` is the job's class: tracing-subscriber wrote the key twice).
fn json_span<'n, 'v>(
    out: &mut Vec<u8>,
    name: &str,
    fields: impl Iterator<Item = (&'n str, ValRef<'v>)>,
) {
    out.extend_from_slice(b",\"span\":{");
    let mut named = false;
    let mut first = true;
    for (field, value) in fields {
        if !std::mem::take(&mut first) {
            out.push(b',');
        }
        named |= field == "name";
        json_str(out, field);
        out.push(b':');
        json_val(out, value);
    }
    if !named {
        if !first {
            out.push(b',');
        }
        out.extend_from_slice(b"\"name\":");
        json_str(out, name);
    }
    out.push(b'}');
}

fn json_val(out: &mut Vec<u8>, value: ValRef<'_>) {
    match value {
        ValRef::Str(s) | ValRef::Shown(s) => json_str(out, s),
        ValRef::Int(i) => out.extend_from_slice(itoa::Buffer::new().format(i).as_bytes()),
        ValRef::Uint(u) => out.extend_from_slice(itoa::Buffer::new().format(u).as_bytes()),
        // As serde_json writes it (`1e+21`; `null` for NaN and infinities, which JSON has not).
        ValRef::Float(f) => {
            let _ = serde_json::to_writer(&mut *out, &f);
        }
        ValRef::Bool(b) => out.extend_from_slice(if b { b"true" } else { b"false" }),
    }
}

/// A JSON string: `"` `\` and control characters escaped, the rest as it is.
fn json_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    json_escaped(out, s);
    out.push(b'"');
}

fn json_escaped(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut plain = 0;
    for (i, &b) in s.as_bytes().iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&s.as_bytes()[plain..i]);
        if escape.is_empty() {
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]);
        } else {
            out.extend_from_slice(escape);
        }
        plain = i + 1;
    }
    out.extend_from_slice(&s.as_bytes()[plain..]);
}

/// A `fmt::Write` into the line that escapes what it is given as a JSON string's contents.
struct JsonEscaped<'a>(&'a mut Vec<u8>);

impl fmt::Write for JsonEscaped<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        json_escaped(self.0, s);
        Ok(())
    }
}

/// An event's fields as `,"name":value` pairs.
struct JsonFields<'a>(&'a mut Vec<u8>);

impl JsonFields<'_> {
    fn key(&mut self, field: &Field) -> bool {
        let name = field.name();
        if name.starts_with("log.") {
            return false;
        }
        self.0.push(b',');
        json_str(self.0, name.strip_prefix("r#").unwrap_or(name));
        self.0.push(b':');
        true
    }
}

impl Visit for JsonFields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if self.key(field) {
            json_str(self.0, value);
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        if self.key(field) {
            json_val(self.0, ValRef::Int(value));
        }
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        if self.key(field) {
            json_val(self.0, ValRef::Uint(value));
        }
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        if self.key(field) {
            json_val(self.0, ValRef::Float(value));
        }
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        if self.key(field) {
            json_val(self.0, ValRef::Bool(value));
        }
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        if self.key(field) {
            self.0.push(b'"');
            let _ = write!(JsonEscaped(self.0), "{value}");
            self.0.push(b'"');
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.key(field) {
            self.0.push(b'"');
            let _ = write!(JsonEscaped(self.0), "{value:?}");
            self.0.push(b'"');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logging::capture::lines;
    use crate::logging::job::tests::as_the_worker_does;
    use crate::logging::job::JobScope;
    use proptest::prelude::*;
    use tracing::field::Empty;

    proptest! {
        #[test]
        fn a_string_is_quoted_as_debug_quotes_it(
            any in any::<String>(),
            ascii in "[ -~]{0,40}",
            mostly in "[a-f0-9-]{0,30}[\\x00-\\x7f\"\\\\]?[a-f0-9-]{0,30}",
        ) {
            for s in [any, ascii, mostly] {
                let mut out = Vec::new();
                quoted(&mut out, &s);
                prop_assert_eq!(String::from_utf8(out).unwrap(), format!("{s:?}"));
            }
        }
    }

    proptest! {
        #[test]
        fn a_float_is_written_as_debug_writes_it(
            bits in any::<u64>(),
            ms in 0.0..100_000.0_f64,
            wide in -1e17..1e17_f64,
        ) {
            for f in [f64::from_bits(bits), ms, wide, ms / 1e4, ms * 1e9] {
                let mut out = Vec::new();
                float(&mut out, f);
                prop_assert_eq!(String::from_utf8(out).unwrap(), format!("{f:?}"));
            }
        }
    }

    #[test]
    fn a_float_at_the_edges_of_ryus_range_is_written_as_debug_writes_it() {
        let edges = [
            0.0,
            -0.0,
            1e-4,
            9.999e-5,
            0.000123,
            1.0,
            12.0,
            1e14,
            999_999_999_999_999.9,
            79_849_611_571_703.0 + 0.125, // exactly halfway: {:?} writes .13, ryu .12
            0.1 + 0.2,
            1.0 / 3.0,
            2.5,
            123_456.000_488_281_25,
            1e15,
            1e16,
            1e21,
            f64::MAX,
            f64::MIN_POSITIVE,
            f64::NAN,
            f64::INFINITY,
            -f64::INFINITY,
        ];
        for f in edges {
            let mut out = Vec::new();
            float(&mut out, f);
            assert_eq!(String::from_utf8(out).unwrap(), format!("{f:?}"), "{f:e}");
        }
    }

    #[test]
    fn every_byte_to_escape_is_seen_at_every_place_of_a_word() {
        // Each byte that needs escaping, at each place of a word and in the tail.
        for bad in [b'"', b'\\', 0x00, 0x1f, 0x7f, 0x80, 0xff] {
            for at in 0..19 {
                let mut bytes = vec![b'a'; 19];
                bytes[at] = bad;
                assert!(!plain(&bytes), "{bad:#x} at {at}");
            }
        }
        assert!(plain(b" !~}0123456789abcdefABCDEF-_"));
    }

    fn ours(style: Style, f: impl FnOnce()) -> Vec<String> {
        lines(|w| LineLayer::new(w, style), f)
    }

    /// What tracing-subscriber's own formats write for the same events, set up as the worker had them.
    fn tracing_text(f: impl FnOnce()) -> Vec<String> {
        lines(
            |w| {
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .with_writer(w)
            },
            f,
        )
    }

    fn tracing_json(f: impl FnOnce()) -> Vec<String> {
        lines(
            |w| {
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(w)
            },
            f,
        )
    }

    /// Events of every kind of field, outside any span, in the job span and in a span inside it.
    fn events() {
        tracing::info!(
            queues = "default,emails",
            concurrency = 64_u64,
            "worker started"
        );
        tracing::warn!(
            delay = -3_i64,
            ratio = 0.25_f64,
            big = 1e21_f64,
            ok = true,
            reason = %"HTTP 503: \"busy\"",
            data = ?vec!["a", "b\\c"],
            r#type = "raw \"identifier\" in C:\\path",
            accented = "café \\ \"quoted\"",
            "it said \"no\" and é"
        );
        let job = tracing::info_span!("job", uuid = Empty, attempt = Empty, queue = %"whatsapp",
            connection = %"redis");
        let _in_job = job.enter();
        job.record("uuid", "9f1c-uuid");
        job.record("attempt", 2_i64);
        tracing::info!(outcome = "done", ms = 12.345_f64, "job done");
        let inner = tracing::debug_span!("send", to = "masked", empty = Empty);
        let _in_inner = inner.enter();
        tracing::error!(status = 503_u64, "WhatsApp Cloud API answered");
        tracing::error!(target: "lettre::transport", "no fields at all");
    }

    /// A text line without its timestamp.
    fn untimed_text(lines: Vec<String>) -> Vec<String> {
        lines
            .into_iter()
            .map(|l| {
                let ts = &l[..28];
                assert!(
                    chrono::DateTime::parse_from_rfc3339(ts.trim_end()).is_ok(),
                    "{l}"
                );
                l[28..].to_owned()
            })
            .collect()
    }

    /// A JSON line without its timestamp.
    fn untimed_json(lines: Vec<String>) -> Vec<String> {
        lines
            .into_iter()
            .map(|l| {
                let start = l.find(r#""timestamp":""#).unwrap() + 13;
                let end = start + l[start..].find('"').unwrap();
                assert!(
                    chrono::DateTime::parse_from_rfc3339(&l[start..end]).is_ok(),
                    "{l}"
                );
                format!("{}{}", &l[..start], &l[end..])
            })
            .collect()
    }

    #[test]
    fn text_lines_are_the_lines_of_tracing_subscribers_text_format() {
        let got = untimed_text(ours(Style::Text { colour: false }, events));
        let want = untimed_text(tracing_text(events));
        assert_eq!(got.len(), 5, "{got:#?}");
        assert_eq!(got, want);
        assert_eq!(
            got[2],
            r#" INFO job{queue=whatsapp connection=redis uuid="9f1c-uuid" attempt=2}: defer_worker::logging::lines::tests: job done outcome="done" ms=12.345"#
        );
    }

    #[test]
    fn json_lines_are_the_lines_of_tracing_subscribers_json_format() {
        let got = untimed_json(ours(Style::Json, events));
        let want = untimed_json(tracing_json(events));
        assert_eq!(got.len(), 5, "{got:#?}");
        // The same keys in the same order up to the span, whose fields tracing sorts by name and we
        // keep in the order they were recorded: the same object.
        let head = |l: &String| l.split(",\"span\":").next().unwrap().to_owned();
        assert_eq!(
            got.iter().map(head).collect::<Vec<_>>(),
            want.iter().map(head).collect::<Vec<_>>()
        );
        let parsed = |l: &Vec<String>| -> Vec<serde_json::Value> {
            l.iter().map(|l| serde_json::from_str(l).unwrap()).collect()
        };
        assert_eq!(parsed(&got), parsed(&want));
        assert_eq!(parsed(&got)[2]["span"]["attempt"], 2);
    }

    /// A job as the worker runs it, with a line at each of its steps and a span of a library's
    /// inside it at the last.
    fn job_events(scope: JobScope) {
        as_the_worker_does(scope, |step| {
            tracing::info!(step, "a step");
            if step == 2 {
                let inner = tracing::info_span!("send", to = "masked");
                let _in_inner = inner.enter();
                tracing::warn!(status = 503_u64, "inside a span of its own");
            }
        });
    }

    #[test]
    fn the_job_context_writes_the_lines_of_the_job_span() {
        let untraced = || job_events(JobScope::untraced("whatsapp", "redis"));
        let traced = || job_events(JobScope::new("whatsapp", "redis"));
        let text = untimed_text(ours(Style::Text { colour: false }, untraced));
        assert_eq!(text, untimed_text(tracing_text(traced)));
        assert_eq!(
            text,
            untimed_text(ours(Style::Text { colour: false }, traced))
        );
        assert_eq!(text.len(), 4, "{text:#?}");
        assert_eq!(
            text[0],
            " INFO job{queue=whatsapp connection=redis}: defer_worker::logging::lines::tests: a step step=0"
        );
        assert_eq!(
            text[3],
            r#" WARN job{queue=whatsapp connection=redis uuid="9f1c-uuid" name="App\\Jobs\\DeferredJob" attempt=2 action="whatsapp_notification"}:send{to="masked"}: defer_worker::logging::lines::tests: inside a span of its own status=503"#
        );
        let parsed = |l: Vec<String>| -> Vec<serde_json::Value> {
            untimed_json(l)
                .iter()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        };
        let json = ours(Style::Json, untraced);
        // tracing-subscriber writes the span's `name` after the job's (a key twice: a JSON reader
        // keeps the span's); the rest is the same.
        let unnamed = |mut lines: Vec<serde_json::Value>| {
            for line in &mut lines {
                line["span"].as_object_mut().unwrap().remove("name");
            }
            lines
        };
        assert_eq!(
            unnamed(parsed(json.clone())),
            unnamed(parsed(tracing_json(traced)))
        );
        assert_eq!(
            untimed_json(json.clone()),
            untimed_json(ours(Style::Json, traced))
        );
        let json = parsed(json);
        assert_eq!(
            json[0]["span"],
            serde_json::json!({"queue": "whatsapp", "connection": "redis", "name": "job"})
        );
        assert_eq!(json[2]["span"]["action"], "whatsapp_notification");
        assert_eq!(json[2]["span"]["name"], "App\\Jobs\\DeferredJob");
        assert_eq!(
            json[3]["span"],
            serde_json::json!({"to": "masked", "name": "send"})
        );
    }

    #[test]
    fn a_field_recorded_again_is_shown_once_with_its_last_value() {
        let record_twice = || {
            let job = tracing::info_span!("job", attempt = Empty, name = Empty);
            let _in_job = job.enter();
            job.record("attempt", 1_i64);
            job.record("name", "App\\Jobs\\DeferredJob");
            job.record("attempt", 2_i64);
            tracing::info!("job done");
        };
        let text = untimed_text(ours(Style::Text { colour: false }, record_twice));
        assert_eq!(
            text,
            [
                r#" INFO job{attempt=2 name="App\\Jobs\\DeferredJob"}: defer_worker::logging::lines::tests: job done"#
            ]
        );
        // The span's `name` field keeps its key: the job's name, not the span's.
        let json = ours(Style::Json, record_twice);
        let line: serde_json::Value = serde_json::from_str(&json[0]).unwrap();
        assert_eq!(
            line["span"],
            serde_json::json!({"attempt": 2, "name": "App\\Jobs\\DeferredJob"})
        );
        assert_eq!(json[0].matches("\"name\"").count(), 1, "{}", json[0]);
    }

    #[test]
    fn control_characters_cannot_break_a_line_or_reach_a_terminal() {
        let hostile = || {
            tracing::warn!(reason = %"line one\nline two\x1b[31m", "said:\r\n\x1b[2Jgone");
        };
        let text = ours(Style::Text { colour: false }, hostile);
        assert_eq!(text.len(), 1, "{text:?}");
        assert!(
            text[0].ends_with(r"said:\r\n\u{1b}[2Jgone reason=line one\nline two\u{1b}[31m"),
            "{}",
            text[0]
        );
        let json = ours(Style::Json, hostile);
        assert_eq!(json.len(), 1, "{json:?}");
        let line: serde_json::Value = serde_json::from_str(&json[0]).unwrap();
        assert_eq!(line["message"], "said:\r\n\x1b[2Jgone");
        assert_eq!(line["reason"], "line one\nline two\x1b[31m");
    }

    #[test]
    fn a_long_line_is_written_whole_and_its_buffer_is_not_kept() {
        let long = "x".repeat(100_000);
        let got = ours(Style::Json, || {
            tracing::info!(dump = long.as_str(), "a long one");
        });
        assert_eq!(got.len(), 1);
        let line: serde_json::Value = serde_json::from_str(&got[0]).unwrap();
        assert_eq!(line["dump"].as_str().map(str::len), Some(100_000));
        let kept = LINE.with(|line| line.borrow().capacity());
        assert!(kept <= KEEP, "{kept} bytes kept");
    }

    #[test]
    fn colours_are_written_only_when_asked_for() {
        let one = || tracing::warn!(code = 131_026_u64, "WhatsApp said no");
        let plain = ours(Style::Text { colour: false }, one);
        assert!(!plain[0].contains('\x1b'), "{plain:?}");
        let coloured = ours(Style::Text { colour: true }, one);
        assert!(coloured[0].contains("\x1b[33m WARN\x1b[0m"), "{coloured:?}");
        assert!(coloured[0].contains("\x1b[3mcode\x1b[0m"), "{coloured:?}");
    }
}
