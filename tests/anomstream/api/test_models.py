"""`/v1/models`: the models directory, one model with its plots, and training as a job."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from anomstream.api.app import create_app
from anomstream.api.settings import ApiSettings
from detectors.model_spec import read_spec
from tests.anomstream.api.conftest import wait_for
from tests.coupled import coupled, write_csv


@pytest.fixture
def models(model_dir: Path, tmp_path: Path) -> Path:
    """A models directory with the session's model, and one that cannot be served."""
    root = tmp_path / "models"
    shutil.copytree(model_dir, root / "coupled")
    (root / "broken").mkdir()
    (root / "broken" / "model.json").write_text("{not json")
    (root / ".hidden").mkdir()
    return root


@pytest.fixture
def served(models: Path, tmp_path: Path) -> Iterator[TestClient]:
    settings = ApiSettings(data_dir=tmp_path / "api", models_dir=models)
    with TestClient(create_app(settings, prepare=False)) as client:
        yield client


def test_the_models_directory_is_listed_with_what_cannot_be_served(
    served: TestClient, models: Path
) -> None:
    listed = served.get("/v1/models").json()
    assert [m["name"] for m in listed] == ["broken", "coupled"]
    broken, good = listed
    assert broken["error"] and broken["label"] is None
    spec = read_spec(models / "coupled")
    assert good["label"] == spec.label
    assert good["signals"] == ["a", "b", "c"] and good["window"] == spec.window
    assert good["error"] is None


def test_one_model_shows_its_description_and_plots(served: TestClient) -> None:
    shown = served.get("/v1/models/coupled").json()
    assert shown["spec"]["format"] == 1
    assert "result.png" in shown["plots"]
    png = served.get(shown["plots"]["result.png"])
    assert png.status_code == 200
    assert png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG")


@pytest.mark.parametrize(
    "path",
    [
        "/v1/models/absent",
        "/v1/models/.hidden",
        "/v1/models/coupled/plots/model.json",
        "/v1/models/coupled/plots/../broken/model.json",
        "/v1/models/coupled/plots/nope.png",
    ],
)
def test_what_is_not_a_model_or_a_plot_is_404(served: TestClient, path: str) -> None:
    answer = served.get(path)
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"


def test_training_runs_as_a_job_and_the_model_then_serves(
    served: TestClient, tmp_path: Path, models: Path
) -> None:
    data = write_csv(tmp_path / "train.csv", coupled(500, seed=4)).read_bytes()
    job = served.post(
        "/v1/models?name=fresh&window=8&kind=linear&epochs=3&seed=1",
        files={"file": ("train.csv", data, "text/csv")},
    )
    assert job.status_code == 202, job.text
    assert job.json()["kind"] == "train"
    busy = served.post("/v1/models?name=fresh", content=data, headers={"content-type": "text/csv"})
    assert busy.status_code == 409 and busy.json()["type"].endswith("/model-busy")
    done = wait_for(served, job.json()["id"], timeout=300)
    assert done["status"] == "SUCCEEDED", done
    assert done["links"]["model"] == "/v1/models/fresh"
    assert read_spec(models / "fresh").window == 8
    assert "fresh" in [m["name"] for m in served.get("/v1/models").json()]
    records = [
        {"source": "s", "ts": 1795514400 + i, "signals": {"a": 0.1, "b": 0.2, "c": 0.3}}
        for i in range(20)
    ]
    scored = served.post("/v1/detect", json={"records": records, "model": "fresh"}).json()
    assert scored["models"] == [read_spec(models / "fresh").label]


def test_a_training_that_fails_says_why(served: TestClient) -> None:
    data = b"timestamp,a\n1795514400,1\n1795514401,2\n"
    job = served.post(
        "/v1/models?name=tiny&window=8", content=data, headers={"content-type": "text/csv"}
    )
    done = wait_for(served, job.json()["id"], timeout=300)
    assert done["status"] == "FAILED"
    assert "rows" in done["error"] and "Traceback" not in done["error"]  # train's own line


@pytest.mark.parametrize("query", ["latent=74456407643590783664128", "train_rows=10000000000000"])
def test_an_integer_beyond_its_range_is_a_422_not_a_500(served: TestClient, query: str) -> None:
    # found by schemathesis: a 23-digit latent reached orjson, which only encodes 64-bit ints
    data = b"timestamp,a\n1795514400,1\n1795514401,2\n"
    answer = served.post(
        f"/v1/models?name=tiny&{query}", content=data, headers={"content-type": "text/csv"}
    )
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
