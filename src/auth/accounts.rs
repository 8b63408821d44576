//! The account flows behind upstream's routes: registration and sign-in (gated by
//! `global.enable_email_registration` and `global.enable_login`, read live from the settings
//! cache, which every write invalidates in every process), sign-out, the session's user, and
//! what the setup wizard needs to know. Every check that costs nothing comes before the one
//! that costs a password hash; the counts that hold guessing back live in the database
//! ([`super::throttle`]).

use secrecy::SecretString;
use tracing::{info, warn};

use super::cookie::CookiePolicy;
use super::device::DeviceCookies;
use super::error::AuthError;
use super::password::Passwords;
use super::sessions::{SessionToken, Sessions};
use super::throttle::{Limit, Throttle};
use super::turns::Priority;
use super::validate;
use crate::config::AccountSettings;
use crate::db::models::{AuthType, GlobalRole, User};
use crate::db::Database;
use crate::services::first_admin::{proof_hash, FirstAdminProofs, ProofKind};
use crate::services::users::{CreateUser, Taken, UserService};
use crate::settings::GlobalSettings;

/// Setting that turns sign-ins off.
const ENABLE_LOGIN: &str = "global.enable_login";
/// Setting that turns email sign-ups off.
const ENABLE_REGISTRATION: &str = "global.enable_email_registration";
/// Setting holding the frontend's address.
const PAGE_URL: &str = "global.page_url";

/// What a sign-up provides. `Debug` is not derived: it holds the password.
pub struct Registration {
    /// 3 to 50 of `a-zA-Z0-9_-`.
    pub username: String,
    /// An email address (stored in lower case).
    pub email: String,
    /// 8 to 128 characters.
    pub password: SecretString,
    /// Given name, at most 100 characters.
    pub first_name: Option<String>,
    /// Family name, at most 100 characters.
    pub last_name: Option<String>,
}

/// Where a request comes from, as the limits and the first-administrator rule see it.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    /// The client's address key ([`crate::net::Client::limit_key`]).
    pub address: Option<String>,
    /// The `device` cookie's value, if any.
    pub device: Option<String>,
    /// First-administrator proofs the request carries (the setup grant cookie, the setup
    /// token), as sent.
    pub proofs: Vec<String>,
}

/// A new account, and its session when sign-ins are enabled.
#[derive(Debug)]
pub struct Registered {
    /// The account.
    pub user: User,
    /// Whether it became the global administrator.
    pub administrator: bool,
    /// Its session (none while `global.enable_login` is off, and for an operator's command).
    pub session: Option<SessionToken>,
    /// A device cookie for the browser that signed up (with the session).
    pub device: Option<String>,
}

/// A successful sign-in.
#[derive(Debug)]
pub struct SignedIn {
    /// The account.
    pub user: User,
    /// Its new session.
    pub session: SessionToken,
    /// A fresh device cookie for this browser.
    pub device: String,
}

/// What the setup wizard and a frontend need before anyone signs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountStatus {
    /// Whether a global administrator exists.
    pub administrator_exists: bool,
    /// `global.enable_login`.
    pub login_enabled: bool,
    /// `global.enable_email_registration`.
    pub registration_enabled: bool,
    /// `global.page_url` when set to something other than its default: where people go
    /// next.
    pub frontend_url: Option<String>,
}

/// Accounts and sessions of one process.
pub struct Accounts {
    users: UserService,
    sessions: Sessions,
    passwords: Passwords,
    throttle: Throttle,
    devices: DeviceCookies,
    proofs: FirstAdminProofs,
    settings: GlobalSettings,
    cookie: CookiePolicy,
}

impl Accounts {
    /// Accounts on `db`, gated by `settings` (whose secret signs device cookies).
    pub fn new(db: Database, settings: GlobalSettings, config: &AccountSettings) -> Self {
        Self {
            users: UserService::new(db.clone()),
            sessions: Sessions::new(db.clone()),
            passwords: Passwords::new(config.hash_concurrency, config.hash_queue_wait),
            throttle: Throttle::new(db.clone()),
            devices: DeviceCookies::new(settings.cipher().clone()),
            proofs: FirstAdminProofs::new(db),
            settings,
            cookie: CookiePolicy::new(config),
        }
    }

