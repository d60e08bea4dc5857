"""The messages between the LoadGen process and its endpoint workers: FrameReader reads what Connection.send_bytes
wrote (several messages per read, a message split over reads, large ones), never blocks, and reports the end."""

from __future__ import annotations

import socket
import threading
from multiprocessing.connection import Connection

from harness.backends.endpoint.messages import FrameReader, receive, send


def _pair() -> tuple[Connection, Connection]:
    ours, theirs = socket.socketpair()
    return Connection(ours.detach()), Connection(theirs.detach())


def _read_until(reader: FrameReader, count: int) -> list[object]:
    got: list[object] = []
    while len(got) < count:
        messages = reader.read()
        assert messages is not None
        got += messages
    return got


def test_many_messages_in_one_read_and_none_waiting_returns_at_once() -> None:
    ours, theirs = _pair()
    reader = FrameReader(ours)
    assert reader.read() == []  # nothing sent: no blocking
    for k in range(50):
        send(theirs, ("results", k))
    assert _read_until(reader, 50) == [("results", k) for k in range(50)]
    reader.close()
    send(ours, ("run", [1]))  # the connection is still open and blocking for sends after the reader let go
    assert receive(theirs) == ("run", [1])


def test_a_large_message_split_over_reads_arrives_whole() -> None:
    ours, theirs = _pair()
    reader = FrameReader(ours)
    big = ("results", bytes(range(256)) * 20_000)  # 5 MB: several reads; sent from a thread (the buffer is smaller)
    sender = threading.Thread(target=lambda: [send(theirs, big), send(theirs, ("beat", None))])
    sender.start()
    assert _read_until(reader, 2) == [big, ("beat", None)]
    sender.join()


def test_the_other_end_closing_ends_the_reader_after_what_was_sent() -> None:
    ours, theirs = _pair()
    reader = FrameReader(ours)
    send(theirs, ("stopped", None))
    theirs.close()
    assert _read_until(reader, 1) == [("stopped", None)]
    assert reader.read() is None
