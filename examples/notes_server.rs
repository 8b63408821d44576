//! The backend with the example notes plugin compiled in: the same command line as
//! `deploystack-backend` (`serve`, `plugins list`, ...), one plugin more.
//!
//! `cargo run --example notes_server` (add `PLUGINS_PATH=examples/plugins` for the folder
//! plugin too).

#[path = "notes_plugin/mod.rs"]
mod notes_plugin;

use std::sync::Arc;

fn main() -> std::process::ExitCode {
    deploystack_backend::cli::entry::main_with(vec![Arc::new(notes_plugin::NotesPlugin)])
}
