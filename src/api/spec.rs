//! Completes the OpenAPI document where poem-openapi's derives cannot express what the server
//! does, so a generated client can trust it: request bodies reject unknown fields
//! (`additionalProperties: false`), fields checked by hand carry their rules, optional fields
//! are `nullable` (they are answered as `null`, and accepted as `null`), public operations
//! say so (`security: []`), and every operation lists the statuses the middleware answers for
//! it (413 for large bodies, 500 for bugs). Keys keep poem-openapi's order, so the committed
//! file stays readable and diffs stay small.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::Value;

/// A JSON value whose objects keep their key order (serde_json's `Value` sorts them unless
/// its crate-wide `preserve_order` feature is on, which would also reorder every response).
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Node {
    Object(Vec<(String, Node)>),
    Array(Vec<Node>),
    Scalar(Value),
}

impl Node {
    pub(super) fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Object(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub(super) fn get_mut(&mut self, key: &str) -> Option<&mut Node> {
        match self {
            Node::Object(entries) => entries.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub(super) fn has(&self, key: &str) -> bool {
        matches!(self, Node::Object(entries) if entries.iter().any(|(k, _)| k == key))
    }

    /// Inserts `key` unless present, before the first key that sorts after it when `sorted`,
    /// else at the end.
    pub(super) fn insert(&mut self, key: &str, value: Node, sorted: bool) {
        if let Node::Object(entries) = self {
            if entries.iter().any(|(k, _)| k == key) {
                return;
            }
            let at = if sorted {
                entries
                    .iter()
                    .position(|(k, _)| k.as_str() > key)
                    .unwrap_or(entries.len())
            } else {
                entries.len()
            };
            entries.insert(at, (key.to_owned(), value));
        }
    }

    fn entries_mut(&mut self) -> impl Iterator<Item = &mut Node> {
        let entries = match self {
            Node::Object(entries) => entries.as_mut_slice(),
            _ => &mut [],
        };
        entries.iter_mut().map(|(_, v)| v)
    }
}

/// What the server answers beyond what the operations declare.
pub struct Completion<'a> {
    /// Schemas whose objects reject unknown fields.
    pub closed_schemas: &'a [String],
    /// Fields of a schema that are required although its type holds them as `Option`s (the
    /// operation names each missing one itself).
    pub required_fields: &'a [(&'a str, &'a [&'a str])],
    /// Largest accepted request body, for the 413 description.
    pub body_limit: usize,
    /// Rules of fields checked by hand: schema, field, and the JSON keywords to add.
    pub constraints: &'a [(&'a str, &'a str, &'a str)],
}

/// `spec` (poem-openapi's JSON) completed as the module documentation says, pretty-printed.
pub fn complete(spec: &str, completion: &Completion<'_>) -> Result<String, serde_json::Error> {
    let mut doc: Node = serde_json::from_str(spec)?;
    let bodies = request_bodies(&doc);
    if let Some(schemas) = doc.get_mut("components").and_then(|c| c.get_mut("schemas")) {
        for name in completion.closed_schemas.iter().chain(&bodies) {
            if let Some(schema) = schemas.get_mut(name) {
                schema.insert("additionalProperties", Node::Scalar(false.into()), false);
            }
        }
        for (name, fields) in completion.required_fields {
            if let Some(schema) = schemas.get_mut(name) {
                let list = fields.iter().map(|f| Node::Scalar((*f).into())).collect();
                schema.insert("required", Node::Array(list), false);
            }
        }
        for (name, field, keywords) in completion.constraints {
            let property = schemas
                .get_mut(name)
                .and_then(|s| s.get_mut("properties"))
                .and_then(|p| p.get_mut(field));
            if let (Some(property), Ok(Node::Object(keywords))) =
                (property, serde_json::from_str::<Node>(keywords))
            {
                for (key, value) in keywords {
                    property.insert(&key, value, false);
                }
            }
        }
        for schema in schemas.entries_mut() {
            mark_nullable(schema);
        }
    }
    if let Some(paths) = doc.get_mut("paths") {
        for operation in paths.entries_mut().flat_map(Node::entries_mut) {
            let takes_body = operation.has("requestBody");
            // No security requirement declared: the operation is public, and says so.
            operation.insert("security", Node::Array(Vec::new()), false);
            let Some(responses) = operation.get_mut("responses") else {
                continue;
            };
            if takes_body {
                let text = format!(
                    "The request body is larger than {} bytes (answered before the operation runs).",
                    completion.body_limit
                );
                responses.insert("413", error_response(&text), true);
            }
            responses.insert(
                "500",
                error_response(
                    "The server hit an unexpected error (a bug). Nothing about it is in the \
                     answer; the server log has it under the answer's `x-request-id`.",
                ),
                true,
            );
        }
    }
    let mut text = serde_json::to_string_pretty(&doc)?;
    text.push('\n');
    Ok(text)
}

