"""When sources are saved and how far the input may be committed meanwhile (unit tier, pure)."""

from __future__ import annotations

from typing import Any, NamedTuple

from detectors.records import Origin
from streams.saves import HeldInput, SaveBook


class TP(NamedTuple):
    topic: str
    partition: int


class Message(NamedTuple):
    topic: str
    partition: int
    offset: int


class Event(NamedTuple):
    """What the agent's stream hands over: a Faust event has its message."""

    message: Message


def event(partition: int, offset: int, topic: str = "signals") -> Event:
    return Event(Message(topic, partition, offset))


def at(partition: int, offset: int, topic: str = "signals") -> Origin:
    return Origin(topic, partition, offset)


def test_the_commit_floor_is_the_first_unsaved_record_of_each_partition() -> None:
    book = SaveBook(interval=60.0)
    book.mark("slow", at(0, 5), now=0.0)
    book.mark("busy", at(0, 3), now=0.0)
    book.mark("busy", at(0, 7), now=0.0)
    book.mark("busy", at(1, 2), now=0.0)  # one source under several keys: two partitions
    book.mark("other", at(1, 4), now=0.0)
    assert book.floors() == {("signals", 0): 3, ("signals", 1): 2}
    assert book.take(["busy"]) == [("busy", 1)]  # saved to the partition of its latest record
    assert book.floors() == {("signals", 0): 5, ("signals", 1): 4}
    book.mark("slow", at(0, 2), now=1.0)  # a re-read below its first unsaved record lowers it
    assert book.floors()[("signals", 0)] == 2
    book.take(["slow", "other"])
    assert book.floors() == {} and len(book) == 0
    book.mark("slow", at(0, 9), now=2.0)  # unsaved again: a new floor, not the old one
    assert book.floors() == {("signals", 0): 9}


def test_a_source_is_due_when_its_oldest_unsaved_record_is_old_or_it_has_enough() -> None:
    book = SaveBook(interval=5.0, records=3)
    book.mark("a", at(0, 0), now=0.0)
    book.mark("b", at(0, 1), now=1.0)
    for offset in (2, 3, 4):
        book.mark("c", at(0, offset), now=2.0)
    book.mark("a", at(0, 5), now=4.0)  # more records do not make it younger
    assert sorted(book.due(now=3.0)) == ["c"]
    assert sorted(book.due(now=5.0)) == ["a", "c"]
    assert sorted(book.due(now=6.0)) == ["a", "b", "c"]
    assert sorted(book.due(now=0.0, everything=True)) == ["a", "b", "c"]
    book.take(["a", "b", "c"])
    book.mark("c", at(0, 6), now=6.5)
    assert book.due(now=11.0) == []  # unsaved since 6.5: due at 11.5, or after 3 records
    assert book.due(now=11.5) == ["c"]


def test_interval_zero_saves_every_changed_source_at_every_checkpoint() -> None:
    book = SaveBook(interval=0.0)
    book.mark("a", at(0, 0), now=10.0)
    assert book.due(now=10.0) == ["a"]


def test_held_input_is_released_in_order_and_only_below_its_partitions_floor() -> None:
    held = HeldInput()
    hole = (TP("signals", 0), 4, 5)
    held.hold([event(0, o) for o in (2, 3, 6, 7)] + [event(1, 0)], [hole])
    assert len(held) == 6
    events, holes = held.release({("signals", 0): 5, ("signals", 1): 0})
    assert [e.message.offset for e in events] == [2, 3] and holes == []
    events, holes = held.release({("signals", 0): 7})  # partition 1 has no floor: all of it
    assert sorted((e.message.partition, e.message.offset) for e in events) == [(0, 6), (1, 0)]
    assert holes == [hole]
    held.hold([event(0, 1)], [])  # a re-read below what is held stays behind it
    assert held.release({("signals", 0): 7}) == ([], [])
    events, _ = held.release(None)  # a forced save: everything
    assert [e.message.offset for e in events] == [7, 1] and len(held) == 0


def test_nothing_at_or_after_a_floor_is_ever_released() -> None:
    import random

    rng = random.Random(7)
    book, held = SaveBook(interval=3.0, records=4), HeldInput()
    released: list[Any] = []
    unsaved_offsets: dict[str, list[int]] = {}
    for offset in range(400):
        source = f"s{rng.randrange(6)}"
        book.mark(source, at(0, offset), now=offset / 10)
        unsaved_offsets.setdefault(source, []).append(offset)
        held.hold([event(0, offset)], [])
        if offset % 7 == 0:
            for name, _ in book.take(book.due(now=offset / 10)):
                unsaved_offsets.pop(name, None)
            events, _ = held.release(book.floors())
            released.extend(e.message.offset for e in events)
            lowest = min((o for v in unsaved_offsets.values() for o in v), default=None)
            assert lowest is None or max(released, default=-1) < lowest
    assert released == sorted(released) == list(range(len(released)))


def test_a_record_whose_message_is_old_already_makes_its_source_due_at_once() -> None:
    # A replay after a crash (or a backlog): saved at the first checkpoint, so workers that
    # crash again within the interval still move the commit on.
    book = SaveBook(interval=5.0)
    book.mark("replayed", at(0, 0), now=100.0, old=True)
    book.mark("live", at(0, 1), now=100.0)
    assert book.due(now=100.0) == ["replayed"]
    book.take(["replayed"])
    book.mark("replayed", at(0, 2), now=100.5)
    assert book.due(now=101.0) == []
