"""TLS and SASL for every Kafka client, from `settings.security` (docs/security.md).

One place turns the settings into what the clients take: `client_security()` gives the aiokafka
keyword arguments (our producers, consumers and admin clients), `broker_credentials()` Faust's
`broker_credentials` (its consumer, producer and topic creation). `connection_problem()` says
in one line why a connection fails, because aiokafka does not: a refused password, an untrusted
certificate or a listener of another protocol reaches the caller as "Unable to bootstrap", the
same error as a broker that is down, and would be retried until the start-up wait ran out.
`MetricsGuard` is the optional basic or bearer auth of `/metrics`.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from os import PathLike
from typing import TYPE_CHECKING, Any, NamedTuple

from aiokafka.conn import create_conn
from aiokafka.errors import (
    AuthenticationFailedError,
    IllegalSaslStateError,
    KafkaConnectionError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)
from aiokafka.helpers import create_ssl_context

if TYPE_CHECKING:
    from faust.auth import SASLCredentials, SSLCredentials

    from streams.settings_security import SecuritySettings

PROBE_TIMEOUT = 10.0
"""Seconds one diagnostic connection may take."""


def _no_password() -> str:
    """OpenSSL would ask for the password of an encrypted key on the terminal: never wait."""
    raise ValueError("the key in security_ssl_keyfile is encrypted: set security_ssl_key_password")


def build_ssl_context(
    *,
    cafile: PathLike[str] | None,
    certfile: PathLike[str] | None,
    keyfile: PathLike[str] | None,
    password: str | None,
    check_hostname: bool,
) -> ssl.SSLContext:
    """A client context that verifies the broker (against `cafile`, else the system's CAs)."""
    secret: Callable[[], str] | str = password if password is not None else _no_password
    helpers = logging.getLogger("aiokafka.helpers")
    level = helpers.level
    helpers.setLevel(logging.WARNING)  # "Loading SSL CA from ..." for each of the many clients
    try:
        context: ssl.SSLContext = create_ssl_context(
            cafile=cafile, certfile=certfile, keyfile=keyfile, password=secret
        )
    finally:
        helpers.setLevel(level)
    context.check_hostname = check_hostname  # the certificate itself is always verified
    return context


def client_security(security: SecuritySettings) -> dict[str, Any]:
    """The keyword arguments that make an aiokafka client speak `security_protocol`."""
    options: dict[str, Any] = {"security_protocol": security.security_protocol}
    context = security.ssl_context()
    if context is not None:
        options["ssl_context"] = context
    if "SASL" in security.security_protocol:
        assert security.security_sasl_password is not None  # the settings check it
        options.update(
            sasl_mechanism=security.security_sasl_mechanism,
            sasl_plain_username=security.security_sasl_username,
            sasl_plain_password=security.security_sasl_password.get_secret_value(),
        )
    return options


def broker_credentials(security: SecuritySettings) -> SSLCredentials | SASLCredentials | None:
    """Faust's `broker_credentials` for these settings (None: plaintext)."""
    import faust  # the commands around the worker need aiokafka only

    context = security.ssl_context()
    if "SASL" in security.security_protocol:
        assert security.security_sasl_password is not None
        return faust.SASLCredentials(
            username=security.security_sasl_username,
            password=security.security_sasl_password.get_secret_value(),
            ssl_context=context,
            mechanism=security.security_sasl_mechanism,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


class Diagnosis(NamedTuple):
    """Why a connection failed, in one line for the user."""

    text: str
    final: bool
    """True: retrying cannot cure it (a refused login, an untrusted certificate); False: a
    likely cause worth naming if the retries run out (a listener that hangs up at once)."""


def _closed(security: SecuritySettings, where: str) -> str:
    protocol = security.security_protocol
    cert = (
        ", or it wants a client certificate (security_ssl_certfile)"
        if "SSL" in protocol and security.security_ssl_certfile is None
        else ""
    )
    return (
        f"the Kafka broker at {where} hung up before it answered: its listener may not speak "
        f"{protocol} (security_protocol){cert}"
    )


def _explain(exc: BaseException, where: str, security: SecuritySettings) -> Diagnosis | None:
    """The diagnosis of a failed connection attempt; None when nothing answered."""
    if isinstance(exc, SaslAuthenticationFailed | AuthenticationFailedError):
        user, mechanism = security.security_sasl_username, security.security_sasl_mechanism
        said = str(exc).split(": ", 1)[-1].strip() or "authentication failed"
        return _final(
            f"the Kafka broker at {where} refused the SASL login of user {user!r} "
            f"({mechanism}): {said}; check security_sasl_username and security_sasl_password"
        )
    if isinstance(exc, UnsupportedSaslMechanismError | IllegalSaslStateError):
        said = str(exc).split(": ", 1)[-1].strip()
        return _final(
            f"the Kafka broker at {where} does not take SASL mechanism "
            f"{security.security_sasl_mechanism} ({said}): set security_sasl_mechanism"
        )
    if isinstance(exc, ssl.SSLCertVerificationError):
        said = exc.verify_message or exc.reason or str(exc)
        hint = (
            "security_ssl_check_hostname (or connect by a name the certificate lists)"
            if "hostname" in str(said).lower() or "ip address mismatch" in str(said).lower()
            else "security_ssl_cafile (the CA that signed the broker's certificate)"
        )
        return _final(
            f"the TLS certificate of the Kafka broker at {where} does not verify: {said}; "
            f"check {hint}"
        )
    if isinstance(exc, ssl.SSLError):
        return _final(
            f"the TLS handshake with the Kafka broker at {where} failed: {exc.reason or exc}; "
            "is it a TLS listener (security_protocol), and does it want a client certificate "
            "(security_ssl_certfile)?"
        )
    if isinstance(exc, ConnectionResetError) or (
        isinstance(exc, KafkaConnectionError) and str(exc).endswith("closed")
    ):
        return Diagnosis(_closed(security, where), final=False)
    return None


def _final(text: str) -> Diagnosis:
    return Diagnosis(text, final=True)


async def connection_problem(bootstrap: str, security: SecuritySettings) -> Diagnosis | None:
    """Why a client with these settings cannot connect to `bootstrap`: None when a connection
    succeeds or nothing answers (down, wrong port). Each bootstrap host is tried in turn; a
    final diagnosis wins over one that is not."""
    options = client_security(security)
    likely: Diagnosis | None = None
    for host in bootstrap.split(","):
        name, _, port = host.strip().rpartition(":")
        try:
            conn = await create_conn(
                name.strip("[]"),
                int(port),
                request_timeout_ms=int(PROBE_TIMEOUT * 1000),
                **options,
            )
        except Exception as exc:  # what is not explained counts as unreachable
            found = _explain(exc, host.strip(), security)
            if found is not None and found.final:
                return found
            likely = likely or found
            continue
        conn.close()
        return None
    return likely


@dataclass(frozen=True, slots=True)
class MetricsGuard:
    """Who may read `/metrics`: HTTP basic auth, a bearer token, or either when both are set."""

    basic: tuple[str, str] | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)

    @property
    def challenge(self) -> str:
        """The `WWW-Authenticate` header of a 401."""
        return 'Basic realm="anomstream"' if self.basic is not None else "Bearer"

    def allows(self, authorization: str | None) -> bool:
        """Whether an `Authorization` header value passes (compared in constant time)."""
        scheme, _, given = (authorization or "").strip().partition(" ")
        given = given.strip()
        if scheme.lower() == "bearer" and self.token is not None:
            return hmac.compare_digest(given.encode(), self.token.encode())
        if scheme.lower() == "basic" and self.basic is not None:
            try:
                decoded = base64.b64decode(given, validate=True)
            except (binascii.Error, ValueError):
                return False
            expected = f"{self.basic[0]}:{self.basic[1]}".encode()
            return hmac.compare_digest(decoded, expected)
        return False


def metrics_guard(security: SecuritySettings) -> MetricsGuard | None:
    """The guard of `/metrics` for these settings; None when it is open."""
    basic = None
    if security.metrics_username is not None and security.metrics_password is not None:
        basic = (security.metrics_username, security.metrics_password.get_secret_value())
    token = security.metrics_token.get_secret_value() if security.metrics_token else None
    if basic is None and token is None:
        return None
    return MetricsGuard(basic=basic, token=token)
