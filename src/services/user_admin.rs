//! Upstream's user routes as rules: profile changes (unique names and addresses, lower-case
//! email), role changes, and deletions, with the last global administrator kept whatever
//! requests run at once (the administrators' rows are locked while it is decided); and the
//! administration lists, paged and filtered in SQL (upstream loaded every user and paged in
//! memory).

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Nullable, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use super::error::RefusalContext;
use super::users::UserService;
use super::{RefusalKind, ServiceError, ServiceResult};
use crate::db::models::{GlobalRole, RoleId, User, UserId};
use crate::db::schema::{roles, teams, users};

/// A change of an account's profile (`PUT /api/users/:id`); `None` keeps a field.
#[derive(Debug, Clone, Default)]
pub struct ProfileChange {
    /// New username (3 to 30 of `a-zA-Z0-9_.-`, unique ignoring case).
    pub username: Option<String>,
    /// New email address (stored in lower case, unique).
    pub email: Option<String>,
    /// New given name (`Some(None)` clears it).
    pub first_name: Option<Option<String>>,
    /// New family name.
    pub last_name: Option<Option<String>>,
    /// New global role.
    pub role_id: Option<String>,
}

/// Who acts on an account.
#[derive(Debug, Clone)]
pub struct Actor {
    /// The acting account.
    pub id: UserId,
    /// Whether it holds `system.admin` (a global administrator).
    pub admin: bool,
}

/// Filters of the administration list (`GET /api/admin/users/search`).
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    /// Text the username holds (ignoring case).
    pub username: Option<String>,
    /// Text the email address holds (ignoring case).
    pub email: Option<String>,
    /// `email_signup` or `github`.
    pub auth_type: Option<String>,
    /// Exact global role.
    pub role_id: Option<String>,
}

/// One account of the administration list, with its role.
#[derive(Debug, Clone, QueryableByName)]
pub struct ListedUser {
    /// The account.
    #[diesel(embed)]
    pub user: User,
    /// Its role's name (`None` without a role).
    #[diesel(sql_type = Nullable<Text>)]
    pub role_name: Option<String>,
    /// Its role's permissions.
    #[diesel(sql_type = Nullable<diesel::sql_types::Array<Nullable<Text>>>)]
    pub role_permissions: Option<Vec<Option<String>>>,
}

/// A page of accounts and how many match in all.
#[derive(Debug, Clone)]
pub struct UserPage {
    /// The accounts, oldest first.
    pub users: Vec<ListedUser>,
    /// Accounts matching the filters.
    pub total: i64,
}

/// Figures of `GET /api/admin/users/stats`.
#[derive(Debug, Clone, Default, QueryableByName)]
pub struct UserStats {
    /// Accounts.
    #[diesel(sql_type = BigInt)]
    pub total_users: i64,
    /// Accounts signing in with a password.
    #[diesel(sql_type = BigInt)]
    pub email_users: i64,
    /// Accounts signing in with GitHub.
    #[diesel(sql_type = BigInt)]
    pub github_users: i64,
    /// Global administrators.
    #[diesel(sql_type = BigInt)]
    pub global_admins: i64,
    /// Default teams.
    #[diesel(sql_type = BigInt)]
    pub default_teams: i64,
    /// Other teams.
    #[diesel(sql_type = BigInt)]
    pub non_default_teams: i64,
}

#[derive(QueryableByName)]
struct RoleCount {
    #[diesel(sql_type = Nullable<Text>)]
    role_id: Option<String>,
    #[diesel(sql_type = BigInt)]
    count: i64,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    total: i64,
}

