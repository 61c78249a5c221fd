//! confidant's integration tests: one binary, modules by area.

mod assertion;
mod http;
mod parsers;
mod signers;
mod support;
