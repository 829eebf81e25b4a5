#!/usr/bin/env python3
"""A login flood beside a chat load, to see what it costs the chat.

Sixteen source addresses (127.0.0.10 to 127.0.0.25), four clients each, log
in with random names and a wrong password as fast as answers come, while
one genuine login (a bot provisioned with `haven-loadtest provision`) is
tried from 127.0.0.1 every half second. Prints how each was answered.

Run it against a server that `haven-loadtest chat --url ...` is loading,
and compare the chat's round trip with and without it:

    python3 loadtest/login-flood.py 127.0.0.1 PORT SECONDS BOT_PASSWORD
"""

import asyncio
import collections
import json
import random
import sys


async def login(host, port, source, name, password):
    try:
        reader, writer = await asyncio.open_connection(host, port, local_addr=(source, 0))
        body = json.dumps({"name": name, "password": password})
        writer.write(
            (
                "POST /api/v1/login HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                f"content-length: {len(body)}\r\nconnection: close\r\n\r\n{body}"
            ).encode()
        )
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), 30)
        writer.close()
        return int(line.split()[1])
    except (OSError, ValueError, IndexError, asyncio.TimeoutError):
        return 0


async def main(host, port, seconds, password):
    flood, genuine = collections.Counter(), collections.Counter()
    stop = asyncio.Event()

    async def flooder(source):
        while not stop.is_set():
            name = f"guess{random.randrange(10**9)}"
            flood[await login(host, port, source, name, "wrong-password-123")] += 1

    async def real():
        while not stop.is_set():
            genuine[await login(host, port, "127.0.0.1", "lt-bot-0", password)] += 1
            await asyncio.sleep(0.5)

    tasks = [asyncio.create_task(flooder(f"127.0.0.{h}")) for h in range(10, 26) for _ in range(4)]
    tasks.append(asyncio.create_task(real()))
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    print("flood answered:", dict(flood), "genuine answered:", dict(genuine))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]))
