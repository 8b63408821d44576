//! A user's preferences (upstream's `userPreferences`): six declared keys with a type and a
//! default, stored as text. Upstream wrote every default at registration; here a key never
//! written reads as its default, which answers the same without the rows. An unknown key or
//! a value of the wrong type is refused as bad input (upstream answered 500).

use std::collections::BTreeMap;

use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel_async::{AsyncConnection, RunQueryDsl};
use serde_json::Value;

use super::{ServiceError, ServiceResult};
use crate::db::models::UserId;
use crate::db::schema::user_preferences;
use crate::db::Database;

/// A declared preference's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `true`/`false`.
    Boolean,
    /// Text.
    Text,
}

/// The declared preferences: key, type, default (upstream's `DEFAULT_USER_PREFERENCES`).
pub const DECLARED: [(&str, Kind, &str); 6] = [
    ("walkthrough_completed", Kind::Boolean, "false"),
    ("walkthrough_cancelled", Kind::Boolean, "false"),
    ("email_notifications_enabled", Kind::Boolean, "true"),
    ("browser_notifications_enabled", Kind::Boolean, "true"),
    ("notification_acknowledgments", Kind::Text, ""),
    ("beta_features_enabled", Kind::Boolean, "false"),
];

/// Upstream's key for acknowledged notifications (a comma-separated list).
const ACKNOWLEDGED: &str = "notification_acknowledgments";

fn declared(key: &str) -> Option<(Kind, &'static str)> {
    DECLARED
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|(_, kind, default)| (*kind, *default))
}

/// The stored text of `value` for `key`: refused for an undeclared key or another type.
pub fn stored_form(key: &str, value: &Value) -> ServiceResult<String> {
    let (kind, _) = declared(key)
        .ok_or_else(|| ServiceError::invalid(format!("Unknown preference '{key}'")))?;
    match (kind, value) {
        (Kind::Boolean, Value::Bool(b)) => Ok(b.to_string()),
        (Kind::Text, Value::String(s)) => Ok(s.clone()),
        (Kind::Boolean, _) => Err(ServiceError::invalid(format!(
            "Preference '{key}' must be a boolean"
        ))),
        (Kind::Text, _) => Err(ServiceError::invalid(format!(
            "Preference '{key}' must be a string"
        ))),
    }
}

/// `text` as the value of `key`: typed by its declaration, raw text for other keys.
fn typed(key: &str, text: &str) -> Value {
    match declared(key) {
        Some((Kind::Boolean, _)) => Value::Bool(text == "true"),
        _ => Value::String(text.to_owned()),
    }
}

/// Preferences of users.
#[derive(Clone)]
pub struct Preferences {
    db: Database,
}

impl Preferences {
    /// On `db`.
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    /// Every preference of `user`: the declared ones (stored or default) and any other key
    /// stored.
    pub async fn all(&self, user: &UserId) -> ServiceResult<BTreeMap<String, Value>> {
        let conn = self.db.shared().await?;
        let rows: Vec<(String, String)> = user_preferences::table
            .filter(user_preferences::user_id.eq(user))
            .select((
                user_preferences::preference_key,
                user_preferences::preference_value,
            ))
            .load(&mut &*conn)
            .await?;
        let mut all: BTreeMap<String, Value> = DECLARED
            .iter()
            .map(|(k, _, default)| ((*k).to_owned(), typed(k, default)))
            .collect();
        for (key, text) in rows {
            let value = typed(&key, &text);
            all.insert(key, value);
        }
        Ok(all)
    }

    /// One preference: 404 `Preference '<key>' not found` for an undeclared key never set.
    pub async fn one(&self, user: &UserId, key: &str) -> ServiceResult<Value> {
        self.all(user)
            .await?
            .remove(key)
            .ok_or_else(|| ServiceError::not_found(format!("Preference '{key}' not found")))
    }

    /// Sets every preference of `values` at once (each checked first: all or none).
    pub async fn set_many(&self, user: &UserId, values: &[(String, Value)]) -> ServiceResult<()> {
        let rows = values
            .iter()
            .map(|(k, v)| Ok((k.clone(), stored_form(k, v)?)))
            .collect::<ServiceResult<Vec<_>>>()?;
        let mut conn = self.db.conn().await?;
        conn.transaction::<_, ServiceError, _>(async |conn| {
            for (key, text) in rows {
                upsert(conn, user, &key, &text).await?;
            }
            Ok(())
        })
        .await
    }

    /// Adds `id` to the acknowledged notifications (once), in one statement.
    pub async fn acknowledge(&self, user: &UserId, id: &str) -> ServiceResult<()> {
        let mut conn = self.db.conn().await?;
        diesel::sql_query(
            "INSERT INTO user_preferences (id, user_id, preference_key, preference_value) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (user_id, preference_key) DO UPDATE SET preference_value = \
               CASE WHEN $4 = ANY (string_to_array(user_preferences.preference_value, ',')) \
                    THEN user_preferences.preference_value \
                    WHEN user_preferences.preference_value = '' THEN $4 \
                    ELSE user_preferences.preference_value || ',' || $4 END",
        )
        .bind::<diesel::sql_types::Text, _>(crate::db::models::new_id())
        .bind::<diesel::sql_types::Text, _>(user)
        .bind::<diesel::sql_types::Text, _>(ACKNOWLEDGED)
        .bind::<diesel::sql_types::Text, _>(id)
        .execute(&mut conn)
        .await?;
        Ok(())
    }
}

async fn upsert(
    conn: &mut diesel_async::AsyncPgConnection,
    user: &UserId,
    key: &str,
    text: &str,
) -> ServiceResult<()> {
    diesel::insert_into(user_preferences::table)
        .values((
            user_preferences::id.eq(crate::db::models::new_id()),
            user_preferences::user_id.eq(user),
            user_preferences::preference_key.eq(key),
            user_preferences::preference_value.eq(text),
        ))
        .on_conflict((user_preferences::user_id, user_preferences::preference_key))
        .do_update()
        .set(user_preferences::preference_value.eq(excluded(user_preferences::preference_value)))
        .execute(conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_are_checked_against_their_declaration() {
        assert_eq!(
            stored_form("walkthrough_completed", &json!(true))
                .ok()
                .as_deref(),
            Some("true")
        );
        assert_eq!(
            stored_form("notification_acknowledgments", &json!("a,b"))
                .ok()
                .as_deref(),
            Some("a,b")
        );
        assert!(stored_form("walkthrough_completed", &json!("true")).is_err());
        assert!(stored_form("notification_acknowledgments", &json!(1)).is_err());
        assert!(stored_form("theme", &json!("dark")).is_err());
        assert_eq!(typed("beta_features_enabled", "true"), json!(true));
        assert_eq!(typed("beta_features_enabled", "yes"), json!(false));
        assert_eq!(typed("legacy", "x"), json!("x"));
    }
}
