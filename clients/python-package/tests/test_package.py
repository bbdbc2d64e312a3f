"""Tests of the built wheel, run by scripts/check-clients.sh in a fresh virtual environment
that installed it, as a user would:

    python test_package.py

Plain asserts, no test framework: the environment holds the wheel and its dependencies only.
"""

import json
import sys

from pydantic import ValidationError

import tidewire_protocol
from tidewire_protocol import SUBPROTOCOL, encode, parse_server_message
from tidewire_protocol.client import ClientMessage, Create, Read, Watch
from tidewire_protocol.server import Change, Created


def validation_error(build) -> ValidationError:
    """The ValidationError `build()` raises; fails if it raises none."""
    try:
        built = build()
    except ValidationError as error:
        return error
    raise AssertionError(f"no ValidationError: built {built!r}")


CHANGE = {
    "type": "change",
    "subscription": "s1",
    "event": {
        "operation_type": "insert",
        "ns": {"database": "app", "collection": "todos"},
        "document_key": {"_id": "t1"},
        "full_document": {"_id": "t1", "title": "x"},
        "resume_token": "r1",
        "committed_at": "2026-01-24T10:30:00.123Z",
    },
}


def test_requests_refuse_unknown_members() -> None:
    # The typo of issue #19: without `extra='forbid'` this sent {"type":"watch","id":"w1"},
    # which watches every database.
    error = validation_error(lambda: Watch(id="w1", databse="app", colection="todos"))
    assert sorted((e["type"], e["loc"]) for e in error.errors()) == [
        ("extra_forbidden", ("colection",)), ("extra_forbidden", ("databse",))], error
    # The same frame, parsed as a request, is refused too.
    validation_error(lambda: ClientMessage.model_validate(
        {"type": "watch", "id": "w1", "databse": "app", "colection": "todos"}))
    # A nested request object is closed as well.
    validation_error(lambda: Read(id="r1", database="app", collection="todos",
                                  sort=[{"field": "due", "ordr": "asc"}]))
    # Free-form objects stay free-form.
    create = Create(id="c1", database="app", collection="todos",
                    record={"_id": "t1", "title": "write tests"})
    assert json.loads(encode(create))["record"] == {"_id": "t1", "title": "write tests"}


def test_type_is_implied() -> None:
    watch = Watch(id="w1", database="app", collection="todos")
    assert json.loads(encode(watch)) == {
        "type": "watch", "id": "w1", "database": "app", "collection": "todos"}
    # Names are validated as the server validates them.
    validation_error(lambda: Watch(id="w1", database="app.users"))


def test_server_messages_are_open_and_discriminated() -> None:
    change = parse_server_message(json.dumps({**CHANGE, "added_in_a_later_revision": True}))
    assert isinstance(change, Change), change
    assert change.event.document_key.field_id == "t1"
    assert change.event.full_document.field_id == "t1"

    created = parse_server_message('{"type":"created","id":"c1","record":{"_id":"t1","n":2}}')
    assert isinstance(created, Created) and created.record.field_id == "t1", created
    assert created.record.model_dump(by_alias=True) == {"_id": "t1", "n": 2}

    # One malformed member of a `change`: one error, not one per server message type.
    malformed = {**CHANGE, "event": {**CHANGE["event"], "operation_type": "upsert"}}
    error = validation_error(lambda: parse_server_message(json.dumps(malformed)))
    assert error.error_count() == 1, error
    assert error.errors()[0]["loc"] == ("change", "event", "operation_type"), error.errors()

    error = validation_error(lambda: parse_server_message('{"type":"created","id":"c1","record":{}}'))
    assert error.error_count() == 1, error
    error = validation_error(lambda: parse_server_message('{"type":"no_such_type"}'))
    assert error.errors()[0]["type"] == "union_tag_invalid", error


def test_version_follows_the_protocol() -> None:
    from importlib.metadata import version

    major = version("tidewire-protocol").split(".")[0]
    assert SUBPROTOCOL == f"tidewire.v{major}", (SUBPROTOCOL, major)
    assert tidewire_protocol.__all__


def main() -> int:
    tests = [value for name, value in globals().items() if name.startswith("test_")]
    for test in tests:
        test()
    print(f"tidewire-protocol (Python): {len(tests)} tests passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
