"""What the autoencoder costs when it serves: per window in onnxruntime, and per record in the
stream's scorer. Apart from the SKAB runner because they measure serving, not detection."""

from __future__ import annotations

import time

import numpy as np

from detectors.autoencoder import OnnxAutoencoder
from detectors.engine import ScoringConfig
from detectors.offline import scorer_for
from detectors.records import Record
from detectors.source_state import SourceState


def stream_cost(model: OnnxAutoencoder, sources: int = 100, steps: int = 220) -> float:
    """Microseconds per record the autoencoder adds to the stream's scorer: the same records
    (`sources` sources with the model's signals, micro-batches of 2,000 records) scored with
    and without the model, everything included (windows, inference, imputation, messages)."""
    rng = np.random.default_rng(1)
    spec = model.spec
    values = rng.standard_normal((steps, sources, len(spec.signals))) * spec.scale + spec.center
    recs = [
        Record(
            f"s{j}", 1e9 + i, str(i), dict(zip(spec.signals, values[i, j].tolist(), strict=True))
        )
        for i in range(steps)
        for j in range(sources)
    ]
    best = {False: float("inf"), True: float("inf")}
    for _ in range(3):  # the difference of two similar figures: take each one's best of three
        for with_model in (False, True):
            scorer = scorer_for(model if with_model else None, ScoringConfig())
            states: dict[str, SourceState] = {}
            scorer.score_batch(recs[: 20 * sources], states)  # past the first-value paths
            started = time.perf_counter()
            for a in range(20 * sources, len(recs), 2000):
                scorer.score_batch(recs[a : a + 2000], states)
            spent = (time.perf_counter() - started) / (len(recs) - 20 * sources) * 1e6
            best[with_model] = min(best[with_model], spent)
    return best[True] - best[False]


def serving_cost(model: OnnxAutoencoder, sources: int = 256) -> float:
    """Microseconds per record for the autoencoder's part of a micro-batch: one window per
    source per record, batched across sources as the stream does."""
    rng = np.random.default_rng(0)
    k, w = len(model.spec.signals), model.spec.window
    windows = rng.standard_normal((sources, w, k)) * model.spec.scale + model.spec.center
    observed = np.ones(windows.shape, dtype=bool)
    model.errors(windows, observed)
    started = time.perf_counter()
    rounds = 20
    for _ in range(rounds):
        model.errors(windows, observed)
    return (time.perf_counter() - started) / (rounds * sources) * 1e6
