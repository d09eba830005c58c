"""The loopback fallback's fault proxy: one listening port per ordered validator pair.

Where network namespaces are unavailable (not root), every validator reaches each peer
through its own port here, so a link can be faulted in one direction only. The harness
writes the faults to a JSON file that this process re-reads when it changes:

    {"routes": [{"src": "validator-0", "dst": "validator-1", "listen": 41001,
                 "target": 41101}, ...],
     "blocked": [["validator-0", "validator-1"], ...],    # src may not reach dst
     "delay": {"validator-2": [80, 40]},                  # ms, jitter ms, on its links
     "loss": {"validator-3": 10}}                         # percent of chunks stalled

A blocked link is a black hole (connections are accepted and never answered, as a
dropped packet would look), not a refusal; lifting the block closes those connections.
Loss on a TCP stream shows as retransmission stalls, so a "lost" chunk is held 200 ms.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
from pathlib import Path
from typing import Any

LOSS_STALL_S = 0.2
CHUNK = 65536


class Faults:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.mtime = 0
        self.rules: dict[str, Any] = {}
        self.changed = asyncio.Event()

    def reload(self) -> bool:
        try:
            mtime = self.path.stat().st_mtime_ns
            if mtime == self.mtime:
                return False
            self.rules = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return False
        self.mtime = mtime
        return True

    def blocked(self, src: str, dst: str) -> bool:
        return [src, dst] in self.rules.get("blocked", [])

    def link_delay(self, src: str, dst: str) -> float:
        total = 0.0
        for name in (src, dst):
            ms, jitter = self.rules.get("delay", {}).get(name, [0, 0])
            total += max(0.0, ms + random.uniform(-jitter, jitter)) / 1000
        loss = max(self.rules.get("loss", {}).get(n, 0) for n in (src, dst))
        if loss and random.uniform(0, 100) < loss:
            total += LOSS_STALL_S
        return total


async def pump(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    faults: Faults,
    link: tuple[str, str],
) -> None:
    try:
        while data := await reader.read(CHUNK):
            while faults.blocked(*link):
                await asyncio.sleep(0.1)
            delay = faults.link_delay(*link)
            if delay:
                await asyncio.sleep(delay)
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def serve_route(route: dict[str, Any], faults: Faults) -> asyncio.Server:
    link = (route["src"], route["dst"])
    live: set[asyncio.StreamWriter] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        live.add(writer)
        try:
            while faults.blocked(*link):  # black hole: hold the connection, answer nothing
                await asyncio.sleep(0.1)
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", route["target"])
        except OSError:
            writer.close()
            live.discard(writer)
            return
        await asyncio.gather(
            pump(reader, up_writer, faults, link), pump(up_reader, writer, faults, link)
        )
        live.discard(writer)

    async def cut_on_block() -> None:
        while True:
            await faults.changed.wait()
            if faults.blocked(*link):
                for w in list(live):
                    w.transport.abort()

    server = await asyncio.start_server(handle, "127.0.0.1", route["listen"])
    asyncio.get_running_loop().create_task(cut_on_block())
    return server


async def main(path: Path) -> None:
    faults = Faults(path)
    faults.reload()
    servers = [await serve_route(r, faults) for r in faults.rules["routes"]]
    print("proxy ready", flush=True)
    while True:
        await asyncio.sleep(0.1)
        if faults.reload():
            faults.changed.set()
            faults.changed.clear()
    for server in servers:  # pragma: no cover - killed by the harness
        server.close()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
