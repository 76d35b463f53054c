"""How many requests a client keeps in flight: additive increase, multiplicative decrease (AIMD).

A server that times out or answers 429 is full: resending into its queue only makes more work it will never
finish (a serial llama.cpp server keeps computing a request its client gave up on). So a timeout or a 429
halves the in-flight limit (at least 1; once for all the requests that were already in flight when it
happened, as TCP does per window), and every `limit` answers in a row raise it by one, up to the
`--concurrency` bound it started at.
"""

from __future__ import annotations

import asyncio
import contextlib


class AdaptiveLimit:
    """An asyncio gate whose width follows AIMD between 1 and `upper`. One instance per event loop."""

    def __init__(self, upper: int, start: float | None = None) -> None:
        self.upper = upper
        self.limit = float(upper) if start is None else max(1.0, min(float(upper), start))
        self.in_flight = 0
        self.lowest = int(self.limit)  # the narrowest the gate has been: reported, and asserted by tests
        self._epoch = 0  # bumped at each decrease; a request sent before it does not decrease again
        self._changed = asyncio.Condition()

    @contextlib.asynccontextmanager
    async def slot(self):
        async with self._changed:
            await self._changed.wait_for(lambda: self.in_flight < int(self.limit))
            self.in_flight += 1
        try:
            yield self._epoch
        finally:
            async with self._changed:
                self.in_flight -= 1
                self._changed.notify_all()

    def answered(self) -> None:
        """An answer came back in time: widen by 1/limit (so by one per full window of answers)."""
        self.limit = min(float(self.upper), self.limit + 1.0 / max(1.0, self.limit))

    def congested(self, sent_in_epoch: int) -> None:
        """A timeout or a 429 for a request sent in `sent_in_epoch` (what `slot` yielded): halve the width."""
        if sent_in_epoch != self._epoch:
            return
        self._epoch += 1
        self.limit = max(1.0, self.limit / 2)
        self.lowest = min(self.lowest, int(self.limit))
