"""`anomstream evaluate`: a model and a labelled CSV -> metrics.json and plots.

It scores the file the way the stream would (univariate suite + autoencoder + fusion, through
`detectors.offline`), and reports the fused verdict and the autoencoder's own verdict side by
side, so a user sees what the model adds; and it judges the anomaly events the stream would page
with (`detectors.offline.events`): false pages, runs caught, delay, culprit. With validation
rules, each rule's figures too (`training.evaluate_rules`); rule events are not counted among
the pages judged, so the detectors' figures stay those of a run without rules. No TensorFlow
here: evaluation needs only onnxruntime.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from detectors.autoencoder import OnnxAutoencoder, sequence_scores
from detectors.csvdata import Table
from detectors.engine import ScoringConfig
from detectors.offline import culprit, events, score_records, scorer_for
from detectors.results import Scored
from detectors.rules import RuleBook
from training import metrics, plots
from training.evaluate_rules import rule_report


@dataclass(frozen=True, slots=True)
class Evaluation:
    report: dict[str, Any]
    scored: list[Scored]
    events: dict[int, dict[str, Any]]
    """The stream's events, by row."""


def evaluate(
    table: Table,
    model: OnnxAutoencoder,
    config: ScoringConfig,
    out: Path,
    from_row: int = 0,
    rules: RuleBook | None = None,
) -> Evaluation:
    """Score, compare with the labels from `from_row` on, write metrics.json and the plots;
    with `rules`, each rule's figures under `rules` in the report."""
    if table.labels is None:
        raise ValueError("evaluation needs labels (--label-col or --labels)")
    missing = [s for s in model.spec.signals if s not in table.signals]
    if missing:
        raise ValueError(f"the file lacks the model's signal(s) {', '.join(missing)}")
    if not 0 <= from_row < len(table):
        raise ValueError(f"--from-row {from_row} is outside the file's {len(table)} rows")
    strangers = sorted({c for c in table.culprits or () if c} - set(model.spec.signals))
    if strangers:
        raise ValueError(
            f"the culprit column names {', '.join(strangers[:3])}: not a signal of the model "
            f"({', '.join(model.spec.signals)})"
        )
    scored = score_records(scorer_for(model, config, rules=rules), table.records())
    score = np.array([r.score for r in scored])
    flagged = np.array([r.is_anomaly for r in scored])
    # the model's own verdict, as the stream computed it (imputation, masks, late records)
    p_model = np.array([np.nan if r.model_p is None else r.model_p for r in scored])
    cols = [table.signals.index(s) for s in model.spec.signals]
    values = table.values[:, cols]
    _, per_signal = sequence_scores(model, np.where(np.isnan(values), model.spec.center, values))
    part = slice(from_row, None)
    labels = table.labels
    found = {i: e for i, e in events(scored, config).items() if e["kind"] == "score"}
    counted = [i for i in found if i >= from_row]
    report: dict[str, Any] = {
        "model": model.label,
        "data": str(table.path),
        "from_row": from_row,
        "target_fap": config.target_fap,
        "fused": metrics.report(labels[part], score[part], flagged[part]),
        "autoencoder": metrics.report(
            labels[part], np.nan_to_num(1.0 - p_model[part]), p_model[part] <= config.target_fap
        ),
        "events": metrics.event_report(
            labels[part],
            np.asarray(counted, dtype=np.int64) - from_row,
            table.times[part],
            None if table.culprits is None else table.culprits[part],
            None if table.culprits is None else [culprit(found[i]) for i in counted],
        ),
    }
    if rules is not None:
        report["rules"] = rule_report(rules, scored[part], labels[part])
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    plots.plot_result(
        table.times,
        score,
        config.threshold,
        flagged,
        out / "result.png",
        labels=labels,
        title=f"{model.label} on {table.path.name}: fused score",
        warming=np.array([r.warming_up for r in scored]),
        from_row=from_row,
        events=list(found),
    )
    plots.plot_signal_errors(
        table.times, per_signal, list(model.spec.signals), out / "signal_errors.png", labels
    )
    return Evaluation(report, scored, found)
