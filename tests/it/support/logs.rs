//! Captures what the crate logs: a `tracing` fmt subscriber writing into
//! memory, set as the default for the current thread.

use std::sync::{Arc, Mutex};

/// What a fmt subscriber wrote.
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[allow(dead_code)] // each test uses part of it
impl Logs {
    /// Captures every event up to `level` on this thread while the guard lives.
    pub fn capture(level: tracing::Level) -> (Logs, tracing::subscriber::DefaultGuard) {
        Logs::capture_with(level, tracing_subscriber::fmt::format::FmtSpan::NONE)
    }

    /// As [`Logs::capture`], with span events too.
    pub fn capture_with(
        level: tracing::Level,
        spans: tracing_subscriber::fmt::format::FmtSpan,
    ) -> (Logs, tracing::subscriber::DefaultGuard) {
        let logs = Logs::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(level)
            .with_ansi(false)
            .with_span_events(spans)
            .with_writer(move || writer.clone())
            .finish();
        (logs, tracing::subscriber::set_default(subscriber))
    }

    /// What was written so far.
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}