/// Names of the schemas operations take as JSON bodies (all of ours refuse unknown fields).
fn request_bodies(doc: &Node) -> Vec<String> {
    let mut names = Vec::new();
    let Some(Node::Object(paths)) = doc.get("paths") else {
        return names;
    };
    for (_, path) in paths {
        let Node::Object(operations) = path else {
            continue;
        };
        for (_, operation) in operations {
            let Some(Node::Object(content)) =
                operation.get("requestBody").and_then(|b| b.get("content"))
            else {
                continue;
            };
            for (_, media) in content {
                if let Some(Node::Scalar(Value::String(reference))) =
                    media.get("schema").and_then(|s| s.get("$ref"))
                {
                    if let Some(name) = reference.strip_prefix("#/components/schemas/") {
                        names.push(name.to_owned());
                    }
                }
            }
        }
    }
    names
}

/// Marks every property outside `required` as `nullable` (answered or accepted as `null`); a
/// bare `$ref` becomes `allOf: [$ref]`, since OpenAPI 3.0 ignores keywords beside `$ref`.
fn mark_nullable(schema: &mut Node) {
    let required: Vec<String> = match schema.get("required") {
        Some(Node::Array(items)) => items
            .iter()
            .filter_map(|i| match i {
                Node::Scalar(Value::String(s)) => Some(s.clone()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let Some(Node::Object(properties)) = schema.get_mut("properties") else {
        return;
    };
    for (name, property) in properties.iter_mut() {
        if required.contains(name) {
            continue;
        }
        if let Node::Object(entries) = property {
            if entries.len() == 1 && entries[0].0 == "$ref" {
                let reference = entries.remove(0);
                entries.push((
                    "allOf".to_owned(),
                    Node::Array(vec![Node::Object(vec![reference])]),
                ));
            }
        }
        property.insert("nullable", Node::Scalar(true.into()), false);
    }
}

fn error_response(description: &str) -> Node {
    let object = |key: &str, value: Node| Node::Object(vec![(key.to_owned(), value)]);
    let schema = object(
        "schema",
        object(
            "$ref",
            Node::Scalar("#/components/schemas/ErrorBody".into()),
        ),
    );
    Node::Object(vec![
        ("description".to_owned(), Node::Scalar(description.into())),
        (
            "content".to_owned(),
            object("application/json; charset=utf-8", schema),
        ),
    ])
}

impl Serialize for Node {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Node::Object(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
            Node::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Node::Scalar(value) => value.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Scalar(v.into()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Scalar(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Scalar(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Scalar(v.into()))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Scalar(v.into()))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Scalar(Value::Null))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, Node>()? {
            entries.push((k, v));
        }
        Ok(Node::Object(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = r#"{"paths":{"/a":{"post":{"requestBody":{},"responses":{"200":{},"400":{},"503":{}}},
        "get":{"responses":{"200":{},"500":{"description":"own"}}}}},
        "components":{"schemas":{"Closed":{"type":"object","z":1,"a":2},"Open":{"type":"object"}}}}"#;

    fn completed() -> Value {
        let text = complete(
            SPEC,
            &Completion {
                closed_schemas: &["Closed".to_owned()],
                required_fields: &[],
                body_limit: 10,
                constraints: &[("Open", "name", r#"{"minLength":3}"#)],
            },
        )
        .expect("completes");
        serde_json::from_str(&text).expect("JSON")
    }

    #[test]
    fn optional_fields_are_nullable_public_operations_say_so_and_rules_are_added() {
        let text = complete(
            r##"{"paths":{"/a":{"post":{"requestBody":{"content":{"application/json":{"schema":{"$ref":"#/components/schemas/Body"}}}},"responses":{}},
                "get":{"security":[{"Cookie":[]}],"responses":{}}}},
              "components":{"schemas":{"Body":{"type":"object","required":["a"],
                "properties":{"a":{"type":"string"},"b":{"type":"string"},"c":{"$ref":"#/components/schemas/X"}}}}}}"##,
            &Completion {
                closed_schemas: &[],
                required_fields: &[],
                body_limit: 10,
                constraints: &[("Body", "a", r#"{"minLength":1,"pattern":"^x$"}"#)],
            },
        )
        .expect("completes");
        let spec: Value = serde_json::from_str(&text).expect("JSON");
        let body = &spec["components"]["schemas"]["Body"];
        assert_eq!(
            body["additionalProperties"], false,
            "a request body is closed"
        );
        assert!(body["properties"]["a"].get("nullable").is_none());
        assert_eq!(body["properties"]["a"]["minLength"], 1);
        assert_eq!(body["properties"]["a"]["pattern"], "^x$");
        assert_eq!(body["properties"]["b"]["nullable"], true);
        assert_eq!(
            body["properties"]["c"]["allOf"][0]["$ref"],
            "#/components/schemas/X"
        );
        assert_eq!(body["properties"]["c"]["nullable"], true);
        assert_eq!(
            spec["paths"]["/a"]["post"]["security"],
            serde_json::json!([])
        );
        assert_eq!(
            spec["paths"]["/a"]["get"]["security"][0]["Cookie"],
            serde_json::json!([])
        );
    }

    #[test]
    fn closed_schemas_say_so_and_open_ones_do_not() {
        let spec = completed();
        let schemas = &spec["components"]["schemas"];
        assert_eq!(schemas["Closed"]["additionalProperties"], false);
        assert!(schemas["Open"].get("additionalProperties").is_none());
    }

    #[test]
    fn body_operations_declare_413_and_all_declare_500_keeping_their_own() {
        let spec = completed();
        let post = &spec["paths"]["/a"]["post"]["responses"];
        assert!(post["413"]["description"]
            .as_str()
            .is_some_and(|d| d.contains("10 bytes")));
        assert!(post["500"].is_object());
        let get = &spec["paths"]["/a"]["get"]["responses"];
        assert!(get.get("413").is_none());
        assert_eq!(get["500"]["description"], "own");
    }

    #[test]
    fn key_order_is_kept_and_codes_are_inserted_in_order() {
        let text = complete(
            SPEC,
            &Completion {
                closed_schemas: &["Closed".to_owned()],
                required_fields: &[],
                body_limit: 10,
                constraints: &[("Open", "name", r#"{"minLength":3}"#)],
            },
        )
        .expect("completes");
        let post_codes: Vec<usize> = ["\"200\"", "\"400\"", "\"413\"", "\"500\"", "\"503\""]
            .iter()
            .map(|c| text.find(c).expect("code present"))
            .collect();
        assert!(post_codes.windows(2).all(|w| w[0] < w[1]), "{text}");
        let z = text.find("\"z\"").expect("z");
        let a = text.find("\"a\": 2").expect("a");
        assert!(z < a, "poem-openapi's key order is kept: {text}");
    }
}
