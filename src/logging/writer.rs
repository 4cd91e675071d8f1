//! The non-blocking log writer: formatted lines go into a bounded in-memory buffer, and one thread of
//! its own writes them out, many lines per `write`. A job's task never waits on stderr (a pipe whose
//! reader stalls, a slow disk) and never pays a system call per line.
//!
//! A line is whole or absent: when the buffer is full the line is dropped and counted, and the drain
//! thread writes how many were dropped as soon as it has written what it held ([`Handle::dropped`]
//! serves the metric). [`Guard`] (held by `main`) writes out what is left when it is dropped, and
//! [`Handle::flush`] does the same before `process::exit`; both give up after 5 s if stderr is not
//! being read, so that a stalled reader cannot keep the process alive. After the guard is gone, lines
//! are written straight to the sink, so nothing logged late is lost either.
//!
//! A capacity of 0 (`DEFER_WORKER_LOG_BUFFER=0`) writes each line to the sink before the logging call
//! returns, so a line logged before a job was deleted is on disk even if the process is then killed
//! with SIGKILL (the buffered writer loses what it still holds then).
//!
//! It must not format (the layers do) and must not hold its lock while writing to the sink.

use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tracing_subscriber::fmt::MakeWriter;

/// Bytes of formatted lines held while the drain thread is writing: about 4 000 lines of ~250 bytes.
pub const DEFAULT_CAPACITY: usize = 1 << 20;

/// How long the drain thread lets lines gather after the first one wakes it, unless
/// [`GATHER_BYTES`] are already waiting or the writer is closing.
const GATHER: Duration = Duration::from_millis(2);
const GATHER_BYTES: usize = 64 * 1024;

/// The longest a flush, or the exit, waits for stderr to take what is left.
const MAX_WAIT: Duration = Duration::from_secs(5);

/// Writes the line that reports `n` dropped lines, in the log's own format.
pub type DroppedNotice = fn(u64) -> String;

struct State {
    buf: Vec<u8>,
    /// The drain thread is waiting for lines (a writer must wake it).
    idle: bool,
    /// The drain thread is writing a batch it took out of `buf`.
    writing: bool,
    closed: bool,
    /// The drain thread has written everything and ended.
    finished: bool,
}

struct Shared {
    state: Mutex<State>,
    /// Lines arrived, or the guard closed the writer.
    wake: Condvar,
    /// A batch was written (for [`Handle::flush`]).
    written: Condvar,
    capacity: usize,
    dropped: AtomicU64,
    sink: Mutex<Box<dyn Write + Send>>,
    notice: DroppedNotice,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while holding these locks; if it did, the buffer is still usable.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The `MakeWriter` the formatting layers write their lines through.
#[derive(Clone)]
pub struct NonBlocking {
    shared: Arc<Shared>,
}

/// What the rest of the process may know about the writer: lines dropped so far, and a flush.
#[derive(Clone)]
pub struct Handle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("logging::Handle")
            .field("dropped", &self.dropped())
            .finish()
    }
}

/// Stops the drain thread, after it has written every line it holds, when dropped.
pub struct Guard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// Starts the drain thread writing to `sink`, holding at most `capacity` bytes of lines.
pub fn non_blocking(
    sink: Box<dyn Write + Send>,
    capacity: usize,
    notice: DroppedNotice,
) -> io::Result<(NonBlocking, Handle, Guard)> {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            buf: Vec::with_capacity((64 * 1024).min(capacity)),
            idle: false,
            writing: false,
            closed: false,
            finished: false,
        }),
        wake: Condvar::new(),
        written: Condvar::new(),
        capacity,
        dropped: AtomicU64::new(0),
        sink: Mutex::new(sink),
        notice,
    });
    let thread = std::thread::Builder::new()
        .name("defer-worker-log".into())
        .spawn({
            let shared = Arc::clone(&shared);
            move || drain(&shared)
        })?;
    Ok((
        NonBlocking {
            shared: Arc::clone(&shared),
        },
        Handle {
            shared: Arc::clone(&shared),
        },
        Guard {
            shared,
            thread: Some(thread),
        },
    ))
}

