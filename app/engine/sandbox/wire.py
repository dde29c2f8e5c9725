"""Frames on the socket between the engine and a worker: a length header, JSON, raw arrays.

A frame is an 8-byte header (the JSON length and the binary length, little-endian), a JSON
document, then the binary part: numpy arrays laid end to end, which the JSON describes.
Only the engine sends binary parts (candle rows); a worker's frames are JSON alone.

The engine reads a worker's frames with `receive` (never `pickle`, never a blocking read
without a watchdog) and writes with `send`, on the event loop: the socket is non-blocking,
and whenever it has nothing to read (or no room to write) `wait` is called, which raises
when the worker has died or stalled, before the loop waits for the socket at most `poll`
seconds; so a worker that sends half a frame and hangs is treated like a stuck one, and no
thread waits on a worker (a thread that wakes to read an answer takes the interpreter lock
from the engine's stages). A header announcing more than the limit is refused before
anything else is read. JSON is parsed strictly: no NaN or Infinity.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

HEADER = struct.Struct("<II")


class FrameError(ValueError):
    """A frame that is not what the protocol allows: too large, truncated, or not JSON."""


def frame(message: Any, arrays: Sequence[np.ndarray] = ()) -> bytes:
    """One frame: `message` as compact JSON, then `arrays` as raw bytes in their order."""
    document = json.dumps(message, separators=(",", ":")).encode()
    blobs = [np.ascontiguousarray(array) for array in arrays]
    header = HEADER.pack(len(document), sum(blob.nbytes for blob in blobs))
    return b"".join([header, document, *(blob.data for blob in blobs)])


def _refuse_constant(name: str) -> None:
    raise FrameError(f"{name} is not allowed")


def parse_json(document: bytes | memoryview) -> Any:
    """Strict JSON: UTF-8, no NaN or Infinity; any other problem is a `FrameError`."""
    try:
        return json.loads(bytes(document), parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise FrameError(f"not JSON: {exc}") from None


def _read_exactly(sock: socket.socket, size: int) -> memoryview:
    """Blocking read of `size` bytes; EOFError when the peer closed the socket."""
    buffer = memoryview(bytearray(size))
    read = 0
    while read < size:
        count = sock.recv_into(buffer[read:])
        if not count:
            raise EOFError
        read += count
    return buffer


def read_frame(sock: socket.socket) -> tuple[Any, memoryview]:
    """The next frame from the engine (trusted): its JSON and its binary part."""
    document_size, binary_size = HEADER.unpack(_read_exactly(sock, HEADER.size))
    document = _read_exactly(sock, document_size)
    binary = _read_exactly(sock, binary_size) if binary_size else memoryview(b"")
    return json.loads(bytes(document)), binary


async def _ready(sock: socket.socket, writing: bool, poll: float) -> None:
    """Until `sock` can be written (read), or `poll` seconds have passed."""
    loop = asyncio.get_running_loop()
    woken = loop.create_future()

    def wake() -> None:
        if not woken.done():
            woken.set_result(None)

    fd = sock.fileno()
    if writing:
        loop.add_writer(fd, wake)
    else:
        loop.add_reader(fd, wake)
    timer = loop.call_later(poll, wake)
    try:
        await woken
    finally:
        timer.cancel()
        if writing:
            loop.remove_writer(fd)
        else:
            loop.remove_reader(fd)


async def send(sock: socket.socket, data: bytes, wait: Callable[[], None], poll: float) -> None:
    """Send all of `data` on a non-blocking socket, calling `wait` whenever it is full."""
    view = memoryview(data)
    while view:
        try:
            view = view[sock.send(view) :]
        except BlockingIOError:
            wait()
            await _ready(sock, True, poll)


async def _receive_exactly(
    sock: socket.socket, size: int, wait: Callable[[], None], poll: float
) -> memoryview:
    buffer = memoryview(bytearray(size))
    read = 0
    while read < size:
        try:
            count = sock.recv_into(buffer[read:])
        except BlockingIOError:
            wait()
            await _ready(sock, False, poll)
            continue
        if not count:
            raise EOFError
        read += count
    return buffer


async def receive(sock: socket.socket, limit: int, wait: Callable[[], None], poll: float) -> Any:
    """The next frame from a worker (untrusted): JSON of at most `limit` bytes, no binary."""
    header = await _receive_exactly(sock, HEADER.size, wait, poll)
    document_size, binary_size = HEADER.unpack(header)
    if binary_size:
        raise FrameError("a worker's frame has a binary part")
    if document_size > limit:
        raise FrameError(f"frame of {document_size} bytes is over the limit of {limit}")
    return parse_json(await _receive_exactly(sock, document_size, wait, poll))
