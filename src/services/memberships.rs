//! Upstream's member routes as rules. Each change runs in one transaction with the team row
//! locked, so the member limit, a duplicate membership, the owner and the last team
//! administrator are decided against one state: two requests at once cannot both pass a
//! limit or both demote the last two administrators.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Bool, Nullable, Text, Timestamptz};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use super::error::RefusalContext;
use super::roles::defined_grant;
use super::team_rules::{lock_team, role_in};
use super::teams::TeamService;
use super::{RefusalKind, ServiceError, ServiceResult};
use crate::db::models::{MembershipId, NewMembership, Team, TeamId, TeamRole, UserId};
use crate::db::schema::{team_memberships, teams, users};

/// A member as upstream's member routes show one.
#[derive(Debug, Clone, PartialEq, QueryableByName)]
pub struct Member {
    /// The membership's id.
    #[diesel(sql_type = Text)]
    pub id: MembershipId,
    /// The member's account.
    #[diesel(sql_type = Text)]
    pub user_id: UserId,
    /// Username.
    #[diesel(sql_type = Text)]
    pub username: String,
    /// Email address.
    #[diesel(sql_type = Text)]
    pub email: String,
    /// Given name.
    #[diesel(sql_type = Nullable<Text>)]
    pub first_name: Option<String>,
    /// Family name.
    #[diesel(sql_type = Nullable<Text>)]
    pub last_name: Option<String>,
    /// Role in the team.
    #[diesel(sql_type = Text)]
    pub role: TeamRole,
    /// Whether the member owns the team.
    #[diesel(sql_type = Bool)]
    pub is_owner: bool,
    /// When the member joined.
    #[diesel(sql_type = Timestamptz)]
    pub joined_at: DateTime<Utc>,
}

const MEMBERS: &str = "SELECT m.id, m.user_id, u.username, u.email, u.first_name, u.last_name, \
        m.role, (t.owner_id = m.user_id) AS is_owner, m.joined_at \
     FROM team_memberships m JOIN users u ON u.id = m.user_id JOIN teams t ON t.id = m.team_id \
     WHERE m.team_id = $1";

/// Whether `actor`, a global administrator or not (`global_admin`), may manage the members of
/// a team in which it has `role`: upstream's `requireTeamPermission('team.members.manage')`.
fn check_manage(global_admin: bool, role: Option<TeamRole>) -> ServiceResult<()> {
    const PERMISSION: &str = "team.members.manage";
    if global_admin && defined_grant("global_admin", PERMISSION) {
        return Ok(());
    }
    match role {
        None => Err(ServiceError::forbidden("You are not a member of this team")),
        Some(role) if defined_grant(role.as_str(), PERMISSION) => Ok(()),
        Some(role) => Err(ServiceError::refused_with(
            RefusalKind::Forbidden,
            "Insufficient permissions for this team operation",
            RefusalContext::TeamPermission {
                required_permission: PERMISSION,
                user_team_role: role.as_str().to_owned(),
            },
        )),
    }
}

/// Upstream's `canUserManageTeamMember` for a removal: never in a default team; the owner
/// removes anyone but itself; a team administrator only plain members other than the owner.
fn may_remove(
    team: &Team,
    actor: &UserId,
    actor_role: Option<TeamRole>,
    target: &UserId,
    member: Option<&Member>,
) -> bool {
    if team.is_default {
        return false;
    }
    if &team.owner_id == actor {
        return target != actor;
    }
    actor_role == Some(TeamRole::Admin)
        && member.is_some_and(|m| m.role == TeamRole::User && !m.is_owner)
}

impl TeamService {
    /// The members of `team`, for a member or a global administrator only (upstream let any
    /// signed-in user list any team's members and their email addresses): 404 `Team not
    /// found`, 403 `You do not have permission to view this team's members`.
    pub async fn members_for(
        &self,
        viewer: &UserId,
        global_admin: bool,
        team: &TeamId,
    ) -> ServiceResult<Vec<Member>> {
        let conn = self.db.shared().await?;
        let members: Vec<Member> =
            diesel::sql_query(format!("{MEMBERS} ORDER BY m.joined_at, m.id"))
                .bind::<Text, _>(team)
                .load(&mut &*conn)
                .await?;
        if members.iter().any(|m| &m.user_id == viewer) || (global_admin && !members.is_empty()) {
            return Ok(members);
        }
        // Every team has its owner as a member: no members means no team.
        if members.is_empty() {
            return Err(ServiceError::not_found("Team not found"));
        }
        Err(ServiceError::forbidden(
            "You do not have permission to view this team's members",
        ))
    }

