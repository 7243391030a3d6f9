"""The worker's look for records Faust fetched and never delivered, every `TAIL_CHECK` seconds.

Around a rebalance faust 0.15.3 can drop the last records it fetched of a partition that then
goes quiet: no later record reveals the hole (`GapGuard.tails`). While a table restores, the
look is at the restore instead: a changelog partition whose recovery stands still is read again
(`RecoveryWatch`). Broker errors only postpone a look; anything else is the caller's to end on.
"""

from __future__ import annotations

import logging
from typing import Any

from streams.continuity import GapGuard
from streams.faust_compat import RecoveryWatch
from streams.processor import Processor
from streams.state import SourceStates

log = logging.getLogger(__name__)

TAIL_CHECK = 3.0
"""Seconds between looks for records Faust fetched but never delivered (`GapGuard.tails`): a
quiet partition's lost tail is scored within two looks."""

RECOVERY_STALL = 20.0
"""Seconds a changelog partition's recovery may stand still before it is read again."""


class LostTails:
    """One look: the input partitions' ends from the consumer, the lost records scored."""

    def __init__(
        self,
        guard: GapGuard,
        recovery: RecoveryWatch,
        states: SourceStates,
        processor: Processor,
        signals: str,
    ) -> None:
        self.guard, self.recovery, self.states = guard, recovery, states
        self.processor, self.signals = processor, signals

    async def look(self, consumer: Any) -> None:
        """Raises only when the records found could not be scored (the worker must end)."""
        if self.states.restoring:
            try:
                for tp in await self.recovery.look():
                    log.warning("table recovery of %s stopped moving: read it again", tp)
            except Exception as exc:  # the broker is away: Faust's recovery waits for it too
                log.debug("no look at the recovery: %r", exc)
            return
        ends = {}
        for tp in consumer.assignment():
            end = consumer.highwater(tp) if tp.topic == self.signals else None
            if end is not None:
                ends[tp] = end
        if not ends:
            return
        async with self.states.lock:
            if self.states.restoring:
                return
            try:
                admitted = await self.guard.tails(ends)
            except Exception as exc:  # the broker is away or slow: look again later
                log.debug("no look for lost records: %r", exc)
                return
            if admitted.messages or admitted.holes:
                await self.processor.process(admitted.messages)
                await self.states.done(admitted.events, admitted.holes)
