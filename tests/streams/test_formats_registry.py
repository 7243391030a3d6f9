"""The schema registry client and the fetcher the worker runs before each Avro batch, against a
local HTTP server answering as Confluent's API documents (status codes, `error_code` 40403,
`schemaType`); a real registry is in `tests/integration/test_avro.py` (unit tier)."""

from __future__ import annotations

import asyncio
import base64
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest

from detectors.engine import Scorer, ScoringConfig
from detectors.records import Invalid, Record
from detectors.timestamps import epoch_text
from streams.codec import Limits
from streams.formats.avro import AvroDecoder
from streams.formats.registry import RegistryDown, SchemaFetcher, SchemaRegistry
from streams.formats.writers import AvroWriter, avro_schema
from streams.metrics import Metrics
from streams.processor import Processor
from streams.settings import SettingsError, load_settings
from streams.state import SourceStates
from streams.structs import InMessage
from tests.streams.test_processor import TOPICS, FakeSink, FakeStore, Log

TS = 1_795_514_400


class Registry:
    """Schemas by id and subject, as a registry keeps them; `failures` answers 500 first."""

    def __init__(self, login: str | None = None) -> None:
        self.schemas: dict[int, dict[str, Any]] = {}
        self.requests: list[str] = []
        self.failures = 0
        self.login = login

    def handler(self) -> type[BaseHTTPRequestHandler]:
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if not self._allowed():
                    return
                ident = int(self.path.rsplit("/", 1)[-1])
                if ident not in registry.schemas:
                    self._answer(404, {"error_code": 40403, "message": "Schema not found"})
                else:
                    self._answer(200, registry.schemas[ident])

            def do_POST(self) -> None:
                if not self._allowed():
                    return
                body = orjson.loads(self.rfile.read(int(self.headers["Content-Length"])))
                for ident, known in registry.schemas.items():
                    if known["schema"] == body["schema"]:
                        self._answer(200, {"id": ident})
                        return
                ident = len(registry.schemas) + 1
                registry.schemas[ident] = {"schema": body["schema"]}
                self._answer(200, {"id": ident})

            def _allowed(self) -> bool:
                registry.requests.append(f"{self.command} {self.path}")
                if registry.failures:
                    registry.failures -= 1
                    self._answer(500, {"error_code": 50001, "message": "store unavailable"})
                    return False
                wanted = (
                    registry.login and "Basic " + base64.b64encode(registry.login.encode()).decode()
                )
                if wanted and self.headers.get("Authorization") != wanted:
                    self._answer(401, {"error_code": 401, "message": "Unauthorized"})
                    return False
                return True

            def _answer(self, code: int, body: Any) -> None:
                data = orjson.dumps(body)
                self.send_response(code)
                self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler


@pytest.fixture
def served() -> Iterator[tuple[Registry, str]]:
    registry = Registry(login="key:s3cret")
    server = ThreadingHTTPServer(("127.0.0.1", 0), registry.handler())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield registry, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_registered_schema_is_read_back_and_a_login_is_sent(
    served: tuple[Registry, str],
) -> None:
    _registry, url = served
    client = SchemaRegistry(url, "key", "s3cret")
    ident = client.register("signals-value", avro_schema())
    assert client.register("signals-value", avro_schema()) == ident  # registered once
    assert client.schema(ident) == avro_schema()
    assert "s3cret" not in repr(client)
    with pytest.raises(RegistryDown, match="HTTP 401"):
        SchemaRegistry(url, "key", "wrong").schema(ident)


def test_final_answers_are_invalid_and_no_answer_is_registry_down(
    served: tuple[Registry, str],
) -> None:
    registry, url = served
    client = SchemaRegistry(url, "key", "s3cret")
    with pytest.raises(Invalid) as caught:
        client.schema(77)
    assert caught.value.reason == "unknown_schema_id"
    registry.schemas[5] = {"schemaType": "PROTOBUF", "schema": "syntax = 'proto3';"}
    with pytest.raises(Invalid, match="PROTOBUF, not Avro") as caught:
        client.schema(5)
    assert caught.value.reason == "bad_avro_schema"
    registry.failures = 1
    with pytest.raises(RegistryDown, match="HTTP 500"):
        client.schema(5)
    with pytest.raises(RegistryDown):
        SchemaRegistry("http://127.0.0.1:1", timeout=2.0).schema(1)  # nothing listens


