//! Upstream's team routes as rules: who may create, change and delete a team, the creation
//! limit, unique slugs, and the reads the dashboard makes. Every limit and uniqueness
//! decision is taken inside one transaction (upstream read, then wrote), so concurrent
//! requests cannot pass a limit or take one slug twice.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Int4, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use super::teams::{add_owner, TeamService};
use super::{ServiceError, ServiceResult};
use crate::db::models::{NewTeam, Team, TeamId, TeamRole, User, UserId};
use crate::db::schema::{mcp_server_installations, team_memberships, teams, users};

/// A team as a member sees it, with the member's place in it.
#[derive(Debug, Clone, QueryableByName)]
pub struct MemberTeam {
    /// The team.
    #[diesel(embed)]
    pub team: Team,
    /// The member's role.
    #[diesel(sql_type = Text)]
    pub role: TeamRole,
    /// Members in all.
    #[diesel(sql_type = BigInt)]
    pub member_count: i64,
}

impl MemberTeam {
    /// Whether `user` owns the team.
    pub fn is_owner(&self, user: &UserId) -> bool {
        &self.team.owner_id == user
    }
}

/// `GET /api/teams/:id/usage`.
#[derive(Debug, Clone, QueryableByName)]
pub struct TeamUsage {
    /// The caller's own default team.
    #[diesel(sql_type = Bool)]
    pub is_default_team: bool,
    /// Installations of the team.
    #[diesel(sql_type = BigInt)]
    pub total_installed_mcp_servers: i64,
    /// Of which stdio (or of unknown transport).
    #[diesel(sql_type = BigInt)]
    pub non_http_mcp_servers: i64,
    /// Of which HTTP or SSE.
    #[diesel(sql_type = BigInt)]
    pub http_mcp_servers: i64,
    /// The team's limit of installations.
    #[diesel(sql_type = Int4)]
    pub mcp_server_limit: i32,
    /// The team's limit of non-HTTP installations.
    #[diesel(sql_type = Int4)]
    pub non_http_mcp_limit: i32,
}

/// Upstream's slug of a team name: lower case, runs of anything but `a-z0-9` as `-`, trimmed
/// (`team` for a name with none of them).
pub fn slug_of(name: &str) -> String {
    let mut slug = String::with_capacity(name.len());
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            slug.push(c);
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug = slug.trim_matches('-');
    if slug.is_empty() {
        "team".to_owned()
    } else {
        slug.to_owned()
    }
}

/// Slug candidates: the base, then `-2`, `-3`, …
fn candidate(base: &str, n: u32) -> String {
    if n <= 1 {
        base.to_owned()
    } else {
        format!("{base}-{n}")
    }
}

const TEAMS_OF_MEMBER: &str = "SELECT t.*, m.role, \
       (SELECT count(*) FROM team_memberships c WHERE c.team_id = t.id) AS member_count \
     FROM team_memberships m JOIN teams t ON t.id = m.team_id \
     WHERE m.user_id = $1";

impl TeamService {
    /// The teams `user` belongs to, with the role and the member count, default team first,
    /// then by name.
    pub async fn teams_of_member(&self, user: &UserId) -> ServiceResult<Vec<MemberTeam>> {
        let conn = self.db.shared().await?;
        Ok(diesel::sql_query(format!(
            "{TEAMS_OF_MEMBER} ORDER BY t.is_default DESC, t.name, t.id"
        ))
        .bind::<Text, _>(user)
        .load(&mut &*conn)
        .await?)
    }

    /// One team as its member `user` sees it: 404 `Team not found`, 403 `You do not have
    /// access to this team` for anyone else (upstream: global administrators included).
    pub async fn team_of_member(&self, user: &UserId, id: &TeamId) -> ServiceResult<MemberTeam> {
        let conn = self.db.shared().await?;
        let found: Option<MemberTeam> =
            diesel::sql_query(format!("{TEAMS_OF_MEMBER} AND t.id = $2"))
                .bind::<Text, _>(user)
                .bind::<Text, _>(id)
                .get_result(&mut &*conn)
                .await
                .optional()?;
        if let Some(team) = found {
            return Ok(team);
        }
        let exists: bool = diesel::select(diesel::dsl::exists(teams::table.find(id)))
            .get_result(&mut &*conn)
            .await?;
        Err(if exists {
            ServiceError::forbidden("You do not have access to this team")
        } else {
            ServiceError::not_found("Team not found")
        })
    }

