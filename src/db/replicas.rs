//! Read replicas: one pool per replica, a periodic check of each one's health and lag, and
//! the choice of a usable replica for a read. A replica that is down, is not in recovery, or
//! lags more than `POSTGRES_READ_MAX_LAG_MS` is skipped until a later check clears it; with
//! none usable, reads go to the primary. A read that must see a WAL position (see
//! [`crate::db::routing`]) goes to a replica only once it replayed that far.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::sql_types::{Bool, Nullable, Text};
use diesel::QueryableByName;
use diesel_async::AsyncPgConnection;
use tracing::{debug, info, warn};

use crate::config::{ConnectionTarget, PoolSettings, ReplicaHost, ReplicaSettings};
use crate::db::connector::PgConnector;
use crate::db::pool::{DbConn, LivePool, PoolFigures};
use crate::db::routing::parse_lsn;

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
    /// Reached through a pooler in transaction mode, which the backend's sessions cannot
    /// use (see [`crate::setup`]'s pooler check).
    TransactionPooler,
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
            Self::TransactionPooler => "transaction_pooler",
        }
    }

    fn from_u8(v: u8) -> Self {
        match v {
            1 => Self::Usable,
            2 => Self::Lagging,
            3 => Self::Down,
            4 => Self::NotAReplica,
            5 => Self::TransactionPooler,
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
            Self::TransactionPooler => 5,
        }
    }
}

