"""A client of the Confluent schema registry API (Confluent, Apicurio's `ccompat`, Karapace,
Redpanda): writer schemas by id for the `avro` input format, and registration for
`anomstream replay --format avro`.

Plain `urllib` in a thread (`asyncio.to_thread`): a schema is fetched once per id and worker, so
this is off the hot path, and the event loop keeps running while it waits. An answer is final
(a schema, or "no such id": its messages are dead letters); no answer (the registry down, slow
or failing) is retried with backoff for as long as it takes, the batch waiting: nothing is
dead-lettered because the registry had a bad minute, and Kafka keeps the records meanwhile.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from detectors.records import Invalid
from streams.formats.avro import AvroDecoder

log = logging.getLogger(__name__)

ACCEPT = "application/vnd.schemaregistry.v1+json, application/json"
BACKOFF = (0.5, 1.0, 2.0, 5.0, 10.0)
"""Seconds between attempts while the registry does not answer; the last one repeats."""
LOG_EVERY = 60.0


class RegistryDown(Exception):
    """No usable answer (connection refused, timeout, 5xx, 401): try again later."""


@dataclass(frozen=True)
class SchemaRegistry:
    """Where the registry is and how to log in (settings `registry_*`)."""

    url: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    cafile: Path | None = None
    timeout: float = 10.0

    def _request(self, path: str, body: bytes | None = None) -> Any:
        request = urllib.request.Request(
            self.url.rstrip("/") + path,
            data=body,
            headers={"Accept": ACCEPT, "Content-Type": "application/vnd.schemaregistry.v1+json"},
            method="POST" if body is not None else "GET",
        )
        if self.username is not None:
            token = base64.b64encode(f"{self.username}:{self.password or ''}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        context = ssl.create_default_context(cafile=self.cafile) if self.cafile else None
        with urllib.request.urlopen(request, timeout=self.timeout, context=context) as answer:
            return orjson.loads(answer.read())

    def schema(self, ident: int) -> Any:
        """The writer schema of id `ident` as parsed JSON; `Invalid` when the registry has no
        such id (`unknown_schema_id`) or it is no Avro schema (`bad_avro_schema`)."""
        try:
            body = self._request(f"/schemas/ids/{ident}")
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                detail = f"the registry has no schema id {ident}"
                raise Invalid("unknown_schema_id", detail) from None
            raise RegistryDown(f"HTTP {exc.code} {exc.reason}") from None
        except (OSError, ValueError) as exc:  # URLError, timeouts, a non-JSON body
            raise RegistryDown(str(getattr(exc, "reason", exc))) from None
        kind = body.get("schemaType", "AVRO") if isinstance(body, dict) else None
        if kind != "AVRO":
            raise Invalid("bad_avro_schema", f"schema id {ident} is {kind}, not Avro")
        try:
            return orjson.loads(body["schema"])
        except (KeyError, TypeError, orjson.JSONDecodeError):
            raise Invalid("bad_avro_schema", f"schema id {ident} is not JSON") from None

    def register(self, subject: str, schema: Any) -> int:
        """Register `schema` under `subject` (or find it there); its id."""
        body = orjson.dumps({"schema": orjson.dumps(schema).decode()})
        try:
            answer = self._request(f"/subjects/{subject}/versions", body)
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:200].decode("utf-8", "replace")
            raise RegistryDown(f"HTTP {exc.code} {exc.reason}: {detail}") from None
        except (OSError, ValueError) as exc:
            raise RegistryDown(str(getattr(exc, "reason", exc))) from None
        return int(answer["id"])


class SchemaFetcher:
    """Before a batch is decoded: the writer schemas of its messages that the decoder lacks."""

    def __init__(
        self,
        registry: SchemaRegistry,
        decoder: AvroDecoder,
        counted: Callable[[str], None] = lambda outcome: None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.registry = registry
        self.decoder = decoder
        self.counted = counted
        """Told each fetch's outcome (`anomstream_schema_fetches_total`)."""
        self.sleep = sleep
        self.waiting_since: float | None = None
        """When the registry stopped answering (monotonic; the log says for how long); None
        while it answers."""

    async def ensure(self, values: Iterable[bytes | None]) -> None:
        for ident in sorted(self.decoder.missing(values)):
            await self._fetch(ident)

    async def _fetch(self, ident: int) -> None:
        attempt, logged = 0, 0.0
        while True:
            try:
                schema = await asyncio.to_thread(self.registry.schema, ident)
            except Invalid as exc:
                self.decoder.refuse(ident, exc)
                self.counted("unknown" if exc.reason == "unknown_schema_id" else "not_avro")
                log.warning("schema id %d: %s; its records go to the dead letters", ident, exc)
                break
            except RegistryDown as exc:
                self.counted("error")
                now = time.monotonic()
                self.waiting_since = self.waiting_since or now
                if now - logged >= LOG_EVERY:
                    logged = now
                    log.warning(
                        "schema registry %s has not answered for %.0f s (schema id %d: %s); "
                        "waiting, the records stay on Kafka",
                        self.registry.url,
                        now - self.waiting_since,
                        ident,
                        exc,
                    )
                await self.sleep(BACKOFF[min(attempt, len(BACKOFF) - 1)])
                attempt += 1
                continue
            self.decoder.learn(ident, schema)
            self.counted("ok")
            break
        self.waiting_since = None
