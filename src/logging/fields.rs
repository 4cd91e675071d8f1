//! Field values as the formatting layers keep them between the moment a field is recorded and the line
//! that shows it: a span's fields live in the span as values ([`SpanFields`]), each replaced when it is
//! recorded again, and are formatted only when a line is written, in that line's format.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};

/// One field's value.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Val {
    /// A string given as one (`uuid = info.uuid.as_str()`): quoted in `text`.
    Str(String),
    /// A value given to be shown (`queue = %name`, `data = ?map`), as it showed itself: bare in `text`.
    Shown(String),
    Int(i64),
    Uint(u64),
    Float(f64),
    Bool(bool),
}

/// A field's value as a line writes it: a [`Val`] borrowed, or a value that was never kept.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum ValRef<'a> {
    Str(&'a str),
    Shown(&'a str),
    Int(i64),
    Uint(u64),
    Float(f64),
    Bool(bool),
}

impl Val {
    pub(super) fn as_str(&self) -> Option<&str> {
        match self {
            Val::Str(s) | Val::Shown(s) => Some(s),
            _ => None,
        }
    }

    pub(super) fn as_i64(&self) -> Option<i64> {
        match *self {
            Val::Int(i) => Some(i),
            Val::Uint(u) => i64::try_from(u).ok(),
            _ => None,
        }
    }

    pub(super) fn as_f64(&self) -> Option<f64> {
        match *self {
            Val::Float(f) => Some(f),
            Val::Int(i) => Some(i as f64),
            Val::Uint(u) => Some(u as f64),
            _ => None,
        }
    }

    /// The value, borrowed, as the lines write it.
    pub(super) fn view(&self) -> ValRef<'_> {
        match self {
            Val::Str(s) => ValRef::Str(s),
            Val::Shown(s) => ValRef::Shown(s),
            Val::Int(i) => ValRef::Int(*i),
            Val::Uint(u) => ValRef::Uint(*u),
            Val::Float(f) => ValRef::Float(*f),
            Val::Bool(b) => ValRef::Bool(*b),
        }
    }

    /// What `value` shows with `{:?}` (which is `Display` for `%value`).
    pub(super) fn shown(value: &dyn fmt::Debug) -> Val {
        let mut s = String::new();
        let _ = write!(s, "{value:?}");
        Val::Shown(s)
    }
}

/// A span's fields in the order they were first recorded; recording a field again replaces its value.
/// Fields of the `log` crate's records (`log.target`, …) are not kept: the line shows them otherwise.
#[derive(Debug, Default)]
pub(super) struct SpanFields(pub(super) Vec<(&'static str, Val)>);

impl SpanFields {
    /// The fields, borrowed, in order.
    pub(super) fn each(&self) -> impl Iterator<Item = (&'static str, ValRef<'_>)> {
        self.0.iter().map(|(name, value)| (*name, value.view()))
    }

    /// Room for every field the span declares, so that recording them later does not grow the list.
    pub(super) fn for_span(meta: &tracing::Metadata<'_>) -> SpanFields {
        SpanFields(Vec::with_capacity(meta.fields().len()))
    }

    fn set(&mut self, field: &Field, value: Val) {
        let name = field.name();
        if name.starts_with("log.") {
            return;
        }
        match self.0.iter_mut().find(|(n, _)| *n == name) {
            Some((_, slot)) => *slot = value,
            None => self.0.push((name, value)),
        }
    }
}

impl Visit for SpanFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.set(field, Val::Str(value.to_owned()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.set(field, Val::Int(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.set(field, Val::Uint(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.set(field, Val::Float(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.set(field, Val::Bool(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.set(field, Val::shown(value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::field::Empty;
    use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
    use tracing_subscriber::registry::LookupSpan;

    /// Keeps each span's fields as [`SpanFields`] and hands them out when the span closes.
    struct Keep(std::sync::mpsc::Sender<Vec<(&'static str, Val)>>);

    impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Keep {
        fn on_new_span(
            &self,
            attrs: &tracing::span::Attributes<'_>,
            id: &tracing::Id,
            ctx: Context<'_, S>,
        ) {
            let mut fields = SpanFields::default();
            attrs.record(&mut fields);
            ctx.span(id).unwrap().extensions_mut().insert(fields);
        }
        fn on_record(
            &self,
            id: &tracing::Id,
            values: &tracing::span::Record<'_>,
            ctx: Context<'_, S>,
        ) {
            let span = ctx.span(id).unwrap();
            values.record(span.extensions_mut().get_mut::<SpanFields>().unwrap());
        }
        fn on_close(&self, id: tracing::Id, ctx: Context<'_, S>) {
            let span = ctx.span(&id).unwrap();
            let fields = span.extensions_mut().remove::<SpanFields>().unwrap();
            self.0.send(fields.0).unwrap();
        }
    }

    #[test]
    fn a_span_keeps_values_in_first_recorded_order_and_a_field_recorded_again_is_replaced() {
        let (tx, rx) = std::sync::mpsc::channel();
        let subscriber = tracing_subscriber::registry().with(Keep(tx));
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("job", uuid = Empty, attempt = Empty, queue = %"whatsapp", ok = true);
            span.record("attempt", 1_i64);
            span.record("uuid", "9f1c");
            span.record("attempt", 2_i64);
            span.record("ok", false);
        });
        assert_eq!(
            rx.recv().unwrap(),
            vec![
                ("queue", Val::Shown("whatsapp".into())),
                ("ok", Val::Bool(false)),
                ("attempt", Val::Int(2)),
                ("uuid", Val::Str("9f1c".into())),
            ]
        );
    }
}
