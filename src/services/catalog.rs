//! The dashboard's reads over the MCP catalog: a team's installations (with the caller's own
//! instance state) and the catalog's servers a user may see, filtered and paged in SQL.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Int4, Nullable, Text, Timestamptz};
use diesel_async::RunQueryDsl;

use super::ServiceResult;
use crate::db::models::{TeamId, UserId};
use crate::db::Database;

/// An installation as upstream's list shows it.
#[derive(Debug, Clone, QueryableByName)]
pub struct InstallationRow {
    /// Id.
    #[diesel(sql_type = Text)]
    pub id: String,
    /// Name given at installation.
    #[diesel(sql_type = Text)]
    pub installation_name: String,
    /// `global` or `team`.
    #[diesel(sql_type = Text)]
    pub installation_type: String,
    /// Team.
    #[diesel(sql_type = Text)]
    pub team_id: String,
    /// Installed at.
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    /// Last used at.
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub last_used_at: Option<DateTime<Utc>>,
    /// The caller's own instance's status.
    #[diesel(sql_type = Nullable<Text>)]
    pub status: Option<String>,
    /// Its message.
    #[diesel(sql_type = Nullable<Text>)]
    pub status_message: Option<String>,
    /// When it last changed.
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub status_updated_at: Option<DateTime<Utc>>,
    /// The catalog server (`None` if its row is gone).
    #[diesel(sql_type = Nullable<Text>)]
    pub server_id: Option<String>,
    /// Its icon.
    #[diesel(sql_type = Nullable<Text>)]
    pub icon_url: Option<String>,
    /// Its category.
    #[diesel(sql_type = Nullable<Text>)]
    pub category_id: Option<String>,
    /// Its runtime.
    #[diesel(sql_type = Nullable<Text>)]
    pub runtime: Option<String>,
    /// Where it came from.
    #[diesel(sql_type = Nullable<Text>)]
    pub source: Option<String>,
    /// Its repository.
    #[diesel(sql_type = Nullable<Text>)]
    pub repository_url: Option<String>,
    /// Branch.
    #[diesel(sql_type = Nullable<Text>)]
    pub git_branch: Option<String>,
    /// Commit.
    #[diesel(sql_type = Nullable<Text>)]
    pub git_commit_sha: Option<String>,
    /// Instances of all members.
    #[diesel(sql_type = BigInt)]
    pub total_instances: i64,
    /// Of which online.
    #[diesel(sql_type = BigInt)]
    pub online: i64,
    /// Of which offline.
    #[diesel(sql_type = BigInt)]
    pub offline: i64,
    /// Of which failing.
    #[diesel(sql_type = BigInt)]
    pub error: i64,
    /// Of which starting.
    #[diesel(sql_type = BigInt)]
    pub provisioning: i64,
}

/// A catalog server as upstream's list shows it.
#[derive(Debug, Clone, QueryableByName)]
pub struct ServerRow {
    /// Id.
    #[diesel(sql_type = Text)]
    pub id: String,
    /// Name.
    #[diesel(sql_type = Text)]
    pub name: String,
    /// URL name.
    #[diesel(sql_type = Text)]
    pub slug: String,
    /// What it does.
    #[diesel(sql_type = Text)]
    pub description: String,
    /// Icon.
    #[diesel(sql_type = Nullable<Text>)]
    pub icon_url: Option<String>,
    /// Website.
    #[diesel(sql_type = Nullable<Text>)]
    pub website_url: Option<String>,
    /// Language.
    #[diesel(sql_type = Text)]
    pub language: String,
    /// Runtime.
    #[diesel(sql_type = Text)]
    pub runtime: String,
    /// `stdio`, `http` or `sse`.
    #[diesel(sql_type = Text)]
    pub transport_type: String,
    /// `global` or `team`.
    #[diesel(sql_type = Text)]
    pub visibility: String,
    /// The team of a team server.
    #[diesel(sql_type = Nullable<Text>)]
    pub owner_team_id: Option<String>,
    /// Category id.
    #[diesel(sql_type = Nullable<Text>)]
    pub category_id: Option<String>,
    /// Category name (when the category exists).
    #[diesel(sql_type = Nullable<Text>)]
    pub category_name: Option<String>,
    /// Category icon.
    #[diesel(sql_type = Nullable<Text>)]
    pub category_icon: Option<String>,
    /// Tags.
    #[diesel(sql_type = Array<Nullable<Text>>)]
    pub tags: Vec<Option<String>>,
    /// Status.
    #[diesel(sql_type = Text)]
    pub status: String,
    /// Featured.
    #[diesel(sql_type = Bool)]
    pub featured: bool,
    /// Needs OAuth.
    #[diesel(sql_type = Bool)]
    pub requires_oauth: bool,
    /// Stars.
    #[diesel(sql_type = Nullable<Int4>)]
    pub github_stars: Option<i32>,
    /// Author.
    #[diesel(sql_type = Nullable<Text>)]
    pub author_name: Option<String>,
    /// Organization.
    #[diesel(sql_type = Nullable<Text>)]
    pub organization: Option<String>,
    /// Official name.
    #[diesel(sql_type = Nullable<Text>)]
    pub official_name: Option<String>,
    /// Where it came from.
    #[diesel(sql_type = Text)]
    pub source: String,
    /// Created at.
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    /// Changed at.
    #[diesel(sql_type = Timestamptz)]
    pub updated_at: DateTime<Utc>,
    /// Matching servers in all (the same on every row).
    #[diesel(sql_type = BigInt)]
    pub total: i64,
}

