"""Parses every example message of spec/asyncapi.json with the pydantic models that
datamodel-code-generator generated from spec/schema (the package `tidewire_schema`),
and checks that the models reject invalid messages. Run by scripts/check-clients.sh:

    python check_models.py spec/asyncapi.json   # with tidewire_schema importable
"""

import json
import sys

from pydantic import BaseModel, ValidationError

from tidewire_schema import client_message_schema, server_message_schema
from tidewire_schema.client import watch_schema


def client_message_names(document: dict) -> set[str]:
    """The messages the server receives: those of the `receive` operations."""
    names = set()
    for operation in document["operations"].values():
        if operation["action"] == "receive":
            for reference in operation["messages"]:
                names.add(reference["$ref"].rsplit("/", 1)[-1])
    return names


def check_examples(document: dict) -> int:
    client_names = client_message_names(document)
    parsed = 0
    for name, message in document["components"]["messages"].items():
        union = (client_message_schema.ClientMessage if name in client_names
                 else server_message_schema.ServerMessage)
        for example in message["examples"]:
            payload = example["payload"]
            model = union.model_validate_json(json.dumps(payload)).root
            if not isinstance(model, BaseModel) or type(model).__name__ != name:
                raise AssertionError(
                    f"{name} example {example['name']} parsed as {type(model).__name__}")
            if model.type != payload["type"]:
                raise AssertionError(f"{name} example {example['name']}: type {model.type!r}")
            # What the model writes back parses to an equal model.
            again = union.model_validate_json(model.model_dump_json(by_alias=True, exclude_none=True))
            if again.root != model:
                raise AssertionError(f"{name} example {example['name']} does not round-trip")
            parsed += 1
    return parsed


def expect_rejected(union: type[BaseModel], payload: dict, why: str) -> None:
    try:
        union.model_validate(payload)
    except ValidationError:
        return
    raise AssertionError(f"the generated models accept {payload} ({why})")


def main() -> int:
    with open(sys.argv[1], encoding="utf-8") as file:
        document = json.load(file)
    parsed = check_examples(document)

    ClientMessage = client_message_schema.ClientMessage
    ServerMessage = server_message_schema.ServerMessage
    expect_rejected(ClientMessage, {"type": "watch", "id": "w1", "database": "app.users"},
                    "a database name has no dots")
    expect_rejected(ClientMessage, {"type": "watch", "id": ""}, "a request id is not empty")
    expect_rejected(ClientMessage, {"type": "create", "id": "c1", "database": "app",
                                    "collection": "users"}, "create needs a record")
    expect_rejected(ClientMessage, {"type": "created", "id": "c1", "record": {}},
                    "created is a server message")
    expect_rejected(ServerMessage, {"type": "change", "subscription": "s1",
                                    "event": {"operation_type": "upsert"}},
                    "operation_type is insert, update or delete")

    # A per-message module parses its message on its own.
    watch = watch_schema.Watch.model_validate({"type": "watch", "id": "w1", "database": "app"})
    assert watch.database is not None and watch.database.root == "app"

    print(f"parsed {parsed} example messages with the generated pydantic models; "
          "invalid messages are rejected")
    return 0


if __name__ == "__main__":
    sys.exit(main())
