"""What the worker is doing, as one JSON document for `/status` and `anomstream status`.

The document is built in the event loop, from the live state, every `STATUS_INTERVAL` seconds
(an app timer), and handed to the metrics server whole: the HTTP thread only encodes the last
one, it never reads a state another thread is changing. Building it stays cheap: the warming
sources are counted but only `WARMING_LISTED` are described, and which model serves how many
sources is recounted at most `COUNT_RATE` lookups per second.

The worker also logs here one line per model it starts serving (name, version, sources,
signals); refusals and quarantines are logged where they happen (`detectors.models`,
`detectors.model_verdicts`).
"""

from __future__ import annotations

import heapq
import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Iterable
from collections.abc import Set as AbstractSet
from typing import Any

import numpy as np

from detectors.engine import Scorer
from detectors.models import ModelBook
from detectors.source_state import SourceState
from streams.metrics import Metrics
from streams.settings import Settings
from streams.state import SourceStates

log = logging.getLogger(__name__)

STATUS_INTERVAL = 1.0
"""Seconds between two status documents."""
WARMING_LISTED = 20
"""Warming sources described one by one (by name order); the others are only counted."""
COUNT_RATE = 10_000
"""Model lookups per second, at most, to count the sources each model serves: with 100,000
sources held the counts are 10 s old at worst, and the loop spends ~1.5 ms per second on them."""


def warm_up_needs(state: SourceState, scorer: Scorer) -> dict[str, int]:
    """Signal -> values it still needs before it stops holding its source in warm-up (signals
    that hold nothing back are left out), most needed first.

    Mirrors `detectors.fusion.fuse_step`: a signal holds the source while a fused detector that
    is not a late starter has calibrated fewer than `warmup` values of it."""
    plan = scorer.plan
    warmup = float(scorer.config.warmup)
    if not state.signals:
        return {}
    calibrations = state.calibrations
    learnt = [
        np.asarray(calibrations[kind]["n"], dtype=float)
        for d, kind in enumerate(plan.kinds)
        if d != plan.rarity and not plan.late_start[d]
    ]
    if not learnt:
        return {}
    fewest = np.min(np.stack(learnt), axis=0)
    needs = {
        name: math.ceil(warmup - fewest[i])
        for i, name in enumerate(state.signals)
        if fewest[i] < warmup
    }
    return dict(sorted(needs.items(), key=lambda item: (-item[1], item[0])))


class StatusReporter:
    """Builds the status document from the worker's own objects and publishes it to `metrics`.

    `partitions` is set by the app at each assignment (None until the first one)."""

    def __init__(
        self,
        settings: Settings,
        states: SourceStates,
        models: ModelBook,
        metrics: Metrics,
        notes: Iterable[str] = (),
        listed: int = WARMING_LISTED,
        count_rate: int = COUNT_RATE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.states = states
        self.models = models
        self.metrics = metrics
        self.listed = listed
        self.count_rate = count_rate
        self.clock = clock
        self.partitions: list[int] | None = None
        self.notes = list(notes)
        """Start-up warnings worth repeating (the idempotence fallback)."""
        kafka = settings.kafka
        self._fixed: dict[str, Any] = {
            "app_id": kafka.app_id,
            "broker": kafka.bootstrap_servers,
            "topic": kafka.topic_signals,
            "producer_idempotence": kafka.producer_idempotence,
        }
        self._served: Counter[str] = Counter()
        self._counted: float | None = None
        self._logged: dict[str, str] = {}
        """Directory -> label of the model last logged as served from it."""

    # -- the live state (read in the event loop only) -----------------------------------------

    def _held(self) -> AbstractSet[str]:
        return self.states.held

    def _live(self, source: str) -> SourceState | None:
        return self.states.live(source)

    # -- the document --------------------------------------------------------------------------

    def publish(self) -> None:
        self.metrics.publish_status(self.build())

    def build(self) -> dict[str, Any]:
        held = self._held()
        warming = self.metrics.warming_sources
        listed = []
        for source in heapq.nsmallest(self.listed, warming):
            state = self._live(source)
            if state is None:
                continue
            needs = warm_up_needs(state, self.states.scorer)
            listed.append(
                {
                    "source": source,
                    "records": state.records,
                    "needs": max(needs.values(), default=0),
                    "signals": needs,
                }
            )
        lag = self.metrics.lag
        assigned = self.partitions
        return {
            **self._fixed,
            "notes": list(self.notes),
            "partitions": None if assigned is None else sorted(assigned),
            "consumer_lag": (
                None
                if assigned is None or not any(p in lag for p in assigned)
                else {str(p): lag[p] for p in sorted(assigned) if p in lag}
            ),
            "sources": {
                "held": len(held),
                "max": self.states.max_sources,
                "warming": len(warming),
                "warming_listed": listed,
                "warming_truncated": len(warming) > len(listed),
            },
            "models": {
                "loaded": self._loaded(held),
                "refused": [
                    {"directory": name, "reason": why}
                    for name, why in sorted(self.models.errors.items())
                ],
            },
        }

    def _loaded(self, held: AbstractSet[str]) -> list[dict[str, Any]]:
        now = self.clock()
        every = max(1.0, len(held) / max(self.count_rate, 1))
        if self._counted is None or now - self._counted >= every:
            found = (self.models.for_source(source) for source in held)
            self._served = Counter(m.spec.label for m in found if m is not None)
            self._counted = now
        return [
            {
                "directory": directory,
                "name": model.spec.name,
                "version": model.spec.version,
                "signals": list(model.spec.signals),
                "sources": list(model.spec.sources),
                "sources_served": self._served.get(model.spec.label, 0),
            }
            for directory, model in sorted(self.models.models.items())
        ]

    # -- the log -------------------------------------------------------------------------------

    def note_models(self) -> None:
        """One log line per model the worker starts serving (new, or reloaded as another
        version); the served counts are recounted at the next document."""
        served = {name: model.spec.label for name, model in self.models.models.items()}
        for directory, label in sorted(served.items()):
            if self._logged.get(directory) == label:
                continue
            spec = self.models.models[directory].spec
            log.info(
                "model %s %s (directory %s) serves sources %s with signals %s",
                spec.name,
                spec.version,
                directory,
                ", ".join(spec.sources),
                ", ".join(spec.signals),
            )
        if served != self._logged:
            self._counted = None
        self._logged = served
