//! The dashboard's reads over the MCP catalog: a team's installations
//! (`/api/teams/:teamId/mcp/installations`) and the servers a user may install
//! (`/api/mcp/servers`), in upstream's shapes (`docs/upstream-dashboard-contract.md` §5–6).

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::{Object, OpenApi};

use super::account_bodies::Failure;
use super::caller::{signed_in, with_permission};
use super::reply::{Refusal, Reply};
use super::session_cookie::SessionCookie;
use super::tags::ApiTags;
use crate::auth::is_admin;
use crate::db::models::{TeamId, TeamRole};
use crate::services::catalog::{Catalog, InstallationRow, ServerFilter, ServerRow};
use crate::services::roles::defined_grant;
use crate::services::RefusalContext;
use crate::state::AppState;

/// The catalog server behind an installation.
#[derive(Debug, Clone, Object)]
pub struct InstalledServer {
    /// Id.
    pub id: String,
    /// Icon.
    pub icon_url: Option<String>,
    /// Category.
    pub category_id: Option<String>,
    /// Runtime.
    pub runtime: Option<String>,
    /// Where it came from.
    pub source: Option<String>,
    /// Repository.
    pub repository_url: Option<String>,
    /// Branch.
    pub git_branch: Option<String>,
    /// Commit.
    pub git_commit_sha: Option<String>,
}

/// Instances of an installation by state.
#[derive(Debug, Clone, Object)]
pub struct StatusSummary {
    /// All members' instances.
    pub total_instances: i64,
    /// Online.
    pub online: i64,
    /// Offline.
    pub offline: i64,
    /// Failing.
    pub error: i64,
    /// Starting.
    pub provisioning: i64,
}

/// An installation.
#[derive(Debug, Clone, Object)]
pub struct InstallationBody {
    /// Id.
    pub id: String,
    /// Name given at installation.
    pub installation_name: String,
    /// `global` or `team`.
    pub installation_type: String,
    /// Team.
    pub team_id: String,
    /// Installed at.
    pub created_at: DateTime<Utc>,
    /// Last used at.
    pub last_used_at: Option<DateTime<Utc>>,
    /// The caller's own instance's status (`null` without one).
    pub status: Option<String>,
    /// Its message.
    pub status_message: Option<String>,
    /// When it changed (absent without one).
    #[oai(skip_serializing_if_is_none)]
    pub status_updated_at: Option<DateTime<Utc>>,
    /// Always `null` (upstream's field, never filled).
    pub last_health_check_at: Option<DateTime<Utc>>,
    /// The catalog server (absent when its row is gone).
    #[oai(skip_serializing_if_is_none)]
    pub server: Option<InstalledServer>,
    /// With `include_stats=true`: the instances by state.
    #[oai(skip_serializing_if_is_none)]
    pub status_summary: Option<StatusSummary>,
}

impl InstallationBody {
    fn of(r: InstallationRow, stats: bool) -> Self {
        Self {
            server: r.server_id.map(|id| InstalledServer {
                id,
                icon_url: r.icon_url,
                category_id: r.category_id,
                runtime: r.runtime,
                source: r.source,
                repository_url: r.repository_url,
                git_branch: r.git_branch,
                git_commit_sha: r.git_commit_sha,
            }),
            status_summary: (stats && r.total_instances > 0).then_some(StatusSummary {
                total_instances: r.total_instances,
                online: r.online,
                offline: r.offline,
                error: r.error,
                provisioning: r.provisioning,
            }),
            id: r.id,
            installation_name: r.installation_name,
            installation_type: r.installation_type,
            team_id: r.team_id,
            created_at: r.created_at,
            last_used_at: r.last_used_at,
            status: r.status,
            status_message: r.status_message,
            status_updated_at: r.status_updated_at,
            last_health_check_at: None,
        }
    }
}

