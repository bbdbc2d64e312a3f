"""Writes the schemas the client packages are generated from: the two unions of spec/schema,
changed only in what a client library needs beyond what a server must accept.

    python3 clients/package_schemas.py SPEC_SCHEMA_DIR OUT_DIR

writes OUT_DIR/client-message.schema.json and OUT_DIR/server-message.schema.json.

spec/schema describes what a server must accept and what it may send. A server ignores
members of a request that it does not know (TW-CORE-5), and a revision of version 1 may add
optional request members (spec section 22); so spec/schema leaves requests open, and a
validator built from it keeps accepting the requests of later revisions. A client library
is the other side: a member it does not define is a typo that would silently widen the
request (`databse` instead of `database` watches every database). So, for the packages only:

- every object of a request that lists its members gets `additionalProperties: false`
  (free-form objects such as `record` and `filter` say `additionalProperties: true` and stay
  open); server messages stay open (TW-CORE-6);
- each union gets an OpenAPI-style `discriminator` on `type`, which datamodel-code-generator
  turns into a pydantic discriminated union (one error for a malformed message, not one
  per member);
- every record the server returns is a `StoredRecord` with a required string `_id`
  (spec section 7: every record has one, and the server returns it in `created`, `updated`,
  `records` and `change.event.full_document`), where spec/schema types it as any object.

Each change checks that the spec still has the shape it expects, and fails otherwise.
"""

import copy
import json
import sys
from pathlib import Path

DISCRIMINATOR = "type"

STORED_RECORD = {
    "type": "object",
    "description": "A record as the server returns it: a JSON object with a string `_id`, "
                   "unique within its collection.",
    "properties": {"_id": {"type": "string"}},
    "required": ["_id"],
    "additionalProperties": True,
}

# JSON pointers, within server-message.schema.json, of the records the server returns.
STORED_RECORDS = [
    "/$defs/Created/properties/record",
    "/$defs/Updated/properties/record",
    "/$defs/Records/properties/records/items",
    "/$defs/ChangeEvent/properties/full_document",
]


class ShapeError(Exception):
    pass


def close_request_objects(schema: object, where: str = "") -> int:
    """Adds `additionalProperties: false` to every object schema that lists `properties`
    and says nothing about others. Returns how many it closed."""
    closed = 0
    if isinstance(schema, dict):
        if "properties" in schema and "additionalProperties" not in schema:
            if any(key in schema for key in ("allOf", "$ref", "patternProperties")):
                # With composition, members listed elsewhere would count as unknown here.
                raise ShapeError(f"{where}: an object with `properties` and composition")
            schema["additionalProperties"] = False
            closed += 1
        for key, child in schema.items():
            closed += close_request_objects(child, f"{where}/{key}")
    elif isinstance(schema, list):
        for index, child in enumerate(schema):
            closed += close_request_objects(child, f"{where}/{index}")
    return closed


def add_discriminator(union: dict, path: str) -> None:
    mapping = {}
    for alternative in union["oneOf"]:
        reference = alternative.get("$ref", "")
        if not reference.startswith("#/$defs/"):
            raise ShapeError(f"{path}: union member {alternative} is not a $ref to $defs")
        definition = union["$defs"][reference.removeprefix("#/$defs/")]
        tag = definition.get("properties", {}).get(DISCRIMINATOR, {}).get("const")
        if not isinstance(tag, str) or DISCRIMINATOR not in definition.get("required", []):
            raise ShapeError(f"{path}: {reference} has no required constant `{DISCRIMINATOR}`")
        if tag in mapping:
            raise ShapeError(f"{path}: `{tag}` tags {mapping[tag]} and {reference}")
        mapping[tag] = reference
    union["discriminator"] = {"propertyName": DISCRIMINATOR, "mapping": mapping}


def resolve(document: dict, pointer: str, path: str) -> tuple[dict, str]:
    """The object holding the member `pointer` names, and that member's name."""
    *parents, last = [part.replace("~1", "/").replace("~0", "~") for part in pointer.split("/")[1:]]
    node = document
    for part in parents:
        if not isinstance(node, dict) or part not in node:
            raise ShapeError(f"{path}: no {pointer}")
        node = node[part]
    if last not in node:
        raise ShapeError(f"{path}: no {pointer}")
    return node, last


def type_stored_records(union: dict, path: str) -> None:
    if "StoredRecord" in union["$defs"]:
        raise ShapeError(f"{path}: already defines StoredRecord")
    union["$defs"]["StoredRecord"] = STORED_RECORD
    for pointer in STORED_RECORDS:
        parent, name = resolve(union, pointer, path)
        record = parent[name]
        annotations = {key: value for key, value in record.items()
                       if key not in ("type", "additionalProperties")}
        if (record.get("type") != "object" or record.get("additionalProperties") is not True
                or set(annotations) - {"description"}):
            raise ShapeError(f"{path}: {pointer} is not an open object: {record}")
        reference = {"$ref": "#/$defs/StoredRecord"}
        # A one-element anyOf keeps a description without json-schema-to-typescript copying
        # the referenced type (as schema.rs does for optional references).
        parent[name] = {"anyOf": [reference], **annotations} if annotations else reference


def main() -> int:
    if len(sys.argv) != 3:
        print("usage: package_schemas.py SPEC_SCHEMA_DIR OUT_DIR", file=sys.stderr)
        return 2
    schema_dir, out_dir = Path(sys.argv[1]), Path(sys.argv[2])
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        client_path = schema_dir / "client-message.schema.json"
        client = json.loads(client_path.read_text(encoding="utf-8"))
        requests = copy.deepcopy(client)
        closed = close_request_objects(requests["$defs"], str(client_path))
        if closed < len(requests["oneOf"]):
            raise ShapeError(f"{client_path}: closed {closed} objects for "
                             f"{len(requests['oneOf'])} request types")
        add_discriminator(requests, str(client_path))

        server_path = schema_dir / "server-message.schema.json"
        server = json.loads(server_path.read_text(encoding="utf-8"))
        add_discriminator(server, str(server_path))
        type_stored_records(server, str(server_path))
    except (ShapeError, KeyError, OSError, json.JSONDecodeError) as error:
        print(f"package_schemas.py: {error}", file=sys.stderr)
        return 1

    for name, schema in (("client-message.schema.json", requests),
                         ("server-message.schema.json", server)):
        (out_dir / name).write_text(json.dumps(schema, indent=2) + "\n", encoding="utf-8")
    print(f"package schemas written to {out_dir}: {closed} request objects closed, "
          f"{len(STORED_RECORDS)} stored records typed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
