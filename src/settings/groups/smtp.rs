//! `smtp`: outgoing mail.

use crate::settings::definition::{setting, SettingType::*, SettingsGroup};

/// The group.
pub const GROUP: SettingsGroup = SettingsGroup {
    id: "smtp",
    name: "SMTP Mail Settings",
    description: "Server and account used to send email",
    icon: "mail",
    sort_order: 1,
    settings: &[
        setting(
            "smtp.enabled",
            "Enable SMTP",
            Boolean,
            "false",
            "Send email through the SMTP server below",
        ),
        setting(
            "smtp.host",
            "SMTP host",
            String,
            "",
            "Host name of the SMTP server",
        )
        .required(),
        setting(
            "smtp.port",
            "SMTP port",
            Number,
            "587",
            "Port of the SMTP server",
        )
        .required(),
        setting(
            "smtp.username",
            "SMTP username",
            String,
            "",
            "Account to authenticate with",
        )
        .required(),
        setting(
            "smtp.password",
            "SMTP password",
            String,
            "",
            "Password of the account",
        )
        .encrypted()
        .required(),
        setting(
            "smtp.secure",
            "Use TLS",
            Boolean,
            "true",
            "Connect with TLS",
        ),
        setting(
            "smtp.from_name",
            "Sender name",
            String,
            "DeployStack",
            "Name shown as the sender",
        ),
        setting(
            "smtp.from_email",
            "Sender email",
            String,
            "",
            "Address shown as the sender",
        ),
    ],
};
