//! Accounts and sessions: registration (the first account becomes the global
//! administrator), sign-in with a password, the session cookie, and the checks around them
//! (settings gates, failed-login limits, bounded password hashing). Upstream's HTTP contract
//! is in [`crate::api::auth`]; this module holds the rules.

mod accounts;
mod cookie;
mod error;
mod limiter;
mod password;
mod sessions;
mod validate;

pub use accounts::{is_admin, AccountStatus, Accounts, Registered, Registration};
pub use cookie::{over_tls, CookiePolicy, COOKIE_NAME};
pub use error::AuthError;
pub use limiter::{
    FailureLimiter, ACCOUNT_FAILURES_PER_WINDOW, ADDRESS_FAILURES_PER_WINDOW, WINDOW,
};
pub use password::{Passwords, HASH_LANES, HASH_MEMORY_KIB, HASH_OUTPUT_BYTES, HASH_TIME};
pub use sessions::{SessionToken, Sessions, RENEW_BELOW, SESSION_LIFETIME};
pub use validate::{required, FieldProblem, PasswordRules};
