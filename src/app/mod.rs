//! The RestroSaaS app's own data, read from its database for the actions: orders, their lines, the
//! vendor and the vendor's settings. Lookups are configurable SQL because forks of the app differ, and
//! rows are kept by column name so that a missing column is a missing value, not an error.

pub mod row;

pub use row::{Row, SqlValue};
