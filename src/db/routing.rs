//! Read-your-writes for one unit of work (an HTTP request, a job): once it used the primary,
//! its later reads go to the primary too, so it never reads older data than it wrote. Kept
//! in a task-local flag that [`unit_of_work`] scopes; outside a scope nothing is remembered,
//! and reads may go to a replica whenever one is usable.

use std::cell::Cell;
use std::future::Future;

tokio::task_local! {
    static USED_PRIMARY: Cell<bool>;
}

/// Runs `work` as one unit of work with its own read-your-writes memory. A plain function
/// returning the scope (not an `async fn` awaiting it), so `work` is stored once: an HTTP
/// request's whole future passes through here.
pub fn unit_of_work<F: Future>(work: F) -> impl Future<Output = F::Output> {
    USED_PRIMARY.scope(Cell::new(false), work)
}

/// Remembers that the current unit of work used the primary.
pub(crate) fn note_primary() {
    let _ = USED_PRIMARY.try_with(|used| used.set(true));
}

/// Whether the current unit of work used the primary already.
pub(crate) fn used_primary() -> bool {
    USED_PRIMARY.try_with(Cell::get).unwrap_or(false)
}