    /// How the session cookie is written.
    pub fn cookie(&self) -> &CookiePolicy {
        &self.cookie
    }

    /// The sessions.
    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    /// The password hasher.
    pub fn passwords(&self) -> &Passwords {
        &self.passwords
    }

    /// The attempt counters.
    pub fn throttle(&self) -> &Throttle {
        &self.throttle
    }

    /// The first-administrator proofs.
    pub fn proofs(&self) -> &FirstAdminProofs {
        &self.proofs
    }

    /// Signs up through the form: refused while `global.enable_email_registration` is off,
    /// and, while no administrator exists, without a live first-administrator proof.
    pub async fn register(
        &self,
        form: Registration,
        caller: &Caller,
    ) -> Result<Registered, AuthError> {
        if !self.enabled(ENABLE_REGISTRATION).await? {
            return Err(AuthError::RegistrationDisabled);
        }
        check_registration(&form)?;
        if let Some(taken) = self.users.taken(&form.email, &form.username).await? {
            return Err(taken_error(taken));
        }
        let proofs: Vec<String> = caller.proofs.iter().map(|p| proof_hash(p)).collect();
        if !self.users.administrator_exists().await? && !self.proofs.any_live(&proofs).await? {
            return Err(AuthError::FirstAdminProofRequired);
        }
        if let Some(address) = &caller.address {
            self.throttle
                .hit(&[Limit::registration(address)])
                .await?
                .map_err(AuthError::TooManyRegistrations)?;
        }
        let (user, administrator) = self.create(form, false, &proofs).await?;
        if !self.enabled(ENABLE_LOGIN).await? {
            return Ok(Registered {
                user,
                administrator,
                session: None,
                device: None,
            });
        }
        let session = self.sessions.create(&user.id).await?;
        let device = self.devices.issue(&user.id);
        Ok(Registered {
            user,
            administrator,
            session: Some(session),
            device: Some(device),
        })
    }

    /// Creates an administrator account for an operator (the `users create-admin` command),
    /// whatever the settings say; no session.
    pub async fn create_admin(&self, form: Registration) -> Result<Registered, AuthError> {
        check_registration(&form)?;
        let (user, administrator) = self.create(form, true, &[]).await?;
        Ok(Registered {
            user,
            administrator,
            session: None,
            device: None,
        })
    }

    /// Hashes the password and inserts the account (the rules are checked again in the
    /// insert's transaction).
    async fn create(
        &self,
        form: Registration,
        admin: bool,
        proofs: &[String],
    ) -> Result<(User, bool), AuthError> {
        let hashed = self.passwords.hash(form.password).await?;
        let input = CreateUser {
            username: form.username,
            email: form.email,
            auth_type: AuthType::EmailSignup,
            first_name: form.first_name,
            last_name: form.last_name,
            github_id: None,
            hashed_password: Some(hashed),
        };
        let (user, team) = self
            .users
            .register(input, admin, proofs)
            .await?
            .map_err(taken_error)?;
        let administrator = is_admin(&user);
        info!(user = %user.id, administrator, team = %team.id, "account registered");
        Ok((user, administrator))
    }

