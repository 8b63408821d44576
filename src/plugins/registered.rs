//! The compiled plugins of this build: the one list to edit to add one (the example
//! `notes` plugin in `examples/notes_plugin/` is registered by its own binary instead).

use std::sync::Arc;

use super::plugin::Plugin;

/// Compiled plugins, in load order.
pub fn compiled() -> Vec<Arc<dyn Plugin>> {
    Vec::new()
}
