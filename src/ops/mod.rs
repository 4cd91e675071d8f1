//! Subcommands that are not the worker loop itself, and the wiring of `work`.

pub mod clear;
pub mod config_cmd;
pub mod connect;
pub mod decode;
pub mod dispatch;
pub mod failed;
pub mod monitor;
pub mod restart;
pub mod work;