    /// Adds the account of `email` to `team` with `role`, as `actor`.
    pub async fn add_member_as(
        &self,
        actor: &UserId,
        global_admin: bool,
        team: &TeamId,
        email: &str,
        role: TeamRole,
    ) -> ServiceResult<Member> {
        let email = email.to_lowercase();
        let mut conn = self.db.conn().await?;
        conn.transaction::<_, ServiceError, _>(async |conn| {
            check_manage(global_admin, role_in(conn, team, actor).await?)?;
            let locked = lock_team(conn, team).await?;
            if locked.is_default {
                return Err(ServiceError::invalid("Cannot add members to default teams"));
            }
            let user: UserId = users::table
                .filter(diesel::dsl::sql::<Bool>("lower(email) = ").bind::<Text, _>(&email))
                .select(users::id)
                .first(conn)
                .await
                .optional()?
                .ok_or_else(|| {
                    ServiceError::invalid(format!(
                        "User with email '{email}' not found. User must have a DeployStack account before being added to a team."
                    ))
                })?;
            if role_in(conn, team, &user).await?.is_some() {
                return Err(ServiceError::conflict("User is already a member of this team"));
            }
            let members: i64 = team_memberships::table
                .filter(team_memberships::team_id.eq(team))
                .count()
                .get_result(conn)
                .await?;
            if members >= i64::from(locked.member_limit) {
                return Err(ServiceError::invalid(format!(
                    "Team has reached maximum capacity ({} members)",
                    locked.member_limit
                )));
            }
            diesel::insert_into(team_memberships::table)
                .values(NewMembership {
                    id: MembershipId::generate(),
                    team_id: team.clone(),
                    user_id: user.clone(),
                    role,
                })
                .execute(conn)
                .await?;
            member(conn, team, &user).await
        })
        .await
    }

    /// Sets `user`'s role in `team`, as `actor`: the last team administrator is never demoted,
    /// nor the owner.
    pub async fn set_role_as(
        &self,
        actor: &UserId,
        global_admin: bool,
        team: &TeamId,
        user: &UserId,
        role: TeamRole,
    ) -> ServiceResult<Member> {
        let mut conn = self.db.conn().await?;
        conn.transaction::<_, ServiceError, _>(async |conn| {
            check_manage(global_admin, role_in(conn, team, actor).await?)?;
            let locked = lock_team(conn, team).await?;
            let current = role_in(conn, team, user)
                .await?
                .ok_or_else(|| ServiceError::invalid("User is not a member of this team"))?;
            if locked.is_default {
                return Err(ServiceError::invalid(
                    "Cannot change member roles in default teams",
                ));
            }
            if current == TeamRole::Admin && role != TeamRole::Admin {
                if &locked.owner_id == user {
                    return Err(ServiceError::invalid(
                        "Cannot change the team owner's role. Transfer ownership first.",
                    ));
                }
                if admins(conn, team).await? <= 1 {
                    return Err(ServiceError::invalid(
                        "Cannot demote last team admin. Promote another member first.",
                    ));
                }
            }
            diesel::update(
                team_memberships::table
                    .filter(team_memberships::team_id.eq(team))
                    .filter(team_memberships::user_id.eq(user)),
            )
            .set(team_memberships::role.eq(role))
            .execute(conn)
            .await?;
            member(conn, team, user).await
        })
        .await
    }

    /// Removes `user` from `team`, as `actor` (a global administrator, or whom
    /// upstream's `canUserManageTeamMember` allows).
    pub async fn remove_member_as(
        &self,
        actor: &UserId,
        global_admin: bool,
        team: &TeamId,
        user: &UserId,
    ) -> ServiceResult<()> {
        let mut conn = self.db.conn().await?;
        conn.transaction::<_, ServiceError, _>(async |conn| {
            let locked = lock_team(conn, team).await?;
            let actor_role = role_in(conn, team, actor).await?;
            let target = member(conn, team, user).await.ok();
            if !global_admin && !may_remove(&locked, actor, actor_role, user, target.as_ref()) {
                return Err(ServiceError::forbidden(
                    "You do not have permission to remove this member",
                ));
            }
            let target =
                target.ok_or_else(|| ServiceError::invalid("User is not a member of this team"))?;
            if locked.is_default {
                return Err(ServiceError::invalid(
                    "Cannot remove members from default teams",
                ));
            }
            if target.is_owner {
                return Err(ServiceError::invalid(
                    "Cannot remove team owner. Transfer ownership first.",
                ));
            }
            diesel::delete(
                team_memberships::table
                    .filter(team_memberships::team_id.eq(team))
                    .filter(team_memberships::user_id.eq(user)),
            )
            .execute(conn)
            .await
            .map_err(ServiceError::from_delete)?;
            Ok(())
        })
        .await
    }

