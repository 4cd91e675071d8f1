//! The fleet: every `work` process, wherever it runs, announces itself and adds its job counts to a
//! shared history in the app's Redis, so `/stats`, `monitor` and the console see the whole fleet and
//! not one process.
//!
//! - `store`: [`FleetStore`], the connection and the key layout (one hash tag, so it works on Redis
//!   Cluster), and [`FleetError`].
//! - `registry`: [`WorkerInfo`], [`Registry`] (this process's announcement) and [`list_workers`].
//! - `history`: per-minute and per-hour buckets of job counts and wait times: [`Recorder`] (this
//!   process's unflushed counts) and [`read_history`].
//! - `beat`: the task that writes both every [`BEAT`] in one pipeline, and once more at shutdown.
//!
//! It must not count jobs itself (it reads [`Metrics`](crate::metrics::Metrics)), nor stop the worker
//! on a Redis error: a failed beat is logged and the counts wait in memory for the next one.

mod beat;
mod history;
mod registry;
mod store;

pub use beat::{Beat, BEAT};
pub use history::{
    read_history, Bucket, History, Recorder, SeriesCounts, Span, HOURS_KEPT, MINUTES_KEPT,
};
pub use registry::{list_workers, Identity, Registry, WorkerInfo, EXPIRY};
pub use store::{FleetError, FleetStore, Keys};
