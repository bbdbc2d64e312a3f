#!/usr/bin/env bash
# Checks what a client developer gets from spec/: the two client packages, and the generators
# users already have.
#
#   1. json-schema-to-typescript generates TypeScript from every file of spec/schema, and
#      `tsc --strict` compiles it with clients/typescript/usage.ts (compile-time proof that
#      the unions are discriminated by `type`) and the checks clients/typescript/tag-checks.mjs
#      writes (each union holds exactly the tags of spec/schema/schema-set.json, and each tag
#      narrows to its message's interface).
#   2. datamodel-code-generator generates pydantic v2 models from spec/schema without a
#      warning, and clients/python/check_models.py checks that each union member has a literal
#      `type` tag and parses every example message of spec/asyncapi.json as the member of its tag.
#   3. The AsyncAPI parser behind `asyncapi validate` accepts spec/asyncapi.json, through
#      clients/typescript/validate-asyncapi.mjs (warnings fail too).
#   4. clients/build-packages.sh builds the npm package (clients/typescript-package/) and the
#      Python package (clients/python-package/) from spec/ and packs them (`npm pack`,
#      `python -m build`).
#   5. The tarball is installed into a fresh npm project holding examples/typescript/ and
#      clients/typescript-package/test/, which `tsc --strict` compiles (the test's
#      `@ts-expect-error` lines prove that a misspelt request member does not compile) and
#      node runs; the wheel is installed into a fresh virtualenv with
#      examples/python/requirements.txt, which runs clients/python-package/tests/.
#   6. The example clients, from those two projects, run against a reference server
#      (tidewire-server) started here on a free loopback port.
#
# The tools are installed from the npm registry and PyPI at the versions pinned in
# clients/typescript/package-lock.json and clients/python/requirements.txt, into
# target/clients/ (git-ignored); an install is reused while its pins are unchanged. The
# projects of step 5 install the example's pinned dependencies (npm and pip caches make
# that quick after the first run). Generated code, packages and projects go to
# target/clients/work/ and are not checked in.
#
# Usage: scripts/check-clients.sh
#
# TIDEWIRE_SPEC_DIR=DIR checks DIR/schema and DIR/asyncapi.json instead of spec/ (a modified
# copy, say, to see what a change to the schemas does to the generated clients).
#
# Exits non-zero on the first failure, naming the step that failed on the last line.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SPEC=${TIDEWIRE_SPEC_DIR:-spec}
[[ -d $SPEC/schema && -f $SPEC/asyncapi.json ]] || {
    echo "error: $SPEC/schema or $SPEC/asyncapi.json is missing" >&2
    exit 2
}
TOOLS=$ROOT/target/clients
WORK=$TOOLS/work
NODE_DIR=$TOOLS/node
PY_DIR=$TOOLS/python
PYTHON=${PYTHON:-python3}

CURRENT_STEP="check the prerequisites"
step() {
    CURRENT_STEP=$*
    echo "==> $*"
}
die() {
    echo "error: $*" >&2
    exit 1
}
SERVER_PID=
stop_server() {
    if [[ -n $SERVER_PID ]]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=
    fi
}
# Whatever ends the script early (die, or a command failing under `set -e`), the last line
# names the step, so that a CI log shows at a glance which check broke.
on_exit() {
    local status=$?
    stop_server
    if ((status != 0)); then
        echo "check-clients: FAILED (exit $status) at step: $CURRENT_STEP" >&2
    fi
    exit "$status"
}
trap on_exit EXIT
# The hash of the given files' contents, to tell when an install is stale.
fingerprint() { cat "$@" | sha256sum | cut -d' ' -f1; }
seconds_since() { echo $((SECONDS - $1)); }

command -v node >/dev/null || die "node is not installed (Node 20 or later is needed)"
command -v npm >/dev/null || die "npm is not installed"
command -v "$PYTHON" >/dev/null || die "$PYTHON is not installed (Python 3.10 or later is needed)"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
    die "$PYTHON is $("$PYTHON" --version 2>&1); Python 3.10 or later is needed"

# --- Install the pinned tools -----------------------------------------------------------

mkdir -p "$TOOLS"
started=$SECONDS
stamp=$(fingerprint clients/typescript/package.json clients/typescript/package-lock.json)
if [[ -f $NODE_DIR/.installed && $(cat "$NODE_DIR/.installed") == "$stamp" ]]; then
    step "npm tools: pinned versions already installed in ${NODE_DIR#"$ROOT"/}"
