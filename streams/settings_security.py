"""The security settings group (`settings.security`): TLS and SASL for every Kafka client, and
who may read `/metrics` and where the endpoint listens.

Its own module because `streams/settings.py` is at its size limit; it nests there as the others.
Secrets are `SecretStr` (shown as `**********` in every repr, log line and error) and each has a
`*_file` twin, read once when the settings are built, so a password can come from a mounted
secret instead of the environment. The TLS files are loaded here too: a wrong path, a bad PEM or
a wrong key password stops start-up in one line, not at the first connection.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from streams.security import build_ssl_context

Protocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
Mechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]

SECRETS = (
    "security_ssl_key_password",
    "security_sasl_password",
    "metrics_password",
    "metrics_token",
)
"""Every secret; `<name>_file` is its file twin."""
SSL_FILES = ("security_ssl_cafile", "security_ssl_certfile", "security_ssl_keyfile")
SSL_SETTINGS = (*SSL_FILES, "security_ssl_key_password")
SASL_SETTINGS = ("security_sasl_username", "security_sasl_password")


def read_secret(name: str, path: object) -> str:
    """The secret in file `path`, without the line break editors and `echo` leave at its end."""
    try:
        value = Path(str(path)).read_text(encoding="utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ValueError(f"{name}_file: cannot read {path}: {reason}") from None
    if not value:
        raise ValueError(f"{name}_file: {path} is empty")
    return value


class SecuritySettings(BaseModel):
    """TLS and SASL towards Kafka (docs/security.md), and the metrics endpoint's bind and auth."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    security_protocol: Protocol = Field(
        "PLAINTEXT", description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL, as the listener"
    )
    security_ssl_cafile: Path | None = Field(
        None, description="PEM CA bundle the broker's certificate must verify against"
    )
    security_ssl_certfile: Path | None = Field(
        None, description="client certificate (PEM) for brokers that ask for one (mutual TLS)"
    )
    security_ssl_keyfile: Path | None = Field(None, description="its private key (PEM)")
    security_ssl_key_password: SecretStr | None = Field(None, description="if the key is encrypted")
    security_ssl_key_password_file: Path | None = None
    security_ssl_check_hostname: bool = Field(
        True, description="the broker's certificate must name the host the client dialled"
    )
    security_sasl_mechanism: Mechanism = Field(
        "PLAIN", description="PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"
    )
    security_sasl_username: str | None = None
    security_sasl_password: SecretStr | None = None
    security_sasl_password_file: Path | None = None
    metrics_host: str = Field(
        "0.0.0.0",
        description="address /metrics, /healthz, /readyz, /status listen on: all interfaces "
        "(containers); 127.0.0.1 keeps them on the host; :: for IPv6",
    )
    metrics_username: str | None = Field(None, description="basic auth for /metrics")
    metrics_password: SecretStr | None = None
    metrics_password_file: Path | None = None
    metrics_token: SecretStr | None = Field(None, description="bearer token for /metrics")
    metrics_token_file: Path | None = None

    @model_validator(mode="before")
    @classmethod
    def _inputs(cls, data: Any) -> Any:
        """Empty values (an exported but blank variable) are unset; file twins are read."""
        if not isinstance(data, dict):
            return data
        values = {k: v for k, v in data.items() if not (isinstance(v, str) and not v.strip())}
        for name in SECRETS:
            path = values.get(f"{name}_file")
            if path is None:
                continue
            if values.get(name) is not None:
                raise ValueError(f"give {name} or {name}_file, not both")
            values[name] = read_secret(name, path)
        return values

    @field_validator("security_protocol", "security_sasl_mechanism", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _consistent(self) -> SecuritySettings:
        """Half a configuration must not fall back to plaintext, or to no login, in silence."""
        protocol = self.security_protocol
        if "SSL" not in protocol:
            given = [n for n in SSL_SETTINGS if getattr(self, n) is not None]
            if given:
                raise ValueError(
                    f"{given[0]} is set but security_protocol is {protocol}: "
                    "use SSL or SASL_SSL (TLS), or unset it"
                )
        if "SASL" in protocol:
            missing = [n for n in SASL_SETTINGS if getattr(self, n) is None]
            if missing:
                raise ValueError(f"security_protocol {protocol} needs {' and '.join(missing)}")
        else:
            given = [n for n in SASL_SETTINGS if getattr(self, n) is not None]
            if given:
                raise ValueError(
                    f"{given[0]} is set but security_protocol is {protocol}: "
                    "use SASL_SSL or SASL_PLAINTEXT, or unset it"
                )
        if self.security_ssl_keyfile is not None and self.security_ssl_certfile is None:
            raise ValueError("security_ssl_keyfile needs security_ssl_certfile")
        if (self.metrics_username is None) != (self.metrics_password is None):
            raise ValueError("metrics basic auth needs both metrics_username and metrics_password")
        if "SSL" in protocol:
            self._load_tls()
        return self

    def _load_tls(self) -> None:
        for name in SSL_FILES:
            path = getattr(self, name)
            if path is not None and not path.is_file():
                raise ValueError(f"{name}: no such file {path}")
        try:
            build_ssl_context(
                cafile=self.security_ssl_cafile,
                certfile=None,
                keyfile=None,
                password=None,
                check_hostname=True,
            )
        except ssl.SSLError as exc:
            raise ValueError(f"cannot load security_ssl_cafile: {exc.reason or exc}") from None
        try:
            self.ssl_context()
        except ssl.SSLError as exc:
            raise ValueError(
                f"cannot load security_ssl_certfile and its key: {exc.reason or exc} (a wrong "
                "security_ssl_key_password, a key of another certificate, or not PEM)"
            ) from None

    def ssl_context(self) -> ssl.SSLContext | None:
        """A new client TLS context for these settings; None when the protocol has no TLS."""
        if "SSL" not in self.security_protocol:
            return None
        password = self.security_ssl_key_password
        return build_ssl_context(
            cafile=self.security_ssl_cafile,
            certfile=self.security_ssl_certfile,
            keyfile=self.security_ssl_keyfile,
            password=password.get_secret_value() if password is not None else None,
            check_hostname=self.security_ssl_check_hostname,
        )
