"""Calls to the peer site's protection service, as the peer account.

The two sites have independent Keystones, so a user's token means nothing to the peer:
site-to-site calls sign in to the peer's Keystone as the peer account (the ``clouds.peer``
entry, a password or an application credential;
:func:`site_recovery.core.peer.peer_session`), which the peer checks. Every call
has the configured timeout; a peer that does not answer (its service or its Keystone) is
:class:`PeerUnreachable`.
"""

from __future__ import annotations

from dataclasses import dataclass

from keystoneauth1 import exceptions as ks_exceptions
from keystoneauth1 import session as ks_session

from site_recovery.core.config import ServiceConfig
from site_recovery.core.peer import peer_session

from . import logs


class PeerUnreachable(Exception):
    """The peer's service or its Keystone did not answer. ``maybe_delivered``: the request
    may have reached the peer (a timeout), unlike a refused connection."""

    def __init__(self, why: str, *, maybe_delivered: bool = False):
        super().__init__(why)
        self.maybe_delivered = maybe_delivered


@dataclass(frozen=True)
class Reply:
    status: int
    body: dict


class PeerLink:
    def __init__(self, config: ServiceConfig):
        self.name = config.peer.name
        self._url = str(config.peer.url).rstrip("/")
        self._timeout = config.peer.sync_timeout
        self._config = config
        config.clouds.region("peer")              # a broken entry stops the start
        self._verify = config.peer_verify
        self._session: ks_session.Session | None = None

    def _signed_in(self) -> ks_session.Session:
        if self._session is None:
            self._session = peer_session(self._config, self._timeout)
        return self._session

    def request(self, method: str, path: str, body: dict | None = None) -> Reply:
        """One call to the peer's ``/v1/internal`` API; any HTTP status is returned."""
        try:
            response = self._signed_in().request(
                f"{self._url}{path}", method, json=body, raise_exc=False,
                connect_retries=0, timeout=self._timeout, verify=self._verify,
                # the peer's logs name the request that caused the call
                global_request_id=logs.current_request_id())
        except ks_exceptions.ConnectFailure as exc:
            raise PeerUnreachable(type(exc).__name__) from None
        except (ks_exceptions.ConnectionError, ks_exceptions.RequestTimeout,
                ks_exceptions.DiscoveryFailure) as exc:
            # keystoneauth reports a read timeout as a connect timeout: the peer may have
            # taken the request.
            raise PeerUnreachable(type(exc).__name__, maybe_delivered=True) from None
        except ks_exceptions.Unauthorized:
            raise PeerUnreachable("its Keystone refused this service's credentials") from None
        except ks_exceptions.HttpError as exc:
            raise PeerUnreachable(f"its Keystone answered HTTP {exc.http_status}") from None
        try:
            payload = response.json() if response.content else {}
        except ValueError:
            payload = {}
        if response.status_code >= 500 and "error" not in payload:
            raise PeerUnreachable(f"it answered HTTP {response.status_code}")
        return Reply(response.status_code, payload)
