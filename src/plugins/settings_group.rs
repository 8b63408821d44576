//! A plugin's settings as a settings group named after its id: keys inside the plugin's
//! namespace, colliding with no core setting or group, defaults that fit their types.

use std::collections::HashSet;

use super::catalog::registration;
use super::error::PluginError;
use super::id::PluginId;
use super::plugin::PluginSetting;
use crate::settings::definition::{is_valid_key, SettingDefinition, SettingsGroup};
use crate::settings::groups;

/// Position of plugin groups after the core's.
const FIRST_SORT_ORDER: i32 = 1000;

/// The plugin's settings as a group named after its id; keys start with `<id>.` and collide
/// with no core setting or group. The definitions live as long as the process, as the core's
/// static ones do, so they are leaked once per load.
pub(super) fn build(
    id: &PluginId,
    plugin_name: &str,
    settings: Vec<PluginSetting>,
    index: usize,
) -> Result<Option<&'static SettingsGroup>, PluginError> {
    if settings.is_empty() {
        return Ok(None);
    }
    if groups::ALL.iter().any(|g| g.id == id.as_str()) {
        return Err(registration(
            id,
            format!(
                "its settings group {:?} is a core settings group; choose another plugin id",
                id.as_str()
            ),
        ));
    }
    let namespace = format!("{id}.");
    let mut keys = HashSet::new();
    let mut definitions = Vec::with_capacity(settings.len());
    for s in settings {
        if !s.key.starts_with(&namespace) || !is_valid_key(&s.key) || s.key.len() == namespace.len()
        {
            return Err(registration(
                id,
                format!(
                    "setting key {:?} must start with {namespace:?} and hold only letters, digits, '.', '_' and '-'",
                    s.key
                ),
            ));
        }
        if groups::find(&s.key).is_some() {
            return Err(registration(
                id,
                format!("setting key {:?} is a core setting", s.key),
            ));
        }
        if !keys.insert(s.key.clone()) {
            return Err(registration(
                id,
                format!("setting key {:?} is declared twice", s.key),
            ));
        }
        if let Err(why) = s.kind.normalize(&s.default) {
            return Err(registration(
                id,
                format!("setting {:?}: its default {why}", s.key),
            ));
        }
        definitions.push(SettingDefinition {
            key: leak(s.key),
            name: leak(s.name),
            kind: s.kind,
            default: leak(s.default),
            description: leak(s.description),
            encrypted: s.encrypted,
            required: s.required,
        });
    }
    let group = SettingsGroup {
        id: leak(id.to_string()),
        name: leak(plugin_name.to_owned()),
        description: leak(format!("Settings of the {plugin_name} plugin.")),
        icon: "puzzle",
        sort_order: FIRST_SORT_ORDER + index as i32,
        settings: Box::leak(definitions.into_boxed_slice()),
    };
    Ok(Some(Box::leak(Box::new(group))))
}

fn leak(text: String) -> &'static str {
    Box::leak(text.into_boxed_str())
}
