//! Completes the OpenAPI document where poem-openapi's derives cannot express what the server
//! does: objects that reject unknown fields (`additionalProperties: false`) and the statuses
//! the middleware answers for every operation (413 for large bodies, 500 for bugs). Keys keep
//! poem-openapi's order, so the committed file stays readable and diffs stay small.

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
}

/// `spec` (poem-openapi's JSON) completed as the module documentation says, pretty-printed.
pub fn complete(spec: &str, completion: &Completion<'_>) -> Result<String, serde_json::Error> {
    let mut doc: Node = serde_json::from_str(spec)?;
    if let Some(schemas) = doc.get_mut("components").and_then(|c| c.get_mut("schemas")) {
        for name in completion.closed_schemas {
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
    }
    if let Some(paths) = doc.get_mut("paths") {
        for operation in paths.entries_mut().flat_map(Node::entries_mut) {
            let takes_body = operation.has("requestBody");
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
            },
        )
        .expect("completes");
        serde_json::from_str(&text).expect("JSON")
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
