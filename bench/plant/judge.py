"""Events against the plant's labelled anomalies: what a user paged by events would count.

An event is a true page when it falls inside an anomaly (or `GRACE` records after its end) of
its source, else a false page; a caught anomaly's first event names a signal first (the largest
contribution), and that is right when it is the anomaly's culprit.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from bench.plant.generate import SIGNALS, Injection

GRACE = 30
"""Records after an anomaly's end during which an event still belongs to it."""
LOAD_DRIVEN = frozenset(s for s in SIGNALS if s != "temp")
"""A new operating mode moves every load-driven signal: naming any of them is right."""


@dataclass(frozen=True, slots=True)
class Page:
    """One event: its source, record index in the source's series, first signal."""

    source: str
    index: int
    first: str | None


@dataclass(slots=True)
class Tally:
    anomalies: int = 0
    caught: int = 0
    first_right: int = 0
    false_pages: int = 0
    normal_records: int = 0
    delays: list[int] = field(default_factory=list)
    missed: Counter[str] = field(default_factory=Counter)
    wrong_first: Counter[str] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)
    caught_kinds: Counter[str] = field(default_factory=Counter)

    def __iadd__(self, other: Tally) -> Tally:
        for name in ("anomalies", "caught", "first_right", "false_pages", "normal_records"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.delays += other.delays
        for name in ("missed", "wrong_first", "kinds", "caught_kinds"):
            getattr(self, name).update(getattr(other, name))
        return self

    @property
    def recall(self) -> float:
        return self.caught / self.anomalies if self.anomalies else 0.0

    @property
    def false_per_10k(self) -> float:
        return 1e4 * self.false_pages / self.normal_records if self.normal_records else 0.0

    @property
    def first_share(self) -> float:
        return self.first_right / self.caught if self.caught else 0.0


def right_signal(inj: Injection, first: str | None) -> bool:
    if inj.kind == "new_mode":
        return first in LOAD_DRIVEN
    return first == inj.signal


def judge(injections: list[Injection], pages: list[Page], records: dict[str, range]) -> Tally:
    """`records`: per source, the indexes scored in the test part."""
    tally = Tally()
    inside: dict[str, list[Injection]] = {}
    for inj in injections:
        inside.setdefault(inj.source, []).append(inj)
    first_page: dict[Injection, Page] = {}
    for page in pages:
        hit = next(
            (
                inj
                for inj in inside.get(page.source, [])
                if inj.start <= page.index < inj.end + GRACE
            ),
            None,
        )
        if hit is None:
            tally.false_pages += 1
        elif hit not in first_page or page.index < first_page[hit].index:
            first_page[hit] = page
    for source, span in records.items():
        covered = sum(
            len(range(max(inj.start, span.start), min(inj.end + GRACE, span.stop)))
            for inj in inside.get(source, [])
        )
        tally.normal_records += len(span) - covered
    for inj in injections:
        tally.anomalies += 1
        tally.kinds[inj.kind] += 1
        found = first_page.get(inj)
        if found is None:
            tally.missed[inj.kind] += 1
            continue
        tally.caught += 1
        tally.caught_kinds[inj.kind] += 1
        tally.delays.append(found.index - inj.start)
        if right_signal(inj, found.first):
            tally.first_right += 1
        else:
            tally.wrong_first[f"{inj.kind}:{found.first}"] += 1
    return tally
