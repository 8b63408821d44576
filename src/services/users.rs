//! Accounts.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use super::teams::create_default_team;
use super::{ServiceError, ServiceResult};
use crate::db::models::redact::debug_redacting;
use crate::db::models::{AuthType, GlobalRole, NewUser, RoleId, Team, User, UserChanges, UserId};
use crate::db::schema::users;
use crate::db::Database;

/// Serializes "is this the first user?" decisions ("dsusers" in ASCII): a transaction-scoped
/// advisory lock every registration takes. Public so an operator or a fault test can tell
/// (or hold) what registrations wait on.
pub const FIRST_USER_LOCK: i64 = 0x0064_7375_7365_7273;

/// What a registration provides. `Debug` hides the password hash.
#[derive(Clone)]
pub struct CreateUser {
    /// Display name.
    pub username: String,
    /// Email address (unique).
    pub email: String,
    /// How the user signs in.
    pub auth_type: AuthType,
    /// Given name.
    pub first_name: Option<String>,
    /// Family name.
    pub last_name: Option<String>,
    /// GitHub account id.
    pub github_id: Option<String>,
    /// Password hash.
    pub hashed_password: Option<String>,
}

debug_redacting!(CreateUser {
    username,
    email,
    auth_type,
    first_name,
    last_name,
    github_id,
    #[redact]
    hashed_password,
});

/// What stood in a registration's way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// Another account has this email address.
    Email,
    /// Another account has this username (compared ignoring case).
    Username,
    /// No administrator exists and the registration carried no live proof that it may
    /// become the first (see [`super::first_admin`]).
    FirstAdminProof,
}

/// Users: registration, lookup, profile changes, deletion.
#[derive(Clone)]
pub struct UserService {
    pub(super) db: Database,
}

impl UserService {
    /// A service over `db`.
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    /// Registers a user. The first user of the installation becomes `global_admin` with a
    /// verified email (upstream rule); later ones are `global_user`. A taken email or
    /// GitHub id is a `Conflict`. The "is this the first user?" check and the insert run in
    /// one transaction under a transaction-scoped advisory lock, so of two concurrent first
    /// registrations the second sees the first's committed row and does not become admin
    /// too (a plain check would let both see an empty table).
    pub async fn create_user(&self, input: CreateUser) -> ServiceResult<User> {
        let mut conn = self.db.conn().await?;
        let user = conn
            .transaction::<_, ServiceError, _>(async |conn| {
                lock_registrations(conn).await?;
                // EXISTS stops at the first row; a count would read the whole table.
                let first = !diesel::select(diesel::dsl::exists(users::table.select(users::id)))
                    .get_result::<bool>(conn)
                    .await?;
                insert_user(conn, input, first).await
            })
            .await?;
        Ok(user)
    }

    /// Registers an account as the sign-up form does, in one transaction under the same lock
    /// as [`UserService::create_user`]: refused when the email (compared in lower case) or
    /// the username (ignoring case) is taken; while no administrator exists, refused unless
    /// `admin` (an operator's command) or one of `proofs` (hashes of first-administrator
    /// proofs) is live, which then makes it the administrator and uses the proofs up.
    /// Otherwise a `global_user`. Either the account and its default team both exist
    /// afterwards or neither.
    pub async fn register(
        &self,
        mut input: CreateUser,
        admin: bool,
        proofs: &[String],
    ) -> ServiceResult<Result<(User, Team), Taken>> {
        input.email = input.email.to_lowercase();
        let mut conn = self.db.conn().await?;
        conn.transaction::<_, ServiceError, _>(async |conn| {
            lock_registrations(conn).await?;
            if let Some(taken) = taken(conn, &input.email, &input.username).await? {
                return Ok(Err(taken));
            }
            let first = !administrator_exists(conn).await?;
            if first && !admin && !super::first_admin::redeem(conn, proofs).await? {
                return Ok(Err(Taken::FirstAdminProof));
            }
            let admin = admin || first;
            let username = input.username.clone();
            let user = insert_user(conn, input, admin).await?;
            let team = create_default_team(conn, &user.id, &username).await?;
            if admin {
                super::first_admin::forget_all(conn).await?;
            }
            Ok(Ok((user, team)))
        })
        .await
    }

    /// What is taken of `email` (in lower case) and `username` (ignoring case), read
    /// without the registration lock: a check before a password is hashed for nothing.
    pub async fn taken(&self, email: &str, username: &str) -> ServiceResult<Option<Taken>> {
        let conn = self.db.shared().await?;
        Ok(taken(&mut &*conn, &email.to_lowercase(), username).await?)
    }

    /// Whether any account is a `global_admin`.
    pub async fn administrator_exists(&self) -> ServiceResult<bool> {
        let conn = self.db.shared().await?;
        Ok(administrator_exists(&mut &*conn).await?)
    }

    /// The account a sign-in names: by email (compared in lower case) when it holds an `@`,
    /// else by username (ignoring case, as usernames are unique).
    pub async fn find_for_login(&self, login: &str) -> ServiceResult<Option<User>> {
        let conn = self.db.shared().await?;
        let query = users::table
            .select(User::as_select())
            .order((users::created_at.asc(), users::id.asc()))
            .into_boxed();
        let query = if login.contains('@') {
            query.filter(
                diesel::dsl::sql::<diesel::sql_types::Bool>("lower(email) = ")
                    .bind::<diesel::sql_types::Text, _>(login.to_lowercase()),
            )
        } else {
            query.filter(
                diesel::dsl::sql::<diesel::sql_types::Bool>("lower(username) = lower(")
                    .bind::<diesel::sql_types::Text, _>(login)
                    .sql(")"),
            )
        };
        Ok(query.first(&mut &*conn).await.optional()?)
    }

