"""Parses every example message of spec/asyncapi.json with the pydantic models that
datamodel-code-generator generated from spec/schema (the package `tidewire_schema`),
and checks that the models reject invalid messages. Run by scripts/check-clients.sh:

    python check_models.py spec/asyncapi.json   # with tidewire_schema importable
"""

import json
import sys
import typing

from pydantic import BaseModel, RootModel, ValidationError

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


def union_members(union: type[RootModel]) -> dict[str, type[BaseModel]]:
    """The members of a generated union by their `type` tag. Fails unless every member
    is a model whose `type` is a single string literal of its own: a union that degraded
    (a tag typed `str`, a member typed `Any` or `dict`) still parses most valid messages,
    so the examples alone would not show it."""
    if not issubclass(union, RootModel):
        raise AssertionError(f"{union.__name__} is a {union.__mro__[1].__name__}, not a union")
    root = union.model_fields["root"].annotation
    members = {}
    for member in typing.get_args(root) or (root,):
        if not (isinstance(member, type) and issubclass(member, BaseModel)):
            raise AssertionError(f"{union.__name__} has a member {member!r} that is not a model")
        field = member.model_fields.get("type")
        tag = typing.get_args(field.annotation) if field is not None else ()
        if (field is None or typing.get_origin(field.annotation) is not typing.Literal
                or len(tag) != 1 or not isinstance(tag[0], str)):
            raise AssertionError(f"{union.__name__} member {member.__name__} has no literal `type` tag"
                                 f" ({field.annotation if field is not None else 'no field'})")
        if tag[0] in members:
            raise AssertionError(f"{union.__name__}: tag {tag[0]!r} is on {members[tag[0]].__name__}"
                                 f" and {member.__name__}")
        members[tag[0]] = member
    return members


def check_examples(document: dict) -> int:
    client_names = client_message_names(document)
    unions = (client_message_schema.ClientMessage, server_message_schema.ServerMessage)
    members = {union: union_members(union) for union in unions}
    # Every member of both unions must have an example that parses as that member.
    unparsed = {(union.__name__, member.__name__)
                for union in unions for member in members[union].values()}
    parsed = 0
    for name, message in document["components"]["messages"].items():
        union = (client_message_schema.ClientMessage if name in client_names
                 else server_message_schema.ServerMessage)
        for example in message["examples"]:
            payload = example["payload"]
            member = members[union].get(payload["type"])
            if member is None:
                raise AssertionError(f"{name} example {example['name']}: no member of "
                                     f"{union.__name__} has the tag {payload['type']!r}")
            # The member first: pydantic reports a failed union with one error per member.
            try:
                member.model_validate_json(json.dumps(payload))
            except ValidationError as error:
                raise AssertionError(f"{name} example {example['name']} is not a valid "
                                     f"{member.__name__}:\n{error}") from None
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
            # The tag alone decides: the same message with an unknown tag is rejected.
            expect_rejected(union, {**payload, "type": "no_such_type"},
                            f"{name} example {example['name']} with an unknown type")
            unparsed.discard((union.__name__, name))
            parsed += 1
    if unparsed:
        raise AssertionError("no example of spec/asyncapi.json parsed as "
                             + ", ".join(f"{u}.{m}" for u, m in sorted(unparsed)))
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
