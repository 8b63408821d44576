//! The example compiled plugin: notes. One table (`plugin_notes.notes`), two operations under
//! `/api/plugin/notes/`, one setting (`notes.max_length`), one job (`notes.purge`), and an
//! `on_database_init` that seeds a welcome note. It uses only the backend's public plugin
//! API, as a plugin in another crate would.

mod api;
mod purge;
mod table;

use deploystack_backend::jobs::Registry;
use deploystack_backend::plugins::{
    Plugin, PluginContext, PluginMigration, PluginRoutes, PluginSetting,
};
use deploystack_backend::settings::SettingType;
use diesel_async::RunQueryDsl;
use futures_util::future::BoxFuture;

use api::NotesApi;
use purge::PurgeNotes;

/// The plugin's id.
pub const ID: &str = "notes";
/// Longest note body accepted, in characters.
pub const MAX_LENGTH: &str = "notes.max_length";
/// Id of the note `on_database_init` seeds.
pub const WELCOME_ID: &str = "welcome";

/// The notes plugin.
pub struct NotesPlugin;

impl Plugin for NotesPlugin {
    fn id(&self) -> &str {
        ID
    }

    fn name(&self) -> &str {
        "Notes"
    }

    fn version(&self) -> &str {
        "1.0.0"
    }

    fn migrations(&self) -> Vec<PluginMigration> {
        vec![PluginMigration::new(
            1,
            "create_notes",
            include_str!("migrations/0001_create_notes.sql"),
        )]
    }

    fn settings(&self) -> Vec<PluginSetting> {
        vec![PluginSetting {
            key: MAX_LENGTH.into(),
            name: "Maximum note length".into(),
            kind: SettingType::Number,
            default: "2000".into(),
            description: "Longest note body accepted, in characters.".into(),
            encrypted: false,
            required: false,
        }]
    }

    fn on_database_init<'a>(&'a self, ctx: &'a PluginContext) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            ctx.db
                .transaction(|conn| {
                    Box::pin(async move {
                        diesel::sql_query(
                            "INSERT INTO notes (id, body) VALUES ($1, 'Welcome to notes.') \
                             ON CONFLICT (id) DO NOTHING",
                        )
                        .bind::<diesel::sql_types::Text, _>(WELCOME_ID)
                        .execute(conn)
                        .await
                    })
                })
                .await?;
            Ok(())
        })
    }

    fn register_jobs(&self, ctx: &PluginContext, jobs: &mut Registry) {
        jobs.register(PurgeNotes::new(ctx.db.clone()));
    }

    fn routes(&self, ctx: &PluginContext) -> Option<PluginRoutes> {
        Some(PluginRoutes::new(NotesApi::new(ctx.clone())))
    }
}
