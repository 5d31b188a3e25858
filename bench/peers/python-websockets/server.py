"""Benchmark peer: a broadcast relay on Python's websockets (asyncio API).

The idiom of websockets' broadcast guide: a set of connected clients and
websockets' broadcast(), which writes to every client without waiting on any
(so a slow client only grows its own write buffer). Library defaults
otherwise, keepalive pings included.
"""

import asyncio
import os
import signal
import sys

from websockets.asyncio.server import broadcast, serve
from websockets.exceptions import ConnectionClosedError

CLIENTS = set()


async def relay(websocket):
    CLIENTS.add(websocket)
    try:
        async for message in websocket:
            if isinstance(message, str):  # only text is relayed
                broadcast(CLIENTS, message)
    except ConnectionClosedError:
        pass  # a client vanishing without a close frame is routine under load
    finally:
        CLIENTS.remove(websocket)


async def main():
    port = int(os.environ.get("PORT", "5100"))
    # websockets alone enables permessage-deflate by default; no other peer
    # compresses, so this one must not either for the comparison to hold.
    async with serve(relay, "127.0.0.1", port, compression=None) as server:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, server.close)
        port = server.sockets[0].getsockname()[1]
        print(f"listening on 127.0.0.1:{port}", file=sys.stderr, flush=True)
        await server.wait_closed()


if __name__ == "__main__":
    asyncio.run(main())
