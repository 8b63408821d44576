//! Rotation of the encryption secret (a figure, not a test): the time `rotate` takes to
//! re-encrypt 10,000 encrypted settings in its one transaction, median of 3 runs (rotating
//! back and forth), on a local embedded cluster. The last line is one JSON object.
//!
//! `cargo bench --bench rotate_secret` (`BENCH_VALUES` values, default 10,000).

mod common;

use std::time::{Duration, Instant};

use deploystack_backend::settings::key_check;
use deploystack_backend::settings::rotation::rotate;
use deploystack_backend::settings::SettingsCipher;
use diesel::sql_types::{Array, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use secrecy::SecretString;

use common::{migrated_database, BoxError};

/// Runs measured (the median is reported).
const RUNS: usize = 3;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let values: usize = std::env::var("BENCH_VALUES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let bench = migrated_database("rotate_bench", Vec::new()).await?;
    let (pg, mut conn) = (bench.pg, bench.conn);

    let derive = |secret: &str| SettingsCipher::derive(&SecretString::from(secret.to_owned()));
    let keys = [
        derive("bench-secret-a-0123456789")?,
        derive("bench-secret-b-0123456789")?,
    ];
    fill(&mut conn, &keys[0], values).await?;
    key_check::record(&mut conn, &keys[0]).await?;

    let mut times = Vec::with_capacity(RUNS);
    for run in 0..RUNS {
        let (old, new) = (&keys[run % 2], &keys[(run + 1) % 2]);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let started = Instant::now();
        let report = rotate(&mut conn, old, new, deadline, || Ok(())).await?;
        let elapsed = started.elapsed();
        assert_eq!(report.values, values, "every value is rotated");
        println!(
            "run {}: {:>8.1} ms for {} values",
            run + 1,
            ms(elapsed),
            report.values
        );
        times.push(elapsed);
    }
    times.sort();
    let median = times[times.len() / 2];
    println!();
    println!(
        "rotate {values} encrypted values: {:.1} ms median of {RUNS} runs ({:.1} µs per value)",
        ms(median),
        ms(median) * 1000.0 / values as f64
    );
    drop(conn);
    pg.stop().await?;
    println!("{{\"values\":{values},\"rotate_ms\":{:.1}}}", ms(median));
    Ok(())
}

/// `count` encrypted settings `bench.secret.N`, in one statement.
async fn fill(
    conn: &mut AsyncPgConnection,
    cipher: &SettingsCipher,
    count: usize,
) -> Result<(), BoxError> {
    let keys: Vec<String> = (0..count).map(|i| format!("bench.secret.{i}")).collect();
    let values: Vec<String> = (0..count)
        .map(|i| cipher.encrypt(&format!("secret value number {i} with some length to it")))
        .collect();
    diesel::sql_query(
        "INSERT INTO global_settings (key, value, type, is_encrypted) \
         SELECT key, value, 'string', true FROM unnest($1::text[], $2::text[]) AS u(key, value)",
    )
    .bind::<Array<Text>, _>(&keys)
    .bind::<Array<Text>, _>(&values)
    .execute(conn)
    .await?;
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