def test_the_fetcher_waits_out_a_failing_registry_and_fetches_each_id_once(
    served: tuple[Registry, str],
) -> None:
    registry, url = served
    client = SchemaRegistry(url, "key", "s3cret")
    ident = client.register("signals-value", avro_schema())
    decoder, outcomes, slept = AvroDecoder(), list[str](), list[float]()

    async def sleep(seconds: float) -> None:
        assert fetcher.waiting_since is not None  # the log says for how long
        slept.append(seconds)

    fetcher = SchemaFetcher(client, decoder, outcomes.append, sleep)
    message = AvroWriter(ident)(_record())
    registry.failures, registry.requests = 3, []
    asyncio.run(fetcher.ensure([message, message, AvroWriter(99)(_record()), b"{}"]))
    assert outcomes == ["error", "error", "error", "ok", "unknown"]
    assert slept == [0.5, 1.0, 2.0] and fetcher.waiting_since is None
    asyncio.run(fetcher.ensure([message, AvroWriter(99)(_record())]))
    assert len(registry.requests) == 5  # both ids are known now: no request
    ((rec,), _) = decoder(message, None, Limits())
    assert rec.signals == {"x": 1.0}


def test_the_processor_fetches_then_scores_and_dead_letters_an_unknown_id(
    served: tuple[Registry, str],
) -> None:
    _registry, url = served
    client = SchemaRegistry(url, "key", "s3cret")
    ident = client.register("signals-value", avro_schema())
    log, decoder = Log(), AvroDecoder()
    sink = FakeSink(log)
    scorer, metrics = Scorer(ScoringConfig(warmup=20)), Metrics()
    states = SourceStates(scorer, FakeStore(log), metrics)
    fetcher = SchemaFetcher(client, decoder)
    proc = Processor(
        scorer, states, sink, TOPICS, Limits(), metrics, decoder=decoder, schemas=fetcher
    )
    good = [InMessage("signals", 0, i, b"a", AvroWriter(ident)(_record(i))) for i in range(3)]
    stray = InMessage("signals", 0, 3, b"a", AvroWriter(41)(_record(3)))
    report = asyncio.run(proc.process([*good, stray]))
    assert (report.scored, report.dead) == (3, 1)
    ((value, headers),) = [(v, dict(h)) for t, _, v, h in sink.sent if t == "signals.dlq"]
    assert value == stray.value and headers["error"].startswith(b"unknown_schema_id: ")


def test_settings_give_the_worker_a_fetcher_with_its_secret_from_a_file(tmp_path: Path) -> None:
    secret = tmp_path / "registry.secret"
    secret.write_text("s3cret\n")
    env = {
        "ANOMSTREAM_INPUT_FORMAT": "avro",
        "ANOMSTREAM_REGISTRY_URL": "https://registry.example:8081",
        "ANOMSTREAM_REGISTRY_USERNAME": "key",
        "ANOMSTREAM_REGISTRY_PASSWORD_FILE": str(secret),
        "ANOMSTREAM_AVRO_SOURCE_FIELDS": "site, device",
        "ANOMSTREAM_AVRO_TS_UNITS": "us",
    }
    s = load_settings(environ=env)
    decoder, fetcher = s.input.decoding()
    assert isinstance(decoder, AvroDecoder) and fetcher is not None
    assert decoder.options.source_fields == ("site", "device")
    assert decoder.options.ts_units == "us"
    assert fetcher.registry.password == "s3cret" and "s3cret" not in repr(s)
    assert load_settings(environ={}).input.decoding()[1] is None  # json: nothing to fetch
    with pytest.raises(SettingsError, match="input_format avro needs registry_url"):
        load_settings(environ={"ANOMSTREAM_INPUT_FORMAT": "avro"})
    with pytest.raises(SettingsError, match="registry_password_file: cannot read"):
        load_settings(environ={**env, "ANOMSTREAM_REGISTRY_PASSWORD_FILE": "/no/such"})


def _record(i: int = 0) -> Record:
    return Record("a", TS + i, epoch_text(TS + i), {"x": 1.0})
