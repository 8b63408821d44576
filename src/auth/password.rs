//! Password hashes: argon2id with upstream's parameters (`@node-rs/argon2`'s
//! `{memoryCost: 19456, timeCost: 2, parallelism: 1, outputLen: 32}`), stored as a PHC string,
//! so a hash written by upstream verifies here and one written here verifies there.
//!
//! A hash takes 19 MiB and tens of milliseconds of a core, so it runs on the blocking pool
//! (never on the async threads that serve every other request), at most `concurrency` at
//! once, trusted clients first ([`super::turns`]); a request that would not get its turn
//! within `AUTH_HASH_QUEUE_WAIT_MS` is answered "busy" at once, with the time to retry. An account
//! without a password (or unknown) is checked against a dummy hash of the same cost, so its
//! answer takes as long as a wrong password's.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::OnceCell;

use super::error::AuthError;
use super::turns::{Priority, Turns};

/// Memory per hash, in KiB (upstream's `memoryCost`).
pub const HASH_MEMORY_KIB: u32 = 19_456;
/// Passes (upstream's `timeCost`).
pub const HASH_TIME: u32 = 2;
/// Lanes (upstream's `parallelism`).
pub const HASH_LANES: u32 = 1;
/// Hash length in bytes (upstream's `outputLen`).
pub const HASH_OUTPUT_BYTES: usize = 32;

/// Hashes and checks passwords, a bounded number at once.
pub struct Passwords {
    turns: Arc<Turns>,
    /// Longest wait for a turn before answering "busy".
    wait: Duration,
    dummy: OnceCell<String>,
    computed: Arc<AtomicU64>,
}

impl Passwords {
    /// At most `concurrency` hashes at once; a request that would wait longer than `wait`
    /// for its turn is refused at once.
    pub fn new(concurrency: usize, wait: Duration) -> Self {
        Self {
            turns: Turns::new(concurrency),
            wait,
            dummy: OnceCell::new(),
            computed: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Hashes computed so far (each check is one too): what requests cost the server.
    pub fn computed(&self) -> u64 {
        self.computed.load(Ordering::Relaxed)
    }

    /// The PHC string of `password`, with a fresh random salt.
    pub async fn hash(&self, password: SecretString) -> Result<String, AuthError> {
        self.on_blocking_pool(Priority::Normal, move || {
            let salt = SaltString::generate(&mut OsRng);
            argon2()
                .hash_password(password.expose_secret().as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| AuthError::Hashing(e.to_string()))
        })
        .await
    }

    /// Whether `password` matches `stored` (a PHC string; argon2 with any parameters).
    /// Without a stored hash, or with one that does not parse, the answer is `false` after
    /// the same work as a real check.
    pub async fn verify(
        &self,
        password: SecretString,
        stored: Option<String>,
        priority: Priority,
    ) -> Result<bool, AuthError> {
        let usable = stored.filter(|s| PasswordHash::new(s).is_ok());
        let (phc, real) = match usable {
            Some(phc) => (phc, true),
            None => (self.dummy().await?, false),
        };
        let matched = self
            .on_blocking_pool(priority, move || {
                let parsed =
                    PasswordHash::new(&phc).map_err(|e| AuthError::Hashing(e.to_string()))?;
                Ok(Argon2::default()
                    .verify_password(password.expose_secret().as_bytes(), &parsed)
                    .is_ok())
            })
            .await?;
        Ok(real && matched)
    }

    /// A hash of a random password, made once: what an account without a password is
    /// checked against.
    async fn dummy(&self) -> Result<String, AuthError> {
        self.dummy
            .get_or_try_init(|| self.hash(crate::embedded_pg::generate_password()))
            .await
            .cloned()
    }

    async fn on_blocking_pool<T: Send + 'static>(
        &self,
        priority: Priority,
        work: impl FnOnce() -> Result<T, AuthError> + Send + 'static,
    ) -> Result<T, AuthError> {
        let turn = self
            .turns
            .take(priority, self.wait)
            .await
            .map_err(AuthError::Busy)?;
        let turns = self.turns.clone();
        let computed = self.computed.clone();
        // The turn goes with the work: a request dropped meanwhile does not free it while
        // the hash still takes its core.
        let outcome = tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            computed.fetch_add(1, Ordering::Relaxed);
            let outcome = work();
            turns.record(started.elapsed());
            drop(turn);
            outcome
        })
        .await
        .map_err(|e| AuthError::Hashing(e.to_string()))?;
        outcome
    }
}

/// Argon2id, version 0x13, upstream's parameters.
fn argon2() -> Argon2<'static> {
    let params = Params::new(
        HASH_MEMORY_KIB,
        HASH_TIME,
        HASH_LANES,
        Some(HASH_OUTPUT_BYTES),
    )
    .expect("upstream's argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    #[tokio::test]
    async fn hashes_in_upstreams_format_and_verifies_only_the_password() {
        let passwords = Passwords::new(2, Duration::from_secs(10));
        let phc = passwords.hash(secret("correct horse")).await.expect("hash");
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        let hash = PasswordHash::new(&phc).expect("parses");
        assert_eq!(hash.hash.map(|h| h.len()), Some(32));
        assert!(passwords
            .verify(secret("correct horse"), Some(phc.clone()), Priority::Normal)
            .await
            .expect("verify"));
        assert!(!passwords
            .verify(secret("correct horsE"), Some(phc), Priority::Normal)
            .await
            .expect("verify"));
        assert!(!passwords
            .verify(secret("x"), None, Priority::Normal)
            .await
            .expect("no hash"));
        assert!(!passwords
            .verify(secret("x"), Some("not a hash".into()), Priority::Normal)
            .await
            .expect("bad hash"));
    }

    /// Without a stored hash the password is still checked, against the dummy hash (so an
    /// unknown account's answer takes as long as a wrong password's), and never matches.
    #[tokio::test]
    async fn a_missing_hash_is_checked_against_the_dummy() {
        let passwords = Passwords::new(1, Duration::from_secs(10));
        assert!(passwords.dummy.get().is_none());
        assert!(!passwords
            .verify(secret("x"), None, Priority::Normal)
            .await
            .expect("verify"));
        let dummy = passwords.dummy.get().expect("made at first use").clone();
        assert!(
            dummy.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{dummy}"
        );
        // Even the dummy's own password does not sign in to an account without a hash.
        assert!(!passwords
            .verify(secret(&dummy), None, Priority::Normal)
            .await
            .expect("verify"));
    }

    /// A hash made by upstream (`@node-rs/argon2`, same parameters) verifies here.
    #[tokio::test]
    async fn an_upstream_hash_verifies() {
        let upstream = "$argon2id$v=19$m=19456,t=2,p=1$kOxmTQWBFIs/byODWKuSTw$e6lrMM+jclVlYBXogbREm6ND+97T3roeEpMNeUjYnu4";
        let passwords = Passwords::new(1, Duration::from_secs(10));
        assert!(passwords
            .verify(
                secret("correct horse"),
                Some(upstream.into()),
                Priority::Trusted
            )
            .await
            .expect("verify"));
    }
}
