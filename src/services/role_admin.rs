//! Upstream's role routes: custom roles beside the four built-in ones, with permissions
//! checked against the ones the code defines. Duplicates are 409 on PostgreSQL too
//! (upstream matched SQLite's `UNIQUE constraint` text and answered 500 here).

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::error::RefusalContext;
use super::roles::{all_permissions, RoleService};
use super::{RefusalKind, ServiceError, ServiceResult};
use crate::db::models::{Role, RoleId};
use crate::db::schema::{roles, users};

/// A role to create or the new state of one.
#[derive(Debug, Clone)]
pub struct RoleInput {
    /// Id (creation only).
    pub id: Option<String>,
    /// Name (unique).
    pub name: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Permissions, each one the code defines.
    pub permissions: Option<Vec<String>>,
}

/// The permissions of `wanted` the code does not define.
pub fn unknown_permissions(wanted: &[String]) -> Vec<String> {
    let known = all_permissions();
    wanted
        .iter()
        .filter(|p| !known.contains(&p.as_str()))
        .cloned()
        .collect()
}

fn check_permissions(wanted: &[String]) -> ServiceResult<()> {
    let unknown = unknown_permissions(wanted);
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(ServiceError::refused_with(
            RefusalKind::Invalid,
            "Invalid permissions",
            RefusalContext::InvalidPermissions(unknown),
        ))
    }
}

fn duplicate(e: diesel::result::Error) -> ServiceError {
    match ServiceError::from(e) {
        ServiceError::Conflict(_) => ServiceError::conflict("Role ID or name already exists"),
        other => other,
    }
}

impl RoleService {
    /// Creates a custom role: 400 `Invalid permissions`, 409 `Role ID or name already
    /// exists`.
    pub async fn create_role(&self, input: RoleInput) -> ServiceResult<Role> {
        let permissions = input.permissions.unwrap_or_default();
        check_permissions(&permissions)?;
        let mut conn = self.db.conn().await?;
        diesel::insert_into(roles::table)
            .values((
                roles::id.eq(input.id.unwrap_or_default()),
                roles::name.eq(input.name.unwrap_or_default()),
                roles::description.eq(input.description),
                roles::permissions.eq(permissions.into_iter().map(Some).collect::<Vec<_>>()),
                roles::is_system_role.eq(false),
            ))
            .returning(Role::as_returning())
            .get_result(&mut conn)
            .await
            .map_err(duplicate)
    }

    /// Changes a custom role: 404 `Role not found`, 403 `Cannot update system roles`, 400
    /// `Invalid permissions`, 409 for a taken name.
    pub async fn update_role(&self, id: &RoleId, input: RoleInput) -> ServiceResult<Role> {
        if let Some(permissions) = &input.permissions {
            check_permissions(permissions)?;
        }
        let mut conn = self.db.conn().await?;
        conn.transaction::<_, ServiceError, _>(async |conn| {
            let role = roles::table
                .find(id)
                .select(Role::as_select())
                .for_update()
                .first(conn)
                .await
                .optional()?
                .ok_or_else(|| ServiceError::not_found("Role not found"))?;
            if role.is_system_role {
                return Err(ServiceError::forbidden("Cannot update system roles"));
            }
            let permissions: Vec<Option<String>> = match input.permissions {
                Some(p) => p.into_iter().map(Some).collect(),
                None => role.permissions,
            };
            diesel::update(roles::table.find(id))
                .set((
                    roles::name.eq(input.name.unwrap_or(role.name)),
                    roles::description.eq(input.description.or(role.description)),
                    roles::permissions.eq(permissions),
                ))
                .returning(Role::as_returning())
                .get_result(conn)
                .await
                .map_err(duplicate)
        })
        .await
    }

    /// Deletes a custom role nobody holds: 404 `Role not found`, 403 `Cannot delete system
    /// roles`, 409 `Cannot delete role that is assigned to users`.
    pub async fn delete_role(&self, id: &RoleId) -> ServiceResult<()> {
        let mut conn = self.db.conn().await?;
        conn.transaction::<_, ServiceError, _>(async |conn| {
            let role = roles::table
                .find(id)
                .select(Role::as_select())
                .for_update()
                .first(conn)
                .await
                .optional()?
                .ok_or_else(|| ServiceError::not_found("Role not found"))?;
            if role.is_system_role {
                return Err(ServiceError::forbidden("Cannot delete system roles"));
            }
            let assigned: bool = diesel::select(diesel::dsl::exists(
                users::table.filter(users::role_id.eq(id)),
            ))
            .get_result(conn)
            .await?;
            if assigned {
                return Err(ServiceError::conflict(
                    "Cannot delete role that is assigned to users",
                ));
            }
            diesel::delete(roles::table.find(id))
                .execute(conn)
                .await
                .map_err(|e| match ServiceError::from_delete(e) {
                    ServiceError::Conflict(_) => {
                        ServiceError::conflict("Cannot delete role that is assigned to users")
                    }
                    other => other,
                })?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_defined_permissions_are_accepted() {
        let wanted = vec!["teams.view".to_owned(), "teams.fly".to_owned()];
        assert_eq!(unknown_permissions(&wanted), ["teams.fly"]);
        assert!(check_permissions(&["roles.manage".to_owned()]).is_ok());
        assert!(check_permissions(&wanted).is_err());
    }
}