/// Filters of `GET /api/mcp/servers`.
#[derive(Debug, Clone, Default)]
pub struct ServerFilter {
    /// Exact category.
    pub category_id: Option<String>,
    /// Exact language.
    pub language: Option<String>,
    /// Exact runtime.
    pub runtime: Option<String>,
    /// Exact status.
    pub status: Option<String>,
    /// Featured or not.
    pub featured: Option<bool>,
    /// Exact source.
    pub source: Option<String>,
    /// Text the name, description or a tag holds (ignoring case).
    pub search: Option<String>,
}

/// The catalog reads.
#[derive(Clone)]
pub struct Catalog {
    db: Database,
}

impl Catalog {
    /// On `db`.
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    /// The installations of `team`, newest first, each with `viewer`'s own instance state
    /// and the instance counts of all members.
    pub async fn installations(
        &self,
        viewer: &UserId,
        team: &TeamId,
    ) -> ServiceResult<Vec<InstallationRow>> {
        let conn = self.db.shared().await?;
        Ok(diesel::sql_query(
            "SELECT i.id, i.installation_name, i.installation_type, i.team_id, i.created_at, \
                    i.last_used_at, mine.status, mine.status_message, mine.status_updated_at, \
                    s.id AS server_id, s.icon_url, s.category_id, s.runtime, s.source, \
                    s.repository_url, s.git_branch, s.git_commit_sha, \
                    coalesce(c.total, 0) AS total_instances, coalesce(c.online, 0) AS online, \
                    coalesce(c.offline, 0) AS offline, coalesce(c.error, 0) AS error, \
                    coalesce(c.provisioning, 0) AS provisioning \
             FROM mcp_server_installations i \
             LEFT JOIN mcp_servers s ON s.id = i.server_id \
             LEFT JOIN mcp_server_instances mine ON mine.installation_id = i.id AND mine.user_id = $2 \
             LEFT JOIN LATERAL ( \
                 SELECT count(*) AS total, \
                        count(*) FILTER (WHERE status = 'online') AS online, \
                        count(*) FILTER (WHERE status = 'offline') AS offline, \
                        count(*) FILTER (WHERE status IN ('error', 'permanently_failed', 'requires_reauth')) AS error, \
                        count(*) FILTER (WHERE status IN ('provisioning', 'command_received', 'connecting', \
                            'discovering_tools', 'syncing_tools', 'restarting', 'awaiting_user_config')) AS provisioning \
                 FROM mcp_server_instances WHERE installation_id = i.id) c ON true \
             WHERE i.team_id = $1 \
             ORDER BY i.created_at DESC, i.id",
        )
        .bind::<Text, _>(team)
        .bind::<Text, _>(viewer)
        .load(&mut &*conn)
        .await?)
    }

    /// The servers `viewer` may see (a global administrator every one; others the global
    /// ones and those of their teams) matching `filter`, featured first then by name, with
    /// the total.
    pub async fn servers(
        &self,
        viewer: &UserId,
        admin: bool,
        filter: &ServerFilter,
        limit: i64,
        offset: i64,
    ) -> ServiceResult<(Vec<ServerRow>, i64)> {
        let mut conditions: Vec<String> = Vec::new();
        let mut texts: Vec<String> = vec![viewer.to_string()];
        if !admin {
            conditions.push(
                "(s.visibility = 'global' OR (s.visibility = 'team' AND s.owner_team_id IN \
                 (SELECT team_id FROM team_memberships WHERE user_id = $1)))"
                    .into(),
            );
        }
        for (column, value) in [
            ("s.category_id", &filter.category_id),
            ("s.language", &filter.language),
            ("s.runtime", &filter.runtime),
            ("s.status", &filter.status),
            ("s.source", &filter.source),
        ] {
            if let Some(v) = value {
                texts.push(v.clone());
                conditions.push(format!("{column} = ${}", texts.len()));
            }
        }
        if let Some(featured) = filter.featured {
            conditions.push(format!("s.featured = {featured}"));
        }
        if let Some(search) = filter.search.as_deref().filter(|s| !s.is_empty()) {
            texts.push(super::user_admin::contains_pattern(search));
            let n = texts.len();
            conditions.push(format!(
                "(s.name ILIKE ${n} OR s.description ILIKE ${n} OR array_to_string(s.tags, ' ') ILIKE ${n})"
            ));
        }
        let filter_sql = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let sql = format!(
            "SELECT s.id, s.name, s.slug, s.description, s.icon_url, s.website_url, s.language, \
                    s.runtime, s.transport_type, s.visibility, s.owner_team_id, s.category_id, \
                    c.name AS category_name, c.icon AS category_icon, s.tags, s.status, s.featured, \
                    s.requires_oauth, s.github_stars, s.author_name, s.organization, s.official_name, \
                    s.source, s.created_at, s.updated_at, count(*) OVER () AS total \
             FROM mcp_servers s LEFT JOIN mcp_categories c ON c.id = s.category_id \
             {filter_sql} ORDER BY s.featured DESC, s.name, s.id LIMIT ${} OFFSET ${}",
            texts.len() + 1,
            texts.len() + 2
        );
        let mut query = diesel::sql_query(sql).into_boxed();
        for t in texts {
            query = query.bind::<Text, _>(t);
        }
        let conn = self.db.shared().await?;
        let rows: Vec<ServerRow> = query
            .bind::<BigInt, _>(limit)
            .bind::<BigInt, _>(offset)
            .load(&mut &*conn)
            .await?;
        let total = match rows.first() {
            Some(row) => row.total,
            // Past the last page: count alone.
            None if offset > 0 => {
                let (all, _) = Box::pin(self.servers(viewer, admin, filter, 1, 0)).await?;
                all.first().map_or(0, |r| r.total)
            }
            None => 0,
        };
        Ok((rows, total))
    }
}
