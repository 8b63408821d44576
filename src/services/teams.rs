//! Teams and their memberships.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use super::{ServiceError, ServiceResult};
use crate::db::models::{
    Membership, MembershipId, NewMembership, NewTeam, Team, TeamChanges, TeamId, TeamRole, User,
    UserId,
};
use crate::db::schema::{team_memberships, teams, users};
use crate::db::Database;

/// Teams: creation with their owner, renaming, deletion, and membership management.
#[derive(Clone)]
pub struct TeamService {
    pub(super) db: Database,
}

impl TeamService {
    /// A service over `db`.
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    /// Creates a team and makes its owner a `team_admin`, in one transaction: either both
    /// rows exist afterwards or neither does. A taken slug is a `Conflict`, an unknown owner
    /// `NotFound`.
    pub async fn create_team(
        &self,
        name: &str,
        slug: &str,
        description: Option<&str>,
        owner: &UserId,
        is_default: bool,
    ) -> ServiceResult<Team> {
        let new = NewTeam {
            id: TeamId::generate(),
            name: name.to_owned(),
            slug: slug.to_owned(),
            description: description.map(str::to_owned),
            owner_id: owner.clone(),
            is_default,
        };
        let mut conn = self.db.conn().await?;
        conn.transaction::<_, ServiceError, _>(async |conn| {
            let team = diesel::insert_into(teams::table)
                .values(&new)
                .returning(Team::as_returning())
                .get_result(conn)
                .await?;
            add_owner(conn, &team).await?;
            Ok(team)
        })
        .await
    }

    /// A team by id.
    pub async fn get_team(&self, id: &TeamId) -> ServiceResult<Option<Team>> {
        let mut conn = self.db.conn().await?;
        Ok(teams::table
            .find(id)
            .select(Team::as_select())
            .first(&mut conn)
            .await
            .optional()?)
    }

    /// A team by slug.
    pub async fn get_team_by_slug(&self, slug: &str) -> ServiceResult<Option<Team>> {
        let mut conn = self.db.conn().await?;
        Ok(teams::table
            .filter(teams::slug.eq(slug))
            .select(Team::as_select())
            .first(&mut conn)
            .await
            .optional()?)
    }

    /// All teams by name, a page at a time (administration).
    pub async fn list_teams(&self, limit: i64, offset: i64) -> ServiceResult<Vec<Team>> {
        let mut conn = self.db.read().await?;
        Ok(teams::table
            .order((teams::name.asc(), teams::id.asc()))
            .limit(limit)
            .offset(offset)
            .select(Team::as_select())
            .load(&mut conn)
            .await?)
    }

    /// The teams `user` belongs to, with the user's role in each, by name.
    pub async fn list_teams_for_user(&self, user: &UserId) -> ServiceResult<Vec<(Team, TeamRole)>> {
        let mut conn = self.db.read().await?;
        Ok(teams::table
            .inner_join(team_memberships::table)
            .filter(team_memberships::user_id.eq(user))
            .order((teams::name.asc(), teams::id.asc()))
            .select((Team::as_select(), team_memberships::role))
            .load(&mut conn)
            .await?)
    }

    /// Renames a team; `false` when no such team.
    pub async fn update_team_name(&self, id: &TeamId, name: &str) -> ServiceResult<bool> {
        self.update_team(
            id,
            &TeamChanges {
                name: Some(name.to_owned()),
                ..TeamChanges::default()
            },
        )
        .await
    }

    /// Changes team fields; `false` when no such team.
    pub async fn update_team(&self, id: &TeamId, changes: &TeamChanges) -> ServiceResult<bool> {
        let mut conn = self.db.conn().await?;
        let n = diesel::update(teams::table.find(id))
            .set(changes)
            .execute(&mut conn)
            .await?;
        Ok(n > 0)
    }

    /// Deletes a team with its memberships, installations and credentials; `false` when no
    /// such team.
    pub async fn delete_team(&self, id: &TeamId) -> ServiceResult<bool> {
        let mut conn = self.db.conn().await?;
        let n = diesel::delete(teams::table.find(id))
            .execute(&mut conn)
            .await
            .map_err(ServiceError::from_delete)?;
        Ok(n > 0)
    }

    /// Adds `user` to `team` with `role`. `Conflict` when already a member, `Invalid` when
    /// the team is at its member limit, `NotFound` for an unknown team or user.
    pub async fn add_member(
        &self,
        team: &TeamId,
        user: &UserId,
        role: TeamRole,
    ) -> ServiceResult<Membership> {
        let mut conn = self.db.conn().await?;
        let (team, user) = (team.clone(), user.clone());
        conn.transaction::<_, ServiceError, _>(async |conn| {
            // Locks the team row so two concurrent additions cannot both pass the limit.
            let limit: i32 = teams::table
                .find(&team)
                .select(teams::member_limit)
                .for_update()
                .first(conn)
                .await
                .optional()?
                .ok_or_else(|| ServiceError::NotFound(format!("team {team}")))?;
            let members: i64 = team_memberships::table
                .filter(team_memberships::team_id.eq(&team))
                .count()
                .get_result(conn)
                .await?;
            if members >= i64::from(limit) {
                return Err(ServiceError::Invalid(format!(
                    "team {team} has reached its limit of {limit} members"
                )));
            }
            Ok(diesel::insert_into(team_memberships::table)
                .values(NewMembership {
                    id: MembershipId::generate(),
                    team_id: team.clone(),
                    user_id: user.clone(),
                    role,
                })
                .returning(Membership::as_returning())
                .get_result(conn)
                .await?)
        })
        .await
    }