/// One replica and its pool.
pub struct Replica {
    host: ReplicaHost,
    name: String,
    pool: LivePool,
    /// How the checks reach it: a connection of their own, so a busy pool never makes a
    /// healthy replica look down.
    connector: PgConnector,
    checker: tokio::sync::Mutex<Option<AsyncPgConnection>>,
    state: AtomicU8,
    /// Last measured lag in milliseconds (`u64::MAX` when unknown).
    lag_ms: AtomicU64,
    /// The furthest WAL position it was seen to have replayed (0: unknown).
    replayed: AtomicU64,
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
        if state != ReplicaState::Usable && state != ReplicaState::Lagging {
            // Down, re-cloned or replaced: what it had replayed is known again at its next
            // answer, never carried over.
            self.replayed.store(0, Ordering::Relaxed);
        }
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
    /// The primary's WAL position at each check, oldest first: when the primary passed a
    /// position is how far behind a replica that replayed up to it is.
    samples: std::sync::Mutex<VecDeque<(u64, Instant)>>,
    /// How the checks reach the primary: a connection of their own, so an exhausted primary
    /// pool never leaves old verdicts standing (a lagging replica serving reads under load).
    primary: PgConnector,
    primary_checker: tokio::sync::Mutex<Option<AsyncPgConnection>>,
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
                    connector,
                    checker: tokio::sync::Mutex::new(None),
                    state: AtomicU8::new(ReplicaState::Unknown.as_u8()),
                    lag_ms: AtomicU64::new(u64::MAX),
                    replayed: AtomicU64::new(0),
                }))
            })
            .collect::<Result<Vec<_>, rustls::Error>>()?;
        Ok(Self {
            replicas,
            next: AtomicUsize::new(0),
            settings: settings.clone(),
            samples: std::sync::Mutex::new(VecDeque::new()),
            primary: PgConnector::new(primary, pool)?,
            primary_checker: tokio::sync::Mutex::new(None),
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

    /// A connection to a usable replica that replayed at least up to `after_lsn`, or `None`
    /// (then the caller reads on the primary). A replica whose last check saw it behind that
    /// position is asked again on the connection (one round trip); a busy one (every pooled
    /// connection in use) is passed over at once, never waited for; one that cannot be
    /// reached at all (its pool holds no connection) is marked down.
    pub(crate) async fn connection(&self, after_lsn: u64) -> Option<DbConn> {
        if after_lsn == u64::MAX {
            // A position no replica reaches (the primary's could not be read).
            return None;
        }
        for _ in 0..self.replicas.len() {
            let replica = self.pick()?;
            let figures = replica.pool.figures();
            if figures.idle == 0 && figures.open >= figures.max {
                debug!(replica = %replica.host, "read replica busy; passed over");
                continue;
            }
            match replica.pool.get().await {
                Ok(mut conn) => {
                    if replica.replayed.load(Ordering::Relaxed) >= after_lsn {
                        return Some(conn);
                    }
                    if let Some(now) = replayed_now(&mut conn).await {
                        replica.replayed.fetch_max(now, Ordering::Relaxed);
                        if now >= after_lsn {
                            return Some(conn);
                        }
                    }
                    debug!(replica = %replica.host, "read replica behind the client's position");
                }
                Err(e) if replica.pool.figures().open == 0 => {
                    warn!(replica = %replica.host, error = %e, "read replica unavailable");
                    replica.set(ReplicaState::Down, None);
                }
                Err(e) => debug!(replica = %replica.host, error = %e, "read replica busy"),
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
    pub async fn check_all(&self) {
        let primary_lsn = match self.primary_position().await {
            Some(lsn) => lsn,
            None => {
                // Without the primary there is nothing to compare with: the verdicts stand
                // for as long as they could still be right, then no replica is trusted.
                let stale = self
                    .samples
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .back()
                    .is_none_or(|(_, at)| at.elapsed() > self.settings.max_lag);
                if stale {
                    for replica in &self.replicas {
                        replica.set(ReplicaState::Unknown, None);
                    }
                }
                return;
            }
        };
        let limit = self.settings.max_lag.as_millis() as u64;
        let now = Instant::now();
        let samples: Vec<(u64, Instant)> = {
            let mut samples = self
                .samples
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            samples.push_back((primary_lsn, now));
            // Enough history to tell any lag up to the limit, and then some.
            let keep = self.settings.max_lag + self.settings.check_interval * 4;
            while samples
                .front()
                .is_some_and(|(_, at)| now.duration_since(*at) > keep)
                && samples.len() > 1
            {
                samples.pop_front();
            }
            samples.iter().copied().collect()
        };
        for replica in &self.replicas {
            let verdict = tokio::time::timeout(
                self.settings.check_interval.max(Duration::from_secs(1)),
                check(replica),
            )
            .await;
            match verdict {
                Ok(Checked::Pooler) => replica.set(ReplicaState::TransactionPooler, None),
                Ok(Checked::Answered(Position { standby: false, .. })) => {
                    replica.set(ReplicaState::NotAReplica, None)
                }
                Ok(Checked::Answered(position)) => {
                    if let Some(lsn) = position.replayed.as_deref().and_then(parse_lsn) {
                        replica.replayed.fetch_max(lsn, Ordering::Relaxed);
                    }
                    let lag = position.lag_ms(&samples, now);
                    match lag {
                        Some(ms) if ms <= limit => replica.set(ReplicaState::Usable, Some(ms)),
                        _ => replica.set(ReplicaState::Lagging, lag),
                    }
                }
                Ok(Checked::Unreachable) | Err(_) => replica.set(ReplicaState::Down, None),
            }
        }
    }
}

/// Checks the replicas every `check_interval`, for as long as the task runs.
pub async fn watch(set: Arc<ReplicaSet>) {
    loop {
        set.check_all().await;
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
}

impl Position {
    /// Milliseconds behind the primary, from `samples` of the primary's position (oldest
    /// first, the newest taken `now`): none when it replayed everything the primary had
    /// written then; else the time since the first sample in which the primary was past
    /// the replayed position (at most one check interval short of the truth), or since the
    /// oldest sample when even that one was past it. The age of the last replayed
    /// transaction is not used: on a quiet primary it grows without any lag.
    fn lag_ms(&self, samples: &[(u64, Instant)], now: Instant) -> Option<u64> {
        let replayed = parse_lsn(self.replayed.as_deref()?)?;
        Some(
            samples
                .iter()
                .find(|(lsn, _)| *lsn > replayed)
                .map_or(0, |(_, at)| now.duration_since(*at).as_millis() as u64),
        )
    }
}

impl ReplicaSet {
    /// The primary's WAL position, on the checks' own connection (opened again after an
    /// error); `None` when the primary cannot be asked.
    async fn primary_position(&self) -> Option<u64> {
        use diesel_async::RunQueryDsl;

        let mut slot = self.primary_checker.lock().await;
        if slot.is_none() {
            *slot = Some(self.primary.connect().await.ok()?);
        }
        let conn = slot.as_mut()?;
        match diesel::sql_query("SELECT pg_current_wal_lsn()::text AS lsn")
            .get_result::<Lsn>(conn)
            .await
        {
            Ok(row) => parse_lsn(&row.lsn),
            Err(_) => {
                *slot = None;
                None
            }
        }
    }
}

/// What `conn`'s server has replayed now.
async fn replayed_now(conn: &mut AsyncPgConnection) -> Option<u64> {
    use diesel_async::RunQueryDsl;

    #[derive(QueryableByName)]
    struct Replayed {
        #[diesel(sql_type = Nullable<Text>)]
        lsn: Option<String>,
    }
    let row = diesel::sql_query("SELECT pg_last_wal_replay_lsn()::text AS lsn")
        .get_result::<Replayed>(conn)
        .await
        .ok()?;
    parse_lsn(row.lsn.as_deref()?)
}

/// What one check found.
enum Checked {
    Answered(Position),
    Pooler,
    Unreachable,
}

async fn check(replica: &Replica) -> Checked {
    use diesel_async::RunQueryDsl;

    let mut slot = replica.checker.lock().await;
    if slot.is_none() {
        let Ok(mut conn) = replica.connector.connect().await else {
            return Checked::Unreachable;
        };
        // Once per connection: a transaction pooler in front of the replica would mix up
        // the pool's prepared statements, as it would the primary's.
        match super::pooler::behind_transaction_pooler(&replica.connector, &mut conn).await {
            Ok(false) => *slot = Some(conn),
            Ok(true) => return Checked::Pooler,
            Err(_) => return Checked::Unreachable,
        }
    }
    let Some(conn) = slot.as_mut() else {
        return Checked::Unreachable;
    };
    let position = diesel::sql_query(
        "SELECT pg_is_in_recovery() AS standby, pg_last_wal_replay_lsn()::text AS replayed",
    )
    .get_result::<Position>(conn)
    .await;
    match position {
        Ok(position) => Checked::Answered(position),
        Err(_) => {
            // Reconnect next time.
            *slot = None;
            Checked::Unreachable
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A set whose primary and replica are on a port nobody listens on.
    fn unreachable_set(max_lag: Duration) -> ReplicaSet {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let primary = ConnectionTarget {
            host: "127.0.0.1".into(),
            port,
            database: "d".into(),
            user: "u".into(),
            password: None,
            tls: crate::config::TlsMode::Disabled,
        };
        let settings = ReplicaSettings {
            hosts: vec![ReplicaHost {
                host: "127.0.0.1".into(),
                port,
            }],
            max_lag,
            check_interval: Duration::from_millis(100),
        };
        ReplicaSet::new(&primary, &PoolSettings::default(), &settings).expect("set")
    }

    #[tokio::test]
    async fn verdicts_outlive_the_primary_only_within_the_lag_limit() {
        // A sample taken just now: the replica's verdict may still be right, and stands.
        let set = unreachable_set(Duration::from_secs(60));
        set.replicas[0].set(ReplicaState::Usable, Some(0));
        set.samples
            .lock()
            .expect("samples")
            .push_back((1, Instant::now()));
        set.check_all().await;
        assert_eq!(set.replicas[0].state(), ReplicaState::Usable);
        // No sample within the limit: it could lag any amount, so it serves nothing.
        let set = unreachable_set(Duration::from_millis(1));
        set.replicas[0].set(ReplicaState::Usable, Some(0));
        set.replicas[0].replayed.store(7, Ordering::Relaxed);
        set.check_all().await;
        assert_eq!(set.replicas[0].state(), ReplicaState::Unknown);
        assert_eq!(set.replicas[0].replayed.load(Ordering::Relaxed), 0);
        assert!(set.connection(0).await.is_none());
    }

    #[test]
    fn lsns_and_lag() {
        let now = Instant::now();
        let at = |secs_ago: u64| now - Duration::from_secs(secs_ago);
        // The primary was at 0x100 ten seconds ago, 0x200 five seconds ago, 0x300 now.
        let samples = [(0x100, at(10)), (0x200, at(5)), (0x300, now)];
        let replayed = |lsn: &str| Position {
            standby: true,
            replayed: Some(lsn.into()),
        };
        // Caught up with the newest sample: no lag, however quiet the primary has been.
        assert_eq!(replayed("0/300").lag_ms(&samples, now), Some(0));
        // Behind the newest sample only: less than one check behind.
        assert_eq!(replayed("0/250").lag_ms(&samples, now), Some(0));
        // The primary passed its position between 10 s and 5 s ago.
        assert_eq!(replayed("0/180").lag_ms(&samples, now), Some(5_000));
        // Behind even the oldest sample: at least that old.
        assert_eq!(replayed("0/80").lag_ms(&samples, now), Some(10_000));
        let unknown = Position {
            standby: true,
            replayed: None,
        };
        assert_eq!(unknown.lag_ms(&samples, now), None);
    }
}
