//! The administration's view of teams (`/api/admin/teams`): paged and searched in SQL with
//! their member and installation counts (upstream loaded every team and paged in memory, and
//! searched names case-sensitively), and the limits an administrator sets.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel_async::RunQueryDsl;

use super::teams::TeamService;
use super::{ServiceError, ServiceResult};
use crate::db::models::{Team, TeamId};
use crate::db::schema::teams;

/// A team with its counts.
#[derive(Debug, Clone, QueryableByName)]
pub struct AdminTeam {
    /// The team.
    #[diesel(embed)]
    pub team: Team,
    /// Its MCP installations.
    #[diesel(sql_type = BigInt)]
    pub mcp_servers_count: i64,
    /// Its members.
    #[diesel(sql_type = BigInt)]
    pub members_count: i64,
}

/// What an administrator changes on a team; `None` keeps a field.
#[derive(Debug, Clone, Default)]
pub struct TeamLimits {
    /// Name.
    pub name: Option<String>,
    /// Description (`Some(None)` clears it).
    pub description: Option<Option<String>>,
    /// Non-HTTP installations allowed.
    pub non_http_mcp_limit: Option<i32>,
    /// Installations allowed.
    pub mcp_server_limit: Option<i32>,
    /// Members allowed.
    pub member_limit: Option<i32>,
    /// Whether remote MCP servers are allowed.
    pub allow_remote_mcp: Option<bool>,
}

const WITH_COUNTS: &str = "SELECT t.*, \
       (SELECT count(*) FROM mcp_server_installations i WHERE i.team_id = t.id) AS mcp_servers_count, \
       (SELECT count(*) FROM team_memberships m WHERE m.team_id = t.id) AS members_count \
     FROM teams t";

impl TeamService {
    /// A page of teams whose name holds `name` (ignoring case; all without it), oldest first,
    /// and how many match.
    pub async fn page_teams(
        &self,
        name: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> ServiceResult<(Vec<AdminTeam>, i64)> {
        let pattern = name
            .filter(|n| !n.is_empty())
            .map(super::user_admin::contains_pattern);
        let filter = if pattern.is_some() {
            "WHERE t.name ILIKE $3"
        } else {
            ""
        };
        let page = diesel::sql_query(format!(
            "{WITH_COUNTS} {filter} ORDER BY t.created_at, t.id LIMIT $1 OFFSET $2"
        ))
        .into_boxed()
        .bind::<BigInt, _>(limit)
        .bind::<BigInt, _>(offset);
        let count = diesel::sql_query(format!(
            "SELECT count(*) AS total FROM teams t {}",
            if pattern.is_some() {
                "WHERE t.name ILIKE $1"
            } else {
                ""
            }
        ))
        .into_boxed();
        let (page, count) = match &pattern {
            Some(p) => (
                page.bind::<Text, _>(p.clone()),
                count.bind::<Text, _>(p.clone()),
            ),
            None => (page, count),
        };
        let conn = self.db.shared().await?;
        let (mut a, mut b) = (&*conn, &*conn);
        let (teams, total) = futures_util::try_join!(
            page.load::<AdminTeam>(&mut a),
            count.get_result::<Total>(&mut b)
        )?;
        Ok((teams, total.total))
    }

    /// One team with its counts: 404 `Team not found`.
    pub async fn admin_team(&self, id: &TeamId) -> ServiceResult<AdminTeam> {
        let conn = self.db.shared().await?;
        diesel::sql_query(format!("{WITH_COUNTS} WHERE t.id = $1"))
            .bind::<Text, _>(id)
            .get_result(&mut &*conn)
            .await
            .optional()?
            .ok_or_else(|| ServiceError::not_found("Team not found"))
    }

    /// Applies an administrator's change: 404 `Team not found`.
    pub async fn admin_update(&self, id: &TeamId, change: TeamLimits) -> ServiceResult<AdminTeam> {
        {
            let mut conn = self.db.conn().await?;
            let current = teams::table
                .find(id)
                .select(Team::as_select())
                .first(&mut conn)
                .await
                .optional()?
                .ok_or_else(|| ServiceError::not_found("Team not found"))?;
            diesel::update(teams::table.find(id))
                .set((
                    teams::name.eq(change.name.unwrap_or(current.name)),
                    teams::description.eq(change.description.unwrap_or(current.description)),
                    teams::non_http_mcp_limit.eq(change
                        .non_http_mcp_limit
                        .unwrap_or(current.non_http_mcp_limit)),
                    teams::mcp_server_limit
                        .eq(change.mcp_server_limit.unwrap_or(current.mcp_server_limit)),
                    teams::member_limit.eq(change.member_limit.unwrap_or(current.member_limit)),
                    teams::allow_remote_mcp
                        .eq(change.allow_remote_mcp.unwrap_or(current.allow_remote_mcp)),
                    teams::updated_at.eq(diesel::dsl::now),
                ))
                .execute(&mut conn)
                .await?;
        }
        self.admin_team(id).await
    }
}

#[derive(QueryableByName)]
struct Total {
    #[diesel(sql_type = BigInt)]
    total: i64,
}
