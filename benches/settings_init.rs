//! Global settings initialization (figures, not a test): the time of the whole
//! initialization on an empty database and on an up-to-date one, and the number of
//! statements (= round trips) it sends, counted by PostgreSQL's pg_stat_statements.
//!
//! `cargo bench --bench settings_init` (`BENCH_RUNS` up-to-date runs, default 50).

mod common;

use std::time::{Duration, Instant};

use deploystack_backend::settings::init::initialize;
use deploystack_backend::settings::SettingsCipher;
use diesel::sql_types::{BigInt, Text};
use diesel::QueryableByName;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use secrecy::SecretString;

use common::{migrated_database, BoxError};

#[derive(QueryableByName)]
struct Statement {
    #[diesel(sql_type = Text)]
    query: String,
    #[diesel(sql_type = BigInt)]
    calls: i64,
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let bench = migrated_database(
        "settings_bench",
        vec![
            (
                "shared_preload_libraries".into(),
                "pg_stat_statements".into(),
            ),
            ("pg_stat_statements.track_utility".into(), "on".into()),
        ],
    )
    .await?;
    let (pg, mut conn) = (bench.pg, bench.conn);
    diesel::sql_query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        .execute(&mut conn)
        .await?;

    let started = Instant::now();
    let cipher = SettingsCipher::derive(&SecretString::from("bench-secret".to_owned()))?;
    println!(
        "key derivation (scrypt N=16384, once per process): {:.1} ms",
        ms(started.elapsed())
    );

    let (empty_time, empty_statements) = measured(&mut conn, &cipher).await?;
    println!();
    println!(
        "empty database:      {:>8.2} ms, {} statements",
        ms(empty_time),
        empty_statements.len()
    );
    for (query, calls) in &empty_statements {
        println!("    {calls} × {}", first_words(query));
    }
    let mut times = Vec::with_capacity(runs);
    let mut statements = 0;
    for _ in 0..runs {
        let (time, list) = measured(&mut conn, &cipher).await?;
        times.push(time);
        statements = list.iter().map(|(_, calls)| calls).sum::<i64>();
    }
    times.sort();
    let median = times[times.len() / 2];
    let p95 = times[(times.len() * 95 / 100).min(times.len() - 1)];
    println!("up-to-date database: {:>8.2} ms median, {:.2} ms p95 over {runs} runs, {statements} statements", ms(median), ms(p95));
    println!();
    let inserts = empty_statements
        .iter()
        .filter(|(q, _)| q.contains("INSERT INTO global_settings"))
        .map(|(_, c)| c)
        .sum::<i64>();
    println!(
        "targets: one round trip for the inserts: {}",
        if inserts == 1 { "met" } else { "NOT met" }
    );
    println!(
        "         up-to-date under 20 ms: {}",
        if median < Duration::from_millis(20) {
            "met"
        } else {
            "NOT met"
        }
    );
    drop(conn);
    pg.stop().await?;
    Ok(())
}

/// One initialization, with the statements PostgreSQL saw for it.
async fn measured(
    conn: &mut AsyncPgConnection,
    cipher: &SettingsCipher,
) -> Result<(Duration, Vec<(String, i64)>), BoxError> {
    diesel::sql_query("SELECT pg_stat_statements_reset()")
        .execute(conn)
        .await?;
    let started = Instant::now();
    initialize(conn, cipher).await?;
    let elapsed = started.elapsed();
    let rows: Vec<Statement> = diesel::sql_query(
        "SELECT query, calls FROM pg_stat_statements
         WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
           AND query NOT LIKE '%pg_stat_statements%'
         ORDER BY query",
    )
    .load(conn)
    .await?;
    Ok((
        elapsed,
        rows.into_iter().map(|s| (s.query, s.calls)).collect(),
    ))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn first_words(query: &str) -> String {
    let flat: String = query.split_whitespace().collect::<Vec<_>>().join(" ");
    flat.chars().take(70).collect()
}
