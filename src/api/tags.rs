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
    /// Accounts and their preferences.
    Users,
    /// Teams and their members.
    Teams,
    /// Roles and the permissions they grant.
    Roles,
    /// The MCP catalog and a team's installations (the dashboard's reads).
    Catalog,
    /// Accounts and teams, administered (global administrator only).
    Administration,
    /// Global settings (global administrator only).
    Settings,
    /// The background job queue (global administrator only).
    Jobs,
}
