//! `StrictJson<T>`: a JSON request body held to its documented schema. poem-openapi's `Json`
//! turns a number or boolean into a string where a string is declared (`{"username":123}`
//! registered `"123"`), and serde_json keeps the last of two equal keys (so a proxy or a
//! logger that reads the first sees another request than we do). Here a body with a key
//! twice, or a value of another JSON type than its schema says, is refused naming the field;
//! the document is the same as `Json<T>`'s.

use std::collections::HashSet;
use std::fmt;

use poem::http::StatusCode;
use poem::{FromRequest, Request, RequestBody, Result};
use poem_openapi::payload::{ParsePayload, Payload};
use poem_openapi::registry::{MetaSchema, MetaSchemaRef, Registry};
use poem_openapi::types::{ParseFromJSON, Type};
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// A JSON body checked against `T`'s schema before `T` is built from it.
pub struct StrictJson<T>(pub T);

/// Why a body was refused: the field (a path such as `settings[0].key`; `None` for the
/// body itself) and what is wrong, as words for the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct BodyProblem {
    /// The field, when the problem is one field's.
    pub field: Option<String>,
    /// What is wrong with it (`must be a string, not a number`).
    pub message: String,
}

impl BodyProblem {
    fn at(path: &str, message: String) -> Self {
        Self {
            field: (!path.is_empty()).then(|| path.to_owned()),
            message,
        }
    }

    /// One sentence for an `{error, message}` body.
    pub fn sentence(&self) -> String {
        match &self.field {
            Some(field) => format!("The field `{field}` {}.", self.message),
            None => format!("The request body {}.", self.message),
        }
    }
}

impl<T: Type> Payload for StrictJson<T> {
    const CONTENT_TYPE: &'static str = "application/json; charset=utf-8";

