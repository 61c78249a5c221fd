//! A `tracing` subscriber that keeps every event's and span's fields as text, at every level:
//! for the tests that prove no secret is ever logged.

use std::sync::{Arc, Mutex};

/// A subscriber that keeps every event's and span's fields as text, at every level.
#[derive(Default, Clone)]
pub(crate) struct Capture(pub(crate) Arc<Mutex<Vec<String>>>);

impl Capture {
    fn push(&self, text: String) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(text);
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        let mut text = format!("span {} ", span.metadata().name());
        span.record(&mut Fields(&mut text));
        self.push(text);
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        let mut text = String::new();
        values.record(&mut Fields(&mut text));
        self.push(text);
    }
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut text = format!("{} ", event.metadata().level());
        event.record(&mut Fields(&mut text));
        self.push(text);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

struct Fields<'a>(&'a mut String);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!("{}={value:?} ", field.name()));
    }
}
