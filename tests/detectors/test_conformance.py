"""One suite over every registered detector (river's `checks/` idea): add a detector to the
registry and it is held to all of `detectors.checks`."""

from __future__ import annotations

import pytest

from detectors.checks import check_detector, false_alarm_rate
from detectors.protocol import Detector
from detectors.registry import REGISTRY

KINDS = sorted(REGISTRY)


@pytest.fixture(params=KINDS)
def det(request: pytest.FixtureRequest) -> Detector:
    return REGISTRY[request.param]()


def test_every_registered_detector_passes_the_checks(det: Detector) -> None:
    check_detector(det)


def test_calibrated_false_alarm_rate_on_gaussian_noise(det: Detector) -> None:
    """P(score >= 1 - 1e-3) on normal data stays within a factor 2 of 1e-3 (stuck: no alarms;
    seasonal: noise has no rhythm, so no verdict; novelty never judges alone, it weighs the
    others' p, see test_novelty; sequence: its statistic takes few distinct
    values, the surprisal of one of bins^(order+1) paths, and a tail fitted over such steps
    errs on the safe side: about 0.4x at 1e-3, never more alarms than the budget)."""
    rate = false_alarm_rate(det)
    if det.kind in {"stuck", "seasonal", "novelty"}:
        assert rate == 0.0
    elif det.kind == "sequence":
        assert 0.2e-3 <= rate <= 2e-3, rate
    else:
        assert 0.5e-3 <= rate <= 2e-3, rate
