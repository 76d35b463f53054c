"""The little HTTP/1.1 the benches' model servers speak: keep-alive, JSON bodies, no parsing beyond the header.
Servers this small cost the bench's measurements next to nothing."""

from __future__ import annotations

import asyncio


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """(header, body) of the next request on the connection; IncompleteReadError when the client is gone."""
    header = await reader.readuntil(b"\r\n\r\n")
    length = next(
        (int(line.split(b":", 1)[1]) for line in header.split(b"\r\n") if line.lower().startswith(b"content-length:")),
        0,
    )
    return header, (await reader.readexactly(length) if length else b"")


def json_response(body: bytes, status: str = "200 OK") -> bytes:
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Connection: keep-alive\r\n\r\n"
    ).encode() + body