    /// Makes the member `new_owner` the owner of `team` (and a team administrator), as its
    /// owner or a global administrator; the old owner stays a team administrator.
    pub async fn transfer_as(
        &self,
        actor: &UserId,
        global_admin: bool,
        team: &TeamId,
        new_owner: &UserId,
    ) -> ServiceResult<()> {
        let mut conn = self.db.conn().await?;
        conn.transaction::<_, ServiceError, _>(async |conn| {
            let locked = lock_team(conn, team).await?;
            if &locked.owner_id != actor && !global_admin {
                return Err(ServiceError::forbidden(
                    "Only the current team owner can transfer ownership",
                ));
            }
            if locked.is_default {
                return Err(ServiceError::invalid(
                    "Cannot transfer ownership of default teams",
                ));
            }
            if role_in(conn, team, new_owner).await?.is_none() {
                return Err(ServiceError::invalid("New owner must be a team member"));
            }
            diesel::update(teams::table.find(team))
                .set((
                    teams::owner_id.eq(new_owner),
                    teams::updated_at.eq(diesel::dsl::now),
                ))
                .execute(conn)
                .await?;
            diesel::update(
                team_memberships::table
                    .filter(team_memberships::team_id.eq(team))
                    .filter(team_memberships::user_id.eq(new_owner)),
            )
            .set(team_memberships::role.eq(TeamRole::Admin))
            .execute(conn)
            .await?;
            Ok(())
        })
        .await
    }
}

/// One member of `team`: `NotFound` when `user` is none.
async fn member(
    conn: &mut AsyncPgConnection,
    team: &TeamId,
    user: &UserId,
) -> ServiceResult<Member> {
    diesel::sql_query(format!("{MEMBERS} AND m.user_id = $2"))
        .bind::<Text, _>(team)
        .bind::<Text, _>(user)
        .get_result(conn)
        .await
        .optional()?
        .ok_or_else(|| ServiceError::not_found("Updated member not found after role change"))
}

/// Team administrators of `team`.
async fn admins(conn: &mut AsyncPgConnection, team: &TeamId) -> ServiceResult<i64> {
    Ok(team_memberships::table
        .filter(team_memberships::team_id.eq(team))
        .filter(team_memberships::role.eq(TeamRole::Admin))
        .count()
        .get_result(conn)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(user: &str, role: TeamRole, owner: bool) -> Member {
        Member {
            id: "m".into(),
            user_id: user.into(),
            username: user.into(),
            email: format!("{user}@x.io"),
            first_name: None,
            last_name: None,
            role,
            is_owner: owner,
            joined_at: Utc::now(),
        }
    }

    fn team(owner: &str, is_default: bool) -> Team {
        Team {
            id: "t".into(),
            name: "t".into(),
            slug: "t".into(),
            description: None,
            owner_id: owner.into(),
            is_default,
            non_http_mcp_limit: 1,
            mcp_server_limit: 5,
            member_limit: 3,
            allow_remote_mcp: false,
            allow_github_mcp: false,
            allow_private_github_repos: false,
            github_mcp_limit: 1,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    #[test]
    fn who_may_remove_whom() {
        let t = team("own", false);
        let owner = member("own", TeamRole::Admin, true);
        let admin = member("adm", TeamRole::Admin, false);
        let user = member("usr", TeamRole::User, false);
        let (o, a, u) = (
            UserId::from("own"),
            UserId::from("adm"),
            UserId::from("usr"),
        );
        let check = |t: &Team, actor: &UserId, role: Option<TeamRole>, target: &Member| {
            may_remove(t, actor, role, &target.user_id, Some(target))
        };
        // The owner removes anyone but itself (a non-member too: then "not a member").
        assert!(check(&t, &o, Some(TeamRole::Admin), &admin));
        assert!(check(&t, &o, Some(TeamRole::Admin), &user));
        assert!(!check(&t, &o, Some(TeamRole::Admin), &owner));
        assert!(may_remove(
            &t,
            &o,
            Some(TeamRole::Admin),
            &UserId::from("gone"),
            None
        ));
        // An administrator removes plain members only.
        assert!(check(&t, &a, Some(TeamRole::Admin), &user));
        assert!(!check(&t, &a, Some(TeamRole::Admin), &admin));
        assert!(!check(&t, &a, Some(TeamRole::Admin), &owner));
        assert!(!may_remove(
            &t,
            &a,
            Some(TeamRole::Admin),
            &UserId::from("gone"),
            None
        ));
        // A plain member or a stranger removes nobody, nor anyone in a default team.
        assert!(!check(&t, &u, Some(TeamRole::User), &user));
        assert!(!check(&t, &UserId::from("x"), None, &user));
        assert!(!check(&team("own", true), &o, Some(TeamRole::Admin), &user));
    }

    #[test]
    fn managing_members_takes_the_team_permission() {
        assert!(check_manage(true, None).is_ok(), "a global administrator");
        assert!(check_manage(false, Some(TeamRole::Admin)).is_ok());
        let not_member = check_manage(false, None).expect_err("stranger");
        assert_eq!(not_member.to_string(), "You are not a member of this team");
        match check_manage(false, Some(TeamRole::User)) {
            Err(ServiceError::Refused(r)) => {
                assert_eq!(r.kind, RefusalKind::Forbidden);
                assert_eq!(
                    r.context,
                    RefusalContext::TeamPermission {
                        required_permission: "team.members.manage",
                        user_team_role: "team_user".into()
                    }
                );
            }
            other => panic!("{other:?}"),
        }
    }
}
