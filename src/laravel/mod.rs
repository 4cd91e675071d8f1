//! Laravel's wire formats and stores.
