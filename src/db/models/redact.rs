//! `Debug` that hides secrets. Rows are logged and end up in panic messages and test output;
//! password hashes, PKCE verifiers, client secrets, token hashes and the environment and
//! headers of installations must not travel with them. One helper for every row type,
//! instead of a hand-written `Debug` per struct that a new field could silently bypass.

use std::fmt;

/// What a hidden value prints as.
pub const REDACTED: &str = "<redacted>";

/// A secret field for `Debug`: shows whether a value is there, never what it is.
pub struct Redacted<'a, T>(pub &'a T);

impl<T> fmt::Debug for Redacted<'_, Option<T>> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(_) => write!(f, "Some({REDACTED})"),
            None => f.write_str("None"),
        }
    }
}

impl fmt::Debug for Redacted<'_, String> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// Implements `Debug` for a struct, printing its fields in the order given and fields
/// marked `#[redact]` through [`Redacted`]. The struct is destructured without `..`, so a
/// new field that is not listed here is a compile error rather than a silent gap.
///
/// ```ignore
/// debug_redacting!(User { id, email, #[redact] hashed_password });
/// ```
macro_rules! debug_redacting {
    (@value redact $field:ident) => { $crate::db::models::redact::Redacted($field) };
    (@value $field:ident) => { $field };
    ($ty:ident { $($(#[$redact:ident])? $field:ident),+ $(,)? }) => {
        impl ::std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                let $ty { $($field),+ } = self;
                f.debug_struct(stringify!($ty))
                    $(.field(
                        stringify!($field),
                        &$crate::db::models::redact::debug_redacting!(@value $($redact)? $field),
                    ))+
                    .finish()
            }
        }
    };
}
pub(crate) use debug_redacting;

#[cfg(test)]
mod tests {
    use super::Redacted;

    #[test]
    fn shows_presence_but_never_the_value() {
        let present = Some("hunter2".to_owned());
        assert_eq!(format!("{:?}", Redacted(&present)), "Some(<redacted>)");
        assert_eq!(format!("{:?}", Redacted(&None::<String>)), "None");
        assert_eq!(
            format!("{:?}", Redacted(&"hunter2".to_owned())),
            "<redacted>"
        );
    }
}
