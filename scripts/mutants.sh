#!/usr/bin/env bash
# Mutation testing of the security core with cargo-mutants: each file's mutants (an operator
# flipped, a function returning a default, ...) built and run against the test binaries that
# cover that file; a mutant no test notices is a gap in the tests. Not part of CI: every
# mutant is a rebuild, minutes each on two cores.
#
#   scripts/mutants.sh                 # the security core (DEFAULT below)
#   scripts/mutants.sh src/auth/sessions.rs src/settings/crypto.rs
#
# cargo-mutants is installed once under target/tools/cargo-mutants. It mutates the working
# tree in place (each file restored after its mutant) and builds in this tree's target
# folder, so nothing is rebuilt from scratch: leave the tree alone while it runs. Results go
# to target/mutation/<file>/mutants.out; the summary (caught, missed, timeout, unviable per
# file) is printed at the end and written to target/mutation/summary.txt. Mutants that cannot
# change behaviour are listed in .cargo/mutants.toml (exclude_re) with the reason.
#
# MUTANTS_BASELINE=skip skips the unmutated run of each file's tests (when the suite is known
# to pass); MUTANTS_TIMEOUT (seconds, default 600) bounds a mutant's test run then.
set -euo pipefail
cd "$(dirname "$0")/.."

DEFAULT=(
    src/settings/crypto.rs src/settings/secret.rs src/settings/key_check.rs src/settings/rotation.rs
    src/jobs/settle.rs src/jobs/lease.rs src/jobs/claim.rs
    src/plugins/provision.rs
    src/auth/sessions.rs src/auth/password.rs src/auth/cookie.rs
    src/auth/throttle.rs src/auth/device.rs src/auth/turns.rs src/services/first_admin.rs
    src/net/proxies.rs src/net/client.rs src/net/connections.rs src/api/cross_site.rs
)
files=("$@")
[ ${#files[@]} -gt 0 ] || files=("${DEFAULT[@]}")

tool=target/tools/cargo-mutants/bin/cargo-mutants
if [ ! -x "$tool" ]; then
    cargo install --locked cargo-mutants --version '^27' --root target/tools/cargo-mutants
fi
export NODE_PATH="$PWD/target/tools/node/node_modules"

# The test binaries that exercise a file (the library's own unit tests always), as cargo
# arguments for both the build and the run: only these targets are rebuilt per mutant.
targets_for() {
    case "$1" in
        src/settings/*) echo "--lib --test=settings --test=encryption_secret" ;;
        src/jobs/*) echo "--lib --test=jobs" ;;
        src/plugins/*) echo "--lib --test=plugins" ;;
        src/auth/sessions.rs) echo "--lib --test=accounts --test=admin --test=jobs" ;;
        src/auth/throttle.rs) echo "--lib --test=accounts --test=public_surface --test=jobs" ;;
        src/auth/device.rs|src/auth/turns.rs)
            echo "--lib --test=accounts --test=public_surface" ;;
        src/auth/*) echo "--lib --test=accounts --test=admin" ;;
        src/services/first_admin.rs) echo "--lib --test=public_surface" ;;
        src/net/*|src/api/cross_site.rs) echo "--lib --test=public_surface" ;;
        *) echo "--lib" ;;
    esac
}

if [ -n "$(git status --porcelain -- src)" ]; then
    echo "error: src/ has uncommitted changes; mutants are made in place, commit or stash first" >&2
    exit 2
fi
baseline=()
if [ "${MUTANTS_BASELINE:-run}" = skip ]; then
    baseline=(--baseline=skip --timeout "${MUTANTS_TIMEOUT:-600}")
fi

summary=target/mutation/summary.txt
mkdir -p target/mutation
printf '%-28s %7s %7s %8s %9s\n' file caught missed timeout unviable | tee "$summary"
for file in "${files[@]}"; do
    name=$(echo "$file" | tr '/.' '__')
    out=target/mutation/$name
    cargo_args=()
    for arg in $(targets_for "$file"); do cargo_args+=(--cargo-arg="$arg"); done
    "$tool" mutants --in-place --no-shuffle "${baseline[@]}" --file "$file" --output "$out" \
        "${cargo_args[@]}" >"$out.log" 2>&1 || true
    outcomes=$out/mutants.out/outcomes.json
    if [ ! -f "$outcomes" ]; then
        printf '%-28s (no outcomes: see %s)\n' "$file" "$out.log" | tee -a "$summary"
        continue
    fi
    python3 - "$outcomes" "$file" <<'PY' | tee -a "$summary"
import json, sys
data = json.load(open(sys.argv[1]))
counts = {"CaughtMutant": 0, "MissedMutant": 0, "Timeout": 0, "Unviable": 0}
for o in data.get("outcomes", []):
    summary = o.get("summary")
    if summary in counts:
        counts[summary] += 1
print(f"{sys.argv[2]:<28} {counts['CaughtMutant']:>7} {counts['MissedMutant']:>7} {counts['Timeout']:>8} {counts['Unviable']:>9}")
PY
    missed=$out/mutants.out/missed.txt
    if [ -s "$missed" ]; then
        sed 's/^/    missed: /' "$missed" | tee -a "$summary"
    fi
done
