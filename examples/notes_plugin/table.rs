//! The plugin's table for diesel's query builder, schema-qualified.

diesel::table! {
    plugin_notes.notes (id) {
        id -> Text,
        body -> Text,
        author_id -> Nullable<Text>,
        created_at -> Timestamptz,
    }
}
