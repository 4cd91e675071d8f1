//! Subcommands that are not the worker loop itself, and the wiring of `work`. Each subcommand gets the
//! command's [`crate::config::Settings`] from `main` and opens what it needs through [`connect`], which
//! refuses to start without what a worker cannot work without ([`startup`]).

pub mod breaker_board;
pub mod check;
pub mod clear;
pub mod config_cmd;
pub mod connect;
pub mod decode;
pub mod dispatch;
pub mod failed;
pub mod monitor;
pub mod pause;
pub mod report;
pub mod restart;
pub mod settings;
pub mod startup;
pub mod work;
