"""The mock storage driver: the DR driver over simulated arrays in a SQLite fabric.

This is the concept document's "mock storage driver": complete end-to-end DR testing
without Pure Storage hardware. The arrays, replication and faults live in
:mod:`.fabric`; the lab's FlashArray REST simulator serves the same fabric over HTTPS, so
the FlashArray driver can be tested against exactly the same behaviour.
"""

from __future__ import annotations

from typing import Any

from .driver import StorageDriver
from .errors import ArrayUnreachable, InvalidArgument, from_purity
from .fabric import ArrayDown, Fabric, PurityError
from .rest1 import Rest1Client


class MockArrayClient(Rest1Client):
    """One simulated array, called in process."""

    def __init__(self, fabric: Fabric, array: str, timeout: float = 30.0):
        self.name = array
        try:
            self._array = fabric.array(array, timeout=timeout)
        except KeyError:
            raise InvalidArgument(f"unknown array {array!r}; the fabric has: "
                                  f"{', '.join(fabric.arrays())}", obj=array) from None

    def _call(self, operation: str, *args, **kwargs) -> Any:
        try:
            return getattr(self._array, operation)(*args, **kwargs)
        except ArrayDown as exc:
            raise ArrayUnreachable(self.name, exc.detail) from None
        except PurityError as exc:
            raise from_purity(self.name, exc.ctx, exc.msg) from None


def mock_driver(fabric: Fabric | str, *, timeout: float = 30.0, **options) -> StorageDriver:
    """A :class:`StorageDriver` over every array of ``fabric`` (a Fabric or its path)."""
    if not isinstance(fabric, Fabric):
        fabric = Fabric(fabric)
    clients: dict[str, MockArrayClient] = {}

    def client(name: str) -> MockArrayClient:
        if name not in clients:
            clients[name] = MockArrayClient(fabric, name, timeout)
        return clients[name]

    return StorageDriver(client, **options)