    /// A user by id.
    pub async fn get_user(&self, id: &UserId) -> ServiceResult<Option<User>> {
        let mut conn = self.db.conn().await?;
        Ok(users::table
            .find(id)
            .select(User::as_select())
            .first(&mut conn)
            .await
            .optional()?)
    }

    /// A user by email address.
    pub async fn get_user_by_email(&self, email: &str) -> ServiceResult<Option<User>> {
        let mut conn = self.db.conn().await?;
        Ok(users::table
            .filter(users::email.eq(email))
            .select(User::as_select())
            .first(&mut conn)
            .await
            .optional()?)
    }

    /// Users by creation time, a page at a time.
    pub async fn list_users(&self, limit: i64, offset: i64) -> ServiceResult<Vec<User>> {
        let mut conn = self.db.read().await?;
        Ok(users::table
            .order((users::created_at.asc(), users::id.asc()))
            .limit(limit)
            .offset(offset)
            .select(User::as_select())
            .load(&mut conn)
            .await?)
    }

    /// Changes profile fields; `false` when no such user.
    pub async fn update_user(&self, id: &UserId, changes: &UserChanges) -> ServiceResult<bool> {
        let mut conn = self.db.conn().await?;
        let n = diesel::update(users::table.find(id))
            .set(changes)
            .execute(&mut conn)
            .await?;
        Ok(n > 0)
    }

    /// Sets the global role; `false` when no such user.
    pub async fn set_global_role(&self, id: &UserId, role: GlobalRole) -> ServiceResult<bool> {
        let mut conn = self.db.conn().await?;
        let n = diesel::update(users::table.find(id))
            .set(users::role_id.eq(Some(crate::db::models::RoleId::from(role))))
            .execute(&mut conn)
            .await?;
        Ok(n > 0)
    }

    /// Deletes a user and everything that is theirs alone (sessions, memberships, tokens);
    /// `false` when no such user, `Conflict` while they still own a team.
    pub async fn delete_user(&self, id: &UserId) -> ServiceResult<bool> {
        let mut conn = self.db.conn().await?;
        let n = diesel::delete(users::table.find(id))
            .execute(&mut conn)
            .await
            .map_err(ServiceError::from_delete)?;
        Ok(n > 0)
    }
}

/// Whether any account is a `global_admin`.
pub(crate) async fn administrator_exists<C>(conn: &mut C) -> QueryResult<bool>
where
    C: diesel_async::AsyncConnectionCore<Backend = diesel::pg::Pg>,
{
    diesel::select(diesel::dsl::exists(
        users::table.filter(users::role_id.eq(Some(RoleId::from(GlobalRole::Admin)))),
    ))
    .get_result::<bool>(conn)
    .await
}

/// What is taken of `email` (already in lower case) and `username` (ignoring case).
async fn taken<C>(conn: &mut C, email: &str, username: &str) -> QueryResult<Option<Taken>>
where
    C: diesel_async::AsyncConnectionCore<Backend = diesel::pg::Pg>,
{
    let (email_taken, username_taken) = diesel::select((
        diesel::dsl::exists(
            users::table.filter(
                diesel::dsl::sql::<diesel::sql_types::Bool>("lower(email) = ")
                    .bind::<diesel::sql_types::Text, _>(email),
            ),
        ),
        diesel::dsl::exists(
            users::table.filter(
                diesel::dsl::sql::<diesel::sql_types::Bool>("lower(username) = lower(")
                    .bind::<diesel::sql_types::Text, _>(username)
                    .sql(")"),
            ),
        ),
    ))
    .get_result::<(bool, bool)>(conn)
    .await?;
    Ok(if email_taken {
        Some(Taken::Email)
    } else if username_taken {
        Some(Taken::Username)
    } else {
        None
    })
}

/// Serializes registrations (and so "is this the first user?" decisions) across processes,
/// until the transaction ends.
pub(crate) async fn lock_registrations(conn: &mut AsyncPgConnection) -> diesel::QueryResult<()> {
    diesel::sql_query(format!("SELECT pg_advisory_xact_lock({FIRST_USER_LOCK})"))
        .execute(conn)
        .await
        .map(|_| ())
}

/// Inserts `input` as a new account: `global_admin` (with a verified email) when `admin`,
/// `global_user` otherwise. The caller holds the lock.
async fn insert_user(
    conn: &mut AsyncPgConnection,
    input: CreateUser,
    admin: bool,
) -> ServiceResult<User> {
    let new = NewUser {
        id: UserId::generate(),
        username: input.username,
        email: input.email,
        auth_type: input.auth_type,
        first_name: input.first_name,
        last_name: input.last_name,
        github_id: input.github_id,
        hashed_password: input.hashed_password,
        role_id: Some(
            if admin {
                GlobalRole::Admin
            } else {
                GlobalRole::User
            }
            .into(),
        ),
        email_verified: admin,
    };
    Ok(diesel::insert_into(users::table)
        .values(&new)
        .returning(User::as_returning())
        .get_result(conn)
        .await?)
}
