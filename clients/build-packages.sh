#!/usr/bin/env bash
# Builds the two client packages from spec/ and packs them:
#
#   OUT_DIR/tidewire-protocol-VERSION.tgz             npm package (clients/typescript-package/)
#   OUT_DIR/tidewire_protocol-VERSION-py3-none-any.whl and .tar.gz   Python package
#                                                      (clients/python-package/)
#
# Usage: clients/build-packages.sh SPEC_DIR OUT_DIR
#
# Needs on PATH: node, npm, json2ts and tsc (clients/typescript/package-lock.json), and a
# python with datamodel-code-generator, build and hatchling (clients/python/requirements.txt);
# scripts/check-clients.sh installs them and calls this script.
#
# Both packages are generated from the same variant of SPEC_DIR/schema
# (clients/package_schemas.py: closed requests, discriminated unions, typed stored records).
# The packages' version is in their package.json and pyproject.toml; its major must be the
# protocol's (`tidewire.vN`, from SPEC_DIR/asyncapi.json), and the two must agree.
set -euo pipefail
if (($# != 2)); then
    echo "usage: clients/build-packages.sh SPEC_DIR OUT_DIR" >&2
    exit 2
fi
SPEC=$(realpath "$1")
mkdir -p "$2"
OUT=$(realpath "$2")
cd "$(dirname "$0")"
CLIENTS=$PWD
STAGE=$OUT/stage
rm -rf "$STAGE"
mkdir -p "$STAGE"

die() {
    echo "build-packages: $*" >&2
    exit 1
}

# --- Version: one number for both packages, whose major is the protocol's -----------------

protocol_id=$(python -c 'import json, sys; print(json.load(open(sys.argv[1]))["id"])' "$SPEC/asyncapi.json")
[[ $protocol_id =~ ^urn:tidewire:protocol:v([0-9]+)$ ]] ||
    die "$SPEC/asyncapi.json: id $protocol_id is not urn:tidewire:protocol:vN"
protocol_major=${BASH_REMATCH[1]}
SUBPROTOCOL=tidewire.v$protocol_major
npm_version=$(node -p 'require(process.argv[1]).version' "$CLIENTS/typescript-package/package.json")
py_version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$CLIENTS/python-package/pyproject.toml")
[[ $npm_version == "$py_version" ]] ||
    die "typescript-package/package.json has version $npm_version, python-package/pyproject.toml $py_version"
[[ ${npm_version%%.*} == "$protocol_major" ]] ||
    die "package version $npm_version does not follow the protocol $SUBPROTOCOL (major $protocol_major)"
VERSION=$npm_version

python "$CLIENTS/package_schemas.py" "$SPEC/schema" "$STAGE/schema"

# --- npm package -------------------------------------------------------------------------

TS=$STAGE/typescript
cp -r "$CLIENTS/typescript-package" "$TS"
rm -rf "$TS/dist" "$TS/src/generated"
mkdir -p "$TS/src/generated"
for direction in client server; do
    # .ts rather than .d.ts: tsc copies declarations it compiles into dist/, not .d.ts inputs.
    json2ts --input "$STAGE/schema/$direction-message.schema.json" \
        --output "$TS/src/generated/$direction-message.ts"
done
cp "$STAGE/schema/server-message.schema.json" "$TS/src/generated/"
cat >"$TS/src/generated/protocol.ts" <<EOF
/** The WebSocket subprotocol of the protocol version these types describe. */
export const SUBPROTOCOL = "$SUBPROTOCOL";
EOF
ln -s "$(dirname "$(command -v json2ts)")/.." "$TS/node_modules"
tsc --project "$TS"
rm "$TS/node_modules"
(cd "$TS" && npm pack --silent --pack-destination "$OUT" >/dev/null)
[[ -f $OUT/tidewire-protocol-$VERSION.tgz ]] || die "npm pack wrote no tidewire-protocol-$VERSION.tgz"

# --- Python package ----------------------------------------------------------------------

PYPKG=$STAGE/python
cp -r "$CLIENTS/python-package" "$PYPKG"
MODULES=$PYPKG/src/tidewire_protocol
find "$PYPKG" -name __pycache__ -prune -exec rm -rf {} +
for direction in client server; do
    # Warnings are errors: a format or keyword the generator does not understand would
    # otherwise degrade a field to a looser type with no more than a line on stderr.
    PYTHONWARNINGS=error datamodel-codegen \
        --input "$STAGE/schema/$direction-message.schema.json" --input-file-type jsonschema \
        --output "$MODULES/$direction.py" --output-model-type pydantic_v2.BaseModel \
        --target-python-version 3.10 --target-pydantic-version 2.11 \
        --use-annotated --use-one-literal-as-default \
        --formatters builtin --disable-timestamp
done
cat >"$MODULES/_protocol.py" <<EOF
SUBPROTOCOL = "$SUBPROTOCOL"
"""The WebSocket subprotocol of the protocol version these models describe."""
EOF
python -m build --no-isolation --outdir "$OUT" "$PYPKG" >"$STAGE/python-build.log" 2>&1 || {
    cat "$STAGE/python-build.log" >&2
    die "python -m build failed"
}
for artifact in "tidewire_protocol-$VERSION-py3-none-any.whl" "tidewire_protocol-$VERSION.tar.gz"; do
    [[ -f $OUT/$artifact ]] || die "python -m build wrote no $artifact"
done

echo "built tidewire-protocol $VERSION ($SUBPROTOCOL) in $OUT"
