//! The admin API side by side with upstream's stack (figures, not a test): `GET
//! /api/users/me` and `GET /api/settings/:key` (an unencrypted and an encrypted key) with a
//! valid session cookie, on our release server and on two Node anchors on the same
//! PostgreSQL (`benches/api_node/`):
//! - upstream's stack: Fastify 5, @fastify/cookie, drizzle-orm over a node-postgres pool of
//!   10, doing per request what upstream does (session joined to its user by the cookie's
//!   value, the role check, the setting, upstream's decryption);
//! - hand-tuned Node: the same queries as node-postgres named prepared statements, no ORM.
//!
//! wrk -t2 -c64 (`BENCH_CONNECTIONS`), `BENCH_SECONDS` (8) per run, `BENCH_ROUNDS` (3)
//! interleaved rounds; medians of requests/s and of server CPU per request. Then the first
//! page of `GET /api/admin/jobs` over 200,000 jobs (`BENCH_JOBS`), sequential requests, p50
//! and p99. The last line is JSON.
//!
//! Needs `wrk` and Node.js with npm (packages installed once into `target/bench-api-node`).

#[path = "api/attack.rs"]
mod attack;
#[path = "http/measure.rs"]
#[allow(dead_code)] // shared with the other benchmarks
mod measure;
#[path = "http/servers.rs"]
#[allow(dead_code)] // shared with the other benchmarks
mod servers;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use deploystack_backend::embedded_pg::{Cluster, ClusterOptions, RunningPostgres};
use serde_json::json;

use measure::{run, wrk_with, Load};
use servers::{free_port, password, set_up, start_server_with, stop, wait_for};

type BoxError = Box<dyn std::error::Error>;

const SECRET: &str = "bench-encryption-secret-0123456789";

/// A route under load on one server.
struct Target {
    server: &'static str,
    route: &'static str,
    url: String,
    cookie: String,
    pid: u32,
    runs: Vec<Load>,
}

