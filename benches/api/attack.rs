//! A legitimate sign-in (with its device cookie) under attack: four clients send bad
//! passwords for the same account and sign-ups as fast as they can, each request from a new
//! address (a botnet behind the trusted proxy, so no per-address limit holds them), against
//! the same sign-in on the idle server.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::json;

type BoxError = Box<dyn std::error::Error>;

/// Sign-ins measured in each phase.
const SIGN_INS: usize = 200;
/// Attacking clients.
const ATTACKERS: usize = 4;

/// What the run measured.
pub struct Attack {
    pub idle_p99_ms: f64,
    pub attacked_p99_ms: f64,
    pub owner_failures: usize,
    pub attacker_requests: usize,
    /// Attackers' answers by status, e.g. `{201: 80, 400: 3, 429: 500}`.
    pub attacker_statuses: String,
}

/// Runs both phases against `base` (the administrator `admin` / `bench password` exists).
pub async fn signin_under_attack(base: &str) -> Result<Attack, BoxError> {
    let http = reqwest::Client::new();
    let login = format!("{base}/api/auth/email/login");
    let first = http
        .post(&login)
        .header("x-forwarded-for", "192.0.2.1")
        .json(&json!({"login": "admin", "password": "bench password"}))
        .send()
        .await?;
    let device = first
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("device="))
        .and_then(|v| v.split(';').next())
        .ok_or("no device cookie")?
        .to_owned();
    let owner = || {
        let (http, login, device) = (http.clone(), login.clone(), device.clone());
        async move {
            let mut times = Vec::with_capacity(SIGN_INS);
            let mut failures = 0;
            for _ in 0..SIGN_INS {
                let started = Instant::now();
                let reply = http
                    .post(&login)
                    .header("x-forwarded-for", "192.0.2.1")
                    .header("cookie", &device)
                    .json(&json!({"login": "admin", "password": "bench password"}))
                    .send()
                    .await?;
                let ok = reply.status().is_success();
                reply.bytes().await?;
                times.push(started.elapsed().as_secs_f64() * 1000.0);
                failures += usize::from(!ok);
            }
            Ok::<_, BoxError>((p99(times), failures))
        }
    };
    println!("sign-in under attack: idle…");
    let (idle_p99_ms, _) = owner().await?;

    println!("sign-in under attack: {ATTACKERS} attackers…");
    let stop = Arc::new(AtomicBool::new(false));
    let statuses = Arc::new(Mutex::new(BTreeMap::<u16, usize>::new()));
    let mut attackers = Vec::new();
    for a in 0..ATTACKERS {
        let (http, base, stop, statuses) = (
            http.clone(),
            base.to_owned(),
            stop.clone(),
            statuses.clone(),
        );
        attackers.push(tokio::spawn(async move {
            let mut n: u32 = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let from = format!("10.{a}.{}.{}", n / 250 % 250, n % 250 + 1);
                let request = if n % 2 == 0 {
                    http.post(format!("{base}/api/auth/email/login"))
                        .json(&json!({"login": "admin", "password": format!("guess {n}")}))
                } else {
                    http.post(format!("{base}/api/auth/email/register"))
                        .json(&json!({
                            "username": format!("bot{a}x{n}"),
                            "email": format!("bot{a}x{n}@example.com"),
                            "password": "bot password",
                        }))
                };
                if let Ok(reply) = request.header("x-forwarded-for", from).send().await {
                    let status = reply.status().as_u16();
                    let _ = reply.bytes().await;
                    *statuses
                        .lock()
                        .expect("statuses")
                        .entry(status)
                        .or_default() += 1;
                }
            }
        }));
    }
    // The attack runs a moment before the owner comes.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let attacked = owner().await;
    stop.store(true, Ordering::Relaxed);
    for attacker in attackers {
        attacker.await?;
    }
    let (attacked_p99_ms, owner_failures) = attacked?;
    let statuses = statuses.lock().expect("statuses").clone();
    Ok(Attack {
        idle_p99_ms,
        attacked_p99_ms,
        owner_failures,
        attacker_requests: statuses.values().sum(),
        attacker_statuses: format!("{statuses:?}"),
    })
}

fn p99(mut times: Vec<f64>) -> f64 {
    times.sort_by(f64::total_cmp);
    times[(times.len() * 99 / 100).min(times.len() - 1)]
}
