"""Pydantic models of the Tidewire v1 protocol, and the two helpers a client needs around a
WebSocket: `encode` for the requests it sends, `parse_server_message` for the frames it
receives.

The modules `tidewire_protocol.client` (requests) and `tidewire_protocol.server` (replies and
pushes) are generated at build time by datamodel-code-generator from the package variant of
spec/schema (clients/package_schemas.py): a request refuses members it does not define
(`extra='forbid'`), a server message ignores them (TW-CORE-6), and `ServerMessage` is a union
discriminated by `type`.
"""

from pydantic import BaseModel

from ._protocol import SUBPROTOCOL
from .client import ClientMessage
from .server import ServerMessage

__all__ = ["SUBPROTOCOL", "ClientMessage", "ServerMessage", "encode", "parse_server_message"]


def encode(message: BaseModel) -> str:
    """The JSON text of a request, ready to send as one text frame.

    Unset optional members are left out rather than written as `null` (an optional member is
    absent on the wire), and members are written under their wire names (`_id`)."""
    return message.model_dump_json(by_alias=True, exclude_none=True)


def parse_server_message(frame: str | bytes) -> BaseModel:
    """Parses a received text frame as the server message its `type` names.

    Raises `pydantic.ValidationError` for a frame that is not JSON or not valid by the schema
    of its `type`; because the union is discriminated, the errors are those of that one
    message, not one per message type."""
    return ServerMessage.model_validate_json(frame).root