fn drain(shared: &Shared) {
    let mut batch = Vec::with_capacity(64 * 1024);
    let mut reported = 0;
    loop {
        {
            let mut state = lock(&shared.state);
            while state.buf.is_empty() && !state.closed {
                state.idle = true;
                state = shared.wake.wait(state).unwrap_or_else(|p| p.into_inner());
            }
            state.idle = false;
            if state.buf.is_empty() {
                // Closed and nothing left.
                state.finished = true;
                drop(state);
                shared.written.notify_all();
                return;
            }
            if !state.closed && state.buf.len() < GATHER_BYTES {
                // Lines come one per job: let the ones right behind this one gather for a moment, so
                // that one write (and one wake-up of this thread) carries many of them.
                drop(state);
                std::thread::sleep(GATHER);
                state = lock(&shared.state);
            }
            std::mem::swap(&mut state.buf, &mut batch);
            state.writing = true;
        }
        let dropped = shared.dropped.load(Ordering::Relaxed);
        if dropped > reported {
            batch.extend_from_slice((shared.notice)(dropped - reported).as_bytes());
            reported = dropped;
        }
        {
            let mut sink = lock(&shared.sink);
            // An unwritable stderr has nowhere to report to: the lines are lost, the worker goes on.
            let _ = sink.write_all(&batch).and_then(|()| sink.flush());
        }
        batch.clear();
        if batch.capacity() > 4 * 64 * 1024 {
            // Give back what a burst took.
            batch.shrink_to(64 * 1024);
        }
        lock(&shared.state).writing = false;
        shared.written.notify_all();
    }
}

impl Shared {
    fn push(&self, line: &[u8]) {
        if self.capacity == 0 {
            let _ = lock(&self.sink).write_all(line);
            return;
        }
        let mut state = lock(&self.state);
        if state.finished {
            drop(state);
            let _ = lock(&self.sink).write_all(line);
            return;
        }
        if state.buf.len() + line.len() > self.capacity {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        state.buf.extend_from_slice(line);
        if state.idle {
            state.idle = false;
            drop(state);
            self.wake.notify_one();
        }
    }

    /// Waits until `done` holds, or [`MAX_WAIT`] has passed (a stderr nobody reads must not keep
    /// the process from exiting).
    fn wait_for(&self, done: impl Fn(&State) -> bool) {
        let deadline = Instant::now() + MAX_WAIT;
        let mut state = lock(&self.state);
        while !done(&state) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            state = self
                .written
                .wait_timeout(state, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Waits until every line pushed before the call is written.
    fn flush(&self) {
        self.wait_for(|s| (s.buf.is_empty() && !s.writing) || s.closed);
    }
}

impl Handle {
    /// Lines dropped because the buffer was full, since start.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Writes out every line logged so far (before `process::exit`, which runs no destructor).
    pub fn flush(&self) {
        self.shared.flush();
    }

    /// A handle with no writer behind it that has dropped `n` lines, for other modules' tests.
    #[cfg(test)]
    pub(crate) fn having_dropped(n: u64) -> Handle {
        Handle {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    buf: Vec::new(),
                    idle: false,
                    writing: false,
                    closed: true,
                    finished: true,
                }),
                wake: Condvar::new(),
                written: Condvar::new(),
                capacity: 0,
                dropped: AtomicU64::new(n),
                sink: Mutex::new(Box::new(io::sink())),
                notice: |_| String::new(),
            }),
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        lock(&self.shared.state).closed = true;
        self.shared.wake.notify_one();
        self.shared.wait_for(|s| s.finished);
        if let Some(thread) = self.thread.take() {
            if thread.is_finished() {
                let _ = thread.join();
            }
        }
    }
}

/// One event's writer: `fmt` writes each line with one `write_all`, so a line is pushed whole.
pub struct LineWriter<'a>(&'a Shared);

