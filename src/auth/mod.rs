//! Accounts and sessions: registration (the first account becomes the global
//! administrator), sign-in with a password, the session cookie, and the checks around them
//! (settings gates, failed-login limits, bounded password hashing). Upstream's HTTP contract
//! is in [`crate::api::auth`]; this module holds the rules.

mod accounts;
mod cookie;
mod device;
mod error;
mod password;
mod sessions;
mod throttle;
mod turns;
mod validate;

pub use accounts::{is_admin, AccountStatus, Accounts, Caller, Registered, Registration, SignedIn};
pub use cookie::{over_tls, CookiePolicy, COOKIE_NAME, DEVICE_COOKIE, GRANT_COOKIE};
pub use device::{Device, DeviceCookies};
pub use error::AuthError;
pub use password::{Passwords, HASH_LANES, HASH_MEMORY_KIB, HASH_OUTPUT_BYTES, HASH_TIME};
pub use sessions::{SessionToken, Sessions, RENEW_BELOW, SESSION_LIFETIME};
pub use throttle::{
    Limit, Throttle, ACCOUNT_FAILURES, ADDRESS_FAILURES, ADDRESS_REGISTRATIONS, DEVICE_FAILURES,
    REGISTRATION_WINDOW, SIGN_IN_WINDOW,
};
pub use turns::Priority;
pub use validate::{is_email, required, FieldProblem, PasswordRules};
