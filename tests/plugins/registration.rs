//! What the core refuses when plugins are loaded, before any database work: invalid or
//! duplicate ids, settings outside the namespace or colliding with the core, job types of
//! another namespace, routes outside the prefix, clashing versions, bad folder plugins.

use std::sync::Arc;

use deploystack_backend::db::Database;
use deploystack_backend::jobs::{Job, JobContext, JobError, Registry};
use deploystack_backend::plugins::{
    Plugin, PluginCatalog, PluginContext, PluginMigration, PluginRoutes, PluginSetting,
};
use deploystack_backend::settings::SettingType;
use poem_openapi::payload::PlainText;
use poem_openapi::OpenApi;

/// A configurable test plugin.
#[derive(Clone, Default)]
struct Probe {
    id: &'static str,
    settings: Vec<&'static str>,
    versions: Vec<i64>,
    job: bool,
    route: bool,
}

struct StrayJob;

impl Job for StrayJob {
    const TYPE: &'static str = "cleanup_old_jobs";
    type Payload = serde_json::Value;
    type Output = ();

    async fn run(&self, _: serde_json::Value, _: JobContext) -> Result<(), JobError> {
        Ok(())
    }
}

struct StrayApi;

#[OpenApi]
impl StrayApi {
    #[oai(path = "/api/users", method = "get")]
    async fn users(&self) -> PlainText<String> {
        PlainText(String::new())
    }
}

impl Plugin for Probe {
    fn id(&self) -> &str {
        self.id
    }
    fn name(&self) -> &str {
        "Probe"
    }
    fn version(&self) -> &str {
        "0"
    }
    fn migrations(&self) -> Vec<PluginMigration> {
        self.versions
            .iter()
            .map(|v| PluginMigration::new(*v, "m", "CREATE TABLE t (a int)"))
            .collect()
    }
    fn settings(&self) -> Vec<PluginSetting> {
        self.settings
            .iter()
            .map(|key| PluginSetting {
                key: (*key).into(),
                name: "x".into(),
                kind: SettingType::String,
                default: String::new(),
                description: "x".into(),
                encrypted: false,
                required: false,
            })
            .collect()
    }
    fn register_jobs(&self, _ctx: &PluginContext, jobs: &mut Registry) {
        if self.job {
            jobs.register(StrayJob);
        }
    }
    fn routes(&self, _ctx: &PluginContext) -> Option<PluginRoutes> {
        self.route.then(|| PluginRoutes::new(StrayApi))
    }
}

fn load(plugins: Vec<Probe>) -> Result<PluginCatalog, String> {
    let plugins = plugins
        .into_iter()
        .map(|p| Arc::new(p) as Arc<dyn Plugin>)
        .collect();
    PluginCatalog::load(plugins, None, &Database::new(), None).map_err(|e| e.to_string())
}

fn probe(id: &'static str) -> Probe {
    Probe {
        id,
        ..Probe::default()
    }
}

#[test]
fn well_formed_plugins_load() {
    let catalog = load(vec![
        Probe {
            settings: vec!["alpha.key", "alpha.other"],
            versions: vec![2, 1],
            ..probe("alpha")
        },
        probe("beta-two"),
    ])
    .expect("valid");
    let ids: Vec<String> = catalog.ids().iter().map(ToString::to_string).collect();
    assert_eq!(ids, ["alpha", "beta-two"]);
    assert_eq!(catalog.plugins()[1].id.schema(), "plugin_beta_two");
    let versions: Vec<i64> = catalog.plugins()[0]
        .migrations
        .iter()
        .map(|m| m.migration.version)
        .collect();
    assert_eq!(versions, [1, 2]);
    assert_eq!(catalog.settings_groups()[0].settings.len(), 2);
}