    /// Changes a member's role; `false` when `user` is not a member. The owner stays
    /// `team_admin` (`Invalid`). The owner check and the update run in one transaction with
    /// the team row locked, so a concurrent change of the team (an ownership transfer to this
    /// member) cannot slip between them and leave an owner who is not `team_admin`.
    pub async fn change_member_role(
        &self,
        team: &TeamId,
        user: &UserId,
        role: TeamRole,
    ) -> ServiceResult<bool> {
        let mut conn = self.db.conn().await?;
        conn.transaction::<_, ServiceError, _>(async |conn| {
            let owner = lock_team_owner(conn, team).await?;
            if role != TeamRole::Admin && owner.as_ref() == Some(user) {
                return Err(ServiceError::Invalid(
                    "the team owner must stay team_admin".into(),
                ));
            }
            let n = diesel::update(
                team_memberships::table
                    .filter(team_memberships::team_id.eq(team))
                    .filter(team_memberships::user_id.eq(user)),
            )
            .set(team_memberships::role.eq(role))
            .execute(conn)
            .await?;
            Ok(n > 0)
        })
        .await
    }

    /// Removes a member; `false` when `user` is not a member. The owner cannot leave
    /// (`Invalid`): transfer ownership or delete the team. Checked and deleted in one
    /// transaction with the team row locked, like [`TeamService::change_member_role`].
    pub async fn remove_member(&self, team: &TeamId, user: &UserId) -> ServiceResult<bool> {
        let mut conn = self.db.conn().await?;
        conn.transaction::<_, ServiceError, _>(async |conn| {
            if lock_team_owner(conn, team).await?.as_ref() == Some(user) {
                return Err(ServiceError::Invalid(
                    "the team owner cannot be removed from the team".into(),
                ));
            }
            let n = diesel::delete(
                team_memberships::table
                    .filter(team_memberships::team_id.eq(team))
                    .filter(team_memberships::user_id.eq(user)),
            )
            .execute(conn)
            .await
            .map_err(ServiceError::from_delete)?;
            Ok(n > 0)
        })
        .await
    }

    /// Members of a team with their accounts, in joining order.
    pub async fn list_members(&self, team: &TeamId) -> ServiceResult<Vec<(Membership, User)>> {
        let mut conn = self.db.read().await?;
        Ok(team_memberships::table
            .inner_join(users::table)
            .filter(team_memberships::team_id.eq(team))
            .order((
                team_memberships::joined_at.asc(),
                team_memberships::id.asc(),
            ))
            .select((Membership::as_select(), User::as_select()))
            .load(&mut conn)
            .await?)
    }
}

/// The owner of `team` (`None` for no such team), locking the team row until the transaction
/// ends. Every change of the row (an ownership transfer included) takes a conflicting lock,
/// so the owner read here stays the owner while the caller acts on it. `FOR NO KEY UPDATE`
/// rather than `FOR UPDATE`: it does not block the key-share locks that foreign-key checks
/// of unrelated child rows (installations, tokens) take on the team.
async fn lock_team_owner(
    conn: &mut diesel_async::AsyncPgConnection,
    team: &TeamId,
) -> ServiceResult<Option<UserId>> {
    Ok(teams::table
        .find(team)
        .select(teams::owner_id)
        .for_no_key_update()
        .first(conn)
        .await
        .optional()?)
}

/// Makes the team's owner its `team_admin`.
pub(crate) async fn add_owner(
    conn: &mut AsyncPgConnection,
    team: &Team,
) -> diesel::QueryResult<()> {
    diesel::insert_into(team_memberships::table)
        .values(NewMembership {
            id: MembershipId::generate(),
            team_id: team.id.clone(),
            user_id: team.owner_id.clone(),
            role: TeamRole::Admin,
        })
        .execute(conn)
        .await
        .map(|_| ())
}

/// A new user's default team (upstream's `createDefaultTeamForUser`): named after the user,
/// its slug the username in lower case, with a random suffix when that is taken; on `conn`,
/// inside the caller's transaction.
pub(crate) async fn create_default_team(
    conn: &mut AsyncPgConnection,
    owner: &UserId,
    username: &str,
) -> ServiceResult<Team> {
    let base = username.to_ascii_lowercase();
    for attempt in 0..8 {
        let slug = if attempt == 0 {
            base.clone()
        } else {
            format!("{base}-{:06x}", rand::random::<u32>() & 0xff_ffff)
        };
        let created = diesel::insert_into(teams::table)
            .values(&NewTeam {
                id: TeamId::generate(),
                name: username.to_owned(),
                slug,
                description: Some(format!("Default team for {username}")),
                owner_id: owner.clone(),
                is_default: true,
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
    Err(ServiceError::Conflict(format!(
        "no free team slug for {username}"
    )))
}
