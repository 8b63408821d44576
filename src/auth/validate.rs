//! The registration and sign-in bodies' rules (upstream's JSON schema, checked here so each
//! problem names its field in one answer).

use poem_openapi::Object;

/// One field's problem.
#[derive(Debug, Clone, PartialEq, Eq, Object, serde::Serialize, serde::Deserialize)]
pub struct FieldProblem {
    /// The field (`username`, `email`, ...).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl FieldProblem {
    fn new(field: &str, message: &str) -> Self {
        Self {
            field: field.to_owned(),
            message: message.to_owned(),
        }
    }
}

/// Password length limits (upstream's 8 to 128).
pub struct PasswordRules;

impl PasswordRules {
    /// Shortest password.
    pub const MIN: usize = 8;
    /// Longest password.
    pub const MAX: usize = 128;

    /// The problem with `password`, if any.
    pub fn check(password: &str) -> Option<FieldProblem> {
        let n = password.chars().count();
        (!(Self::MIN..=Self::MAX).contains(&n))
            .then(|| FieldProblem::new("password", "must be 8 to 128 characters"))
    }
}

/// `field is required` for each of `fields` that is `None`.
pub fn required(fields: &[(&str, bool)]) -> Vec<FieldProblem> {
    fields
        .iter()
        .filter(|(_, present)| !present)
        .map(|(field, _)| FieldProblem::new(field, "is required"))
        .collect()
}

/// Problems of a registration; empty when it may proceed.
pub fn registration(
    username: &str,
    email: &str,
    password: &str,
    first_name: Option<&str>,
    last_name: Option<&str>,
) -> Vec<FieldProblem> {
    let mut problems = Vec::new();
    if !crate::services::user_admin::valid_username(username) {
        problems.push(FieldProblem::new(
            "username",
            "must be 3 to 30 characters of a-z, A-Z, 0-9, _, . and -",
        ));
    }
    if !is_email(email) {
        problems.push(FieldProblem::new(
            "email",
            "must be an email address (name@example.com), at most 255 characters",
        ));
    }
    problems.extend(PasswordRules::check(password));
    for (field, value) in [("first_name", first_name), ("last_name", last_name)] {
        if value.is_some_and(|v| v.chars().count() > 100) {
            problems.push(FieldProblem::new(field, "must be at most 100 characters"));
        } else if value.is_some_and(|v| v.contains('\0')) {
            // PostgreSQL's text cannot hold one.
            problems.push(FieldProblem::new(field, "cannot hold a NUL character"));
        }
    }
    problems
}

/// Problems of a sign-in body.
pub fn login(login: &str, password: &str) -> Vec<FieldProblem> {
    let mut problems = Vec::new();
    // No email address or username holds a NUL character (nor could PostgreSQL store one).
    if login.is_empty() || login.chars().count() > 255 || login.contains('\0') {
        problems.push(FieldProblem::new(
            "login",
            "must be your email address or username",
        ));
    }
    if password.is_empty() || password.chars().count() > PasswordRules::MAX {
        problems.push(FieldProblem::new("password", "must be 1 to 128 characters"));
    }
    problems
}

/// Ajv's `email` format (what upstream's schema checks): a dot-atom local part, `@`, and a
/// host name of labels of letters, digits and inner hyphens.
pub fn is_email(text: &str) -> bool {
    const LOCAL_SPECIALS: &[u8] = b"!#$%&'*+/=?^_`{|}~-";
    if text.len() > 255 {
        return false;
    }
    let Some((local, domain)) = text.split_once('@') else {
        return false;
    };
    let atom = |a: &str| {
        !a.is_empty()
            && a.bytes()
                .all(|b| b.is_ascii_alphanumeric() || LOCAL_SPECIALS.contains(&b))
    };
    let label = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    local.split('.').all(atom) && domain.contains('.') && domain.split('.').all(label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_broken_field_is_named() {
        assert!(registration("ann_1", "ann@example.com", "12345678", None, None).is_empty());
        let long = "x".repeat(101);
        let problems = registration("a b", "ann@", "short", Some(&long), Some("ok"));
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["username", "email", "password", "first_name"]);
        assert_eq!(
            registration(&"a".repeat(31), "a@b.co", "12345678", None, None).len(),
            1
        );
        assert!(registration("a.b-c_d", "a@b.co", "12345678", None, None).is_empty());
        assert!(registration("abc", "a@b.co", &"é".repeat(128), None, None).is_empty());
        let nul = registration("abc", "a@b.co", "12345678", None, Some("a\0b"));
        assert_eq!(
            nul,
            [FieldProblem::new(
                "last_name",
                "cannot hold a NUL character"
            )]
        );
        assert_eq!(login("ann\0", "12345678").len(), 1);
        assert_eq!(
            registration("abc", "a@b.co", &"é".repeat(129), None, None).len(),
            1
        );
        assert_eq!(login("", "").len(), 2);
    }

    #[test]
    fn email_follows_ajvs_format() {
        for good in ["a@b.co", "first.last+tag@sub.example.org", "x_y@a-b.io"] {
            assert!(is_email(good), "{good}");
        }
        for bad in [
            "",
            "a",
            "a@b",
            "@b.co",
            "a@.co",
            "a..b@c.co",
            "a@b-.co",
            "a b@c.co",
            "a@b@c.co",
        ] {
            assert!(!is_email(bad), "{bad}");
        }
    }
}
