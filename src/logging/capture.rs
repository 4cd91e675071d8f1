//! For the layers' tests: a writer that keeps what it is given, and the lines a layer wrote while a
//! closure ran with it as the only subscriber.

use std::sync::{Arc, Mutex};

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Layer, SubscriberExt};
use tracing_subscriber::Registry;

#[derive(Clone, Default)]
pub(super) struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

/// The lines `layer` (made to write to the capture) wrote while `f` ran.
pub(super) fn lines<L>(layer: impl FnOnce(Capture) -> L, f: impl FnOnce()) -> Vec<String>
where
    L: Layer<Registry> + Send + Sync + 'static,
{
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(layer(capture.clone()));
    tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    text.lines().map(String::from).collect()
}
