//! `tend schema`: a JSON Schema (draft 2020-12) of the configuration file, for editors that
//! complete keys and check values while the file is typed (taplo, Even Better TOML).
//!
//! Written out here table by table, one `key(..)` line per key, in the order `schema.rs`
//! declares them: adding a key to the loader means adding its line to the table's function
//! below (and, for a new kind of value, a definition to `values.rs`). `tests.rs` holds the
//! schema to the loader (every key, type, default and closed set of values) and the checked-in
//! docs/tend.schema.json to this output; `tests/schema.rs` holds what the binary prints to
//! that file.
//!
//! The binary does not carry this generator: `tend schema` prints the checked-in file
//! ([`CHECKED_IN`]), which costs the binary its bytes only, where building the JSON cost
//! 23 KiB more (docs/benchmarks.md, "Size and memory"). The generator is compiled for the
//! tests.
//!
//! Bounds and the accepted signal names come from the loader's own constants and functions;
//! defaults are written as a user would write them, and the tests check them against what the
//! loader fills in.
//!
//! - `values`: the kinds of value several keys share (`#/$defs`): durations, sizes, signals,
//!   commands, ids, limits, addresses;
//! - `build`: keys and tables as schema objects, and the JSON they are written in;
//! - `generator`: the tables, key by key.

#[cfg(test)]
mod build;
#[cfg(test)]
mod generator;
#[cfg(test)]
mod values;

/// What `tend schema` prints: docs/tend.schema.json, which the tests keep equal to what
/// the generator builds from the loader's keys (regenerate it with
/// `TEND_WRITE_SCHEMA=1 cargo test --lib json_schema`).
pub const CHECKED_IN: &str = include_str!("../../../docs/tend.schema.json");

#[cfg(test)]
pub use generator::schema;

#[cfg(test)]
mod tests;
