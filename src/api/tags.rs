//! Groups of operations in the Swagger UI.

use poem_openapi::Tags;

/// Operation groups, in the order the documentation shows them.
#[derive(Tags)]
pub enum ApiTags {
    /// Database status and first-run setup.
    Database,
    /// Liveness and readiness probes for orchestrators and load balancers.
    Health,
    /// The service banner.
    General,
    /// Sign-up, sign-in and sign-out with the session cookie.
    Authentication,
    /// Accounts.
    Users,
    /// Global settings (global administrator only).
    Settings,
    /// The background job queue (global administrator only).
    Jobs,
}
