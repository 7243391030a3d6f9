"""`anomstream serve`: the HTTP API (FastAPI on uvicorn), settings `ANOMSTREAM_API_*`.

The socket is bound here, before uvicorn starts, so that a port in use or a bad address is
one line, not a traceback, and `--port 0` reports the port it got. An API open to other
machines without tokens is refused unless `--insecure` says so.
"""

from __future__ import annotations

import logging
import socket
from pathlib import Path
from typing import Any

import click

from anomstream.api.settings import ApiSettings, ApiSettingsError, is_loopback, load_api_settings


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to `host:port` (IPv4 or IPv6, as the host resolves)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise click.ClickException(f"cannot resolve --host {host}: {exc.strerror}") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.set_inheritable(False)
    return sock


def check_access(settings: ApiSettings) -> None:
    if is_loopback(settings.host) or settings.tokens_file is not None or settings.insecure:
        return
    raise click.ClickException(
        f"--host {settings.host} lets other machines in: give --tokens-file FILE (bearer "
        "tokens, one a line), or --insecure to serve without them"
    )


@click.command()
@click.option("--host", help="address to listen on  [default: 127.0.0.1]")
@click.option("--port", type=click.IntRange(0, 65535), help="port (0: any free)  [default: 8000]")
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="job database and results  [default: .anomstream/api]",
)
@click.option(
    "--models-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="model directories  [default: models]",
)
@click.option(
    "--tokens-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="bearer tokens, one a line (default: none, the API is open)",
)
@click.option("--workers", type=click.IntRange(1, 64), help="job processes at once  [default: 1]")
@click.option(
    "--insecure",
    is_flag=True,
    default=None,
    help="serve a non-loopback --host without tokens",
)
@click.option(
    "-l",
    "--log-level",
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    default="info",
    show_default=True,
)
def serve(log_level: str, **given: Any) -> None:
    """Serve the HTTP API: sync detect, file jobs, training, models (OpenAPI at /docs).

    \b
    Examples:
      anomstream serve --models-dir models
      curl -s localhost:8000/v1/detect -H 'content-type: application/json' \\
        -d '{"records": [{"source": "pump-7", "ts": 1764000000, "signals": {"temp": 71.2}}]}'
    """
    import uvicorn

    from anomstream.api.app import ApiStartError, create_app
    from anomstream.api.auth import TokensError

    given["insecure"] = given["insecure"] or None  # an absent flag leaves the env its say
    try:
        settings = load_api_settings(**given)
    except ApiSettingsError as exc:
        raise click.ClickException(str(exc)) from None
    check_access(settings)
    sock = listening_socket(settings.host, settings.port)
    try:
        app = create_app(settings)
    except (ApiStartError, TokensError) as exc:
        sock.close()
        raise click.ClickException(str(exc)) from None
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"anomstream API on http://{shown}:{port} (docs: http://{shown}:{port}/docs)")
    logging.basicConfig(level=log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    config = uvicorn.Config(app, log_level=log_level, lifespan="on", timeout_graceful_shutdown=10)
    uvicorn.Server(config).run(sockets=[sock])
