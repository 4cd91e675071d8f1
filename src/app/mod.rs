//! The RestroSaaS app's own data, read from its database for the actions: orders, their lines, the
//! vendor and the vendor's settings. Lookups are configurable SQL because forks of the app differ, and
//! rows are kept by column name so that a missing column is a missing value, not an error. Order lines
//! read the same on the app's two `order_details` schemas ([`mod@line`]).

mod decode;
pub mod line;
pub mod orders;
pub mod query;
pub mod row;

pub use line::{Extras, LineColumns, LineFamily, LinePrice, OrderLine};
pub use orders::{
    fallback_settings, AppData, AppQueries, AppSection, OrderBundle, VendorBundle, FALLBACK_VENDOR,
};
pub use query::AppDataError;
pub use row::{Row, SqlValue};
