//! Joins the plugins' operations to the core's OpenAPI document: their paths, their schemas
//! and their tags. A path served twice, or a schema name meaning two different things, is an
//! error naming the plugin, so the published document never silently loses an operation.

use super::spec::Node;

/// Why a plugin's operations cannot join the document.
#[derive(Debug, thiserror::Error)]
#[error("plugin {plugin}: {detail}")]
pub struct MergeError {
    /// Plugin id.
    pub plugin: String,
    /// What clashes.
    pub detail: String,
}

/// `base` (poem-openapi's JSON of the core) with each `(plugin id, document)` of `extras`
/// joined in; compact JSON, keys in their original order.
pub fn merge(base: &str, extras: &[(String, &str)]) -> Result<String, MergeError> {
    let fail = |plugin: &str, detail: String| MergeError {
        plugin: plugin.to_owned(),
        detail,
    };
    let mut doc: Node = serde_json::from_str(base)
        .map_err(|e| fail("core", format!("unreadable document: {e}")))?;
    for (plugin, spec) in extras {
        let extra: Node = serde_json::from_str(spec)
            .map_err(|e| fail(plugin, format!("unreadable document: {e}")))?;
        doc.insert("paths", Node::Object(Vec::new()), false);
        if let (Some(Node::Object(paths)), Some(target)) =
            (extra.get("paths"), doc.get_mut("paths"))
        {
            for (path, item) in paths {
                if target.has(path) {
                    return Err(fail(plugin, format!("the path {path} is served already")));
                }
                target.insert(path, item.clone(), false);
            }
        }
        if let Some(Node::Object(schemas)) = extra.get("components").and_then(|c| c.get("schemas"))
        {
            doc.insert("components", Node::Object(Vec::new()), false);
            let components = doc
                .get_mut("components")
                .ok_or_else(|| fail(plugin, "no components".into()))?;
            components.insert("schemas", Node::Object(Vec::new()), false);
            let target = components
                .get_mut("schemas")
                .ok_or_else(|| fail(plugin, "no schemas".into()))?;
            for (name, schema) in schemas {
                match target.get(name) {
                    Some(existing) if existing == schema => {}
                    Some(_) => {
                        return Err(fail(
                            plugin,
                            format!("its schema {name} differs from another schema of that name; rename its type"),
                        ))
                    }
                    None => target.insert(name, schema.clone(), true),
                }
            }
        }
        if let Some(Node::Array(tags)) = extra.get("tags") {
            doc.insert("tags", Node::Array(Vec::new()), false);
            if let Some(Node::Array(target)) = doc.get_mut("tags") {
                for tag in tags {
                    let name = tag.get("name");
                    if !target.iter().any(|t| t.get("name") == name) {
                        target.push(tag.clone());
                    }
                }
            }
        }
    }
    serde_json::to_string(&doc).map_err(|e| fail("core", e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"{"openapi":"3.0.0","tags":[{"name":"Database"}],"paths":{"/api/db/status":{"get":{}}},"components":{"schemas":{"ErrorBody":{"type":"object"}}}}"#;

    #[test]
    fn joins_paths_schemas_and_tags() {
        let plugin = r#"{"tags":[{"name":"Notes"},{"name":"Database"}],"paths":{"/api/plugin/notes/notes":{"get":{}}},"components":{"schemas":{"ErrorBody":{"type":"object"},"Note":{"type":"object"}}}}"#;
        let merged = merge(BASE, &[("notes".into(), plugin)]).expect("merged");
        let value: serde_json::Value = serde_json::from_str(&merged).expect("json");
        assert!(value["paths"]["/api/plugin/notes/notes"].is_object());
        assert!(value["paths"]["/api/db/status"].is_object());
        assert!(value["components"]["schemas"]["Note"].is_object());
        assert_eq!(value["tags"].as_array().map(Vec::len), Some(2));
        assert!(
            merged.find("\"openapi\"") < merged.find("\"tags\""),
            "order kept"
        );
    }

    #[test]
    fn refuses_clashes() {
        let same_path = r#"{"paths":{"/api/db/status":{"get":{}}}}"#;
        let e = merge(BASE, &[("x".into(), same_path)]).expect_err("clash");
        assert!(e.to_string().contains("/api/db/status"), "{e}");
        let other_schema = r#"{"components":{"schemas":{"ErrorBody":{"type":"string"}}}}"#;
        let e = merge(BASE, &[("x".into(), other_schema)]).expect_err("clash");
        assert!(e.to_string().contains("ErrorBody"), "{e}");
    }
}
