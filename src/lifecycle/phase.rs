//! Where this process stands with its database. One value, owned by the setup service and
//! published through a watch channel, so the status endpoint, the wizard, the start-up wait
//! and the services started once the database is served all read the same truth.

/// The database lifecycle of this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// At start, before we know whether setup was performed (reading the selection file,
    /// or asking the database whether it records a setup).
    Checking,
    /// Setup has not been performed: the wizard offers it (and the backend looks again now
    /// and then, read-only, in case a peer replica performs it).
    SetupRequired,
    /// Setup was performed; the database is being migrated and initialized (the first
    /// attempt: retries stay [`Phase::Unavailable`] until one succeeds).
    Starting,
    /// PostgreSQL cannot be used right now (down, refusing us, out of connection slots, or
    /// failing to migrate); retrying in the background.
    Unavailable,
    /// The database is migrated and served.
    Ready,
    /// This process must not serve the database as configured (a wrong encryption secret);
    /// the reason is [`crate::setup::SetupService::refusal`]. Only a restart with another
    /// configuration helps.
    Refused,
    /// The process is shutting down; nothing is installed any more.
    Stopped,
}

impl Phase {
    /// Every phase, so an exporter can report the ones not in force as zero.
    pub const ALL: [Phase; 7] = [
        Phase::Checking,
        Phase::SetupRequired,
        Phase::Starting,
        Phase::Unavailable,
        Phase::Ready,
        Phase::Refused,
        Phase::Stopped,
    ];

    /// A stable snake-case name, as metrics label it.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Checking => "checking",
            Phase::SetupRequired => "setup_required",
            Phase::Starting => "starting",
            Phase::Unavailable => "unavailable",
            Phase::Ready => "ready",
            Phase::Refused => "refused",
            Phase::Stopped => "stopped",
        }
    }

    /// Whether the start-up is still deciding (the server waits a bounded time for this to
    /// end before it serves, so the first answers already tell the truth).
    pub fn is_settling(self) -> bool {
        matches!(self, Phase::Checking | Phase::Starting)
    }
}
