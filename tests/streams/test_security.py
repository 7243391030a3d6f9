"""Security settings -> the clients' TLS/SASL options (unit tier: no broker; openssl for certs)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from faust.auth import SASLCredentials, SSLCredentials
from faust.types.auth import AuthProtocol, SASLMechanism

from harness.certs import Certs, make_certs, openssl_problem
from harness.probe import free_port
from streams.security import Diagnosis, broker_credentials, client_security, connection_problem
from streams.settings import Settings, SettingsError, load_settings
from streams.topics import BrokerUnavailable, _connect

T = TypeVar("T")

SECRET = "s3cr3t-Pa55"

needs_openssl = pytest.mark.skipif(openssl_problem() is not None, reason=str(openssl_problem()))


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    if openssl_problem() is not None:
        pytest.skip(str(openssl_problem()))
    return make_certs(tmp_path_factory.mktemp("certs"))


def settings(**env: str) -> Settings:
    return load_settings(environ={f"ANOMSTREAM_{k.upper()}": v for k, v in env.items()})


def test_plaintext_by_default_and_faust_gets_no_credentials() -> None:
    s = settings()
    assert client_security(s.security) == {"security_protocol": "PLAINTEXT"}
    assert broker_credentials(s.security) is None


@needs_openssl
def test_mutual_tls_gives_a_verifying_context_with_the_client_certificate(certs: Certs) -> None:
    s = settings(
        security_protocol="ssl",  # any case
        security_ssl_cafile=str(certs.ca),
        security_ssl_certfile=str(certs.client_cert),
        security_ssl_keyfile=str(certs.client_key),
    )
    options = client_security(s.security)
    context = options["ssl_context"]
    assert options["security_protocol"] == "SSL" and "sasl_mechanism" not in options
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert any("anomstream test CA" in str(c["subject"]) for c in context.get_ca_certs())
    credentials = broker_credentials(s.security)
    assert isinstance(credentials, SSLCredentials)
    assert credentials.protocol is AuthProtocol.SSL and credentials.context.check_hostname


@needs_openssl
def test_hostname_check_can_be_turned_off_but_the_certificate_is_still_verified(
    certs: Certs,
) -> None:
    s = settings(
        security_protocol="SSL",
        security_ssl_cafile=str(certs.ca),
        security_ssl_check_hostname="false",
    )
    context = client_security(s.security)["ssl_context"]
    assert not context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED


@needs_openssl
def test_sasl_ssl_scram_gives_aiokafka_and_faust_the_same_login(certs: Certs) -> None:
    s = settings(
        security_protocol="SASL_SSL",
        security_ssl_cafile=str(certs.ca),
        security_sasl_mechanism="scram-sha-512",
        security_sasl_username="alice",
        security_sasl_password=SECRET,
    )
    options = client_security(s.security)
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("alice", SECRET)
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    credentials = broker_credentials(s.security)
    assert isinstance(credentials, SASLCredentials)
    assert credentials.protocol is AuthProtocol.SASL_SSL
    assert credentials.mechanism is SASLMechanism.SCRAM_SHA_512
    assert (credentials.username, credentials.password) == ("alice", SECRET)


def test_sasl_plaintext_has_no_tls_context() -> None:
    s = settings(
        security_protocol="SASL_PLAINTEXT",
        security_sasl_username="alice",
        security_sasl_password=SECRET,
    )
    assert "ssl_context" not in client_security(s.security)
    credentials = broker_credentials(s.security)
    assert isinstance(credentials, SASLCredentials)
    assert credentials.protocol is AuthProtocol.SASL_PLAINTEXT
    assert credentials.mechanism is SASLMechanism.PLAIN  # the default mechanism


def test_secrets_are_read_from_files_without_the_trailing_newline(tmp_path: Path) -> None:
    password = tmp_path / "password"
    password.write_text(SECRET + "\n")
    token = tmp_path / "token"
    token.write_text("tok-123\r\n")
    s = settings(
        security_protocol="SASL_PLAINTEXT",
        security_sasl_username="alice",
        security_sasl_password_file=str(password),
        metrics_token_file=str(token),
    )
    assert client_security(s.security)["sasl_plain_password"] == SECRET
    assert s.security.metrics_token is not None
    assert s.security.metrics_token.get_secret_value() == "tok-123"


def test_the_config_file_takes_a_security_table(tmp_path: Path) -> None:
    config = tmp_path / "anomstream.toml"
    config.write_text(
        '[anomstream.security]\nsecurity_protocol = "SASL_PLAINTEXT"\n'
        'security_sasl_mechanism = "SCRAM-SHA-256"\nsecurity_sasl_username = "bob"\n'
        f'security_sasl_password = "{SECRET}"\nmetrics_host = "127.0.0.1"\n'
    )
    s = load_settings(config, environ={})
    assert client_security(s.security)["sasl_mechanism"] == "SCRAM-SHA-256"
    assert s.security.metrics_host == "127.0.0.1"


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"security_ssl_cafile": "/etc/hosts"}, "security_ssl_cafile is set but"),
        ({"security_sasl_username": "alice"}, "security_sasl_username is set but"),
        (
            {"security_protocol": "SASL_SSL", "security_sasl_username": "alice"},
            "needs security_sasl_password",
        ),
        ({"security_protocol": "SSL", "security_ssl_cafile": "/nope/ca.pem"}, "no such file"),
        ({"security_protocol": "SSL", "security_ssl_cafile": "/etc/hostname"}, "cannot load"),
        (
            {
                "security_protocol": "SASL_PLAINTEXT",
                "security_sasl_username": "a",
                "security_sasl_password": SECRET,
                "security_sasl_password_file": "/etc/hostname",
            },
            "not both",
        ),
        (
            {
                "security_protocol": "SASL_PLAINTEXT",
                "security_sasl_username": "a",
                "security_sasl_password_file": "/nope/password",
            },
            "security_sasl_password_file: cannot read /nope/password",
        ),
        ({"metrics_username": "prom"}, "needs both metrics_username and metrics_password"),
        ({"security_sasl_mechanism": "GSSAPI"}, "security_sasl_mechanism"),
    ],
)
def test_half_a_configuration_is_one_line_naming_the_setting(
    env: dict[str, str], says: str
) -> None:
    with pytest.raises(SettingsError) as raised:
        settings(**env)
    message = str(raised.value)
    assert says in message and "\n" not in message and SECRET not in message


@needs_openssl
def test_an_encrypted_key_needs_its_password_and_never_prompts(certs: Certs) -> None:
    base = {
        "security_protocol": "SSL",
        "security_ssl_cafile": str(certs.ca),
        "security_ssl_certfile": str(certs.client_cert),
        "security_ssl_keyfile": str(certs.client_key_encrypted),
    }
    s = settings(**base, security_ssl_key_password=certs.client_key_password)
    assert client_security(s.security)["ssl_context"].verify_mode == ssl.CERT_REQUIRED
    with pytest.raises(SettingsError, match="security_ssl_key_password"):
        settings(**base)  # OpenSSL would otherwise ask on the terminal
    with pytest.raises(SettingsError, match="cannot load"):
        settings(**base, security_ssl_key_password="wrong")


def test_secrets_never_show_in_reprs_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    s = settings(
        security_protocol="SASL_PLAINTEXT",
        security_sasl_username="alice",
        security_sasl_password=SECRET,
        metrics_username="prom",
        metrics_password=SECRET + "m",
        metrics_token=SECRET + "t",
    )
    from streams.security import metrics_guard

    shown = [
        repr(s),
        str(s),
        repr(s.security),
        s.security.model_dump_json(),
        repr(broker_credentials(s.security)),
        repr(metrics_guard(s.security)),
    ]
    client_security(s.security)
    shown.extend(r.getMessage() for r in caplog.records)
    assert not [text for text in shown if SECRET in text]


# -- why a connection fails, without a broker: a TLS server on loopback --------------------


@contextlib.contextmanager
def serving_tls(keystore: Path) -> Iterator[int]:
    """A loopback TLS server with this certificate that closes every connection; its port."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(keystore)
    port = free_port()
    ready = threading.Event()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def serve() -> None:
        async def close(_r: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.close()

        server = await asyncio.start_server(close, "127.0.0.1", port, ssl=context)
        ready.set()
        async with server:
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield port
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(5)


@pytest.fixture
def tls_server(certs: Certs) -> Iterator[int]:
    with serving_tls(certs.broker_keystore) as port:
        yield port


def problem(bootstrap: str, **env: str) -> Diagnosis | None:
    return asyncio.run(connection_problem(bootstrap, settings(**env).security))


@needs_openssl
def test_an_untrusted_certificate_is_named_not_retried(tls_server: int, tmp_path: Path) -> None:
    other = make_certs(tmp_path / "other")  # a CA that did not sign the server's certificate
    found = problem(
        f"127.0.0.1:{tls_server}", security_protocol="SSL", security_ssl_cafile=str(other.ca)
    )
    assert found is not None and found.final
    assert "does not verify" in found.text and "security_ssl_cafile" in found.text
    started = time.monotonic()
    with pytest.raises(BrokerUnavailable, match="does not verify"):  # not retried for 60 s
        asyncio.run(
            _connect(
                f"127.0.0.1:{tls_server}",
                60,
                settings(security_protocol="SSL", security_ssl_cafile=str(other.ca)).security,
            )
        )
    assert time.monotonic() - started < 10


@needs_openssl
def test_a_name_the_certificate_lacks_points_at_the_hostname_check(tmp_path: Path) -> None:
    named = make_certs(tmp_path / "named", hosts=("broker.example",))
    with serving_tls(named.broker_keystore) as port:
        found = problem(
            f"127.0.0.1:{port}", security_protocol="SSL", security_ssl_cafile=str(named.ca)
        )
        assert found is not None and found.final and "security_ssl_check_hostname" in found.text
        unchecked = problem(
            f"127.0.0.1:{port}",
            security_protocol="SSL",
            security_ssl_cafile=str(named.ca),
            security_ssl_check_hostname="false",
        )
        # verified now; the server then hangs up, as a listener of another protocol would
        assert unchecked is not None and not unchecked.final and "hung up" in unchecked.text


async def _hanging_up(run: Callable[[str], Awaitable[T]], reply: bytes = b"") -> T:
    """`run(bootstrap)` against a loopback server that answers `reply` and hangs up."""

    async def chat(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(5)
        writer.write(reply)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(chat, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        return await run(f"127.0.0.1:{port}")


def test_tls_towards_a_plaintext_port_is_a_handshake_failure() -> None:
    security = settings(security_protocol="SSL").security
    found = asyncio.run(
        _hanging_up(lambda where: connection_problem(where, security), b"\x00\x00\x00\x08not-tls!")
    )
    assert found is not None and found.final
    assert "TLS handshake" in found.text and "security_protocol" in found.text


def test_a_listener_that_hangs_up_is_named_when_the_wait_runs_out() -> None:
    """Plaintext towards a TLS or SASL listener: the broker hangs up. Retried (a broker going
    down does the same), then named instead of "cannot reach"."""
    plain = settings().security
    found = asyncio.run(_hanging_up(lambda where: connection_problem(where, plain)))
    assert found is not None and not found.final and "PLAINTEXT (security_protocol)" in found.text
    with pytest.raises(BrokerUnavailable) as raised:
        asyncio.run(_hanging_up(lambda where: _connect(where, 1.0, plain)))
    assert "hung up" in str(raised.value) and "waited 1 s" in str(raised.value)


def test_nothing_listening_is_left_to_the_retries() -> None:
    assert problem(f"127.0.0.1:{free_port()}", security_protocol="SSL") is None
