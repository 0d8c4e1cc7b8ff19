"""Go's GOCACHEPROG protocol (``cmd/go/internal/cacheprog``), as plain functions on bytes.

go writes one JSON request per line; a ``put`` with ``BodySize`` > 0 is followed by a line
holding the body as a base64 JSON string. ``[]byte`` fields (ActionID, OutputID) are base64 in
JSON. The program first writes its ``KnownCommands`` (ID 0), then one response per request, in
any order, matched by ``ID``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from typing import BinaryIO

KNOWN_COMMANDS = ("get", "put", "close")


class ProtocolError(Exception):
    """go sent something that is not a request of the protocol."""


@dataclass(frozen=True)
class Request:
    id: int
    command: str
    action: str = ""      # hex
    output: str = ""      # hex
    body: bytes = b""


def hello() -> bytes:
    return encode({"ID": 0, "KnownCommands": list(KNOWN_COMMANDS)})


def encode(response: dict[str, object]) -> bytes:
    return json.dumps(response, separators=(",", ":")).encode() + b"\n"


def _hex_field(doc: dict[str, object], name: str) -> str:
    value = doc.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ProtocolError(f"{name} is not base64")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise ProtocolError(f"{name} is not base64") from None
    if len(raw) != 32:
        raise ProtocolError(f"{name} is {len(raw)} bytes, not 32")
    return raw.hex()


def read_request(stream: BinaryIO) -> Request | None:
    """The next request from go, with its body; None at end of input."""
    line = stream.readline()
    while line and not line.strip():
        line = stream.readline()
    if not line:
        return None
    try:
        doc = json.loads(line)
    except ValueError:
        raise ProtocolError("a request line is not JSON") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("ID"), int) or not isinstance(doc.get("Command"), str):
        raise ProtocolError("a request without ID and Command")
    size = doc.get("BodySize") or 0
    if not isinstance(size, int) or size < 0:
        raise ProtocolError("BodySize is not a size")
    body = b""
    if size > 0:
        raw = stream.readline()
        while raw and not raw.strip():  # go ends the JSON object with two newlines
            raw = stream.readline()
        try:
            text = json.loads(raw)
            body = base64.b64decode(text, validate=True)
        except (ValueError, TypeError, binascii.Error):
            raise ProtocolError("a put body is not a base64 JSON string") from None
        if len(body) != size:
            raise ProtocolError(f"a put body has {len(body)} bytes, BodySize says {size}")
    return Request(id=doc["ID"], command=doc["Command"], action=_hex_field(doc, "ActionID"),
                   output=_hex_field(doc, "OutputID"), body=body)


def check_output(output: str, body: bytes) -> bool:
    """True when ``output`` (hex) is the sha256 of ``body``, as go computes an OutputID."""
    return hashlib.sha256(body).hexdigest() == output


def hit(req_id: int, output: str, size: int, disk_path: str) -> dict[str, object]:
    return {"ID": req_id, "OutputID": base64.b64encode(bytes.fromhex(output)).decode(), "Size": size,
            "DiskPath": disk_path}


def miss(req_id: int) -> dict[str, object]:
    return {"ID": req_id, "Miss": True}


def stored(req_id: int, disk_path: str) -> dict[str, object]:
    return {"ID": req_id, "DiskPath": disk_path}


def failed(req_id: int, message: str) -> dict[str, object]:
    return {"ID": req_id, "Err": message}
