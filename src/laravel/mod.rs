//! Laravel's wire formats and stores.

pub mod cache_store;
pub mod connection;
pub mod database;
pub mod database_queue;
mod database_sql;
pub mod db_config;
pub mod dispatch;
pub mod encrypter;
pub mod exception;
pub mod failed_jobs;
pub mod payload;
pub mod queue;
pub mod redis_config;
pub mod redis_conn;
pub mod redis_error;
mod redis_notify;
pub mod redis_queue;
mod redis_stats;
pub mod slug;
pub mod sql_error;
