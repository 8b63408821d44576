//! Plugin database extensions against a real PostgreSQL: the example compiled plugin (notes)
//! and the example folder plugin (bookmarks) end to end, versioned migrations and their
//! checks, isolation by PostgreSQL roles (through the handle and in raw SQL), the mode
//! without CREATEROLE, registration errors, and the `plugins` command line.

#[path = "../common/mod.rs"]
mod common;

#[path = "../../examples/notes_plugin/mod.rs"]
mod notes_plugin;

mod cli;
mod hostile;
mod isolation;
mod lifecycle;
mod migrations;
mod registration;
mod support;