/// `{success, data: [installation]}`.
#[derive(Debug, Clone, Object)]
pub struct InstallationsEnvelope {
    /// Always `true`.
    pub success: bool,
    /// Newest first.
    pub data: Vec<InstallationBody>,
}

/// A category as the server list shows it.
#[derive(Debug, Clone, Object)]
pub struct CategoryRef {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Icon.
    pub icon: Option<String>,
}

/// A catalog server.
#[derive(Debug, Clone, Object)]
pub struct ServerBody {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// URL name.
    pub slug: String,
    /// What it does.
    pub description: String,
    /// Icon.
    pub icon_url: Option<String>,
    /// Website.
    pub website_url: Option<String>,
    /// Language.
    pub language: String,
    /// Runtime.
    pub runtime: String,
    /// `stdio`, `http` or `sse`.
    pub transport_type: String,
    /// `global` or `team`.
    pub visibility: String,
    /// The team of a team server.
    pub owner_team_id: Option<String>,
    /// Its category (`null` without one).
    pub category: Option<CategoryRef>,
    /// Tags.
    pub tags: Vec<String>,
    /// `active`, `deprecated`, `maintenance` or `disabled`.
    pub status: String,
    /// Featured.
    pub featured: bool,
    /// Needs OAuth.
    pub requires_oauth: bool,
    /// GitHub stars (`null` for none).
    pub github_stars: Option<i32>,
    /// Author.
    pub author_name: Option<String>,
    /// Organization.
    pub organization: Option<String>,
    /// Official name.
    pub official_name: Option<String>,
    /// `official_registry`, `manual` or `github`.
    pub source: String,
    /// Created at.
    pub created_at: DateTime<Utc>,
    /// Changed at.
    pub updated_at: DateTime<Utc>,
}

