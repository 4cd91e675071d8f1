//! One integration-test binary; each topic is a module.

mod actions_cache;
mod actions_e2e;
mod actions_email;
mod actions_whatsapp;
mod app_data;
mod chain;
mod config;
mod database_queue;
mod decode_cli;
mod doc_refs;
mod failed_jobs;
mod faults;
mod fixtures_replay;
mod http;
mod layers;
mod limits;
mod ops_dispatch;
mod ops_failed;
mod ops_monitor;
mod ops_restart;
mod php_roundtrip;
mod redis_cluster;
mod redis_queue;
mod reliability;
mod support;
mod worker;
