"""A throw-away certificate authority for TLS tests: a CA, a broker certificate and a client one.

Made with the `openssl` command (OpenSSL >= 1.1.1; Debian's `openssl` package, which the
python:3.11 images and `ca-certificates` bring along), as PEM files: Apache Kafka reads PEM
key stores and trust stores itself (`ssl.keystore.type=PEM`), so no JKS and no `keytool`.
The broker certificate names `127.0.0.1` and `localhost`, so clients verify host names as
they do in production. The keys are valid for two days and live only in the test's tmp dir.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from harness.errors import BrokerError

__all__ = ["Certs", "make_certs", "openssl_problem"]

DAYS = 2
KEY = "rsa:2048"
"""RSA rather than EC: every JDK's PEM key store reads it."""


@dataclass(frozen=True, slots=True)
class Certs:
    """The PEM files of one throw-away CA (paths under `directory`)."""

    directory: Path
    ca: Path
    """The CA certificate: clients' `security_ssl_cafile`, the broker's trust store."""
    broker_keystore: Path
    """The broker's PKCS#8 key followed by its certificate (Kafka's PEM key store)."""
    client_cert: Path
    client_key: Path
    client_key_encrypted: Path
    """The client key again, encrypted with `client_key_password`."""
    client_key_password: str


def openssl_problem() -> str | None:
    """Why certificates cannot be made here, or None."""
    if shutil.which("openssl") is None:
        return "openssl not found on PATH (apt-get install openssl)"
    return None


def _openssl(directory: Path, *args: str) -> None:
    try:
        done = subprocess.run(
            ["openssl", *args],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise BrokerError(f"cannot run openssl: {exc}") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise BrokerError(f"openssl {args[0]} failed (exit {done.returncode}): {last}")


def _signed(directory: Path, name: str, subject: str, extensions: str) -> tuple[Path, Path]:
    """A key and a certificate signed by the CA in `directory`."""
    key, csr, cert = (directory / f"{name}{ext}" for ext in (".key", ".csr", ".pem"))
    ext = directory / f"{name}.ext"
    ext.write_text(extensions)
    _openssl(
        directory,
        "req",
        "-newkey",
        KEY,
        "-nodes",
        "-subj",
        subject,
        "-keyout",
        str(key),
        "-out",
        str(csr),
    )
    _openssl(
        directory,
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        str(DAYS),
        "-extfile",
        str(ext),
        "-out",
        str(cert),
    )
    return key, cert


def make_certs(directory: Path, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")) -> Certs:
    """A new CA in `directory`, with a broker certificate for `hosts` and a client certificate."""
    directory.mkdir(parents=True, exist_ok=True)
    problem = openssl_problem()
    if problem is not None:
        raise BrokerError(problem)
    # `req` asks for a subject on the terminal unless -subj gives it: given everywhere.
    _openssl(
        directory,
        "req",
        "-x509",
        "-newkey",
        KEY,
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        str(DAYS),
        "-subj",
        "/CN=anomstream test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    )
    names = ",".join(f"IP:{h}" if h[:1].isdigit() or ":" in h else f"DNS:{h}" for h in hosts)
    broker_key, broker_cert = _signed(
        directory,
        "broker",
        "/CN=anomstream test broker",
        f"subjectAltName={names}\nextendedKeyUsage=serverAuth\n",
    )
    client_key, client_cert = _signed(
        directory, "client", "/CN=anomstream-client", "extendedKeyUsage=clientAuth\n"
    )
    keystore = directory / "broker-keystore.pem"
    keystore.write_text(broker_key.read_text() + broker_cert.read_text())
    password = "client-key-secret"
    encrypted = directory / "client-encrypted.key"
    _openssl(
        directory,
        "pkcs8",
        "-topk8",
        "-in",
        str(client_key),
        "-out",
        str(encrypted),
        "-passout",
        f"pass:{password}",
    )
    return Certs(
        directory=directory,
        ca=directory / "ca.pem",
        broker_keystore=keystore,
        client_cert=client_cert,
        client_key=client_key,
        client_key_encrypted=encrypted,
        client_key_password=password,
    )
