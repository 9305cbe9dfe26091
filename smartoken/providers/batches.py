"""A provider's stream, read by read: ``Provider.stream`` yields the chunks one upstream read
brought in one list, so that the relay writes them to the client in one write."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing

from smartoken.providers import shape
from smartoken.providers.base import JSON, UpstreamError

# Makes the chunks of one event payload, appending them to the read's list; True when the
# payload ends the stream ([DONE], message_stop).
Take = Callable[[bytes, list[JSON]], bool]


async def batched(reads: AsyncGenerator[list[bytes], None], take: Take, name: str,
                  end: str) -> AsyncGenerator[list[JSON], None]:
    """For each read (a list of event payloads), the chunks ``take`` made of it (never an
    empty list). A failure raised by ``take`` comes after the chunks made before it in the
    same read, so that they still reach the client and are billed. Each chunk is checked
    (``shape.chunk``): one of a shape nobody documented, or an event ``take`` could not read
    (an upstream's bug or an attack), is a protocol ``UpstreamError``, never a crash of the
    relay. Reads ending before ``take`` saw the ``end`` event raise a ``cut``. ``reads`` is
    closed when the iteration stops, however it stops."""
    async with aclosing(reads):
        async for payloads in reads:
            batch: list[JSON] = []
            failure: UpstreamError | None = None
            checked = 0
            try:
                for payload in payloads:
                    ended = take(payload, batch)
                    while checked < len(batch):
                        shape.chunk(batch[checked], name)
                        checked += 1
                    if ended:
                        if batch:
                            yield batch
                        return
            except UpstreamError as exc:
                failure = exc
            except Exception as exc:  # the upstream's bytes, read by our code
                failure = shape.unreadable(name, exc)
            del batch[checked:]  # what came before the failure goes out, not what failed
            if batch:
                yield batch
            if failure is not None:
                raise failure
    raise UpstreamError(f"{name}: stream ended without {end}", kind="cut")
