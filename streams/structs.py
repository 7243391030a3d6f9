"""The runtime's message types and roles, shared by every stage so that no stage imports a later
one: an input message as consumed, what the continuity guard admits, a dead letter, what one batch
did, and the two outward roles (where outputs go, where states are kept)."""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from detectors.records import Invalid

TP = Any
"""faust.types.TP: a (topic, partition) named tuple."""


class InMessage(NamedTuple):
    """An input message as the consumer saw it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: float | None = None
    """When the broker appended it (epoch seconds), for the processing-time histogram."""


@dataclass(slots=True)
class Admitted:
    """What to score now, which Faust events to ack after, and the holes to report after."""

    messages: list[InMessage] = field(default_factory=list)
    events: list[Any] = field(default_factory=list)
    holes: list[tuple[TP, int, int]] = field(default_factory=list)
    """(tp, first, last) offsets Faust never delivered, now scored or known not to exist."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message, or one element of an array message, that cannot be scored."""

    message: InMessage
    value: bytes
    """What goes to the dead-letter topic: the whole message, or the failing element."""
    error: Invalid
    index: int | None
    """The element's index in an array message; None for the whole message."""


@dataclass(slots=True)
class BatchReport:
    """What one batch did (for metrics, the demo and tests)."""

    scored: int = 0
    replayed: int = 0
    dead: int = 0
    events: int = 0


class Sink(Protocol):
    """Where output messages go; `send` enqueues and returns the acknowledgement to await."""

    async def send(
        self, topic: str, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]] | None
    ) -> Awaitable[Any]: ...

    async def send_many(
        self, topic: str, messages: Sequence[tuple[bytes, bytes]]
    ) -> list[Awaitable[Any]]:
        """Keyed messages without headers, in order per key; the acknowledgements to await."""
        ...


class StateStore(Protocol):
    """Per-source snapshots (JSON bytes), keyed by source; writes return their acknowledgement."""

    def get(self, key: bytes) -> bytes | None: ...

    def put(self, key: bytes, value: bytes, partition: int) -> Awaitable[Any]: ...

    def keys(self) -> list[bytes]: ...

    def delete(self, key: bytes) -> Awaitable[Any]: ...


class Acker(Protocol):
    """Tells the consumer that input is done with, once the state covering it is saved."""

    async def ack(self, events: Sequence[Any], holes: Sequence[tuple[TP, int, int]]) -> None: ...
