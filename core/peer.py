"""The peer site's protection service, as this site reaches it: with the peer account.

A site holds only its own keys. What it needs of the peer site it asks the peer's service
for, signed in to the peer's Keystone with the ``clouds.peer`` entry: an account that
holds the ``site_recovery_service`` role in the peer's service project and nothing else,
so these credentials open the peer's ``/v1/internal`` API and no cloud. The service's
metadata sync (``webhook.peerlink``) and the workflows' peer steps
(:class:`PeerService`) both sign in so.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import cached_property

from keystoneauth1 import exceptions as ks_exceptions
from keystoneauth1 import session as ks_session
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from .config import ServiceConfig
from .model import FINISHED, PeerStepRequest, Status
from .service import refusal

INTERNAL = "/v1/internal"


def peer_session(config: ServiceConfig, timeout: float) -> ks_session.Session:
    """A keystoneauth session signed in to the peer's Keystone as the peer account, as its
    entry says (a password, or an application credential: it is never rescoped)."""
    return config.clouds.region("peer", api_timeout=timeout).get_session()


class PeerStepFailed(RuntimeError):
    """The peer site did not do what a step asked of it; the message says why."""


class PeerUnreachable(PeerStepFailed):
    """The peer's service did not answer at all (a site that is down, or cut off)."""


class PeerService:
    """The peer's ``/v1/internal`` API for the workflows: peer steps, and what the peer's
    cloud holds of a group."""

    def __init__(self, config: ServiceConfig, sleep: Callable[[float], None] = time.sleep):
        self.config, self.name, self.sleep = config, config.peer.name, sleep
        self.url = str(config.peer.url).rstrip("/") + INTERNAL
        self.timeout = config.peer.sync_timeout

    @cached_property
    def session(self) -> ks_session.Session:
        return peer_session(self.config, self.timeout)

    @retry(retry=retry_if_exception_type(ks_exceptions.ConnectFailure), reraise=True,
           stop=stop_after_attempt(4), wait=wait_exponential(multiplier=0.5, max=5))
    def _send(self, method: str, path: str, body: dict | None):
        return self.session.request(f"{self.url}{path}", method, json=body, raise_exc=False,
                                    timeout=self.timeout, verify=self.config.peer_verify)

    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        """One call; every failure is a :class:`PeerStepFailed` naming the peer and why."""
        try:
            reply = self._send(method, path, body)
        except ks_exceptions.ConnectionError as exc:          # refused, timed out, TLS
            raise PeerUnreachable(f"peer site {self.name} did not answer "
                                  f"({type(exc).__name__})") from None
        except ks_exceptions.ClientException as exc:         # its Keystone refused us
            raise PeerStepFailed(f"peer site {self.name} could not be asked "
                                 f"({type(exc).__name__})") from None
        if reply.status_code >= 300:
            raise PeerStepFailed(f"peer site {self.name} refused {method} {path} "
                                 f"({reply.status_code}): {refusal(reply)}")
        return reply.json()

    def run_step(self, request: PeerStepRequest, timeout: float) -> dict:
        """Ask the peer to run one step on its cloud or array and wait for its end: the
        peer's result for the group (what it found, ``details``; a recovery point it
        took, ``recovery_point``). Asking again with the same key finds the same step."""
        op = self._call("POST", "/peer-steps",
                        request.model_dump(mode="json", exclude_none=True))["operation"]
        deadline = time.monotonic() + timeout
        while Status(op["status"]) not in FINISHED:
            if time.monotonic() >= deadline:
                raise PeerStepFailed(f"timed out after {timeout:g} s waiting for peer site "
                                     f"{self.name} to {request.step.label} (its operation "
                                     f"{op['id']})")
            self.sleep(self.config.engine.poll_interval)
            op = self._call("GET", f"/operations/{op['id']}")["operation"]
        (result,) = op["results"]
        if result["status"] != Status.COMPLETED:
            raise PeerStepFailed(f"peer site {self.name} could not {request.step.label}: "
                                 f"{result['reason'] or 'no reason given'} (its operation "
                                 f"{op['id']})")
        return result

    def copies(self, group_id: str, purpose: str) -> dict[str, str]:
        """The group's ``purpose`` copies on the peer's cloud: copy id by source volume."""
        return self._call("GET", f"/protection-groups/{group_id}/copies?purpose={purpose}"
                          )["copies"]
