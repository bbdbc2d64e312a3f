#!/usr/bin/env python3
"""Writes the seed inputs of the fuzz targets that read text, from the
specification's examples and the suites in fixtures/. Run from the repository
root; the fuzzers grow and `cargo fuzz cmin` shrinks the corpus from there."""

import glob
import hashlib
import json
import os
import re
import struct

ROOT = os.getcwd()
OUT = os.path.join(ROOT, "fuzz", "corpus")


def write(target, data):
    if isinstance(data, str):
        data = data.encode()
    directory = os.path.join(OUT, target)
    os.makedirs(directory, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data)


def masked_frame(opcode, payload, fin=True, key=b"\x01\x02\x03\x04"):
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack(">H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack(">Q", n)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


suites = sorted(glob.glob(os.path.join(ROOT, "fixtures", "*.json")))
frames, filters = [], []
for path in suites:
    with open(path) as f:
        suite = json.load(f)
    for case in suite["cases"]:
        for step in case["steps"]:
            if step["step"] != "send":
                continue
            if "json" in step:
                frames.append(json.dumps(step["json"], separators=(",", ":")))
                for key in ("filter", "pipeline"):
                    if key in step["json"]:
                        filters.append(json.dumps(step["json"][key], separators=(",", ":")))
            elif "text" in step:
                frames.append(step["text"])
            elif "text_hex" in step:
                frames.append(bytes.fromhex(step["text_hex"]))

spec = open(os.path.join(ROOT, "spec", "PROTOCOL.md")).read()
for block in re.findall(r"```json client[^\n]*\n(.*?)```", spec, re.S):
    frames.append(block.strip())

# One seed per distinct message shape keeps the corpus small.
seen = set()
for frame in frames:
    raw = frame.encode() if isinstance(frame, str) else frame
    try:
        shape = repr(json.loads(raw).get("type")), tuple(sorted(json.loads(raw)))
    except Exception:
        shape = raw
    if shape in seen:
        continue
    seen.add(shape)
    write("client_frame", raw)
    fragmented = masked_frame(0x1, raw[: len(raw) // 2], fin=False) + masked_frame(0x0, raw[len(raw) // 2 :])
    write("ws_frames", masked_frame(0x1, raw) + masked_frame(0x9, b"hi") + masked_frame(0x1, raw))
    write("ws_frames", fragmented)
write("ws_frames", masked_frame(0x2, b"\x00\x01"))
write("ws_frames", masked_frame(0x1, b"\xff\xfe"))
write("ws_frames", masked_frame(0x1, b"x" * 300))
write("ws_frames", masked_frame(0x8, struct.pack(">H", 1000) + b"bye"))

for text in sorted(set(filters))[:150]:
    write("filter_json", text)
for block in re.findall(r"```json\n(\{.*?\}|\[.*?\])\n```", spec[spec.index("## 15. The filter language"):], re.S):
    write("filter_json", block)

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
for head in [
    f"GET /v1 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: tidewire.v1\r\n\r\n",
    f"GET /v1?token=a%2Bb+c&x=1 HTTP/1.1\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer abc\r\n\r\n\x81\x85\x01\x02\x03\x04ping!",
    "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
    "GET /stats HTTP/1.0\r\n\r\n",
    "POST /v1 HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
    "GET /v1 HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\nSec-WebSocket-Version: 8\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: x\r\n",
]:
    write("http_head", head)

# Small suites: each case of the fixtures on its own, for the shortest ones.
cases = []
for path in suites:
    with open(path) as f:
        suite = json.load(f)
    for case in suite["cases"]:
        cases.append(json.dumps({"description": "seed", "cases": [case]}, indent=1))
for text in sorted(cases, key=len)[:40]:
    write("suite", text)
write("suite", '{"cases": [{"id": "x", "steps": [{"step": "send", "json": {"type": "ping"}}]}]}')


def server_frame(opcode, payload, fin=True):
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([n])
    else:
        head += bytes([126]) + struct.pack(">H", n)
    return head + payload


welcome = json.dumps({
    "type": "welcome", "protocol": "tidewire.v1", "connection_id": "c1",
    "server": {"name": "fuzz", "version": "0"}, "profiles": ["core"], "heartbeat_ms": 30000,
    "limits": {"max_message_bytes": 1048576, "max_nesting_depth": 32, "max_subscriptions": 100,
               "outbound_queue": 1000},
    "auth": {"mode": "off"},
}).encode()
pong = b'{"type":"pong","id":"p1"}'
close = server_frame(0x8, struct.pack(">H", 1000))
write("engine_frames", server_frame(0x1, welcome) + server_frame(0x1, pong) + server_frame(0x1, pong) + close)
write("engine_frames", server_frame(0x1, welcome) + server_frame(0x9, b"x") + server_frame(0x1, pong) + close)
write("engine_frames", server_frame(0x1, welcome[:40], fin=False) + server_frame(0x0, welcome[40:]) + close)
write("engine_frames", server_frame(0x1, b'{"type":"heartbeat","at":"2026-01-01T00:00:00Z"}') + server_frame(0x1, welcome))
write("engine_frames", server_frame(0x2, b"\x00") + close)
for block in re.findall(r"```json server[^\n]*\n(.*?)```", spec, re.S)[:20]:
    write("engine_frames", server_frame(0x1, welcome) + server_frame(0x1, json.dumps(json.loads(block)).encode()) + close)
