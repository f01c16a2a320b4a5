"""The FlashArray backend: the DR driver over the ``purestorage`` SDK (REST 1.x).

The SDK has no timeout of its own and connects in its constructor, so each array's
client connects lazily, on first use, with explicit connect and read timeouts. Purity's
400 bodies (``[{"msg", "ctx"}]``) become typed errors by their message text, the way
Cinder's Pure driver recognises them. Expired sessions are renewed by the SDK itself
(a 401 makes it open a new session and retry once).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import purestorage
import requests

from .base import ArrayEndpoint
from .driver import StorageDriver
from .errors import ArrayOperationFailed, ArrayUnreachable, from_purity
from .rest1 import Rest1Client


class FlashArrayClient(Rest1Client):
    """One FlashArray through the ``purestorage`` SDK."""

    def __init__(self, endpoint: ArrayEndpoint, *, connect_timeout: float = 5.0,
                 read_timeout: float = 30.0):
        self.name = endpoint.name
        self._endpoint = endpoint
        verify = endpoint.verify_tls
        self._request_kwargs = {"timeout": (connect_timeout, read_timeout),
                                "verify": str(verify) if isinstance(verify, Path) else verify}
        self._array: purestorage.FlashArray | None = None
        self._lock = threading.Lock()

    def _connected(self) -> purestorage.FlashArray:
        with self._lock:
            if self._array is None:
                self._array = purestorage.FlashArray(
                    self._endpoint.address, api_token=self._endpoint.api_token,
                    user_agent="site-recovery", request_kwargs=self._request_kwargs)
            return self._array

    def _call(self, operation: str, *args, **kwargs) -> Any:
        try:
            return getattr(self._connected(), operation)(*args, **kwargs)
        except purestorage.PureHTTPError as exc:
            raise self._http_error(exc) from None
        except purestorage.PureError as exc:
            raise ArrayUnreachable(self.name, self._describe(exc.reason)) from None
        except ValueError as exc:        # REST version negotiation
            raise ArrayOperationFailed(self.name, None, str(exc)) from None

    def _describe(self, reason: object) -> str:
        """A short cause for a transport failure (the SDK wraps requests' exceptions)."""
        connect, read = self._request_kwargs["timeout"]
        if isinstance(reason, requests.exceptions.ConnectTimeout):
            return f"no connection within {connect:g} s"
        if isinstance(reason, requests.exceptions.ReadTimeout):
            return f"no answer within {read:g} s"
        if isinstance(reason, requests.exceptions.SSLError):
            return f"TLS failure: {reason}"
        if isinstance(reason, requests.exceptions.ConnectionError):
            return "connection refused or dropped"
        return str(reason)

    def _http_error(self, exc: purestorage.PureHTTPError) -> Exception:
        try:
            errors = json.loads(exc.text)
            first = errors[0] if isinstance(errors, list) else errors
            return from_purity(self.name, first.get("ctx"), first["msg"])
        except (ValueError, LookupError, TypeError, AttributeError):
            return ArrayOperationFailed(self.name, None,
                                        f"HTTP {exc.code} {exc.reason}: {exc.text[:200]}")


def flasharray_driver(endpoints: Iterable[ArrayEndpoint], *, connect_timeout: float = 5.0,
                      read_timeout: float = 30.0, **options) -> StorageDriver:
    """A :class:`StorageDriver` over the given arrays."""
    clients = {e.name: FlashArrayClient(e, connect_timeout=connect_timeout,
                                        read_timeout=read_timeout) for e in endpoints}
    return StorageDriver(clients, **options)