    /// `user`'s role in `team`, if a member.
    pub async fn role_of(&self, user: &UserId, team: &TeamId) -> ServiceResult<Option<TeamRole>> {
        let conn = self.db.shared().await?;
        Ok(team_memberships::table
            .filter(team_memberships::team_id.eq(team))
            .filter(team_memberships::user_id.eq(user))
            .select(team_memberships::role)
            .first(&mut &*conn)
            .await
            .optional()?)
    }

    /// `user`'s default team: 404 `No default team found`.
    pub async fn default_team_of(&self, user: &UserId) -> ServiceResult<Team> {
        let conn = self.db.shared().await?;
        teams::table
            .filter(teams::owner_id.eq(user))
            .filter(teams::is_default.eq(true))
            .order(teams::created_at.asc())
            .select(Team::as_select())
            .first(&mut &*conn)
            .await
            .optional()?
            .ok_or_else(|| ServiceError::not_found("No default team found"))
    }

    /// Creates a team owned by `owner` (its `team_admin`), unless `owner` already belongs to
    /// `limit` teams (upstream counts every membership). The owner's row is locked while the
    /// memberships are counted, so two creations at once cannot both pass the limit; the slug
    /// is the name's, with `-2`, `-3`… until one is free (taken atomically: a concurrent
    /// creation of the same name gets the next one).
    pub async fn create_limited(
        &self,
        owner: &UserId,
        name: &str,
        description: Option<&str>,
        limit: i64,
    ) -> ServiceResult<Team> {
        let base = slug_of(name);
        let mut conn = self.db.conn().await?;
        conn.transaction::<_, ServiceError, _>(async |conn| {
            users::table
                .find(owner)
                .select(users::id)
                .for_no_key_update()
                .first::<UserId>(conn)
                .await
                .optional()?
                .ok_or_else(|| ServiceError::not_found("User not found"))?;
            let memberships: i64 = team_memberships::table
                .filter(team_memberships::user_id.eq(owner))
                .count()
                .get_result(conn)
                .await?;
            if memberships >= limit {
                return Err(ServiceError::invalid(format!(
                    "You have reached the maximum limit of {limit} teams"
                )));
            }
            for n in 1..=1000 {
                let created = diesel::insert_into(teams::table)
                    .values(&NewTeam {
                        id: TeamId::generate(),
                        name: name.to_owned(),
                        slug: candidate(&base, n),
                        description: description.map(str::to_owned),
                        owner_id: owner.clone(),
                        is_default: false,
                    })
                    .on_conflict(teams::slug)
                    .do_nothing()
                    .returning(Team::as_returning())
                    .get_result(conn)
                    .await
                    .optional()?;
                if let Some(team) = created {
                    add_owner(conn, &team).await?;
                    return Ok(team);
                }
            }
            Err(ServiceError::invalid(
                "Team name conflicts with existing team",
            ))
        })
        .await
    }

    /// Changes a team's name and description as its administrator `actor`: 404 `Team not
    /// found`, 403 `Only team administrators can update teams`, 400 `Default team names
    /// cannot be changed`. `description: Some(None)` clears it.
    pub async fn update_by(
        &self,
        actor: &UserId,
        id: &TeamId,
        name: Option<&str>,
        description: Option<Option<&str>>,
    ) -> ServiceResult<Team> {
        let mut conn = self.db.conn().await?;
        conn.transaction::<_, ServiceError, _>(async |conn| {
            let team = lock_team(conn, id).await?;
            if role_in(conn, id, actor).await? != Some(TeamRole::Admin) {
                return Err(ServiceError::forbidden(
                    "Only team administrators can update teams",
                ));
            }
            if team.is_default && name.is_some_and(|n| n != team.name) {
                return Err(ServiceError::invalid(
                    "Default team names cannot be changed",
                ));
            }
            Ok(diesel::update(teams::table.find(id))
                .set((
                    teams::name.eq(name.unwrap_or(&team.name)),
                    teams::description.eq(description.unwrap_or(team.description.as_deref())),
                    teams::updated_at.eq(diesel::dsl::now),
                ))
                .returning(Team::as_returning())
                .get_result(conn)
                .await?)
        })
        .await
    }