    /// Signs in with an email address or username: refused while `global.enable_login` is
    /// off, and while the account (for a client without its device cookie), the device or
    /// the client's address has too many recent failures.
    pub async fn login(
        &self,
        login: &str,
        password: SecretString,
        caller: &Caller,
    ) -> Result<SignedIn, AuthError> {
        use secrecy::ExposeSecret;
        let problems = validate::login(login, password.expose_secret());
        if !problems.is_empty() {
            return Err(AuthError::Invalid(problems));
        }
        if !self.enabled(ENABLE_LOGIN).await? {
            return Err(AuthError::LoginDisabled);
        }
        let user = self.users.find_for_login(login).await?;
        let account_key = user
            .as_ref()
            .map_or_else(|| login.to_lowercase(), |u| u.id.to_string());
        let device = caller
            .device
            .as_deref()
            .and_then(|value| self.devices.read(value))
            .filter(|d| user.as_ref().is_some_and(|u| u.id.as_str() == d.user));
        // A device with too many failures of its own is a stranger again (OWASP).
        let trusted = match &device {
            Some(d) => self.throttle.hit(&[Limit::device(&d.nonce)]).await?.is_ok(),
            None => false,
        };
        let mut counted = Vec::new();
        if !trusted {
            counted.push(Limit::account(&account_key));
            counted.extend(caller.address.as_deref().map(Limit::address));
            self.throttle
                .hit(&counted)
                .await?
                .map_err(AuthError::TooManyFailures)?;
        }
        let stored = user.as_ref().and_then(|u| u.hashed_password.clone());
        let priority = if trusted {
            Priority::Trusted
        } else {
            Priority::Normal
        };
        // Unknown accounts are checked against a dummy hash: same time as a wrong password.
        let matched = self.passwords.verify(password, stored, priority).await?;
        let Some(user) = user.filter(|_| matched) else {
            warn!(address = ?caller.address, "failed sign-in");
            return Err(AuthError::BadCredentials);
        };
        // A success clears the count it was held under: the account's, for a stranger (the
        // owner without the device cookie); only the device's, for a trusted device (the
        // strangers' failures still hold the account for everyone else). It is taken back
        // from the address (one person's success says nothing of the others' there).
        let cleared = match &device {
            Some(d) if trusted => Limit::device(&d.nonce),
            _ => Limit::account(&account_key),
        };
        self.throttle.clear(&[cleared.key()]).await?;
        if let Some(address) = counted.iter().find(|l| l.key().starts_with("address:")) {
            self.throttle.take_back(address.key()).await?;
        }
        let session = self.sessions.create(&user.id).await?;
        let device = self.devices.issue(&user.id);
        Ok(SignedIn {
            user,
            session,
            device,
        })
    }

    /// A new setup grant for the browser that just ran the setup, unless an administrator
    /// exists already.
    pub async fn setup_grant(&self) -> Result<Option<String>, AuthError> {
        Ok(self.proofs.issue(ProofKind::Grant).await?)
    }

    /// A new start token, unless an administrator exists already.
    pub async fn start_token(&self) -> Result<Option<String>, AuthError> {
        Ok(self.proofs.issue(ProofKind::Start).await?)
    }

    /// Ends the session of `token`.
    pub async fn logout(&self, token: &str) -> Result<(), AuthError> {
        self.sessions.end(token).await
    }

    /// The user of the session `token`, if it is live.
    pub async fn user_of(&self, token: &str) -> Result<Option<User>, AuthError> {
        self.sessions.user_of(token).await
    }

    /// Whether an administrator exists, and the sign-in settings.
    pub async fn status(&self) -> Result<AccountStatus, AuthError> {
        let frontend_url = self
            .settings
            .get_string(PAGE_URL)
            .await?
            .filter(|url| url.as_str() != crate::settings::groups::global::DEFAULT_PAGE_URL)
            // Shown as a link to anyone: only a web address, never `javascript:` and the like.
            .filter(|url| {
                let lower = url.to_ascii_lowercase();
                lower.starts_with("https://") || lower.starts_with("http://")
            });
        Ok(AccountStatus {
            administrator_exists: self.users.administrator_exists().await?,
            login_enabled: self.enabled(ENABLE_LOGIN).await?,
            registration_enabled: self.enabled(ENABLE_REGISTRATION).await?,
            frontend_url,
        })
    }

    /// A boolean setting that defaults to on (a database initialized before it existed).
    async fn enabled(&self, key: &str) -> Result<bool, AuthError> {
        Ok(self.settings.get_bool(key).await?.unwrap_or(true))
    }
}

/// The rules a sign-up's fields must meet.
fn check_registration(form: &Registration) -> Result<(), AuthError> {
    use secrecy::ExposeSecret;
    let problems = validate::registration(
        &form.username,
        &form.email,
        form.password.expose_secret(),
        form.first_name.as_deref(),
        form.last_name.as_deref(),
    );
    if problems.is_empty() {
        Ok(())
    } else {
        Err(AuthError::Invalid(problems))
    }
}

fn taken_error(taken: Taken) -> AuthError {
    match taken {
        Taken::Email => AuthError::EmailTaken,
        Taken::Username => AuthError::UsernameTaken,
        Taken::FirstAdminProof => AuthError::FirstAdminProofRequired,
    }
}

/// Whether `user` is the global administrator.
pub fn is_admin(user: &User) -> bool {
    user.role_id.as_ref().map(|r| r.as_str()) == Some(GlobalRole::Admin.as_str())
}
