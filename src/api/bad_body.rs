//! Sentences for JSON bodies that poem-openapi rejects. Its own messages name Rust types
//! rather than fields (`Expected input type "DatabaseType", found null`) and end in a period;
//! a client needs the field and what to change.

use poem_openapi::error::{ContentTypeError, ParseRequestPayloadError};
use poem_openapi::registry::{MetaSchemaRef, Registry};
use poem_openapi::types::Type;

/// Longest piece of the client's own input quoted back.
const MAX_QUOTE: usize = 60;

/// What is wrong with a body meant to be a `P`, as one sentence ending in a period.
pub fn describe<P: Type>(err: &poem::Error) -> String {
    if let Some(problem) = err.downcast_ref::<super::strict_json::BodyProblem>() {
        return problem.sentence();
    }
    match err.downcast_ref::<ParseRequestPayloadError>() {
        Some(e) => describe_reason::<P>(&e.reason),
        None => sentence(&err.to_string()),
    }
}

/// The sentence for a body that is not sent as JSON, or `None` when `err` is about something
/// else.
pub fn content_type_problem(err: &poem::Error) -> Option<String> {
    Some(match err.downcast_ref::<ContentTypeError>()? {
        ContentTypeError::NotSupported { content_type } => format!(
            "The request body must be sent as `Content-Type: application/json`, not `{}`.",
            quote(content_type)
        ),
        ContentTypeError::ExpectContentType => {
            "The request has no `Content-Type`; send the body as `application/json`.".to_owned()
        }
    })
}

fn describe_reason<P: Type>(reason: &str) -> String {
    if let Some(field) = between(reason, "unknown field `", "`") {
        return format!("The request body has an unknown field `{}`.", quote(field));
    }
    let Some((type_name, found)) = type_mismatch(reason) else {
        // serde_json's syntax errors ("EOF while parsing a value at line 1 column 8").
        return format!("The request body is not valid JSON: {}.", trim(reason));
    };
    if type_name == P::name() {
        return if found == "null" {
            "The request body is empty.".to_owned()
        } else {
            "The request body is not a JSON object.".to_owned()
        };
    }
    let fields = fields_of_type::<P>(type_name);
    if fields.is_empty() {
        return format!(
            "A field of the request body has an invalid value {}.",
            quote(found)
        );
    }
    let fields = fields.join("` or `");
    if found == "null" {
        format!("The request body is missing the field `{fields}`.")
    } else {
        format!(
            "The field `{fields}` has an invalid value {}.",
            quote(found)
        )
    }
}

/// `(type, found)` from `Expected input type "T", found V.` (with or without the
/// `(occurred while parsing "P")` suffix).
fn type_mismatch(reason: &str) -> Option<(&str, &str)> {
    let rest = reason.strip_prefix("Expected input type \"")?;
    let (type_name, rest) = rest.split_once("\", found ")?;
    let found = rest
        .rsplit_once(". (occurred while parsing")
        .map_or_else(|| rest.strip_suffix('.').unwrap_or(rest), |(v, _)| v);
    Some((type_name, found))
}

/// Properties of `P` whose schema is the type poem-openapi named.
fn fields_of_type<P: Type>(type_name: &str) -> Vec<&'static str> {
    let mut registry = Registry::new();
    P::register(&mut registry);
    let Some(schema) = registry.schemas.get(P::name().as_ref()) else {
        return Vec::new();
    };
    schema
        .properties
        .iter()
        .filter(|(_, property)| is_type(property, type_name))
        .map(|(name, _)| *name)
        .collect()
}

/// Whether `schema` is the type poem-openapi calls `type_name`; a documented field that
/// refers to a named type is `allOf: [$ref]`.
fn is_type(schema: &MetaSchemaRef, type_name: &str) -> bool {
    match schema {
        MetaSchemaRef::Reference(name) => name == type_name,
        MetaSchemaRef::Inline(inline) => {
            inline.all_of.iter().any(|s| is_type(s, type_name))
                || (!inline.ty.is_empty() && type_name.starts_with(inline.ty))
        }
    }
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let (_, rest) = text.split_once(start)?;
    rest.split_once(end).map(|(inside, _)| inside)
}

/// At most [`MAX_QUOTE`] characters of client input.
fn quote(text: &str) -> String {
    match text.char_indices().nth(MAX_QUOTE) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

fn trim(text: &str) -> &str {
    text.trim().trim_end_matches('.')
}

fn sentence(text: &str) -> String {
    format!("{}.", trim(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_client_input_is_cut() {
        assert_eq!(quote("abc"), "abc");
        let long = "x".repeat(MAX_QUOTE + 10);
        assert_eq!(quote(&long).chars().count(), MAX_QUOTE + 1);
    }

    #[test]
    fn type_mismatches_are_split() {
        assert_eq!(
            type_mismatch(r#"Expected input type "T", found 42. (occurred while parsing "P")"#),
            Some(("T", "42"))
        );
        assert_eq!(
            type_mismatch(r#"Expected input type "P", found []."#),
            Some(("P", "[]"))
        );
        assert_eq!(type_mismatch("EOF while parsing"), None);
    }
}
