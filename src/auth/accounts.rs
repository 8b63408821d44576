//! The account flows behind upstream's routes: registration and sign-in (gated by
//! `global.enable_email_registration` and `global.enable_login`, read live from the settings
//! cache, which every write invalidates in every process), sign-out, the session's user, and
//! what the setup wizard needs to know.

use std::net::IpAddr;

use secrecy::SecretString;
use tracing::{info, warn};

use super::cookie::CookiePolicy;
use super::error::AuthError;
use super::limiter::FailureLimiter;
use super::password::Passwords;
use super::sessions::{SessionToken, Sessions};
use super::validate;
use crate::config::AccountSettings;
use crate::db::models::{AuthType, GlobalRole, User};
use crate::db::Database;
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

/// A new account and its session.
#[derive(Debug)]
pub struct Registered {
    /// The account.
    pub user: User,
    /// Whether it became the global administrator.
    pub administrator: bool,
    /// Its session.
    pub session: SessionToken,
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
    limiter: FailureLimiter,
    settings: GlobalSettings,
    cookie: CookiePolicy,
}

impl Accounts {
    /// Accounts on `db`, gated by `settings`.
    pub fn new(db: Database, settings: GlobalSettings, config: &AccountSettings) -> Self {
        Self {
            users: UserService::new(db.clone()),
            sessions: Sessions::new(db),
            passwords: Passwords::new(config.hash_concurrency),
            limiter: FailureLimiter::default(),
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

    /// Signs up through the form: refused while `global.enable_email_registration` is off.
    pub async fn register(&self, form: Registration) -> Result<Registered, AuthError> {
        if !self.enabled(ENABLE_REGISTRATION).await? {
            return Err(AuthError::RegistrationDisabled);
        }
        self.create(form, false).await
    }

    /// Creates an administrator account for an operator (the `users create-admin` command),
    /// whatever the settings say.
    pub async fn create_admin(&self, form: Registration) -> Result<Registered, AuthError> {
        self.create(form, true).await
    }

    async fn create(&self, form: Registration, admin: bool) -> Result<Registered, AuthError> {
        use secrecy::ExposeSecret;
        let problems = validate::registration(
            &form.username,
            &form.email,
            form.password.expose_secret(),
            form.first_name.as_deref(),
            form.last_name.as_deref(),
        );
        if !problems.is_empty() {
            return Err(AuthError::Invalid(problems));
        }
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
        let (user, team) = match self.users.register(input, admin).await? {
            Ok(created) => created,
            Err(Taken::Email) => return Err(AuthError::EmailTaken),
            Err(Taken::Username) => return Err(AuthError::UsernameTaken),
        };
        let administrator = is_admin(&user);
        info!(user = %user.id, administrator, team = %team.id, "account registered");
        let session = self.sessions.create(&user.id).await?;
        Ok(Registered {
            user,
            administrator,
            session,
        })
    }

    /// Signs in with an email address or username: refused while `global.enable_login` is
    /// off, and while the account or `address` has too many recent failures.
    pub async fn login(
        &self,
        login: &str,
        password: SecretString,
        address: Option<IpAddr>,
    ) -> Result<(User, SessionToken), AuthError> {
        use secrecy::ExposeSecret;
        let problems = validate::login(login, password.expose_secret());
        if !problems.is_empty() {
            return Err(AuthError::Invalid(problems));
        }
        if !self.enabled(ENABLE_LOGIN).await? {
            return Err(AuthError::LoginDisabled);
        }
        let attempt = self
            .limiter
            .begin(login, address)
            .map_err(AuthError::TooManyFailures)?;
        let user = self.users.find_for_login(login).await?;
        let stored = user.as_ref().and_then(|u| u.hashed_password.clone());
        // Unknown accounts are checked against a dummy hash: same time as a wrong password.
        let matched = self.passwords.verify(password, stored).await?;
        match user.filter(|_| matched) {
            Some(user) => {
                attempt.succeeded();
                let session = self.sessions.create(&user.id).await?;
                Ok((user, session))
            }
            None => {
                attempt.failed();
                warn!(address = ?address, "failed sign-in");
                Err(AuthError::BadCredentials)
            }
        }
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

/// Whether `user` is the global administrator.
pub fn is_admin(user: &User) -> bool {
    user.role_id.as_ref().map(|r| r.as_str()) == Some(GlobalRole::Admin.as_str())
}
