"""An asyncio event loop on a daemon thread, for engines whose API is async (TensorRT-LLM, vLLM, HTTP servers)."""

from __future__ import annotations

import asyncio
import threading

__all__ = ["start_loop_thread", "stop_loop_thread"]


def start_loop_thread(name: str) -> tuple[asyncio.AbstractEventLoop, threading.Thread]:
    """A new event loop running forever on a daemon thread called `name`; returns once the loop runs."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(ready.set)
        loop.run_forever()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    ready.wait()
    return loop, thread


def stop_loop_thread(loop: asyncio.AbstractEventLoop | None, thread: threading.Thread | None,
                     timeout_s: float = 30.0) -> None:
    """Stop the loop, wait for its thread (at most timeout_s), and close the loop once it has stopped."""
    if loop is not None and not loop.is_closed():
        loop.call_soon_threadsafe(loop.stop)
    if thread is not None:
        thread.join(timeout=timeout_s)
    if loop is not None and not loop.is_running() and not loop.is_closed():
        loop.close()
