"""The throughput workload carries the same records in every input format, so the formats'
records/s compare like for like."""

from __future__ import annotations

import pytest

from bench.workload import AVRO_BATCH, ENCODINGS, Workload
from streams.codec import Limits
from streams.formats import decoder_for
from streams.formats.avro import AvroDecoder


def decoded(encoding: str) -> list[tuple[str, float, dict[str, float | None]]]:
    format, per_message = ENCODINGS[encoding]
    work = Workload(3, per_message, format=format, schema_id=7)
    decode = decoder_for(format)
    if isinstance(decode, AvroDecoder):  # as the worker has it once fetched from the registry
        decode.learn(7, AVRO_BATCH)
    out = []
    for _, value, count in work.messages(0, work.steps_for(300)):
        good, bad = decode(value, None, Limits(), None)
        assert not bad and len(good) == count
        out += [(r.source, r.ts, dict(r.signals)) for r in good]
    return out


@pytest.mark.parametrize("encoding", [e for e in ENCODINGS if e != "array100"])
def test_every_encoding_decodes_to_the_json_arrays_records(encoding: str) -> None:
    got, arrays = decoded(encoding), decoded("array100")
    key = lambda r: (r[0], r[1])  # noqa: E731 - single records come step by step
    assert sorted(got, key=key) == sorted(arrays, key=key)
    assert len(got) == 300
