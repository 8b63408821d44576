//! Upstream's role routes (`/api/roles`, for holders of `roles.manage`: global
//! administrators): the built-in roles and custom ones, and the permissions the code defines.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use super::account_bodies::{Done, Failure};
use super::caller::with_permission;
use super::reply::{Refusal, Reply};
use super::session_cookie::SessionCookie;
use super::tags::ApiTags;
use crate::db::models::{Role, RoleId};
use crate::services::role_admin::RoleInput;
use crate::services::roles::{all_permissions, ROLE_DEFINITIONS};
use crate::services::RoleService;
use crate::state::AppState;

/// The permission every role route requires.
const MANAGE: &str = "roles.manage";

/// A role.
#[derive(Debug, Clone, Object)]
pub struct RoleBody {
    /// Id.
    pub id: String,
    /// Name (unique).
    pub name: String,
    /// What it is for.
    pub description: Option<String>,
    /// What it grants.
    pub permissions: Vec<String>,
    /// One of the four built-in roles (not to be changed or deleted).
    pub is_system_role: bool,
    /// Created at.
    pub created_at: DateTime<Utc>,
    /// Changed at.
    pub updated_at: DateTime<Utc>,
}

impl From<&Role> for RoleBody {
    fn from(r: &Role) -> Self {
        Self {
            id: r.id.to_string(),
            name: r.name.clone(),
            description: r.description.clone(),
            permissions: r.permissions().map(str::to_owned).collect(),
            is_system_role: r.is_system_role,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// `{success, data: [role]}`.
#[derive(Debug, Clone, Object)]
pub struct RolesEnvelope {
    /// Always `true`.
    pub success: bool,
    /// The roles, by id.
    pub data: Vec<RoleBody>,
}

/// `{success, data: role, message?}`.
#[derive(Debug, Clone, Object)]
pub struct RoleEnvelope {
    /// Always `true`.
    pub success: bool,
    /// The role.
    pub data: RoleBody,
    /// What happened.
    #[oai(skip_serializing_if_is_none)]
    pub message: Option<String>,
}

/// The permissions the code defines.
#[derive(Debug, Clone, Object)]
pub struct PermissionsBody {
    /// Every permission, sorted.
    pub permissions: Vec<String>,
    /// The built-in roles' permissions.
    pub default_roles: BTreeMap<String, Vec<String>>,
}

/// `{success, data: permissions}`.
#[derive(Debug, Clone, Object)]
pub struct PermissionsEnvelope {
    /// Always `true`.
    pub success: bool,
    /// The permissions.
    pub data: PermissionsBody,
}

/// `POST /api/roles`.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct CreateRole {
    /// Id (unique).
    #[oai(validator(min_length = 1, max_length = 100, pattern = r"^[a-z0-9_]+$"))]
    pub id: String,
    /// Name (unique).
    #[oai(validator(min_length = 1, max_length = 100))]
    pub name: String,
    /// What it is for.
    #[oai(validator(max_length = 500))]
    pub description: Option<String>,
    /// At least one permission the code defines.
    #[oai(validator(min_items = 1))]
    pub permissions: Vec<String>,
}

/// `PUT /api/roles/:id`.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct UpdateRole {
    /// New name.
    #[oai(validator(min_length = 1, max_length = 100))]
    pub name: Option<String>,
    /// New description.
    #[oai(validator(max_length = 500))]
    pub description: Option<String>,
    /// New permissions (at least one).
    #[oai(validator(min_items = 1))]
    pub permissions: Option<Vec<String>>,
}

/// Role operations.
pub struct RolesApi;

#[OpenApi(tag = "ApiTags::Roles")]
impl RolesApi {
    /// Every role
    #[oai(path = "/api/roles", method = "get", operation_id = "listRoles")]
    async fn list(&self, state: Data<&AppState>, session: SessionCookie) -> Reply<RolesEnvelope> {
        let result = async {
            with_permission(&state, &session, MANAGE).await?;
            let roles = RoleService::new(state.database.clone())
                .list_roles()
                .await?;
            Ok::<_, Refusal>(RolesEnvelope {
                success: true,
                data: roles.iter().map(RoleBody::from).collect(),
            })
        }
        .await;
        result.into()
    }