else
    step "npm tools: installing clients/typescript/package-lock.json into ${NODE_DIR#"$ROOT"/}"
    rm -rf "$NODE_DIR"
    mkdir -p "$NODE_DIR"
    cp clients/typescript/package.json clients/typescript/package-lock.json "$NODE_DIR/"
    # `npm ci` installs exactly the lock file's versions and fails when it does not match
    # package.json. No install scripts: none of these tools needs one to run, and some only
    # report telemetry.
    (cd "$NODE_DIR" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) ||
        die "npm ci failed (if package.json changed, run \`npm install --package-lock-only\` in clients/typescript)"
    echo "$stamp" >"$NODE_DIR/.installed"
fi
echo "    ($(seconds_since "$started") s)"

started=$SECONDS
stamp=$(fingerprint clients/python/requirements.txt <("$PYTHON" --version 2>&1))
if [[ -f $PY_DIR/.installed && $(cat "$PY_DIR/.installed") == "$stamp" ]]; then
    step "Python tools: pinned versions already installed in ${PY_DIR#"$ROOT"/}"
else
    step "Python tools: installing clients/python/requirements.txt into ${PY_DIR#"$ROOT"/}"
    rm -rf "$PY_DIR"
    "$PYTHON" -m venv "$PY_DIR"
    "$PY_DIR/bin/python" -m pip install --quiet --disable-pip-version-check \
        --requirement clients/python/requirements.txt
    echo "$stamp" >"$PY_DIR/.installed"
fi
echo "    ($(seconds_since "$started") s)"

BIN=$NODE_DIR/node_modules/.bin
PY=$PY_DIR/bin/python

# --- Generate ---------------------------------------------------------------------------

rm -rf "$WORK"
mkdir -p "$WORK/schema" "$WORK/ts" "$WORK/py"
# The schema files only (schema-set.json is the conformance runner's index, not a schema),
# keeping the client/ and server/ directories apart: `typing` is a message of both.
schema_count=0
while IFS= read -r -d '' file; do
    install -D -m 644 "$SPEC/schema/$file" "$WORK/schema/$file"
    schema_count=$((schema_count + 1))
done < <(cd "$SPEC/schema" && find . -name '*.schema.json' -printf '%P\0')
((schema_count > 0)) || die "no schema files in $SPEC/schema"

step "json-schema-to-typescript: $schema_count schemas -> TypeScript"
"$BIN/json2ts" --input "$WORK/schema" --output "$WORK/ts/generated" ||
    die "json-schema-to-typescript rejected a schema of $SPEC/schema"
generated=$(find "$WORK/ts/generated" -name '*.d.ts' | wc -l)
((generated == schema_count)) ||
    die "json-schema-to-typescript wrote $generated declaration files for $schema_count schemas"

step "tsc --strict: generated types, clients/typescript/usage.ts, tag checks"
cp clients/typescript/usage.ts clients/typescript/tsconfig.json "$WORK/ts/"
node clients/typescript/tag-checks.mjs "$SPEC/schema/schema-set.json" "$WORK/schema" "$WORK/ts/tags.ts" ||
    die "could not write the tag checks from $SPEC/schema/schema-set.json"
ln -s "$NODE_DIR/node_modules" "$WORK/ts/node_modules"
"$BIN/tsc" --project "$WORK/ts" --strict ||
    die "the TypeScript generated from $SPEC/schema does not compile (see above)"

step "datamodel-code-generator: $schema_count schemas -> pydantic v2 models"
# Warnings are errors: the generator warns where it falls back to a looser type.
PYTHONWARNINGS=error "$PY_DIR/bin/datamodel-codegen" --input "$WORK/schema" --input-file-type jsonschema \
    --output "$WORK/py/tidewire_schema" --output-model-type pydantic_v2.BaseModel \
    --target-python-version 3.10 --use-annotated --formatters builtin --disable-timestamp ||
    die "datamodel-code-generator rejected a schema of $SPEC/schema"

step "Python: import the generated models and parse the examples of $SPEC/asyncapi.json"
PYTHONPATH=$WORK/py "$PY" -W error::SyntaxWarning clients/python/check_models.py "$SPEC/asyncapi.json" ||
    die "the generated pydantic models do not parse the examples of $SPEC/asyncapi.json or accept invalid messages (see above)"

step "validate $SPEC/asyncapi.json with @asyncapi/parser (what \`asyncapi validate\` runs)"
node clients/typescript/validate-asyncapi.mjs "$NODE_DIR/node_modules" "$SPEC/asyncapi.json" ||
    die "the AsyncAPI parser rejected $SPEC/asyncapi.json"
# A validator that accepted anything would pass the step above: it must refuse a copy whose
# channel address is a number.
"$PYTHON" - "$SPEC/asyncapi.json" "$WORK/asyncapi-broken.json" <<'PY'
import json, sys
document = json.load(open(sys.argv[1]))
next(iter(document["channels"].values()))["address"] = 3
json.dump(document, open(sys.argv[2], "w"))
PY
if node clients/typescript/validate-asyncapi.mjs "$NODE_DIR/node_modules" "$WORK/asyncapi-broken.json" >/dev/null 2>&1; then
    die "validate-asyncapi.mjs accepted a document whose channel address is a number"
