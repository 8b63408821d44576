//! Read replicas: one pool per replica, a periodic check of each one's health and lag, and
//! the choice of a usable replica for a read. A replica that is down, is not in recovery, or
//! lags more than `POSTGRES_READ_MAX_LAG_MS` is skipped until a later check clears it; with
//! none usable, reads go to the primary.

use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use diesel::sql_types::{Bool, Double, Nullable, Text};
use diesel::QueryableByName;
use tracing::{info, warn};

use crate::config::{ConnectionTarget, PoolSettings, ReplicaHost, ReplicaSettings};
use crate::db::connector::PgConnector;
use crate::db::database::Database;
use crate::db::pool::{DbConn, LivePool, PoolFigures};

/// What the last check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaState {
    /// Not checked yet: not used until a check says it is usable.
    Unknown,
    /// Answering and within the lag limit.
    Usable,
    /// Answering but too far behind.
    Lagging,
    /// Not answering.
    Down,
    /// Answering, but not a standby: reads there could see another database's history.
    NotAReplica,
}

impl ReplicaState {
    /// Lower-case name, as readiness and metrics report it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Usable => "usable",
            Self::Lagging => "lagging",
            Self::Down => "down",
            Self::NotAReplica => "not_a_replica",
        }
    }

    fn from_u8(v: u8) -> Self {
        match v {
            1 => Self::Usable,
            2 => Self::Lagging,
            3 => Self::Down,
            4 => Self::NotAReplica,
            _ => Self::Unknown,
        }
    }

    fn as_u8(self) -> u8 {
        match self {
            Self::Unknown => 0,
            Self::Usable => 1,
            Self::Lagging => 2,
            Self::Down => 3,
            Self::NotAReplica => 4,
        }
    }
}

/// One replica and its pool.
pub struct Replica {
    host: ReplicaHost,
    name: String,
    pool: LivePool,
    state: AtomicU8,
    /// Last measured lag in milliseconds (`u64::MAX` when unknown).
    lag_ms: AtomicU64,
}

/// A replica as readiness and metrics show it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaReport {
    /// `host:port`.
    pub name: String,
    /// The last check's verdict.
    pub state: ReplicaState,
    /// Its lag then, when known.
    pub lag: Option<Duration>,
    /// Its pool.
    pub pool: PoolFigures,
}

impl Replica {
    fn state(&self) -> ReplicaState {
        ReplicaState::from_u8(self.state.load(Ordering::Relaxed))
    }

    fn set(&self, state: ReplicaState, lag_ms: Option<u64>) {
        let before = ReplicaState::from_u8(self.state.swap(state.as_u8(), Ordering::Relaxed));
        self.lag_ms
            .store(lag_ms.unwrap_or(u64::MAX), Ordering::Relaxed);
        if before != state {
            match state {
                ReplicaState::Usable => info!(replica = %self.host, "read replica usable"),
                other => {
                    warn!(replica = %self.host, state = other.name(), lag_ms, "read replica skipped")
                }
            }
        }
    }
}

/// The replicas of this process.
pub struct ReplicaSet {
    replicas: Vec<Arc<Replica>>,
    next: AtomicUsize,
    settings: ReplicaSettings,
}

impl ReplicaSet {
    /// Pools for the replicas of `settings`, reached as `primary` is (same database,
    /// credentials and TLS); nothing connects until the pools are used or checked.
    pub fn new(
        primary: &ConnectionTarget,
        pool: &PoolSettings,
        settings: &ReplicaSettings,
    ) -> Result<Self, rustls::Error> {
        let replicas = settings
            .hosts
            .iter()
            .map(|host| {
                let mut target = primary.clone();
                target.host.clone_from(&host.host);
                target.port = host.port;
                let connector = PgConnector::new(&target, pool)?;
                Ok(Arc::new(Replica {
                    host: host.clone(),
                    name: host.to_string(),
                    pool: LivePool::new(&connector, pool),
                    state: AtomicU8::new(ReplicaState::Unknown.as_u8()),
                    lag_ms: AtomicU64::new(u64::MAX),
                }))
            })
            .collect::<Result<Vec<_>, rustls::Error>>()?;
        Ok(Self {
            replicas,
            next: AtomicUsize::new(0),
            settings: settings.clone(),
        })
    }

