//! Typed services over the core tables, one per area. Each takes the [`Database`] handle and
//! follows upstream's patterns: updates and deletes report whether a row changed, bulk
//! operations report how many rows they touched.
//!
//! [`Database`]: crate::db::Database

pub mod catalog;
pub mod error;
pub mod first_admin;
pub mod installations;
pub mod mcp_servers;
pub mod memberships;
pub mod preferences;
pub mod role_admin;
pub mod roles;
pub mod team_admin;
pub mod team_rules;
pub mod teams;
pub mod tokens;
pub mod user_admin;
pub mod users;

pub use error::{Operation, RefusalContext, RefusalKind, Refused, ServiceError, ServiceResult};
pub use first_admin::{FirstAdminProofs, ProofKind};
pub use installations::McpInstallationService;
pub use mcp_servers::McpServerService;
pub use roles::{RoleService, RoleSync};
pub use teams::TeamService;
pub use tokens::{IssuedToken, TokenGrant, TokenService};
pub use users::{CreateUser, Taken, UserService};
