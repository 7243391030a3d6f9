"""What flows into the scorer: validated records with their provenance."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple


class Origin(NamedTuple):
    """Where a record was read: lets consumers drop duplicates and the state skip replays."""

    topic: str
    partition: int
    offset: int
    item: int = 0
    """Position inside a message that carried a JSON array of records."""


@dataclass(frozen=True, slots=True)
class Record:
    """One timestamped multi-signal record of one source. `None` = missing value."""

    source: str
    ts: float
    """Event time, epoch seconds."""
    ts_text: str
    """Event time as given (RFC 3339), echoed in the outputs."""
    signals: dict[str, float | None]
    origin: Origin | None = None


class Invalid(ValueError):
    """Why a message or record cannot be scored: a short `reason` (a metric label) and a detail."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