impl Target {
    fn median(&self, field: impl Fn(&Load) -> f64) -> f64 {
        let mut values: Vec<f64> = self.runs.iter().map(field).collect();
        values.sort_by(f64::total_cmp);
        values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let seconds: u32 = env_or("BENCH_SECONDS", 8);
    let connections: u32 = env_or("BENCH_CONNECTIONS", 64);
    let rounds: u32 = env_or("BENCH_ROUNDS", 3);
    let jobs: u32 = env_or("BENCH_JOBS", 200_000);
    if Command::new("wrk").arg("--version").output().is_err() {
        return Err("`wrk` is required (apt-get install wrk)".into());
    }
    let dir = tempfile::Builder::new()
        .prefix("deploystack-bench-api-")
        .tempdir()?;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711))?;
    let mut options = ClusterOptions::new(dir.path().join("pg"));
    options.durable = false;
    options.settings = vec![("max_connections".into(), "300".into())];
    let pg = Cluster::prepare(options)?.start().await?;

    let port = free_port()?;
    let server = start_server_with(
        &pg,
        dir.path(),
        port,
        &[
            ("DEPLOYSTACK_ENCRYPTION_SECRET", SECRET.to_owned()),
            ("JOB_CONCURRENCY", "0".to_owned()),
            // The sign-in under attack sends each client's address as a proxy would.
            ("TRUSTED_PROXIES", "127.0.0.1".to_owned()),
        ],
    )?;
    let base = format!("http://127.0.0.1:{port}");
    let grant = set_up(&base).await?.ok_or("the setup set no grant")?;
    let ours = prepare_accounts(&base, &grant).await?;
    let theirs = upstream_session(&pg).await?;
    println!("inserting {ACCOUNTS} accounts and {TEAMS} teams…");
    seed_directory(&pg)?;
    let (upstream, tuned) = start_anchors(&pg).await?;

    let mut targets = Vec::new();
    for (server, url, cookie, pid) in [
        ("ours", base.clone(), ours.clone(), server.id()),
        (
            "upstream",
            format!("http://127.0.0.1:{}", upstream.1),
            theirs.clone(),
            upstream.0.id(),
        ),
        (
            "tuned",
            format!("http://127.0.0.1:{}", tuned.1),
            theirs.clone(),
            tuned.0.id(),
        ),
    ] {
        for (route, path) in [
            ("me", "/api/users/me".to_owned()),
            ("setting", "/api/settings/global.page_url".to_owned()),
            (
                "secret",
                format!(
                    "/api/settings/smtp.password{}",
                    if server == "ours" { "?reveal=true" } else { "" }
                ),
            ),
            ("teams", "/api/users/me/teams".to_owned()),
            ("members", "/api/teams/bt1/members".to_owned()),
        ] {
            targets.push(Target {
                server,
                route,
                url: format!("{url}{path}"),
                cookie: format!("Cookie: session={cookie}"),
                pid,
                runs: Vec::new(),
            });
        }
    }
    println!("warming up…");
    for t in &targets {
        check_answer(&t.url, &t.cookie).await?;
        wrk_with(
            &t.url,
            std::slice::from_ref(&t.cookie),
            connections,
            2,
            t.pid,
        )?;
    }
    for round in 1..=rounds {
        println!("round {round}/{rounds}…");
        for t in &mut targets {
            let load = wrk_with(
                &t.url,
                std::slice::from_ref(&t.cookie),
                connections,
                seconds,
                t.pid,
            )?;
            t.runs.push(load);
        }
    }
    let rss_kib = targets
        .iter()
        .filter(|t| t.server == "ours")
        .flat_map(|t| t.runs.iter().map(|l| l.rss_kib))
        .max()
        .unwrap_or(0);

    println!();
    println!(
        "{:<10} {:<8} {:>10} {:>12} {:>9}   (medians of {rounds} rounds, wrk -t2 -c{connections}, {seconds} s)",
        "server", "route", "req/s", "CPU µs/req", "p99 ms"
    );
    for t in &targets {
        println!(
            "{:<10} {:<8} {:>10.0} {:>12.1} {:>9.2}",
            t.server,
            t.route,
            t.median(|l| l.rps),
            t.median(|l| l.cpu_us),
            t.median(|l| l.p99_ms)
        );
    }
    let find = |server: &str, route: &str| {
        targets
            .iter()
            .find(|t| t.server == server && t.route == route)
            .ok_or("missing target")
    };
    let ratio = |route: &str, anchor: &str| -> Result<f64, BoxError> {
        Ok(find("ours", route)?.median(|l| l.rps) / find(anchor, route)?.median(|l| l.rps))
    };
    let cpu_ratio = |route: &str| -> Result<f64, BoxError> {
        Ok(find("ours", route)?.median(|l| l.cpu_us)
            / find("upstream", route)?.median(|l| l.cpu_us))
    };
    let (me, setting, secret) = (
        ratio("me", "upstream")?,
        ratio("setting", "upstream")?,
        ratio("secret", "upstream")?,
    );
    let (me_t, setting_t, secret_t) = (
        ratio("me", "tuned")?,
        ratio("setting", "tuned")?,
        ratio("secret", "tuned")?,
    );
    let (me_cpu, setting_cpu) = (
        cpu_ratio("me")?,
        cpu_ratio("setting")?.max(cpu_ratio("secret")?),
    );
    let (teams, members) = (ratio("teams", "upstream")?, ratio("members", "upstream")?);
    let (teams_t, members_t) = (ratio("teams", "tuned")?, ratio("members", "tuned")?);
    println!();
    println!("ratios (req/s, ours ÷ theirs): me {me:.2}× upstream, {me_t:.2}× tuned; setting {setting:.2}× / {setting_t:.2}×; encrypted setting {secret:.2}× / {secret_t:.2}×");
    println!("CPU per request, ours ÷ upstream's: me {me_cpu:.2}, settings (worse of the two) {setting_cpu:.2}");
    println!("our RSS under load: {:.1} MiB", rss_kib as f64 / 1024.0);
    println!(
        "targets: ≥ 4× upstream {}, ≥ 2× tuned {}, CPU ≤ 0.25× {}, RSS ≤ 25 MiB {}",
        verdict([me, setting, secret].iter().all(|r| *r >= 4.0)),
        verdict([me_t, setting_t, secret_t].iter().all(|r| *r >= 2.0)),
        verdict(me_cpu <= 0.25 && setting_cpu <= 0.25),
        verdict(rss_kib <= 25 * 1024)
    );

    println!("ratios (req/s, ours ÷ theirs): /api/users/me/teams {teams:.2}× upstream, {teams_t:.2}× tuned; /api/teams/:id/members {members:.2}× / {members_t:.2}× (targets ≥ 4× upstream {}, ≥ 2× tuned {})",
        verdict(teams >= 4.0 && members >= 4.0),
        verdict(teams_t >= 2.0 && members_t >= 2.0));
    let search = "/api/admin/users/search?email=benchuser4242&limit=20&offset=0";
    let (search_p50, search_p99) =
        sequential_p50_p99(&format!("{base}{search}"), &ours, 300).await?;
    let (up_p50, up_p99) = sequential_p50_p99(
        &format!("http://127.0.0.1:{}{search}", upstream.1),
        &theirs,
        20,
    )
    .await?;
    println!("first page of {search} over {ACCOUNTS} accounts: ours p50 {search_p50:.2} ms, p99 {search_p99:.2} ms (300 sequential; target p99 < 20 ms: {}); upstream's in-memory paging p50 {up_p50:.1} ms, p99 {up_p99:.1} ms (20)", verdict(search_p99 < 20.0));

    let (p50, p99) = job_pages(&pg, &base, &ours, jobs).await?;
    println!("first page of GET /api/admin/jobs over {jobs} jobs: p50 {p50:.2} ms, p99 {p99:.2} ms (sequential, 300 requests; target p99 < 50 ms: {})", verdict(p99 < 50.0));

    let attack = attack::signin_under_attack(&base).await?;
    let attack_ratio = attack.attacked_p99_ms / attack.idle_p99_ms;
    println!(
        "sign-in with its device cookie: p99 {:.1} ms idle, {:.1} ms while 4 clients send bad passwords and sign-ups from ever new addresses ({} attacker requests: {}); ratio {attack_ratio:.2}, owner non-2xx {} (target ≤ 3 and 0: {})",
        attack.idle_p99_ms,
        attack.attacked_p99_ms,
        attack.attacker_requests,
        attack.attacker_statuses,
        attack.owner_failures,
        verdict(attack_ratio <= 3.0 && attack.owner_failures == 0)
    );

    for mut child in [upstream.0, tuned.0] {
        let _ = child.kill();
        let _ = child.wait();
    }
    stop(server);
    pg.stop().await?;
    println!(
        "{}",
        json!({
            "me_ratio": round2(me), "setting_ratio": round2(setting.min(secret)),
            "me_ratio_tuned": round2(me_t), "setting_ratio_tuned": round2(setting_t.min(secret_t)),
            "me_cpu_ratio": round2(me_cpu), "setting_cpu_ratio": round2(setting_cpu),
            "rss_mib": round2(rss_kib as f64 / 1024.0),
            "signin_attack_ratio": round2(attack_ratio),
            "teams_ratio": round2(teams), "members_ratio": round2(members),
            "teams_ratio_tuned": round2(teams_t), "members_ratio_tuned": round2(members_t),
            "admin_search_p99_ms": round2(search_p99),
            "signin_attack_owner_failures": attack.owner_failures,
        })
    );
    Ok(())
}

