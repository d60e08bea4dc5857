"""The messages between the LoadGen process and its endpoint client workers: how they travel (one pickle per message,
no per-message pickler set-up) and the results batch a worker fills, whose ids and tokens travel as packed arrays.

Packed arrays because the LoadGen process reads them with numpy without a Python object per token or per request
(LoadGen's int32 buffer is built from them directly), and a worker fills them at C speed from the int32 arrays the
SSE reader makes. Imports neither numpy nor LoadGen (the worker process imports this module).
"""

from __future__ import annotations

import pickle
import socket
import struct
from array import array
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

__all__ = ["FrameReader", "ResultBatch", "receive", "send"]

_READ_BYTES = 1 << 20  # one read takes up to this much; more waiting wakes the reader's selector again
_LENGTH = struct.Struct("!i")  # multiprocessing.connection's frame header: the payload's length, big-endian
_LONG_LENGTH = struct.Struct("!Q")  # after a header of -1: a payload of 2 GiB or more


def send(conn: Connection, message: Any) -> None:
    """Send one message (OSError when the other end is gone)."""
    conn.send_bytes(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))


def receive(conn: Connection) -> Any:
    """Receive one message (EOFError or OSError when the other end is gone)."""
    return pickle.loads(conn.recv_bytes())


class FrameReader:
    """Reads whatever messages have arrived on a connection with one system call, without blocking: the LoadGen
    process's reader wakes once for many messages instead of polling and reading each (two reads and a poll apiece).

    Parses the frames multiprocessing.connection.Connection.send_bytes writes (a 4-byte big-endian length, or -1 and
    an 8-byte one, then the payload). Reads the connection's socket with MSG_DONTWAIT, which leaves it blocking for
    the connection's sends; the connection keeps owning the socket (close() lets go of it without closing it).
    """

    def __init__(self, conn: Connection) -> None:
        self.socket = socket.socket(fileno=conn.fileno())
        self.socket.settimeout(None)  # blocking, whatever socket.setdefaulttimeout says: the sends rely on it
        self.pending = bytearray()

    def fileno(self) -> int:
        """For selectors."""
        return self.socket.fileno()

    def read(self) -> list[Any] | None:
        """The messages complete so far (maybe none); None once the other end has closed (EOFError or OSError
        included), after the complete messages before it were returned by earlier calls."""
        try:
            chunk = self.socket.recv(_READ_BYTES, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return []
        except OSError:
            return None
        if not chunk:
            return None
        pending = self.pending
        pending += chunk
        messages, at, end = [], 0, len(pending)
        with memoryview(pending) as view:
            while end - at >= 4:
                size, = _LENGTH.unpack_from(view, at)
                start = at + 4
                if size == -1:
                    if end - start < 8:
                        break
                    size, = _LONG_LENGTH.unpack_from(view, start)
                    start += 8
                if end - start < size:
                    break
                messages.append(pickle.loads(view[start:start + size]))
                at = start + size
        del pending[:at]
        return messages

    def close(self) -> None:
        """Let go of the socket (the connection closes it)."""
        self.socket.detach()


class ResultBatch:
    """What a worker found in one or more loop turns: first tokens, completions (ids packed end to end) and failures.

    Travels as `("results", first ids, first tokens, final ids, final lengths, final tokens, failures)`: the ids and
    lengths as the bytes of int64 arrays, the tokens as the bytes of int32 arrays (native byte order: both processes
    run on one host), the failures as (request id, one-line reason) pairs.
    """

    __slots__ = ("failures", "final_ids", "final_lengths", "final_tokens", "first_ids", "first_tokens")

    def __init__(self) -> None:
        self.first_ids = array("q")
        self.first_tokens = array("i")
        self.final_ids = array("q")
        self.final_lengths = array("q")
        self.final_tokens = array("i")
        self.failures: list[tuple[int, str]] = []

    def __bool__(self) -> bool:
        return bool(self.first_ids or self.final_ids or self.failures)

    def first(self, request_id: int, token: int) -> None:
        """A request's first token."""
        self.first_tokens.append(token)  # first: a token that is not int32 raises OverflowError, nothing appended
        self.first_ids.append(request_id)

    def final(self, request_id: int, ids: Sequence[int]) -> None:
        """A request's generated ids (an int32 array is copied as bytes; anything else is converted first, so that
        ids that are not int32 integers raise TypeError or OverflowError with the batch unchanged)."""
        packed = ids if isinstance(ids, array) and ids.typecode == "i" else array("i", ids)
        self.final_ids.append(request_id)
        self.final_lengths.append(len(packed))
        self.final_tokens.extend(packed)

    def failure(self, request_id: int, reason: str) -> None:
        """A request failed."""
        self.failures.append((request_id, reason))

    def merge(self, later: ResultBatch) -> None:
        """Append a later batch (order kept)."""
        self.first_ids.extend(later.first_ids)
        self.first_tokens.extend(later.first_tokens)
        self.final_ids.extend(later.final_ids)
        self.final_lengths.extend(later.final_lengths)
        self.final_tokens.extend(later.final_tokens)
        self.failures.extend(later.failures)

    def message(self) -> tuple[Any, ...]:
        """The message that carries it."""
        return ("results", self.first_ids.tobytes(), self.first_tokens.tobytes(), self.final_ids.tobytes(),
                self.final_lengths.tobytes(), self.final_tokens.tobytes(), self.failures)
