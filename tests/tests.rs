//! One integration-test binary; each topic is a module.

mod decode_cli;
mod failed_jobs;
mod fixtures_replay;
mod php_roundtrip;
mod redis_queue;
mod support;
mod worker;