/// Accounts in the directory the team and search routes read.
const ACCOUNTS: u32 = 100_000;
/// Teams of ten members each; the administrator joins `bt1`.
const TEAMS: u32 = 10_000;

/// 100,000 accounts and 10,000 teams of ten members (plus the administrator in `bt1`).
fn seed_directory(pg: &RunningPostgres) -> Result<(), BoxError> {
    psql(pg, &format!(
        "INSERT INTO users (id, username, email, auth_type, role_id, created_at) \
         SELECT 'bu' || n, 'benchuser' || n, 'benchuser' || n || '@example.com', 'email_signup', 'global_user', \
                now() - (n || ' seconds')::interval FROM generate_series(1, {ACCOUNTS}) n; \
         INSERT INTO teams (id, name, slug, owner_id) \
         SELECT 'bt' || n, 'Bench team ' || n, 'bench-team-' || n, 'bu' || ((n - 1) * 10 + 1) FROM generate_series(1, {TEAMS}) n; \
         INSERT INTO team_memberships (id, team_id, user_id, role) \
         SELECT 'bm' || n, 'bt' || ((n - 1) / 10 + 1), 'bu' || n, CASE WHEN n % 10 = 1 THEN 'team_admin' ELSE 'team_user' END \
         FROM generate_series(1, {ACCOUNTS}) n WHERE (n - 1) / 10 < {TEAMS}; \
         INSERT INTO team_memberships (id, team_id, user_id, role) \
         SELECT 'bm-admin', 'bt1', id, 'team_user' FROM users WHERE username = 'admin'; \
         ANALYZE users; ANALYZE teams; ANALYZE team_memberships"
    ))?;
    Ok(())
}

