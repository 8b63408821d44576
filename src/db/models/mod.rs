//! Row types (what a query returns) and insert/change sets (what a write takes), one file
//! per area. Every row type is checked against `schema.rs` at compile time.

mod ids;
mod installation;
mod mcp_server;
pub(crate) mod redact;
mod role;
mod team;
mod token;
mod user;

pub use ids::{
    new_id, AuthType, GlobalRole, InstallationId, McpServerId, MembershipId, RoleId, TeamId,
    TeamRole, TokenId, UserId,
};
pub use installation::{Installation, NewInstallation};
pub use mcp_server::{McpServerSummary, NewMcpServer};
pub use role::Role;
pub use team::{Membership, NewMembership, NewTeam, Team, TeamChanges};
pub use token::{AccessToken, NewAccessToken, NewRefreshToken, RefreshToken};
pub use user::{NewUser, User, UserChanges};
