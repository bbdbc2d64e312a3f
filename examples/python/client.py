"""A minimal Tidewire client: connects, watches a collection, creates a record in it,
prints the change event the watch delivers, and exits 0.

    python client.py ws://127.0.0.1:PORT/v1 [TOKEN]

The message models, `encode` and `parse_server_message` come from the package
tidewire-protocol (see docs/clients.md); the WebSocket client is the `websockets` package.
"""

import asyncio
import os
import sys
import time

from websockets.asyncio.client import connect

from tidewire_protocol import SUBPROTOCOL, encode, parse_server_message
from tidewire_protocol.client import Auth, Create, Watch
from tidewire_protocol.server import (
    Authenticated,
    Change,
    Created,
    ErrorMessage,
    Watching,
    Welcome,
)

TIMEOUT_S = 10.0
DATABASE = "examples"
COLLECTION = "notes"


async def run(url: str, token: str | None) -> None:
    # A fresh id per run, so that the change printed is the one this run caused.
    record_id = f"py-{os.getpid()}-{time.time_ns()}"
    watch = Watch(id="watch-1", database=DATABASE, collection=COLLECTION)
    async with connect(url, subprotocols=[SUBPROTOCOL]) as socket:
        if socket.subprotocol != SUBPROTOCOL:
            raise RuntimeError(f"the server selected subprotocol {socket.subprotocol!r}")

        async def send(message) -> None:
            await socket.send(encode(message))

        created = changed = False
        async for frame in socket:
            # Validated against the schema of its `type`: a ValidationError names what is wrong.
            message = parse_server_message(frame)
            match message:
                case Welcome():
                    print(f"connected to {message.server.name} {message.server.version} "
                          f"({message.protocol})")
                    if message.auth.mode.value == "required" and message.auth.principal is None:
                        if token is None:
                            raise RuntimeError("the server requires authentication: pass a token")
                        await send(Auth(id="auth-1", token=token))
                    else:
                        await send(watch)
                case Authenticated():
                    print(f"authenticated as {message.principal}")
                    await send(watch)
                case Watching():
                    print(f"watching {DATABASE}.{COLLECTION} as subscription {message.subscription}")
                    await send(Create(
                        id="create-1",
                        database=DATABASE,
                        collection=COLLECTION,
                        record={"_id": record_id, "text": "hello from Python"},
                    ))
                case Created():
                    print(f"created {message.record.field_id}: "
                          f"{message.record.model_dump_json(by_alias=True)}")
                    created = True
                case Change() if message.event.document_key.field_id == record_id:
                    print(f"change: {message.event.model_dump_json(exclude_none=True, by_alias=True)}")
                    changed = True
                case ErrorMessage():
                    raise RuntimeError(f"{message.error.code.value}: {message.error.message}")
            if created and changed:
                return
        raise RuntimeError("the connection closed before the change event")


def main() -> int:
    url = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("TIDEWIRE_URL", "ws://127.0.0.1:8080/v1")
    token = sys.argv[2] if len(sys.argv) > 2 else os.environ.get("TIDEWIRE_TOKEN")
    try:
        asyncio.run(asyncio.wait_for(run(url, token), TIMEOUT_S))
    except TimeoutError:
        print(f"error: no change event within {TIMEOUT_S} s", file=sys.stderr)
        return 1
    except Exception as err:  # noqa: BLE001 - report any failure as the exit status
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
