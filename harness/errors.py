"""The one error every broker fixture raises, in a module of its own so that fetching, probing
and running brokers can all raise it without importing each other.
"""

from __future__ import annotations

__all__ = ["BrokerError"]


class BrokerError(RuntimeError):
    """A broker cannot be fetched, started or reached; the message is one line for the user."""