    /// The permissions the code defines
    #[oai(
        path = "/api/roles/permissions",
        method = "get",
        operation_id = "listPermissions"
    )]
    async fn permissions(
        &self,
        state: Data<&AppState>,
        session: SessionCookie,
    ) -> Reply<PermissionsEnvelope> {
        let result = async {
            with_permission(&state, &session, MANAGE).await?;
            Ok::<_, Refusal>(PermissionsEnvelope {
                success: true,
                data: PermissionsBody {
                    permissions: all_permissions().into_iter().map(str::to_owned).collect(),
                    default_roles: ROLE_DEFINITIONS
                        .iter()
                        .map(|d| {
                            (
                                d.id.to_owned(),
                                d.permissions.iter().map(|p| (*p).to_owned()).collect(),
                            )
                        })
                        .collect(),
                },
            })
        }
        .await;
        result.into()
    }

    /// A role
    #[oai(path = "/api/roles/:id", method = "get", operation_id = "getRole")]
    async fn get(
        &self,
        state: Data<&AppState>,
        session: SessionCookie,
        id: Path<String>,
    ) -> Reply<RoleEnvelope> {
        let result = async {
            with_permission(&state, &session, MANAGE).await?;
            let role = RoleService::new(state.database.clone())
                .get_role(&RoleId::from(id.0.as_str()))
                .await?
                .ok_or_else(|| Refusal::NotFound(Failure::new("Role not found")))?;
            Ok::<_, Refusal>(RoleEnvelope {
                success: true,
                data: RoleBody::from(&role),
                message: None,
            })
        }
        .await;
        result.into()
    }

    /// Create a role
    ///
    /// A custom role granting permissions the code defines (`invalid_permissions` names the
    /// others); 409 when its id or name is taken.
    #[oai(path = "/api/roles", method = "post", operation_id = "createRole")]
    async fn create(
        &self,
        state: Data<&AppState>,
        session: SessionCookie,
        body: super::StrictJson<CreateRole>,
    ) -> Reply<RoleEnvelope> {
        let result = async {
            with_permission(&state, &session, MANAGE).await?;
            let body = body.0;
            let role = RoleService::new(state.database.clone())
                .create_role(RoleInput {
                    id: Some(body.id),
                    name: Some(body.name),
                    description: body.description,
                    permissions: Some(body.permissions),
                })
                .await?;
            Ok::<_, Refusal>(RoleEnvelope {
                success: true,
                data: RoleBody::from(&role),
                message: Some("Role created successfully".into()),
            })
        }
        .await;
        match result {
            Ok(body) => Reply::Created(Json(body)),
            Err(r) => r.into(),
        }
    }

    /// Change a role
    ///
    /// Custom roles only.
    #[oai(path = "/api/roles/:id", method = "put", operation_id = "updateRole")]
    async fn update(
        &self,
        state: Data<&AppState>,
        session: SessionCookie,
        id: Path<String>,
        body: super::StrictJson<UpdateRole>,
    ) -> Reply<RoleEnvelope> {
        let result = async {
            with_permission(&state, &session, MANAGE).await?;
            let body = body.0;
            let role = RoleService::new(state.database.clone())
                .update_role(
                    &RoleId::from(id.0.as_str()),
                    RoleInput {
                        id: None,
                        name: body.name,
                        description: body.description,
                        permissions: body.permissions,
                    },
                )
                .await?;
            Ok::<_, Refusal>(RoleEnvelope {
                success: true,
                data: RoleBody::from(&role),
                message: Some("Role updated successfully".into()),
            })
        }
        .await;
        result.into()
    }

    /// Delete a role
    ///
    /// Custom roles nobody holds.
    #[oai(
        path = "/api/roles/:id",
        method = "delete",
        operation_id = "deleteRole"
    )]
    async fn delete(
        &self,
        state: Data<&AppState>,
        session: SessionCookie,
        id: Path<String>,
    ) -> Reply<Done> {
        let result = async {
            with_permission(&state, &session, MANAGE).await?;
            RoleService::new(state.database.clone())
                .delete_role(&RoleId::from(id.0.as_str()))
                .await?;
            Ok::<_, Refusal>(Done {
                success: true,
                message: "Role deleted successfully".into(),
            })
        }
        .await;
        result.into()
    }
}
