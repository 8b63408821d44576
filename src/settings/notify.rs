//! Cross-process cache invalidation: every write of a setting sends a NOTIFY on
//! [`CHANNEL`] inside its transaction, so other processes drop their cached copy when the
//! write commits (and never before).

use diesel::prelude::*;
use diesel::sql_types::Text;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::schema::global_settings;

/// The LISTEN/NOTIFY channel; the payload is the changed key, empty for "everything", or
/// [`KEY_ROTATED`].
pub const CHANNEL: &str = "deploystack_global_settings";

/// Payload announcing that every encrypted value now belongs to another secret, so running
/// servers can say they must be restarted with it instead of failing on each read. Spaces
/// make it an invalid setting key, so it never names a real setting.
pub const KEY_ROTATED: &str = "encryption secret rotated";

/// Announces a change of `key`.
pub async fn changed(conn: &mut AsyncPgConnection, key: &str) -> QueryResult<()> {
    diesel::sql_query("SELECT pg_notify($1, $2)")
        .bind::<Text, _>(CHANNEL)
        .bind::<Text, _>(key)
        .execute(conn)
        .await
        .map(|_| ())
}

/// Announces that any setting may have changed.
pub async fn all_changed(conn: &mut AsyncPgConnection) -> QueryResult<()> {
    changed(conn, "").await
}

/// Replaces a plaintext value with its ciphertext and marks it encrypted.
pub async fn encrypt_in_place(
    conn: &mut AsyncPgConnection,
    key: &str,
    ciphertext: &str,
) -> QueryResult<()> {
    diesel::update(global_settings::table.find(key))
        .set((
            global_settings::value.eq(ciphertext),
            global_settings::is_encrypted.eq(true),
        ))
        .execute(conn)
        .await
        .map(|_| ())
}