impl Write for LineWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.push(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for NonBlocking {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter(&self.shared)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink that hands what it is given to the test, and can be held shut.
    struct Sink {
        out: Arc<Mutex<Vec<u8>>>,
        gate: Arc<Mutex<()>>,
    }

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let _open = lock(&self.gate);
            lock(&self.out).extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn notice(n: u64) -> String {
        format!("dropped {n}\n")
    }

    fn text(out: &Mutex<Vec<u8>>) -> String {
        String::from_utf8(lock(out).clone()).unwrap()
    }

    #[test]
    fn capacity_zero_writes_each_line_before_returning() {
        let out = Arc::new(Mutex::new(Vec::new()));
        let gate = Arc::new(Mutex::new(()));
        let sink = Sink {
            out: Arc::clone(&out),
            gate,
        };
        let (writer, handle, _guard) = non_blocking(Box::new(sink), 0, notice).unwrap();
        writer.shared.push(b"one\n");
        assert_eq!(
            text(&out),
            "one\n",
            "written before push returned, no flush"
        );
        writer.shared.push(b"two\n");
        assert_eq!(text(&out), "one\ntwo\n");
        assert_eq!(handle.dropped(), 0, "nothing dropped without a buffer");
    }

    #[test]
    fn lines_are_written_in_order_and_all_of_them_by_the_time_the_guard_is_dropped() {
        let out = Arc::new(Mutex::new(Vec::new()));
        let sink = Sink {
            out: Arc::clone(&out),
            gate: Arc::default(),
        };
        let (writer, handle, guard) = non_blocking(Box::new(sink), 1 << 20, notice).unwrap();
        for i in 0..10_000 {
            writer
                .make_writer()
                .write_all(format!("line {i}\n").as_bytes())
                .unwrap();
        }
        drop(guard);
        let expected: String = (0..10_000).map(|i| format!("line {i}\n")).collect();
        assert_eq!(text(&out), expected);
        assert_eq!(handle.dropped(), 0);
        // Late lines go straight to the sink.
        writer.make_writer().write_all(b"late\n").unwrap();
        assert!(text(&out).ends_with("line 9999\nlate\n"));
    }

    #[test]
    fn a_full_buffer_drops_whole_lines_counts_them_and_says_so_in_the_log() {
        let out = Arc::new(Mutex::new(Vec::new()));
        let gate = Arc::new(Mutex::new(()));
        let sink = Sink {
            out: Arc::clone(&out),
            gate: Arc::clone(&gate),
        };
        // Room for 3 lines of 10 bytes.
        let (writer, handle, guard) = non_blocking(Box::new(sink), 30, notice).unwrap();
        let closed = lock(&gate);
        // The first line is taken by the drain thread, which then blocks on the shut sink.
        writer.make_writer().write_all(b"line 0000\n").unwrap();
        while !lock(&handle.shared.state).writing {
            std::thread::yield_now();
        }
        for i in 1..=5 {
            writer
                .make_writer()
                .write_all(format!("line {i:04}\n").as_bytes())
                .unwrap();
        }
        assert_eq!(handle.dropped(), 2, "lines 4 and 5 had no room");
        drop(closed);
        handle.flush();
        writer.make_writer().write_all(b"line 0006\n").unwrap();
        drop(guard);
        assert_eq!(
            text(&out),
            "line 0000\nline 0001\nline 0002\nline 0003\ndropped 2\nline 0006\n"
        );
    }

    #[test]
    fn flush_returns_once_the_lines_logged_before_it_are_written() {
        let out = Arc::new(Mutex::new(Vec::new()));
        let sink = Sink {
            out: Arc::clone(&out),
            gate: Arc::default(),
        };
        let (writer, handle, _guard) = non_blocking(Box::new(sink), 1 << 20, notice).unwrap();
        writer.make_writer().write_all(b"before exit\n").unwrap();
        handle.flush();
        assert_eq!(text(&out), "before exit\n");
    }
}
