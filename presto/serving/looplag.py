"""How far behind its schedule a worker's event loop runs.

Every answer the loop writes itself (cache hits, refusals) waits for the loop, and the loop
shares the interpreter lock with the WSGI threads: while a flood keeps every thread
rendering menus nobody cached, the loop gets the lock a fraction of the time and even
cache hits wait. Admission reads the lag measured here to stop handing such a flood more
threads (`--shed-loop-lag`).
"""

from __future__ import annotations

import asyncio
import collections

# Seconds between two samples: how soon a lag is seen, and ended.
INTERVAL = 0.01
# Samples in a row that must all run late: one late wake-up (the process descheduled on a
# busy machine, a garbage collection) is not a loop that cannot keep up.
SUSTAINED = 3


class LoopLag:
    """The running loop's sustained lag: the least of how much later than asked each of
    the last `SUSTAINED` short sleeps ended."""

    def __init__(self) -> None:
        self._samples: collections.deque[float] = collections.deque([0.0], maxlen=SUSTAINED)
        self._task: asyncio.Task[None] | None = None

    @property
    def seconds(self) -> float:
        return min(self._samples)

    def start(self) -> None:
        """Sample the running loop until it stops."""
        self._task = asyncio.get_running_loop().create_task(self._sample(), name="loop-lag")

    async def _sample(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            asked = loop.time() + INTERVAL
            await asyncio.sleep(INTERVAL)
            self._samples.append(max(0.0, loop.time() - asked))
