"""Remote servers that misbehave, on loopback: for the delivery engine's and the SMTP client's tests and the bench.

    with SilentServer("127.0.0.9", port) as silent:      # accepts TCP, never says a word
        ...
        silent.connections                                # how many clients it holds
    with ScriptedServer("127.0.0.9", port, tarpit_greeting) as server:   # a coroutine per connection
        ...
    with LatencyProxy("127.0.0.5", port, ("127.0.0.11", sink_port), rtt_ms=50):   # every byte half an RTT late
        ...

Each runs its own asyncio loop in a thread and stops (closing every connection) when the block ends.
"""

import asyncio
import threading


class _LoopServer:
    """An asyncio TCP server in a thread of its own; subclasses give ``handle(reader, writer)``."""

    def __init__(self, host, port):
        self.host = host
        self.port = port
        self.connections = 0
        self._loop = None
        self._stop = None
        self._thread = None
        self._writers = set()

    def __enter__(self):
        ready = threading.Event()
        failure = []

        async def serve():
            self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
            try:
                server = await self.listen()
            except OSError as error:
                failure.append(error)
                ready.set()
                return
            ready.set()
            await self._stop.wait()
            server.close()
            for writer in list(self._writers):
                writer.transport.abort()

        self._thread = threading.Thread(
            target=asyncio.run, args=(serve(),), daemon=True, name=f"{type(self).__name__}-{self.host}"
        )
        self._thread.start()
        ready.wait(10)
        if failure:
            self._thread.join(10)
            raise failure[0]
        return self

    def __exit__(self, *exc_info):
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    async def listen(self):
        """Serve in the running loop (a caller with a loop of its own uses this instead of ``with``)."""
        return await asyncio.start_server(self._accept, self.host, self.port, backlog=1024, reuse_address=True)

    async def _accept(self, reader, writer):
        self.connections += 1
        self._writers.add(writer)
        try:
            await self.handle(reader, writer)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._writers.discard(writer)
            writer.transport.abort()

    async def handle(self, reader, writer):
        raise NotImplementedError


class SilentServer(_LoopServer):
    """Accepts every connection and never greets: the client waits for its own timeout."""

    async def handle(self, reader, writer):
        await reader.read()


class ScriptedServer(_LoopServer):
    """Runs ``script(reader, writer)`` (a coroutine function) for each connection."""

    def __init__(self, host, port, script):
        super().__init__(host, port)
        self.script = script

    async def handle(self, reader, writer):
        await self.script(reader, writer)


class LatencyProxy(_LoopServer):
    """Forwards to ``target`` (host, port), every chunk delivered half a round trip after it arrived, in both
    directions, and the server's first bytes a whole round trip after the connection (the TCP handshake): a
    remote server ``rtt_ms`` away, on loopback. Pipelined commands keep their overlap."""

    def __init__(self, host, port, target, rtt_ms):
        super().__init__(host, port)
        self.target = target
        self.one_way = rtt_ms / 2000.0

    async def handle(self, reader, writer):
        upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        self._writers.add(upstream_writer)
        try:
            await asyncio.gather(
                self._pump(reader, upstream_writer, 0.0), self._pump(upstream_reader, writer, 2 * self.one_way)
            )
        finally:
            self._writers.discard(upstream_writer)
            upstream_writer.transport.abort()

    async def _pump(self, reader, writer, hold_first):
        loop = asyncio.get_running_loop()
        queue = asyncio.Queue()
        not_before = loop.time() + hold_first

        async def read():
            while data := await reader.read(65536):
                queue.put_nowait((loop.time() + self.one_way, data))
            queue.put_nowait((loop.time() + self.one_way, b""))

        reading = asyncio.ensure_future(read())
        try:
            while True:
                due, data = await queue.get()
                delay = max(due, not_before) - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                if not data:
                    writer.transport.abort()
                    return
                writer.write(data)
                await writer.drain()
        finally:
            reading.cancel()
