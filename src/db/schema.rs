// @generated automatically by Diesel CLI.

diesel::table! {
    deploystack_setup (id) {
        id -> Bool,
        database_type -> Text,
        backend_version -> Text,
        completed_at -> Timestamptz,
    }
}
