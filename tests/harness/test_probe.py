"""harness.probe without a broker: free ports."""

from __future__ import annotations

import socket

from harness.probe import free_port


def test_free_port_is_bindable() -> None:
    port = free_port()
    assert 1024 < port < 65536
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
