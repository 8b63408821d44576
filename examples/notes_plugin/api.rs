//! `GET` and `POST /api/plugin/notes/notes`: typed operations that join the backend's OpenAPI
//! document, answering errors in the backend's `{"error", "message"}` shape.

use chrono::{DateTime, Utc};
use deploystack_backend::api::ErrorBody;
use deploystack_backend::plugins::{PluginContext, PluginDbError};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};

use super::table::notes;
use super::MAX_LENGTH;

/// Notes returned by a list, at most.
const LIST_LIMIT: i64 = 100;

#[derive(Tags)]
enum NotesTags {
    /// The example notes plugin.
    Notes,
}

/// A stored note.
#[derive(Debug, Object, Queryable, Selectable)]
#[diesel(table_name = notes)]
#[oai(rename_all = "camelCase")]
pub struct Note {
    /// Its id.
    pub id: String,
    /// The text.
    pub body: String,
    /// The user it was written for, when known.
    pub author_id: Option<String>,
    /// When it was written.
    pub created_at: DateTime<Utc>,
}

/// A note to write.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct NewNote {
    /// The text: not empty, at most `notes.max_length` characters.
    pub body: String,
}

#[derive(ApiResponse)]
enum ListResponse {
    /// The newest notes first.
    #[oai(status = 200)]
    Ok(Json<Vec<Note>>),
    /// The database is not available.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}

#[derive(ApiResponse)]
enum CreateResponse {
    /// Written.
    #[oai(status = 201)]
    Created(Json<Note>),
    /// The body is empty or too long.
    #[oai(status = 400)]
    Invalid(Json<ErrorBody>),
    /// The database is not available.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}

/// The plugin's operations.
pub struct NotesApi {
    ctx: PluginContext,
}

impl NotesApi {
    /// Operations acting through `ctx`.
    pub fn new(ctx: PluginContext) -> Self {
        Self { ctx }
    }
}

fn unavailable(e: &PluginDbError) -> Json<ErrorBody> {
    tracing::warn!(error = %e, "notes plugin: database work failed");
    Json(ErrorBody::new(
        "Database unavailable",
        "The notes could not be read or written right now; retry shortly.",
    ))
}

#[OpenApi(tag = "NotesTags::Notes")]
impl NotesApi {
    /// List notes
    #[oai(
        path = "/api/plugin/notes/notes",
        method = "get",
        operation_id = "listNotes"
    )]
    async fn list(&self) -> ListResponse {
        let found = self
            .ctx
            .db
            .transaction(|conn| {
                Box::pin(async move {
                    notes::table
                        .select(Note::as_select())
                        .order((notes::created_at.desc(), notes::id.desc()))
                        .limit(LIST_LIMIT)
                        .load(conn)
                        .await
                })
            })
            .await;
        match found {
            Ok(list) => ListResponse::Ok(Json(list)),
            Err(e) => ListResponse::Unavailable(unavailable(&e)),
        }
    }

    /// Write a note
    #[oai(
        path = "/api/plugin/notes/notes",
        method = "post",
        operation_id = "createNote"
    )]
    async fn create(&self, body: Json<NewNote>) -> CreateResponse {
        let text = body.0.body;
        let max = match self.ctx.settings.get_number(MAX_LENGTH).await {
            Ok(max) => max.unwrap_or(2000.0),
            Err(e) => {
                tracing::warn!(error = %e, "notes plugin: cannot read {MAX_LENGTH}");
                return CreateResponse::Unavailable(Json(ErrorBody::new(
                    "Settings unavailable",
                    "The notes settings could not be read right now; retry shortly.",
                )));
            }
        };
        let length = text.chars().count();
        if text.trim().is_empty() || length as f64 > max {
            return CreateResponse::Invalid(Json(ErrorBody::new(
                "Invalid note",
                format!("a note needs 1 to {max} characters (got {length})"),
            )));
        }
        let id = hex::encode(rand::random::<[u8; 12]>());
        let written = self
            .ctx
            .db
            .transaction(|conn| {
                Box::pin(async move {
                    diesel::insert_into(notes::table)
                        .values((notes::id.eq(&id), notes::body.eq(&text)))
                        .returning(Note::as_returning())
                        .get_result(conn)
                        .await
                })
            })
            .await;
        match written {
            Ok(note) => CreateResponse::Created(Json(note)),
            Err(e) => CreateResponse::Unavailable(unavailable(&e)),
        }
    }
}
