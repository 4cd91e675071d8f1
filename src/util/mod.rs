//! Small helpers with one home each, below every other module: they import nothing of ours.

pub mod url;
