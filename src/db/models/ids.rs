//! Typed ids, so a team id cannot be passed where a user id is expected, and text-backed
//! enums for the closed sets the database also enforces with CHECK constraints.

use rand::Rng;

/// Alphabet of upstream's nanoid ids (URL-safe).
const ID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
/// Length of generated ids (nanoid's default: ~126 bits of randomness).
const ID_LENGTH: usize = 21;

/// A new random id in upstream's format.
pub fn new_id() -> String {
    let mut rng = rand::rng();
    (0..ID_LENGTH)
        .map(|_| char::from(ID_ALPHABET[rng.random_range(0..ID_ALPHABET.len())]))
        .collect()
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord,
            diesel_derive_newtype::DieselNewType, serde::Serialize, serde::Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// A new random id.
            pub fn generate() -> Self {
                Self(new_id())
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }
    };
}

id_type!(
    /// Id of a row of `users`.
    UserId
);
id_type!(
    /// Id of a row of `roles` (`global_admin`, `global_user`, `team_admin`, `team_user`).
    RoleId
);
id_type!(
    /// Id of a row of `teams`.
    TeamId
);
id_type!(
    /// Id of a row of `team_memberships`.
    MembershipId
);
id_type!(
    /// Id of a row of `mcp_servers`.
    McpServerId
);
id_type!(
    /// Id of a row of `mcp_server_installations`.
    InstallationId
);
id_type!(
    /// Id of a row of `oauth_access_tokens` or `oauth_refresh_tokens`.
    TokenId
);

/// Maps a Rust enum to the text values a CHECK constraint allows.
macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash,
            diesel::expression::AsExpression, diesel::deserialize::FromSqlRow, serde::Serialize, serde::Deserialize,
        )]
        #[diesel(sql_type = diesel::sql_types::Text)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// The value stored in the database.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok(Self::$variant),)+
                    other => Err(format!("unknown {} {other:?}", stringify!($name))),
                }
            }
        }

        impl diesel::serialize::ToSql<diesel::sql_types::Text, diesel::pg::Pg> for $name {
            fn to_sql<'b>(
                &'b self,
                out: &mut diesel::serialize::Output<'b, '_, diesel::pg::Pg>,
            ) -> diesel::serialize::Result {
                <str as diesel::serialize::ToSql<diesel::sql_types::Text, diesel::pg::Pg>>::to_sql(
                    self.as_str(),
                    &mut out.reborrow(),
                )
            }
        }

        impl diesel::deserialize::FromSql<diesel::sql_types::Text, diesel::pg::Pg> for $name {
            fn from_sql(bytes: diesel::pg::PgValue<'_>) -> diesel::deserialize::Result<Self> {
                let text = <String as diesel::deserialize::FromSql<diesel::sql_types::Text, diesel::pg::Pg>>::from_sql(bytes)?;
                text.parse().map_err(Into::into)
            }
        }
    };
}

text_enum!(
    /// How a user signs in.
    AuthType {
        /// Email and password.
        EmailSignup => "email_signup",
        /// GitHub OAuth.
        Github => "github",
    }
);

text_enum!(
    /// A user's role within one team.
    TeamRole {
        /// Manages the team, its members and installations.
        Admin => "team_admin",
        /// Uses what the team has installed.
        User => "team_user",
    }
);

text_enum!(
    /// A user's installation-wide role (`users.role_id`).
    GlobalRole {
        /// Full access.
        Admin => "global_admin",
        /// A regular user.
        User => "global_user",
    }
);

impl From<GlobalRole> for RoleId {
    fn from(role: GlobalRole) -> Self {
        RoleId(role.as_str().to_owned())
    }
}

impl From<TeamRole> for RoleId {
    fn from(role: TeamRole) -> Self {
        RoleId(role.as_str().to_owned())
    }
}
