//! Reads that never go back in time. Within one unit of work (an HTTP request, a job): once
//! it used the primary, its later reads go to the primary too, so it never reads older data
//! than it wrote. Across units of work: a unit may start after a WAL position (the
//! `x-deploystack-lsn` a client got with an earlier response, the primary's position when a
//! job was claimed), and a replica serves its reads only once it replayed that far. Kept in
//! a task-local value that [`unit_of_work`] scopes; outside a scope nothing is remembered,
//! and reads may go to a replica whenever one is usable.

use std::cell::Cell;
use std::future::Future;

/// What the current unit of work knows.
struct Unit {
    used_primary: Cell<bool>,
    /// WAL position its reads must see (0: none).
    after_lsn: u64,
}

tokio::task_local! {
    static UNIT: Unit;
}

/// Runs `work` as one unit of work with its own read-your-writes memory. A plain function
/// returning the scope (not an `async fn` awaiting it), so `work` is stored once.
pub fn unit_of_work<F: Future>(work: F) -> impl Future<Output = F::Output> {
    unit_of_work_after(0, work)
}

/// [`unit_of_work`] whose reads must see everything up to WAL position `lsn` (0: nothing
/// in particular).
pub fn unit_of_work_after<F: Future>(lsn: u64, work: F) -> impl Future<Output = F::Output> {
    UNIT.scope(
        Unit {
            used_primary: Cell::new(false),
            after_lsn: lsn,
        },
        work,
    )
}

/// [`unit_of_work_after`], also answering whether the unit used the primary (then a client
/// gets the primary's position to present next time). `work` is stored once (a `map`, not
/// an async block awaiting it).
pub fn unit_of_work_reporting<F: Future>(
    lsn: u64,
    work: F,
) -> impl Future<Output = (F::Output, bool)> {
    use futures_util::FutureExt;

    // The closure runs inside the scope, when `work` completes.
    unit_of_work_after(lsn, work.map(|output| (output, used_primary())))
}

/// Remembers that the current unit of work used the primary.
pub(crate) fn note_primary() {
    let _ = UNIT.try_with(|unit| unit.used_primary.set(true));
}

/// Whether the current unit of work used the primary already.
pub(crate) fn used_primary() -> bool {
    UNIT.try_with(|unit| unit.used_primary.get())
        .unwrap_or(false)
}

/// The WAL position the current unit of work's reads must see (0: none).
pub(crate) fn after_lsn() -> u64 {
    UNIT.try_with(|unit| unit.after_lsn).unwrap_or(0)
}

/// `16/B374D848` → its 64-bit position.
pub fn parse_lsn(text: &str) -> Option<u64> {
    let (hi, lo) = text.split_once('/')?;
    let hi = u32::from_str_radix(hi, 16).ok()?;
    let lo = u32::from_str_radix(lo, 16).ok()?;
    Some((u64::from(hi) << 32) | u64::from(lo))
}

/// A 64-bit WAL position as PostgreSQL writes it (`16/B374D848`).
pub fn format_lsn(lsn: u64) -> String {
    format!("{:X}/{:X}", lsn >> 32, lsn & 0xFFFF_FFFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsns_read_and_write_as_postgresql_does() {
        assert_eq!(parse_lsn("0/0"), Some(0));
        assert_eq!(parse_lsn("16/B374D848"), Some((0x16 << 32) | 0xB374_D848));
        assert_eq!(format_lsn((0x16 << 32) | 0xB374_D848), "16/B374D848");
        assert_eq!(format_lsn(0), "0/0");
        for bad in [
            "x/1",
            "1",
            "1/",
            "/1",
            "100000000/0",
            "0/100000000",
            "-1/0",
            "",
        ] {
            assert_eq!(parse_lsn(bad), None, "{bad}");
        }
    }

    #[tokio::test]
    async fn a_unit_remembers_its_position_and_its_use_of_the_primary() {
        assert_eq!((after_lsn(), used_primary()), (0, false));
        let (seen, used) = unit_of_work_reporting(42, async {
            let before = used_primary();
            note_primary();
            (after_lsn(), before)
        })
        .await;
        assert_eq!((seen, used), ((42, false), true));
        let ((), used) = unit_of_work_reporting(0, async {}).await;
        assert!(!used);
        // Outside a unit nothing is remembered.
        note_primary();
        assert!(!used_primary());
    }
}
