"""A saved conversation: the chat the page shows plus the model state that holds it.

The page persists these bytes (Cache API, keyed by the model) so a reload can restore
the conversation and continue it exactly, without evaluating the history again:

    magic "PYLLMCHAT\\0" | u32 format version | u32 header length | header (JSON:
    model name, model identity, messages, snapshot sizes) | runner snapshot
    (GGMLRunner.save_state) | the generation API's extra snapshots, if any

A recurrent model cannot roll its state back, so the generation API keeps a few
snapshots of earlier prompts (app/generate/sequence.py); they are saved too, so a
restored chat reuses them exactly as the uninterrupted one would.

The runner snapshot carries its own version, model identity and sha256 (runner.py);
this wrapper adds what the page needs to redraw the chat and checks the cheap things
first, so a wrong or damaged file is refused before any model memory is touched.
"""
from __future__ import annotations

import json
import struct
from typing import Any

from ..backends.ggml.runner import SnapshotError

CHAT_MAGIC = b"PYLLMCHAT\0"
CHAT_VERSION = 1


def pack_chat_state(model_name: str, identity: str, messages: list[dict], snapshot: bytes,
                    extras: list[bytes] = ()) -> bytes:
    header = json.dumps({"model": model_name, "identity": identity,
                         "messages": [{"role": str(m["role"]), "content": str(m["content"])} for m in messages],
                         "sizes": [len(snapshot)] + [len(e) for e in extras]},
                        separators=(",", ":"), ensure_ascii=False).encode()
    return b"".join([CHAT_MAGIC, struct.pack("<II", CHAT_VERSION, len(header)), header, snapshot, *extras])


def unpack_chat_state(data: bytes | bytearray | memoryview, identity: str
                      ) -> tuple[dict[str, Any], memoryview, list[memoryview]]:
    """(header, runner snapshot, extra snapshots) of a saved chat for the model with
    `identity`; raises SnapshotError naming what is wrong (not a saved chat, another
    version, another model, truncated). The snapshots' own checks run when loaded."""
    view = memoryview(bytes(data))
    head = len(CHAT_MAGIC) + 8
    if len(view) < head or bytes(view[:len(CHAT_MAGIC)]) != CHAT_MAGIC:
        raise SnapshotError("not a saved conversation (bad magic or too short)")
    version, header_len = struct.unpack_from("<II", view, len(CHAT_MAGIC))
    if version != CHAT_VERSION:
        raise SnapshotError(f"saved conversation format version {version} is not supported (this runtime "
                            f"reads version {CHAT_VERSION})")
    if head + header_len > len(view):
        raise SnapshotError("saved conversation is truncated (its header is cut off)")
    try:
        header = json.loads(bytes(view[head:head + header_len]))
        messages = [{"role": str(m["role"]), "content": str(m["content"])} for m in header["messages"]]
        saved_identity, model = str(header["identity"]), str(header.get("model", "?"))
        sizes = [int(n) for n in header["sizes"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise SnapshotError(f"saved conversation header is malformed: {exc}") from None
    if saved_identity != identity:
        raise SnapshotError(f"this conversation was saved with another model ({model}); load that model to "
                            f"restore it")
    body = view[head + header_len:]
    if not sizes or min(sizes) < 0 or sum(sizes) != len(body):
        raise SnapshotError(f"saved conversation is truncated or damaged: {len(body)} bytes of model state, "
                            f"its header says {sum(sizes)}")
    parts, at = [], 0
    for n in sizes:
        parts.append(body[at:at + n])
        at += n
    return {"model": model, "identity": saved_identity, "messages": messages}, parts[0], parts[1:]