/// p50 and p99 of `n` sequential `GET url` with the session `cookie`, in milliseconds.
async fn sequential_p50_p99(url: &str, cookie: &str, n: usize) -> Result<(f64, f64), BoxError> {
    let http = reqwest::Client::new();
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        let reply = http
            .get(url)
            .header("cookie", format!("session={cookie}"))
            .send()
            .await?;
        let status = reply.status();
        reply.bytes().await?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        if !status.is_success() {
            return Err(format!("{url}: {status}").into());
        }
    }
    times.sort_by(f64::total_cmp);
    Ok((
        times[times.len() / 2],
        times[(times.len() * 99 / 100).min(times.len() - 1)],
    ))
}

/// Registers the administrator (with the setup `grant`), stores an encrypted setting; our
/// session token.
async fn prepare_accounts(base: &str, grant: &str) -> Result<String, BoxError> {
    let http = reqwest::Client::new();
    let reply = http
        .post(format!("{base}/api/auth/email/register"))
        .header("cookie", grant)
        .json(&json!({"username": "admin", "email": "admin@example.com", "password": "bench password"}))
        .send()
        .await?;
    let cookie = reply
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("session="))
        .and_then(|v| v.split(';').next())
        .ok_or("no session cookie")?
        .to_owned();
    let put = http
        .put(format!("{base}/api/settings/smtp.password"))
        .header("cookie", format!("session={cookie}"))
        .json(&json!({"value": "bench smtp password"}))
        .send()
        .await?;
    if !put.status().is_success() {
        return Err(format!("cannot set smtp.password: {}", put.text().await?).into());
    }
    Ok(cookie)
}

/// An upstream-style session for the administrator: the row's id is the cookie's value
/// (lucia), which our server never stores.
async fn upstream_session(pg: &RunningPostgres) -> Result<String, BoxError> {
    let token = format!("upstream{:032x}", rand::random::<u128>());
    psql(
        pg,
        &format!(
            "INSERT INTO auth_sessions (id, user_id, expires_at) \
         SELECT '{token}', id, now() + interval '30 days' FROM users WHERE username = 'admin'"
        ),
    )?;
    Ok(token)
}

fn psql(pg: &RunningPostgres, sql: &str) -> Result<String, BoxError> {
    let c = pg.connection("bench");
    run(Command::new("psql")
        .env("PGPASSWORD", password(&c))
        .env("PGSSLMODE", "disable")
        .args([
            "-h",
            &c.host,
            "-p",
            &c.port.to_string(),
            "-U",
            &c.user,
            "-d",
            &c.database,
            "-qAtc",
            sql,
        ]))
}

type Anchor = (std::process::Child, u16);