fi

# --- Build, pack and install the client packages ----------------------------------------

step "build the client packages from $SPEC (clients/build-packages.sh)"
PATH="$BIN:$PY_DIR/bin:$PATH" clients/build-packages.sh "$SPEC" "$WORK/packages" ||
    die "the client packages did not build"
TARBALL=$(find "$WORK/packages" -maxdepth 1 -name 'tidewire-protocol-*.tgz')
WHEEL=$(find "$WORK/packages" -maxdepth 1 -name 'tidewire_protocol-*.whl')

started=$SECONDS
step "npm package: install ${TARBALL##*/} into a fresh project; tsc --strict its tests and the example"
TS_PROJECT=$WORK/ts-project
mkdir -p "$TS_PROJECT"
cp examples/typescript/package.json examples/typescript/tsconfig.json examples/typescript/client.ts \
    clients/typescript-package/test/package-test.ts "$TS_PROJECT/"
# The example's package.json names tidewire-protocol as a user's would; installing the
# tarball puts the package built here in its place.
(cd "$TS_PROJECT" && npm install --no-audit --no-fund --ignore-scripts --loglevel=error \
    --no-package-lock "$TARBALL") || die "npm could not install ${TARBALL##*/} into a fresh project"
(cd "$TS_PROJECT" && node_modules/.bin/tsc --project .) ||
    die "the tests or the example do not compile against the npm package (an unused @ts-expect-error means a mistake now compiles)"
node "$TS_PROJECT/dist/package-test.js" || die "the npm package's tests failed"
echo "    ($(seconds_since "$started") s)"

started=$SECONDS
step "Python package: install ${WHEEL##*/} into a fresh virtualenv; run its tests"
PY_PROJECT=$WORK/py-project
"$PYTHON" -m venv "$PY_PROJECT"
# The tools' pins constrain what the two share (pydantic); the rest is the example's.
"$PY_PROJECT/bin/python" -m pip install --quiet --disable-pip-version-check \
    --constraint clients/python/requirements.txt \
    --requirement examples/python/requirements.txt "$WHEEL" ||
    die "pip could not install ${WHEEL##*/} into a fresh virtualenv"
"$PY_PROJECT/bin/python" -W error clients/python-package/tests/test_package.py ||
    die "the Python package's tests failed"
echo "    ($(seconds_since "$started") s)"

# --- Run the example clients against the reference server --------------------------------

step "cargo build -p tidewire-server"
cargo build --quiet --locked -p tidewire-server --bin tidewire-server
# Cargo's own answer, so that CARGO_TARGET_DIR or a configured target-dir is honoured.
target_dir=$(cargo metadata --no-deps --format-version 1 --locked |
    "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
SERVER_BIN=$target_dir/debug/tidewire-server
[[ -x $SERVER_BIN ]] || die "cargo built no $SERVER_BIN"

step "start tidewire-server on a free loopback port"
# Authentication required, with a static token for the examples: they then go through
# welcome -> auth -> watch -> create -> change.
echo '{"example-token": {"principal": "example", "scopes": ["*"]}}' >"$WORK/tokens.json"
TOKEN=example-token
mkfifo "$WORK/server.out"
"$SERVER_BIN" --listen 127.0.0.1:0 --auth required --tokens-file "$WORK/tokens.json" \
    >"$WORK/server.out" 2>"$WORK/server.log" &
SERVER_PID=$!
exec 3<"$WORK/server.out"
# The first line on stdout is `listening on ws://HOST:PORT/PATH`.
if ! IFS= read -r -t 30 -u 3 first_line; then
    cat "$WORK/server.log" >&2
    die "tidewire-server exited or printed no address within 30 s"
fi
# Keep draining stdout so that the server never blocks on a full pipe.
cat <&3 >"$WORK/server.stdout" &
exec 3<&-
URL=$(grep -oE 'wss?://[^[:space:]]+' <<<"$first_line" | head -n 1) ||
    die "no ws:// URL in the server's first line: $first_line"
echo "    $first_line"

step "examples/typescript against $URL"
timeout 30 node "$TS_PROJECT/dist/client.js" "$URL" "$TOKEN" ||
    die "the TypeScript example failed against the reference server"

step "examples/python against $URL"
timeout 30 "$PY_PROJECT/bin/python" examples/python/client.py "$URL" "$TOKEN" ||
    die "the Python example failed against the reference server"

stop_server
# The projects are rebuilt from scratch on every run; their ~70 MB need not stay on disk.
rm -rf "$TS_PROJECT" "$PY_PROJECT"
echo "check-clients: all checks passed ($SECONDS s)"