    /// Deletes a team as its owner `actor`: 404 `Team not found`, 403 `Only team owners can
    /// delete teams`, 400 `Default teams cannot be deleted`, 400 `Cannot delete team with
    /// active resources` (MCP installations). Memberships go with it.
    pub async fn delete_by(&self, actor: &UserId, id: &TeamId) -> ServiceResult<Team> {
        let mut conn = self.db.conn().await?;
        conn.transaction::<_, ServiceError, _>(async |conn| {
            let team = lock_team(conn, id).await?;
            if &team.owner_id != actor {
                return Err(ServiceError::forbidden("Only team owners can delete teams"));
            }
            if team.is_default {
                return Err(ServiceError::invalid("Default teams cannot be deleted"));
            }
            let installed: bool = diesel::select(diesel::dsl::exists(
                mcp_server_installations::table.filter(mcp_server_installations::team_id.eq(id)),
            ))
            .get_result(conn)
            .await?;
            if installed {
                return Err(ServiceError::invalid(
                    "Cannot delete team with active resources",
                ));
            }
            diesel::delete(teams::table.find(id))
                .execute(conn)
                .await
                .map_err(ServiceError::from_delete)?;
            Ok(team)
        })
        .await
    }

    /// The team's installations against its limits, for a member (or a holder of
    /// `team.usage.view`, decided by the caller: `may_view_any`): 404 `Team not found`, 403
    /// `You do not have permission to view this team's usage`.
    pub async fn usage_for(
        &self,
        viewer: &User,
        id: &TeamId,
        may_view_any: bool,
    ) -> ServiceResult<TeamUsage> {
        let conn = self.db.shared().await?;
        let member: Option<Option<String>> = teams::table
            .left_join(
                team_memberships::table.on(team_memberships::team_id
                    .eq(teams::id)
                    .and(team_memberships::user_id.eq(&viewer.id))),
            )
            .filter(teams::id.eq(id))
            .select(team_memberships::id.nullable())
            .first(&mut &*conn)
            .await
            .optional()?;
        match member {
            None => return Err(ServiceError::not_found("Team not found")),
            Some(None) if !may_view_any => {
                return Err(ServiceError::forbidden(
                    "You do not have permission to view this team's usage",
                ))
            }
            Some(_) => {}
        }
        Ok(diesel::sql_query(
            "SELECT (t.is_default AND t.owner_id = $2) AS is_default_team, \
                    count(i.id) AS total_installed_mcp_servers, \
                    count(i.id) FILTER (WHERE s.transport_type IS NULL OR s.transport_type NOT IN ('http', 'sse')) AS non_http_mcp_servers, \
                    count(i.id) FILTER (WHERE s.transport_type IN ('http', 'sse')) AS http_mcp_servers, \
                    t.mcp_server_limit, t.non_http_mcp_limit \
             FROM teams t \
             LEFT JOIN mcp_server_installations i ON i.team_id = t.id \
             LEFT JOIN mcp_servers s ON s.id = i.server_id \
             WHERE t.id = $1 \
             GROUP BY t.id",
        )
        .bind::<Text, _>(id)
        .bind::<Text, _>(&viewer.id)
        .get_result(&mut &*conn)
        .await?)
    }
}

/// The team `id`, its row locked (no key update) until the transaction ends: every rule on
/// it (owner, members, limits) is decided against this version.
pub(crate) async fn lock_team(conn: &mut AsyncPgConnection, id: &TeamId) -> ServiceResult<Team> {
    teams::table
        .find(id)
        .select(Team::as_select())
        .for_no_key_update()
        .first(conn)
        .await
        .optional()?
        .ok_or_else(|| ServiceError::not_found("Team not found"))
}

/// `user`'s role in `team`, if a member.
pub(crate) async fn role_in(
    conn: &mut AsyncPgConnection,
    team: &TeamId,
    user: &UserId,
) -> ServiceResult<Option<TeamRole>> {
    Ok(team_memberships::table
        .filter(team_memberships::team_id.eq(team))
        .filter(team_memberships::user_id.eq(user))
        .select(team_memberships::role)
        .first(conn)
        .await
        .optional()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_follow_upstreams_rule() {
        assert_eq!(slug_of("My Team"), "my-team");
        assert_eq!(slug_of("  A__b!!c  "), "a-b-c");
        assert_eq!(slug_of("Équipe 2"), "quipe-2");
        assert_eq!(slug_of("!!!"), "team");
        assert_eq!(candidate("a", 1), "a");
        assert_eq!(candidate("a", 3), "a-3");
    }
}
