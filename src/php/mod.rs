//! PHP's `serialize()` format: the [`Value`] tree, [`unserialize`] and [`serialize`], and a JSON
//! view ([`to_json`]). Pure: no I/O, no async, and it imports nothing else from this crate.
//!
//! Why our own: `serde_php` cannot read `O:` objects (it has no object support), and no crate we
//! found reads objects, visibility mangling, enums and back-references while preserving order for a
//! byte-identical round trip. Laravel's queued commands are exactly such objects, and the worker
//! must be able to read them without PHP.
//!
//! Guarantee: `serialize(&unserialize(x)?) == x` byte for byte for anything PHP 7.4–8.4's
//! `serialize()` writes. Input PHP never writes but accepts (the escaped `S:` strings, `+`
//! signs, leading zeros in lengths, `1.e5`-style floats) is read, and written back in PHP's
//! canonical form. `unserialize` is stricter than PHP in three ways, each an error instead of a
//! warning: integers out of i64 range (PHP saturates), malformed mangled property names (PHP
//! keeps them), and integer property names in `O:` (PHP converts them; PHP never writes them).

mod json;
mod json_encode;
mod parse;
mod resolve;
mod value;
mod write;

pub use json::to_json;
pub use json_encode::{json_encode, string as json_string, Unicode};
pub use parse::{unserialize, unserialize_with, Limits, ParseError, ParseErrorKind};
pub use resolve::{has_refs, resolve};
pub use value::{Key, Object, Prop, Value, Visibility};
pub use write::{format_float, format_float_with_precision, serialize};
