"""Uploads for jobs and training: multipart, raw CSV/JSONL bodies or inline JSON, spooled to a
file in the data directory with their digest (what makes a client's job id idempotent).
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request

from anomstream.api.inputs import DEFAULT_SOURCE
from anomstream.api.problems import Problem

RAW_TYPES = {
    "text/csv": "csv",
    "application/csv": "csv",
    "application/x-ndjson": "jsonl",
    "application/jsonl": "jsonl",
    "application/x-jsonlines": "jsonl",
    "application/octet-stream": None,
}
"""Raw body media types -> the format they carry (None: the `format` parameter says)."""
SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
CHUNK = 1024 * 1024

UPLOAD_BODY: dict[str, Any] = {
    "multipart/form-data": {
        "schema": {
            "type": "object",
            "required": ["file"],
            "properties": {"file": {"type": "string", "format": "binary"}},
        }
    },
    "text/csv": {"schema": {"type": "string"}},
    "application/x-ndjson": {"schema": {"type": "string"}},
}
"""The OpenAPI request body of an upload (the routes read the request themselves)."""


@dataclass(frozen=True, slots=True)
class Upload:
    path: Path
    format: str
    digest: str
    size: int
    stem: str = DEFAULT_SOURCE
    """The uploaded file's name without its extension: a CSV without a source column is that
    source, as `anomstream detect` names it after the file (`api` for a raw body)."""


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _format(given: str | None, found: str | None, where: str) -> str:
    if given is not None and found is not None and given != found:
        raise Problem(422, "invalid-request", f"format={given} but {where} says {found}")
    chosen = given or found
    if chosen is None:
        raise Problem(
            422, "invalid-request", f"{where} does not say csv or jsonl: add ?format=csv|jsonl"
        )
    return chosen


class Spool:
    """A file in `directory` written from the request, hashed as it is written."""

    def __init__(self, directory: Path, salt: bytes) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"{uuid.uuid4().hex}.part"
        self.hash = hashlib.sha256(salt)
        self.size = 0
        self.handle = self.path.open("wb")

    def write(self, chunk: bytes) -> None:
        self.hash.update(chunk)
        self.size += len(chunk)
        self.handle.write(chunk)

    def close(self, fmt: str, stem: str) -> Upload:
        self.handle.close()
        self.hash.update(b"\0" + stem.encode())  # the name is the source: part of the body
        return Upload(self.path, fmt, self.hash.hexdigest(), self.size, stem)

    def discard(self) -> None:
        self.handle.close()
        self.path.unlink(missing_ok=True)


async def spool(request: Request, directory: Path, salt: bytes, fmt: str | None) -> Upload:
    """The request's file (multipart field `file`, or a raw CSV/JSONL body) in `directory`;
    `salt` (the job's options) enters the digest, so the same file with other options is
    another body."""
    kind = media_type(request)
    target = Spool(directory, salt)
    stem = DEFAULT_SOURCE
    try:
        if kind == "multipart/form-data":
            form = await request.form(max_files=1, max_fields=16)
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise Problem(422, "invalid-request", "the multipart body has no `file` part")
            found = SUFFIXES.get(Path(upload.filename or "").suffix.lower())
            chosen = _format(fmt, found, f"file name {upload.filename!r}")
            stem = safe_stem(upload.filename or "")
            while chunk := await upload.read(CHUNK):
                target.write(chunk)
            await form.close()
        elif kind in RAW_TYPES:
            chosen = _format(fmt, RAW_TYPES[kind], f"Content-Type {kind}")
            async for chunk in request.stream():
                target.write(chunk)
        else:
            raise unsupported(kind)
    except BaseException:
        target.discard()
        raise
    if target.size == 0:
        target.discard()
        raise Problem(422, "invalid-request", "the upload is empty")
    return target.close(chosen, stem)


def safe_stem(filename: str) -> str:
    """The file name's stem, as a file name of ours can hold it (`api` if nothing is left)."""
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", Path(filename).stem).lstrip(".")
    return stem[:100] or DEFAULT_SOURCE


def unsupported(kind: str) -> Problem:
    return Problem(
        415,
        "unsupported-media-type",
        f"Content-Type {kind or '(none)'} is not accepted here: send multipart/form-data "
        "(a `file` part), text/csv or application/x-ndjson",
    )


def place(upload: Upload, directory: Path) -> str:
    """Move the spooled file into the job directory's `input/` under its own stem (the reader
    names a CSV's source after it); its path there."""
    (directory / "input").mkdir(parents=True, exist_ok=True)
    name = f"input/{upload.stem}.{upload.format}"
    os.replace(upload.path, directory / name)
    return name
