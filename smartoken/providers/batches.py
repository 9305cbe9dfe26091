"""A provider's stream, read by read: ``Provider.stream`` yields the chunks one upstream read
brought in one list, so that the relay writes them to the client in one write."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing

from smartoken.providers.base import JSON, UpstreamError

# Makes the chunks of one event payload, appending them to the read's list; True when the
# payload ends the stream ([DONE], message_stop).
Take = Callable[[bytes, list[JSON]], bool]


async def batched(reads: AsyncGenerator[list[bytes], None], take: Take,
                  unfinished: str) -> AsyncGenerator[list[JSON], None]:
    """For each read (a list of event payloads), the chunks ``take`` made of it (never an
    empty list). A failure raised by ``take`` comes after the chunks made before it in the
    same read, so that they still reach the client and are billed; the reads ending before
    ``take`` saw the end raise ``UpstreamError(unfinished, kind="cut")``. ``reads`` is closed
    when the iteration stops, however it stops."""
    async with aclosing(reads):
        async for payloads in reads:
            batch: list[JSON] = []
            try:
                for payload in payloads:
                    if take(payload, batch):
                        if batch:
                            yield batch
                        return
            except UpstreamError:
                if batch:
                    yield batch
                raise
            if batch:
                yield batch
    raise UpstreamError(unfinished, kind="cut")