/// Installs the anchors' packages once and starts both.
async fn start_anchors(pg: &RunningPostgres) -> Result<(Anchor, Anchor), BoxError> {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/api_node");
    let work = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-api-node");
    std::fs::create_dir_all(&work)?;
    for file in ["package.json", "common.js", "upstream.js", "tuned.js"] {
        std::fs::copy(source.join(file), work.join(file))?;
    }
    if !work.join("node_modules/drizzle-orm").is_dir() {
        println!(
            "installing Fastify, @fastify/cookie, drizzle-orm and node-postgres with npm (once)…"
        );
        run(Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--silent"])
            .current_dir(&work))
        .map_err(|e| format!("npm install failed (Node.js and npm are needed): {e}"))?;
    }
    let c = pg.connection("bench");
    let mut started = Vec::new();
    for script in ["upstream.js", "tuned.js"] {
        let port = free_port()?;
        let child = Command::new("node")
            .arg(script)
            .current_dir(&work)
            .env("PORT", port.to_string())
            .env("PGHOST", &c.host)
            .env("PGPORT", c.port.to_string())
            .env("PGUSER", &c.user)
            .env("PGPASSWORD", password(&c))
            .env("PGDATABASE", &c.database)
            .env("DEPLOYSTACK_ENCRYPTION_SECRET", SECRET)
            .stdout(Stdio::null())
            .spawn()?;
        wait_for(&format!("http://127.0.0.1:{port}/api/users/me")).await?;
        started.push((child, port));
    }
    let tuned = started.pop().ok_or("no anchor")?;
    let upstream = started.pop().ok_or("no anchor")?;
    Ok((upstream, tuned))
}

/// Fails unless `url` answers 200 with the same decrypted value on every server.
async fn check_answer(url: &str, cookie: &str) -> Result<(), BoxError> {
    let reply = reqwest::Client::new()
        .get(url)
        .header("cookie", cookie.trim_start_matches("Cookie: "))
        .send()
        .await?;
    let status = reply.status();
    let body: serde_json::Value = reply.json().await?;
    // `/api/users/me` is upstream's bare profile; the others have the envelope.
    let ok = body["success"] == true || (url.ends_with("/api/users/me") && body["id"].is_string());
    if !status.is_success() || !ok {
        return Err(format!("{url}: {status} {body}").into());
    }
    if url.contains("smtp.password") && body["data"]["value"] != "bench smtp password" {
        return Err(format!("{url}: not decrypted: {body}").into());
    }
    Ok(())
}

/// p50 and p99 of the first page of jobs over `jobs` rows, in milliseconds.
async fn job_pages(
    pg: &RunningPostgres,
    base: &str,
    cookie: &str,
    jobs: u32,
) -> Result<(f64, f64), BoxError> {
    println!("inserting {jobs} jobs…");
    psql(pg, &format!(
        "INSERT INTO queue_jobs (id, type, payload, status, scheduled_for, created_at) \
         SELECT 'bench' || lpad(n::text, 10, '0'), CASE WHEN n % 10 = 0 THEN 'rare' ELSE 'common' END, \
                jsonb_build_object('n', n), CASE WHEN n % 7 = 0 THEN 'failed' ELSE 'completed' END, \
                now(), now() - (n || ' seconds')::interval \
         FROM generate_series(1, {jobs}) n; ANALYZE queue_jobs"
    ))?;
    let http = reqwest::Client::new();
    let mut times = Vec::new();
    for n in 0..300 {
        let path = match n % 3 {
            0 => "/api/admin/jobs",
            1 => "/api/admin/jobs?status=failed",
            _ => "/api/admin/jobs?type=rare&status=completed",
        };
        let started = Instant::now();
        let reply = http
            .get(format!("{base}{path}"))
            .header("cookie", format!("session={cookie}"))
            .send()
            .await?;
        let ok = reply.status().is_success();
        reply.bytes().await?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        if !ok {
            return Err(format!("{path} failed").into());
        }
    }
    times.sort_by(f64::total_cmp);
    Ok((times[times.len() / 2], times[times.len() * 99 / 100]))
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "NOT met"
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