    /// A usable replica, taken in turn; `None` when none is.
    fn pick(&self) -> Option<&Arc<Replica>> {
        let n = self.replicas.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..n)
            .map(|i| &self.replicas[(start + i) % n])
            .find(|r| r.state() == ReplicaState::Usable)
    }

    /// A connection to a usable replica, or `None` (then the caller reads on the primary).
    /// A replica whose pool fails is marked down at once.
    pub(crate) async fn connection(&self) -> Option<DbConn> {
        for _ in 0..self.replicas.len() {
            let replica = self.pick()?;
            match replica.pool.get().await {
                Ok(conn) => return Some(conn),
                Err(e) => {
                    warn!(replica = %replica.host, error = %e, "read replica unavailable");
                    replica.set(ReplicaState::Down, None);
                }
            }
        }
        None
    }

    /// Every replica's last verdict.
    pub fn report(&self) -> Vec<ReplicaReport> {
        self.replicas
            .iter()
            .map(|r| ReplicaReport {
                name: r.name.clone(),
                state: r.state(),
                lag: match r.lag_ms.load(Ordering::Relaxed) {
                    u64::MAX => None,
                    ms => Some(Duration::from_millis(ms)),
                },
                pool: r.pool.figures(),
            })
            .collect()
    }

    /// Checks every replica against the primary's WAL position.
    pub async fn check_all(&self, primary: &Database) {
        let primary_lsn = match primary_position(primary).await {
            Some(lsn) => lsn,
            // Without the primary there is nothing to compare with; keep the verdicts.
            None => return,
        };
        let limit = self.settings.max_lag.as_millis() as u64;
        for replica in &self.replicas {
            let verdict = tokio::time::timeout(
                self.settings.check_interval.max(Duration::from_secs(1)),
                check(replica),
            )
            .await;
            match verdict {
                Ok(Some(Position { standby: false, .. })) => {
                    replica.set(ReplicaState::NotAReplica, None)
                }
                Ok(Some(position)) => {
                    let lag = position.lag_ms(primary_lsn);
                    match lag {
                        Some(ms) if ms <= limit => replica.set(ReplicaState::Usable, Some(ms)),
                        _ => replica.set(ReplicaState::Lagging, lag),
                    }
                }
                Ok(None) | Err(_) => replica.set(ReplicaState::Down, None),
            }
        }
    }
}

/// Checks the replicas every `check_interval`, for as long as the task runs.
pub async fn watch(set: Arc<ReplicaSet>, primary: Database) {
    loop {
        set.check_all(&primary).await;
        tokio::time::sleep(set.settings.check_interval).await;
    }
}

#[derive(QueryableByName)]
struct Lsn {
    #[diesel(sql_type = Text)]
    lsn: String,
}

#[derive(QueryableByName)]
struct Position {
    #[diesel(sql_type = Bool)]
    standby: bool,
    #[diesel(sql_type = Nullable<Text>)]
    replayed: Option<String>,
    #[diesel(sql_type = Nullable<Double>)]
    replay_age_ms: Option<f64>,
}

impl Position {
    /// Milliseconds behind the primary: none when it replayed everything the primary had
    /// written when asked (an idle primary makes the last replay look old without lag),
    /// else the age of its last replayed transaction; `None` when unknown.
    fn lag_ms(&self, primary_lsn: u64) -> Option<u64> {
        let replayed = parse_lsn(self.replayed.as_deref()?)?;
        if replayed >= primary_lsn {
            return Some(0);
        }
        self.replay_age_ms.map(|ms| ms.max(0.0) as u64)
    }
}

async fn primary_position(primary: &Database) -> Option<u64> {
    use diesel_async::RunQueryDsl;

    let mut conn = primary.conn_untracked().await.ok()?;
    let row = diesel::sql_query("SELECT pg_current_wal_lsn()::text AS lsn")
        .get_result::<Lsn>(&mut conn)
        .await
        .ok()?;
    parse_lsn(&row.lsn)
}

async fn check(replica: &Replica) -> Option<Position> {
    use diesel_async::RunQueryDsl;

    let mut conn = replica.pool.get().await.ok()?;
    diesel::sql_query(
        "SELECT pg_is_in_recovery() AS standby, \
                pg_last_wal_replay_lsn()::text AS replayed, \
                (EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()) * 1000)::float8 \
                  AS replay_age_ms",
    )
    .get_result::<Position>(&mut conn)
    .await
    .ok()
}

/// `16/B374D848` → its 64-bit position.
fn parse_lsn(text: &str) -> Option<u64> {
    let (hi, lo) = text.split_once('/')?;
    Some((u64::from_str_radix(hi, 16).ok()? << 32) | u64::from_str_radix(lo, 16).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsns_and_lag() {
        assert_eq!(parse_lsn("0/0"), Some(0));
        assert_eq!(parse_lsn("16/B374D848"), Some((0x16 << 32) | 0xB374_D848));
        assert_eq!(parse_lsn("x/1"), None);
        let at = |replayed: &str, age: f64| Position {
            standby: true,
            replayed: Some(replayed.into()),
            replay_age_ms: Some(age),
        };
        // Caught up: no lag, however old its last replayed transaction.
        assert_eq!(at("0/200", 90_000.0).lag_ms(0x200), Some(0));
        // Behind: the age of what it replayed last.
        assert_eq!(at("0/100", 1_500.0).lag_ms(0x200), Some(1_500));
        let unknown = Position {
            standby: true,
            replayed: None,
            replay_age_ms: None,
        };
        assert_eq!(unknown.lag_ms(0x200), None);
    }
}
