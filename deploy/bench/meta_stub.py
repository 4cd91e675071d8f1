#!/usr/bin/env python3
"""A WhatsApp Cloud API stand-in for the I/O-bound benchmark: answers every POST .../messages after
--delay seconds with Meta's success body, over HTTP/1.1 keep-alive. Prints "READY <port>" when listening and
"COUNT <n>" on SIGTERM. Standard library only."""

import argparse
import asyncio
import json
import signal
import sys

count = 0


async def handle(reader, writer, delay):
    global count
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if length:
                await reader.readexactly(length)
            await asyncio.sleep(delay)
            count += 1
            body = json.dumps({
                "messaging_product": "whatsapp",
                "contacts": [{"input": "2250707000001", "wa_id": "2250707000001"}],
                "messages": [{"id": f"wamid.BENCH{count:012d}"}],
            }).encode()
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
                         % (len(body), body))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--delay", type=float, default=0.1)
    args = ap.parse_args()
    server = await asyncio.start_server(lambda r, w: handle(r, w, args.delay), "127.0.0.1", 0, backlog=1024)
    print(f"READY {server.sockets[0].getsockname()[1]}", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    print(f"COUNT {count}", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