#[test]
fn bad_declarations_are_refused_with_the_plugin_named() {
    let cases: Vec<(Vec<Probe>, &str)> = vec![
        (vec![probe("Bad_Id")], "invalid plugin id \"Bad_Id\""),
        (vec![probe("x")], "invalid plugin id \"x\""),
        (vec![probe("api")], "plugin id \"api\" is reserved"),
        (
            vec![probe("same"), probe("same")],
            "two plugins use the id \"same\"",
        ),
        (
            vec![Probe {
                settings: vec!["smtp.host"],
                ..probe("smtp")
            }],
            "plugin smtp: its settings group \"smtp\" is a core settings group",
        ),
        (
            vec![Probe {
                settings: vec!["global.page_url"],
                ..probe("alpha")
            }],
            "plugin alpha: setting key \"global.page_url\" must start with \"alpha.\"",
        ),
        (
            vec![Probe {
                settings: vec!["alpha.k", "alpha.k"],
                ..probe("alpha")
            }],
            "setting key \"alpha.k\" is declared twice",
        ),
        (
            vec![Probe {
                versions: vec![1, 1],
                ..probe("alpha")
            }],
            "migrations 0001_m and 0001_m share a version",
        ),
        (
            vec![Probe {
                versions: vec![0],
                ..probe("alpha")
            }],
            "needs a version above 0",
        ),
        (
            vec![Probe {
                job: true,
                ..probe("alpha")
            }],
            "the job type \"cleanup_old_jobs\" must start with \"alpha.\"",
        ),
        (
            vec![Probe {
                route: true,
                ..probe("alpha")
            }],
            "the route /api/users is outside the plugin's prefix /api/plugin/alpha/",
        ),
    ];
    for (plugins, expected) in cases {
        let error = load(plugins).err().unwrap_or_default();
        assert!(
            error.contains(expected),
            "expected {expected:?} in {error:?}"
        );
    }
}

#[test]
fn bad_folder_plugins_are_refused_with_the_file_named() {
    let dir = tempfile::tempdir().expect("dir");
    let plugin = dir.path().join("gamma");
    std::fs::create_dir_all(plugin.join("migrations")).expect("mkdir");
    let try_load = || {
        PluginCatalog::load(Vec::new(), Some(dir.path()), &Database::new(), None)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    std::fs::write(
        plugin.join("plugin.json"),
        r#"{"id": "gamma", "name": "G"}"#,
    )
    .expect("w");
    assert!(
        try_load().contains("missing field `version`"),
        "{}",
        try_load()
    );
    std::fs::write(
        plugin.join("plugin.json"),
        r#"{"id": "delta", "name": "G", "version": "1"}"#,
    )
    .expect("w");
    assert!(
        try_load().contains("named after the plugin id"),
        "{}",
        try_load()
    );
    std::fs::write(
        plugin.join("plugin.json"),
        r#"{"id": "gamma", "name": "G", "version": "1", "settings": [{"key": "gamma.n", "name": "n", "type": "integer", "description": "d"}]}"#,
    )
    .expect("w");
    assert!(try_load().contains("type \"integer\""), "{}", try_load());
    std::fs::write(
        plugin.join("plugin.json"),
        r#"{"id": "gamma", "name": "G", "version": "1", "settings": [{"key": "gamma.n", "name": "n", "type": "number", "default": "ten", "description": "d"}]}"#,
    )
    .expect("w");
    assert!(
        try_load().contains("\"ten\" is not a number"),
        "{}",
        try_load()
    );
    std::fs::write(
        plugin.join("plugin.json"),
        r#"{"id": "gamma", "name": "G", "version": "1"}"#,
    )
    .expect("w");
    std::fs::write(
        plugin.join("migrations").join("create.sql"),
        "CREATE TABLE t (a int)",
    )
    .expect("w");
    assert!(
        try_load().contains("migrations/create.sql"),
        "{}",
        try_load()
    );
    std::fs::remove_file(plugin.join("migrations").join("create.sql")).expect("rm");
    std::fs::write(
        plugin.join("migrations").join("0001_create.sql"),
        "CREATE TABLE t (a int)",
    )
    .expect("w");
    assert_eq!(try_load(), "");
}