impl From<ServerRow> for ServerBody {
    fn from(s: ServerRow) -> Self {
        let category = match (s.category_id, s.category_name) {
            (Some(id), Some(name)) => Some(CategoryRef {
                id,
                name,
                icon: s.category_icon,
            }),
            _ => None,
        };
        Self {
            id: s.id,
            name: s.name,
            slug: s.slug,
            description: s.description,
            icon_url: s.icon_url,
            website_url: s.website_url,
            language: s.language,
            runtime: s.runtime,
            transport_type: s.transport_type,
            visibility: s.visibility,
            owner_team_id: s.owner_team_id,
            category,
            tags: s.tags.into_iter().flatten().collect(),
            status: s.status,
            featured: s.featured,
            requires_oauth: s.requires_oauth,
            github_stars: s.github_stars.filter(|n| *n != 0),
            author_name: s.author_name,
            organization: s.organization,
            official_name: s.official_name,
            source: s.source,
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

/// Where a page of servers stands.
#[derive(Debug, Clone, Object)]
pub struct ServerPagination {
    /// Servers matching in all.
    pub total: i64,
    /// Page size.
    pub limit: i64,
    /// Rows skipped.
    pub offset: i64,
    /// Whether more follow.
    pub has_more: bool,
}

/// `{servers, pagination}`.
#[derive(Debug, Clone, Object)]
pub struct ServersPage {
    /// Featured first, then by name.
    pub servers: Vec<ServerBody>,
    /// Where the page stands.
    pub pagination: ServerPagination,
}

/// `{success, data: {servers, pagination}}`.
#[derive(Debug, Clone, Object)]
pub struct ServersEnvelope {
    /// Always `true`.
    pub success: bool,
    /// The page.
    pub data: ServersPage,
}

/// Catalog reads.
pub struct CatalogApi;

#[OpenApi(tag = "ApiTags::Catalog")]
impl CatalogApi {
    /// A team's MCP installations
    ///
    /// For its members and global administrators; newest first, each with the caller's own
    /// instance state, and with `include_stats=true` (team administrators and global
    /// administrators) the instances by state.
    #[oai(
        path = "/api/teams/:team_id/mcp/installations",
        method = "get",
        operation_id = "listTeamInstallations"
    )]
    async fn installations(
        &self,
        state: Data<&AppState>,
        session: SessionCookie,
        #[oai(name = "teamId")] team_id: Path<String>,
        include_stats: Query<Option<bool>>,
    ) -> Reply<InstallationsEnvelope> {
        let result = async {
            let user = signed_in(&state, &session).await?;
            let team = TeamId::from(team_id.0.as_str());
            let stats = include_stats.0 == Some(true);
            let role = crate::services::TeamService::new(state.database.clone())
                .role_of(&user.id, &team)
                .await?;
            let admin = is_admin(&user);
            check_team_permission(admin, role, "mcp.installations.view")?;
            if stats
                && !admin
                && !role.is_some_and(|r| defined_grant(r.as_str(), "mcp.installations.stats.view"))
            {
                return Err(Refusal::Forbidden(Failure::new(
                    "Insufficient permissions to view instance statistics",
                )));
            }
            let rows = Catalog::new(state.database.clone())
                .installations(&user.id, &team)
                .await?;
            Ok::<_, Refusal>(InstallationsEnvelope {
                success: true,
                data: rows
                    .into_iter()
                    .map(|r| InstallationBody::of(r, stats))
                    .collect(),
            })
        }
        .await;
        result.into()
    }

    /// Catalog servers
    ///
    /// The servers the caller may see (a global administrator every one; others the global
    /// ones and their teams'), featured first then by name, filtered and paged (`limit` 1 to
    /// 100, 20 by default).
    #[oai(
        path = "/api/mcp/servers",
        method = "get",
        operation_id = "listMcpServers"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn servers(
        &self,
        state: Data<&AppState>,
        session: SessionCookie,
        category_id: Query<Option<String>>,
        language: Query<Option<String>>,
        runtime: Query<Option<String>>,
        status: Query<Option<String>>,
        featured: Query<Option<bool>>,
        source: Query<Option<String>>,
        search: Query<Option<String>>,
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))] limit: Query<Option<i64>>,
        #[oai(validator(minimum(value = "0")))] offset: Query<Option<i64>>,
    ) -> Reply<ServersEnvelope> {
        let result = async {
            let user = with_permission(&state, &session, "mcp.servers.read").await?;
            let (limit, offset) = (limit.0.unwrap_or(20), offset.0.unwrap_or(0));
            let filter = ServerFilter {
                category_id: category_id.0,
                language: language.0,
                runtime: runtime.0,
                status: status.0,
                featured: featured.0,
                source: source.0,
                search: search.0,
            };
            let (rows, total) = Catalog::new(state.database.clone())
                .servers(&user.id, is_admin(&user), &filter, limit, offset)
                .await?;
            let returned = rows.len() as i64;
            Ok::<_, Refusal>(ServersEnvelope {
                success: true,
                data: ServersPage {
                    servers: rows.into_iter().map(ServerBody::from).collect(),
                    pagination: ServerPagination {
                        total,
                        limit,
                        offset,
                        has_more: offset + returned < total,
                    },
                },
            })
        }
        .await;
        result.into()
    }
}

/// Upstream's `requireTeamPermission`: a global administrator passes when its definition
/// holds `permission`; a member when its team role's does.
fn check_team_permission(
    admin: bool,
    role: Option<TeamRole>,
    permission: &'static str,
) -> Result<(), Refusal> {
    if admin && defined_grant("global_admin", permission) {
        return Ok(());
    }
    match role {
        None => Err(Refusal::Forbidden(Failure::new(
            "You are not a member of this team",
        ))),
        Some(r) if defined_grant(r.as_str(), permission) => Ok(()),
        Some(r) => Err(crate::services::ServiceError::refused_with(
            crate::services::RefusalKind::Forbidden,
            "Insufficient permissions for this team operation",
            RefusalContext::TeamPermission {
                required_permission: permission,
                user_team_role: r.as_str().to_owned(),
            },
        )
        .into()),
    }
}
