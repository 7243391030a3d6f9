"""The worker's periodic look for lost tails (`streams.tails.LostTails`), with stand-ins for
the broker side: which partitions it asks about, what it scores, and what only postpones it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.structs import TopicPartition

from streams.structs import Admitted, InMessage
from streams.tails import LostTails

SIGNALS = "signals"


class Consumer:
    def __init__(self, ends: dict[TopicPartition, int | None]) -> None:
        self.ends = ends

    def assignment(self) -> set[TopicPartition]:
        return set(self.ends)

    def highwater(self, tp: TopicPartition) -> int | None:
        return self.ends[tp]


class Guard:
    def __init__(self, found: Admitted | Exception) -> None:
        self.found = found
        self.asked: list[dict[TopicPartition, int]] = []

    async def tails(self, ends: dict[TopicPartition, int]) -> Admitted:
        self.asked.append(dict(ends))
        if isinstance(self.found, Exception):
            raise self.found
        return self.found


class Recovery:
    def __init__(self) -> None:
        self.looks = 0

    async def look(self) -> list[Any]:
        self.looks += 1
        return []


class States:
    def __init__(self, restoring: bool = False) -> None:
        self.restoring, self.lock = restoring, asyncio.Lock()
        self.done_with: list[tuple[list[Any], list[Any]]] = []

    async def done(self, events: list[Any], holes: list[Any]) -> None:
        self.done_with.append((events, holes))


class Processor:
    def __init__(self) -> None:
        self.scored: list[list[InMessage]] = []

    async def process(self, messages: list[InMessage]) -> None:
        self.scored.append(messages)


def looker(guard: Guard, states: States) -> tuple[LostTails, Recovery, Processor]:
    recovery, processor = Recovery(), Processor()
    tails = LostTails(guard, recovery, states, processor, SIGNALS)  # type: ignore[arg-type]
    return tails, recovery, processor


IN0, IN1 = TopicPartition(SIGNALS, 0), TopicPartition(SIGNALS, 1)
MESSAGE = InMessage(SIGNALS, 0, 7, b"pump-1", b"{}", None)
ENDS: dict[TopicPartition, int | None] = {IN0: 8, IN1: None, TopicPartition("changelog", 0): 5}


def test_it_asks_about_the_input_partitions_with_an_end_and_scores_what_was_lost() -> None:
    guard, states = Guard(Admitted([MESSAGE], ["ev"], [(IN0, 7, 7)])), States()
    tails, recovery, processor = looker(guard, states)
    asyncio.run(tails.look(Consumer(ENDS)))
    assert guard.asked == [{IN0: 8}]
    assert processor.scored == [[MESSAGE]]
    assert states.done_with == [(["ev"], [(IN0, 7, 7)])]
    assert recovery.looks == 0


def test_while_restoring_it_looks_at_the_recovery_only() -> None:
    guard, states = Guard(Admitted([MESSAGE])), States(restoring=True)
    tails, recovery, processor = looker(guard, states)
    asyncio.run(tails.look(Consumer(ENDS)))
    assert recovery.looks == 1 and guard.asked == [] and processor.scored == []


def test_a_broker_error_postpones_the_look_and_scores_nothing() -> None:
    guard, states = Guard(ConnectionError("broker away")), States()
    tails, _, processor = looker(guard, states)
    asyncio.run(tails.look(Consumer(ENDS)))
    assert guard.asked and processor.scored == [] and states.done_with == []


def test_records_that_cannot_be_scored_end_the_look_with_the_error() -> None:
    class Failing(Processor):
        async def process(self, messages: list[InMessage]) -> None:
            raise RuntimeError("store down")

    guard, states = Guard(Admitted([MESSAGE])), States()
    tails = LostTails(guard, Recovery(), states, Failing(), SIGNALS)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError):
        asyncio.run(tails.look(Consumer(ENDS)))