    fn check_content_type(content_type: &str) -> bool {
        <poem_openapi::payload::Json<T> as Payload>::check_content_type(content_type)
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: ParseFromJSON> ParsePayload for StrictJson<T> {
    const IS_REQUIRED: bool = T::IS_REQUIRED;

    async fn from_request(request: &Request, body: &mut RequestBody) -> Result<Self> {
        let data = Vec::<u8>::from_request(request, body).await?;
        let value =
            checked::<T>(&data).map_err(|p| poem::Error::new(p, StatusCode::BAD_REQUEST))?;
        // Anything left (lengths, enums, unknown fields) is poem-openapi's to say.
        let parsed = T::parse_from_json(Some(value)).map_err(|err| {
            poem_openapi::error::ParseRequestPayloadError {
                reason: err.into_message(),
            }
        })?;
        Ok(Self(parsed))
    }
}

poem_openapi::impl_apirequest_for_payload!(StrictJson<T>, T: ParseFromJSON);

/// `data` as JSON, with no key twice in an object and every value of its schema's type.
fn checked<T: Type>(data: &[u8]) -> Result<Value, BodyProblem> {
    if data.is_empty() {
        return Ok(Value::Null);
    }
    let mut de = serde_json::Deserializer::from_slice(data);
    let value = UniqueKeys {
        path: String::new(),
    }
    .deserialize(&mut de)
    .and_then(|v| de.end().map(|()| v))
    .map_err(|e| match e.classify() {
        serde_json::error::Category::Data => syntax_or_duplicate(&e),
        _ => BodyProblem::at("", format!("is not valid JSON: {e}")),
    })?;
    let mut registry = Registry::new();
    T::register(&mut registry);
    check(&value, &T::schema_ref(), &registry, "")?;
    Ok(value)
}

/// A duplicate key arrives as a custom error: `DUPLICATE` then the field's path.
fn syntax_or_duplicate(e: &serde_json::Error) -> BodyProblem {
    let text = e.to_string();
    match text
        .strip_prefix(DUPLICATE)
        .and_then(|rest| rest.split_once(DUPLICATE_END))
    {
        Some((path, _)) => BodyProblem::at(path, "is given more than once".into()),
        None => BodyProblem::at("", format!("is not valid JSON: {text}")),
    }
}

const DUPLICATE: &str = "duplicate key: ";
const DUPLICATE_END: &str = " |";

/// Builds a [`Value`] like serde_json does, refusing an object that names a key twice.
struct UniqueKeys {
    path: String,
}

impl<'de> DeserializeSeed<'de> for UniqueKeys {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for UniqueKeys {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        loop {
            let path = format!("{}[{}]", self.path, items.len());
            match seq.next_element_seed(UniqueKeys { path })? {
                Some(item) => items.push(item),
                None => return Ok(Value::Array(items)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = join(&self.path, &key);
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(format!(
                    "{DUPLICATE}{path}{DUPLICATE_END}"
                )));
            }
            let value = map.next_value_seed(UniqueKeys { path })?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// Checks that `value` has the JSON type `schema` declares, in depth.
fn check(
    value: &Value,
    schema: &MetaSchemaRef,
    registry: &Registry,
    path: &str,
) -> Result<(), BodyProblem> {
    let Some(schema) = resolve(schema, registry) else {
        return Ok(());
    };
    for part in &schema.all_of {
        check(value, part, registry, path)?;
    }
    let fits = match schema.ty {
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        _ => true,
    };
    if !fits {
        let message = if path.is_empty() && schema.ty == "object" {
            "is not a JSON object".to_owned()
        } else {
            format!("must be {}, not {}", article(schema.ty), kind(value))
        };
        return Err(BodyProblem::at(path, message));
    }
    match value {
        Value::Object(object) => {
            for (name, property) in &schema.properties {
                let Some(field) = object.get(*name) else {
                    continue;
                };
                // An optional field sent as null is absent; a required one is named later.
                if field.is_null() {
                    continue;
                }
                check(field, property, registry, &join(path, name))?;
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = &schema.items {
                for (i, item) in items.iter().enumerate() {
                    check(item, item_schema, registry, &format!("{path}[{i}]"))?;
                }
            }
        }
        _ => {}
    }
    Ok(())
}

fn resolve<'r>(schema: &'r MetaSchemaRef, registry: &'r Registry) -> Option<&'r MetaSchema> {
    match schema {
        MetaSchemaRef::Inline(inline) => Some(inline),
        MetaSchemaRef::Reference(name) => registry.schemas.get(name),
    }
}

fn article(ty: &str) -> String {
    match ty {
        "integer" | "array" | "object" => format!("an {}", noun(ty)),
        _ => format!("a {}", noun(ty)),
    }
}

fn noun(ty: &str) -> &str {
    match ty {
        "object" => "object",
        "array" => "array",
        other => other,
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a number",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use poem_openapi::Object;

    #[derive(Object)]
    struct Item {
        key: Option<String>,
        count: Option<i64>,
    }

    #[derive(Object)]
    struct Outer {
        name: Option<String>,
        on: Option<bool>,
        items: Option<Vec<Item>>,
        any: Option<Value>,
    }

    fn problem(body: &str) -> Option<BodyProblem> {
        checked::<Outer>(body.as_bytes()).err()
    }

    #[test]
    fn values_must_have_their_declared_type() {
        assert_eq!(problem(r#"{"name":"x","on":true,"any":[1]}"#), None);
        assert_eq!(problem(r#"{"name":null}"#), None);
        let p = problem(r#"{"name":123}"#).expect("a number for a string");
        assert_eq!(
            p.sentence(),
            "The field `name` must be a string, not an integer."
        );
        let p = problem(r#"{"on":"true"}"#).expect("a string for a boolean");
        assert_eq!(p.field.as_deref(), Some("on"));
        let p = problem(r#"{"items":[{"key":"a"},{"key":"b","count":1.5}]}"#).expect("nested");
        assert_eq!(
            p.sentence(),
            "The field `items[1].count` must be an integer, not a number."
        );
        let p = problem("[1]").expect("not an object");
        assert_eq!(p.sentence(), "The request body is not a JSON object.");
        assert_eq!(checked::<Outer>(b"").ok(), Some(Value::Null));
    }

    #[test]
    fn a_key_given_twice_is_refused_where_it_is() {
        let p = problem(r#"{"name":"a","name":"b"}"#).expect("duplicate");
        assert_eq!(p.sentence(), "The field `name` is given more than once.");
        let p = problem(r#"{"items":[{"key":"a","key":"a"}]}"#).expect("nested duplicate");
        assert_eq!(p.field.as_deref(), Some("items[0].key"));
        // The same key in two objects is fine.
        assert_eq!(problem(r#"{"items":[{"key":"a"},{"key":"a"}]}"#), None);
        let p = problem(r#"{"name":"a""#).expect("truncated");
        assert!(
            p.sentence()
                .starts_with("The request body is not valid JSON"),
            "{p:?}"
        );
        assert!(
            problem(r#"{"name":"a"} x"#).is_some(),
            "trailing characters"
        );
    }
}
