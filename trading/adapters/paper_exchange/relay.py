"""One loop both exchange streams run: send what the venue queues while a reader task
handles the client's requests; when the reader ends (the client left), stop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

Item = TypeVar("Item")


async def relay(
    queue: asyncio.Queue[Item],
    reader: asyncio.Task[None],
    send: Callable[[Item], Awaitable[None]],
) -> None:
    """Send each queued item until `reader` finishes; `reader` is cancelled on the way
    out."""
    try:
        while not reader.done():
            getter = asyncio.create_task(queue.get())
            finished, _ = await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
            if getter in finished:
                await send(getter.result())
            else:
                getter.cancel()
    finally:
        reader.cancel()
        with contextlib.suppress(BaseException):
            await reader
