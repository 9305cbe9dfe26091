"""``python -m bench.floor --port P --upstream URL``: the floor of a Python relay.

uvicorn (uvloop + httptools, as ``smartoken serve``) and one pooled aiohttp session: the body is
posted to the upstream's chat completions URL as it came, and the answer is relayed back as it
arrives (streamed chunk by chunk for SSE); paths under ``/paced/`` go to ``--paced``. No
authentication, validation, token counting, budget, routing, accounting or logging: what any
Python gateway on this stack pays at least.
"""

from __future__ import annotations

import argparse
from typing import Any

import aiohttp
import uvicorn

Scope = dict[str, Any]


class Floor:
    def __init__(self, upstream: str, paced: str | None = None) -> None:
        self.upstream = upstream.rstrip("/") + "/chat/completions"
        self.paced = (paced or upstream).rstrip("/") + "/chat/completions"
        self.session: aiohttp.ClientSession | None = None

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    self.session = aiohttp.ClientSession(
                        connector=aiohttp.TCPConnector(limit=0),
                        cookie_jar=aiohttp.DummyCookieJar())
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    if self.session is not None:
                        await self.session.close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        assert self.session is not None
        url = self.paced if scope["path"].startswith("/paced/") else self.upstream
        async with self.session.post(url, data=body, headers={
                "content-type": "application/json",
                "authorization": "Bearer upstream-secret"}) as resp:
            await send({"type": "http.response.start", "status": resp.status, "headers": [
                (b"content-type", resp.headers.get("content-type", "application/json").encode())]})
            async for chunk in resp.content.iter_any():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--upstream", required=True, help="the upstream's base URL (…/v1)")
    ap.add_argument("--paced", help="another upstream, for paths under /paced/")
    args = ap.parse_args()
    uvicorn.run(Floor(args.upstream, args.paced), host="127.0.0.1", port=args.port, loop="uvloop",
                http="httptools", log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