/// The usernames upstream's frontend accepts: 3 to 30 of `a-zA-Z0-9_.-`.
pub fn valid_username(name: &str) -> bool {
    (3..=30).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// `%text%` for `ILIKE`, with `%`, `_` and `\` meaning themselves.
pub(crate) fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

impl UserService {
    /// Changes `target`'s profile as `actor`: 404 `User not found`, 403 `Cannot change your
    /// own role`, 400 `Invalid role ID`, 409 `Username or email already exists` (both
    /// checked, usernames ignoring case), and never the last global administrator demoted.
    pub async fn update_profile(
        &self,
        actor: &Actor,
        target: &UserId,
        change: ProfileChange,
    ) -> ServiceResult<User> {
        let email = change.email.as_ref().map(|e| e.to_lowercase());
        let mut conn = self.db.conn().await?;
        conn.transaction::<_, ServiceError, _>(async |conn| {
            // The administrators first, then the account: every role change and deletion
            // locks in this order, so two of them never wait on each other.
            let admins = match &change.role_id {
                Some(_) => lock_admins(conn).await?,
                None => Vec::new(),
            };
            let current = lock_user(conn, target).await?;
            if let Some(role) = &change.role_id {
                if &actor.id == target && !actor.admin {
                    return Err(ServiceError::forbidden("Cannot change your own role"));
                }
                let exists: bool = diesel::select(diesel::dsl::exists(
                    roles::table.find(RoleId::from(role.as_str())),
                ))
                .get_result(conn)
                .await?;
                if !exists || !matches!(role.as_str(), "global_admin" | "global_user") {
                    return Err(ServiceError::invalid("Invalid role ID"));
                }
                keep_an_administrator(&admins, &current, role)?;
            }
            let clash = (change.username.is_some() || email.is_some())
                && diesel::select(diesel::dsl::exists(
                    users::table.filter(users::id.ne(target)).filter(
                        diesel::dsl::sql::<Bool>("(lower(username) = lower(")
                            .bind::<Nullable<Text>, _>(change.username.as_deref())
                            .sql(") OR lower(email) = ")
                            .bind::<Nullable<Text>, _>(email.as_deref())
                            .sql(")"),
                    ),
                ))
                .get_result::<bool>(conn)
                .await?;
            if clash {
                return Err(ServiceError::conflict("Username or email already exists"));
            }
            diesel::update(users::table.find(target))
                .set((
                    users::username.eq(change.username.unwrap_or(current.username)),
                    users::email.eq(email.unwrap_or(current.email)),
                    users::first_name.eq(change.first_name.unwrap_or(current.first_name)),
                    users::last_name.eq(change.last_name.unwrap_or(current.last_name)),
                    users::role_id.eq(change
                        .role_id
                        .as_deref()
                        .map(RoleId::from)
                        .or(current.role_id)),
                ))
                .returning(User::as_returning())
                .get_result(conn)
                .await
                .map_err(|e| match ServiceError::from(e) {
                    ServiceError::Conflict(_) => {
                        ServiceError::conflict("Username or email already exists")
                    }
                    other => other,
                })
        })
        .await
    }

    /// Sets `target`'s global role as the administrator `actor`: 403 `Cannot change your own
    /// role`, 404 `User or role not found`; the last global administrator is kept.
    pub async fn assign_role(
        &self,
        actor: &UserId,
        target: &UserId,
        role: &str,
    ) -> ServiceResult<User> {
        if actor == target {
            return Err(ServiceError::forbidden("Cannot change your own role"));
        }
        let mut conn = self.db.conn().await?;
        conn.transaction::<_, ServiceError, _>(async |conn| {
            let admins = lock_admins(conn).await?;
            let current = lock_user(conn, target)
                .await
                .map_err(|_| ServiceError::not_found("User or role not found"))?;
            let exists: bool =
                diesel::select(diesel::dsl::exists(roles::table.find(RoleId::from(role))))
                    .get_result(conn)
                    .await?;
            if !exists {
                return Err(ServiceError::not_found("User or role not found"));
            }
            if !matches!(role, "global_admin" | "global_user") {
                return Err(ServiceError::invalid(
                    "Only global_admin and global_user can be an account's role",
                ));
            }
            keep_an_administrator(&admins, &current, role)?;
            Ok(diesel::update(users::table.find(target))
                .set(users::role_id.eq(Some(RoleId::from(role))))
                .returning(User::as_returning())
                .get_result(conn)
                .await?)
        })
        .await
    }

    /// Deletes `target` with its sessions, memberships and default team: refused while it
    /// owns other teams (`owned` lists them) or is the last global administrator.
    /// `by_admin`: an administrator deletes another account (it may not delete its own).
    pub async fn delete_account(
        &self,
        actor: &UserId,
        target: &UserId,
        by_admin: bool,
    ) -> ServiceResult<User> {
        if by_admin && actor == target {
            return Err(ServiceError::forbidden("Cannot delete your own account"));
        }
        let mut conn = self.db.conn().await?;
        conn.transaction::<_, ServiceError, _>(async |conn| {
            let admins = lock_admins(conn).await?;
            let current = lock_user(conn, target).await?;
            let owned: Vec<(String, String)> = teams::table
                .filter(teams::owner_id.eq(target))
                .filter(teams::is_default.eq(false))
                .order(teams::name.asc())
                .select((teams::id, teams::name))
                .load::<(crate::db::models::TeamId, String)>(conn)
                .await?
                .into_iter()
                .map(|(id, name)| (id.to_string(), name))
                .collect();
            if !owned.is_empty() {
                let message = if by_admin {
                    "Cannot delete a user who owns non-default teams. Transfer or delete them first."
                } else {
                    "Cannot delete account while owning non-default teams. Please delete all non-default teams first."
                };
                return Err(ServiceError::refused_with(
                    RefusalKind::Invalid,
                    message,
                    RefusalContext::OwnedTeams(owned),
                ));
            }
            keep_an_administrator(&admins, &current, GlobalRole::User.as_str())
                .map_err(|e| match e {
                    ServiceError::Refused(_) => {
                        ServiceError::forbidden("Cannot delete the last global administrator")
                    }
                    other => other,
                })?;
            diesel::delete(
                teams::table
                    .filter(teams::owner_id.eq(target))
                    .filter(teams::is_default.eq(true)),
            )
            .execute(conn)
            .await
            .map_err(|e| deletion_blocked(ServiceError::from_delete(e)))?;
            // Sessions, memberships, tokens and preferences go with the row (ON DELETE CASCADE).
            diesel::delete(users::table.find(target))
                .execute(conn)
                .await
                .map_err(|e| deletion_blocked(ServiceError::from_delete(e)))?;
            Ok(current)
        })
        .await
    }

    /// A page of accounts matching `filter`, oldest first, counted in the same snapshot.
    pub async fn page_users(
        &self,
        filter: &UserFilter,
        limit: i64,
        offset: i64,
    ) -> ServiceResult<UserPage> {
        let mut conditions = Vec::new();
        let mut binds: Vec<String> = Vec::new();
        let mut bind = |condition: &str, value: String, conditions: &mut Vec<String>| {
            binds.push(value);
            conditions.push(condition.replace('?', &format!("${}", binds.len())));
        };
        if let Some(u) = filter.username.as_deref().filter(|s| !s.is_empty()) {
            bind("u.username ILIKE ?", contains_pattern(u), &mut conditions);
        }
        if let Some(e) = filter.email.as_deref().filter(|s| !s.is_empty()) {
            bind("u.email ILIKE ?", contains_pattern(e), &mut conditions);
        }
        if let Some(a) = filter.auth_type.as_deref().filter(|s| !s.is_empty()) {
            // Upstream's filter says `email` for password accounts.
            let stored = if a == "email" { "email_signup" } else { a };
            bind("u.auth_type = ?", stored.to_owned(), &mut conditions);
        }
        if let Some(r) = filter.role_id.as_deref().filter(|s| !s.is_empty()) {
            bind("u.role_id = ?", r.to_owned(), &mut conditions);
        }
        let filter_sql = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let n = binds.len();
        let page_sql = format!(
            "SELECT u.*, r.name AS role_name, r.permissions AS role_permissions \
             FROM users u LEFT JOIN roles r ON r.id = u.role_id {filter_sql} \
             ORDER BY u.created_at, u.id LIMIT ${} OFFSET ${}",
            n + 1,
            n + 2
        );
        let count_sql = format!("SELECT count(*) AS total FROM users u {filter_sql}");
        let mut page = diesel::sql_query(page_sql).into_boxed();
        let mut count = diesel::sql_query(count_sql).into_boxed();
        for value in &binds {
            page = page.bind::<Text, _>(value.clone());
            count = count.bind::<Text, _>(value.clone());
        }
        let page = page.bind::<BigInt, _>(limit).bind::<BigInt, _>(offset);
        // Both on the shared connection at once: pipelined, one round trip.
        let conn = self.db.shared().await?;
        let (mut a, mut b) = (&*conn, &*conn);
        let (users, total) = futures_util::try_join!(
            page.load::<ListedUser>(&mut a),
            count.get_result::<Count>(&mut b)
        )?;
        Ok(UserPage {
            users,
            total: total.total,
        })
    }

    /// One account as the administration list shows it.
    pub async fn listed(&self, id: &UserId) -> ServiceResult<Option<ListedUser>> {
        let conn = self.db.shared().await?;
        Ok(diesel::sql_query(
            "SELECT u.*, r.name AS role_name, r.permissions AS role_permissions              FROM users u LEFT JOIN roles r ON r.id = u.role_id WHERE u.id = $1",
        )
        .bind::<Text, _>(id)
        .get_result(&mut &*conn)
        .await
        .optional()?)
    }

    /// The figures of the administration's statistics page.
    pub async fn stats(&self) -> ServiceResult<(UserStats, Vec<(Option<String>, i64)>)> {
        let conn = self.db.shared().await?;
        let stats: UserStats = diesel::sql_query(
            "SELECT (SELECT count(*) FROM users) AS total_users, \
                    (SELECT count(*) FROM users WHERE auth_type = 'email_signup') AS email_users, \
                    (SELECT count(*) FROM users WHERE auth_type = 'github') AS github_users, \
                    (SELECT count(*) FROM users WHERE role_id = 'global_admin') AS global_admins, \
                    (SELECT count(*) FROM teams WHERE is_default) AS default_teams, \
                    (SELECT count(*) FROM teams WHERE NOT is_default) AS non_default_teams",
        )
        .get_result(&mut &*conn)
        .await?;
        let by_role: Vec<RoleCount> = diesel::sql_query(
            "SELECT role_id, count(*) AS count FROM users GROUP BY role_id ORDER BY role_id",
        )
        .load(&mut &*conn)
        .await?;
        Ok((
            stats,
            by_role.into_iter().map(|r| (r.role_id, r.count)).collect(),
        ))
    }
}

/// `target`, its row locked until the transaction ends: 404 `User not found`.
async fn lock_user(conn: &mut AsyncPgConnection, target: &UserId) -> ServiceResult<User> {
    users::table
        .find(target)
        .select(User::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?
        .ok_or_else(|| ServiceError::not_found("User not found"))
}

/// The global administrators, their rows locked until the transaction ends (in id order:
/// two transactions locking them never deadlock). Of two requests demoting the last two at
/// once, the second waits here, then no longer sees the one the first demoted.
async fn lock_admins(conn: &mut AsyncPgConnection) -> ServiceResult<Vec<UserId>> {
    Ok(users::table
        .filter(users::role_id.eq(Some(RoleId::from(GlobalRole::Admin))))
        .select(users::id)
        .order(users::id.asc())
        .for_update()
        .load(conn)
        .await?)
}

/// Refuses to give `user` the role `new_role` when that leaves none of `admins` (locked by
/// [`lock_admins`]).
fn keep_an_administrator(admins: &[UserId], user: &User, new_role: &str) -> ServiceResult<()> {
    let admin = Some(RoleId::from(GlobalRole::Admin));
    if user.role_id != admin || new_role == GlobalRole::Admin.as_str() {
        return Ok(());
    }
    if admins.iter().all(|id| id == &user.id) {
        return Err(ServiceError::invalid(
            "Cannot remove the last global administrator",
        ));
    }
    Ok(())
}

/// A deletion that another row still refers to (settings, servers or installations the user
/// created).
fn deletion_blocked(e: ServiceError) -> ServiceError {
    match e {
        ServiceError::Conflict(detail) => {
            tracing::info!(detail = %detail, "account deletion blocked by rows that refer to it");
            ServiceError::conflict(
                "The account still created data others use (settings, MCP servers or installations); reassign or delete them first.",
            )
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_follow_the_frontends_rule() {
        for good in ["abc", "a.b-c_d", &"x".repeat(30), "A1_"] {
            assert!(valid_username(good), "{good}");
        }
        for bad in ["ab", &"x".repeat(31), "a b", "é12", "a@b", ""] {
            assert!(!valid_username(bad), "{bad}");
        }
    }

    #[test]
    fn search_text_is_literal() {
        assert_eq!(contains_pattern("a_b%c\\"), "%a\\_b\\%c\\\\%");
        assert_eq!(contains_pattern(""), "%%");
    }
}
