"""The FlashArray backend over REST 2.x: the DR driver through ``py-pure-client``.

Newer Purity releases grow REST 2.x only, so this backend offers the
:class:`~.base.ArrayClient` operations over ``pypureclient.flasharray``: each is one
REST 2.x call or a few, its answer the driver's typed values (references become names,
milliseconds seconds and times).

The SDK logs in in its constructor, so each array's client connects lazily, on first use,
and the SDK negotiates the newest REST version both sides know. Every request carries
explicit connect and read timeouts; transport retries are off and the SDK's own retry
budget is the one retry that renewing an expired session needs, so a dead array fails
as fast as the timeouts allow. Error answers become :mod:`.errors` types by Purity's
message text, transport failures :class:`~.errors.ArrayUnreachable`; no message ever
carries the API token.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from pypureclient import flasharray
from pypureclient.configuration import Configuration
from pypureclient.exceptions import PureError

# The models by name at import: the SDK's first lookup of one loads its newest
# client module (0.7 s), which would otherwise land in the first DR step's time.
from pypureclient.flasharray import (
    ErrorResponse,
    PodPatch,
    PodPost,
    ProtectionGroup,
    ProtectionGroupSnapshotPatch,
    ProtectionGroupSnapshotPost,
    Reference,
    ReplicationSchedule,
    RetentionPolicy,
    TargetProtectionGroupPostPatch,
    VolumePatch,
    VolumePost,
)
from urllib3 import exceptions as transport

from .base import (
    ArrayClient,
    ArrayEndpoint,
    Connection,
    PgroupSnapshot,
    PgroupState,
    PodArray,
    Volume,
)
from .driver import StorageDriver
from .errors import ArrayOperationFailed, ArrayUnreachable, NotFound, from_purity

# The SDK renews an expired session (a 401) only while a retry is left; more retries
# would only make a failing array slower to report.
SDK_RETRIES = 1
# The oldest REST 2.x with every call this backend makes (Cinder's Pure driver needs it
# too); an array offering less is reached over REST 1.x.
MINIMUM_REST = (2, 4)


# -- REST 2.x objects as the driver's values -------------------------------------------------
def moment(milliseconds: int | None) -> datetime | None:
    """A REST 2.x time (milliseconds since the epoch)."""
    if milliseconds is None:
        return None
    return datetime.fromtimestamp(milliseconds / 1000, timezone.utc)


def _field(item: Any, name: str) -> Any:
    """A model field, ``None`` when unset (the SDK's models raise on unset fields)."""
    return getattr(item, name, None)


def _ref_name(item: Any, name: str) -> str | None:
    """The name of a reference field."""
    return _field(_field(item, name), "name")


def volume_of(volume: Any) -> Volume:
    """A volume or volume snapshot."""
    return Volume(name=volume.name, serial=_field(volume, "serial"),
                  size=int(_field(volume, "provisioned") or 0),
                  destroyed=bool(_field(volume, "destroyed")))


def snapshot_of(snapshot: Any, transfer: Any = None) -> PgroupSnapshot:
    """A pgroup snapshot, with its transfer when one is given."""
    progress = _field(transfer, "progress")
    return PgroupSnapshot(name=snapshot.name, created=moment(_field(snapshot, "created")),
                          completed=moment(_field(transfer, "completed")),
                          progress=None if progress is None else float(progress))


def pod_arrays_of(pod: Any) -> dict[str, PodArray]:
    """A pod's arrays by name."""
    return {a.name: PodArray(name=a.name, status=_field(a, "status"),
                             frozen_at=moment(_field(a, "frozen_at")))
            for a in _field(pod, "arrays") or []}


def connection_of(connection: Any) -> Connection:
    """An array connection: REST 2.x lists one per peer, with one type."""
    kind = _field(connection, "type")
    return Connection(peer=connection.name, status=_field(connection, "status"),
                      types=(kind,) if kind else ())


def replication_patch(interval: int | None, retention: int | None,
                      enabled: bool | None) -> Any:
    """One ``ProtectionGroup`` patch for the schedule, its switch and the retention on
    both sides (REST 2.x schedules count milliseconds), or ``None`` if nothing changes."""
    schedule = {}
    if enabled is not None:
        schedule["enabled"] = bool(enabled)
    if interval is not None:
        schedule["frequency"] = int(interval) * 1000
    fields = {}
    if schedule:
        fields["replication_schedule"] = ReplicationSchedule(**schedule)
    if retention is not None:
        fields["source_retention"] = RetentionPolicy(all_for_sec=int(retention))
        fields["target_retention"] = RetentionPolicy(all_for_sec=int(retention))
    return ProtectionGroup(**fields) if fields else None


# -- the client -----------------------------------------------------------------------------
class FlashArrayRest2Client(ArrayClient):
    """One FlashArray through ``py-pure-client`` (REST 2.x)."""

    def __init__(self, endpoint: ArrayEndpoint, *, connect_timeout: float = 5.0,
                 read_timeout: float = 30.0):
        self.name = endpoint.name
        self._endpoint = endpoint
        self._timeout = (connect_timeout, read_timeout)
        self._client: Any = None
        self._lock = threading.Lock()

    def __repr__(self):                # never show the token
        return f"FlashArrayRest2Client(name={self.name!r}, address={self._endpoint.address!r})"

    def _configuration(self) -> Configuration:
        """TLS as the endpoint says, and no transport retries. A CA bundle goes to
        ``ssl_ca_cert``: the SDK's own ``ssl_cert`` argument never reaches the transport."""
        verify = self._endpoint.verify_tls
        configuration = Configuration(
            ssl_ca_cert=None if isinstance(verify, bool) else str(verify))
        configuration.verify_ssl = verify if isinstance(verify, bool) else True
        configuration.retries = 0
        return configuration

    def _connected(self) -> Any:
        with self._lock:
            if self._client is None:
                try:
                    self._client = flasharray.Client(
                        self._endpoint.address, api_token=self._endpoint.api_token,
                        configuration=self._configuration(), retries=SDK_RETRIES,
                        timeout=self._timeout, user_agent="site-recovery")
                except PureError as exc:     # it answered, refusing the token or version probe
                    raise ArrayOperationFailed(
                        self.name, None, f"REST 2.x login failed: {self._redact(exc.reason)}",
                    ) from None
                except ValueError as exc:    # no REST version in common, or no JSON answer
                    raise ArrayOperationFailed(self.name, None, self._redact(exc)) from None
                self._refuse_old_rest(self._client.get_rest_version())
            return self._client

    def _refuse_old_rest(self, version: str):
        """The SDK agreed on the newest version both sides know; below ``MINIMUM_REST``
        some calls of this backend do not exist (the client is dropped: no half-usable
        connection stays)."""
        major, _, minor = version.partition(".")
        if major.isdigit() and minor.isdigit() and (int(major), int(minor)) < MINIMUM_REST:
            self._client = None
            raise ArrayOperationFailed(
                self.name, None, f"the array offers REST {version} at most; the REST 2.x "
                f"backend needs {'.'.join(map(str, MINIMUM_REST))} or later: set this "
                "array's rest_version to 1 (Purity older than 6.1)")

    def _call(self, operation: str, *, obj: str | None = None, **params) -> list:
        """One SDK call: its items, or the typed error of its failure (``obj`` names the
        object when the array's error has no context)."""
        try:
            response = getattr(self._connected(), operation)(**params)
            items = list(_field(response, "items") or [])
        except transport.HTTPError as exc:
            raise ArrayUnreachable(self.name, self._describe(exc)) from None
        except PureError as exc:
            raise self._sdk_failure(exc, obj) from None
        if isinstance(response, ErrorResponse) or _field(response, "errors"):
            raise self._refusal(response, obj)
        return items

    def _one(self, operation: str, obj: str, **params) -> Any:
        """The one object a call on ``obj`` answers with."""
        items = self._call(operation, obj=obj, **params)
        if not items:
            raise ArrayOperationFailed(self.name, obj, f"{operation} answered no object")
        return items[0]

    def _live_one(self, operation: str, obj: str, kind: str, **params) -> Any:
        """Like :meth:`_one`, but a destroyed object is not there (as in REST 1.x)."""
        items = self._call(operation, obj=obj, **params)
        if not items or _field(items[0], "destroyed"):
            raise NotFound(self.name, obj, f"{kind} does not exist.")
        return items[0]

    def _refusal(self, response: Any, obj: str | None) -> Exception:
        errors = _field(response, "errors") or []
        if not errors:
            return ArrayOperationFailed(self.name, obj,
                                        f"HTTP {_field(response, 'status_code')} without errors")
        first = errors[0]
        return from_purity(self.name, _field(first, "context") or obj,
                           self._redact(_field(first, "message") or "no error message"))

    def _sdk_failure(self, exc: PureError, obj: str | None) -> Exception:
        """The SDK's own failures: a status-0 ``ApiException`` is the transport's (TLS)."""
        reason = exc.reason
        if _field(reason, "status") == 0:
            cause = self._redact(_field(reason, "reason") or reason)
            return ArrayUnreachable(self.name, cause[:200])
        return ArrayOperationFailed(self.name, obj, self._redact(reason)[:300])

    def _describe(self, exc: transport.HTTPError) -> str:
        """A short cause for a transport failure (urllib3 wraps it in MaxRetryError). Only
        names urllib3 1.26 has too: Mistral's venvs may hold it."""
        connect, read = self._timeout
        cause = exc.reason if isinstance(exc, transport.MaxRetryError) else exc
        if isinstance(cause, transport.NewConnectionError):    # before its base class
            return "connection refused (or no such address)"
        if isinstance(cause, transport.ConnectTimeoutError):
            return f"no connection within {connect:g} s"
        if isinstance(cause, transport.ReadTimeoutError):
            return f"no answer within {read:g} s"
        if isinstance(cause, transport.SSLError):
            return self._redact(f"TLS failure: {cause}")
        if isinstance(cause, transport.ProtocolError):
            return "connection dropped"
        return self._redact(cause)

    def _redact(self, text: object) -> str:
        """``text`` on one line, without the API token (error bodies may echo a request)."""
        token = self._endpoint.api_token
        line = " ".join(str(text).split())
        return line.replace(token, "<api token>") if token else line

    # -- array ---------------------------------------------------------------------------
    def version(self) -> str | None:
        return _field(self._one("get_arrays", self.name), "version")

    def connections(self) -> list[Connection]:
        return [connection_of(c) for c in self._call("get_array_connections")]

    # -- volumes -------------------------------------------------------------------------
    def volume(self, name: str) -> Volume:
        return volume_of(self._live_one("get_volumes", name, "Volume", names=[name]))

    def volumes(self, *, destroyed: bool = False) -> list[Volume]:
        live_only = {} if destroyed else {"destroyed": False}
        return [volume_of(v) for v in self._call("get_volumes", **live_only)]

    def copy_volume(self, source: str, dest: str, overwrite: bool = False) -> Volume:
        return volume_of(self._one(
            "post_volumes", dest, names=[dest], overwrite=overwrite,
            volume=VolumePost(source=Reference(name=source))))

    def move_volume(self, name: str, pod: str):
        self._call("patch_volumes", obj=name, names=[name],
                   volume=VolumePatch(pod=Reference(name=pod)))

    def destroy_volume(self, name: str):
        self._call("patch_volumes", obj=name, names=[name],
                   volume=VolumePatch(destroyed=True))

    def eradicate_volume(self, name: str):
        self._call("delete_volumes", obj=name, names=[name])

    # -- protection groups ---------------------------------------------------------------
    def create_pgroup(self, name: str):
        self._call("post_protection_groups", obj=name, names=[name])

    def pgroup(self, name: str) -> PgroupState:
        """The group, its members and its targets: three listings in REST 2.x."""
        self._live_one("get_protection_groups", name, "Protection group", names=[name])
        volumes = tuple(_ref_name(m, "member") for m in self._call(
            "get_protection_groups_volumes", obj=name, group_names=[name]))
        targets = {_ref_name(t, "member"): bool(_field(t, "allowed")) for t in self._call(
            "get_protection_groups_targets", obj=name, group_names=[name])}
        return PgroupState(name=name, volumes=volumes, targets=targets)

    def set_replication(self, name: str, *, interval: int | None = None,
                        retention: int | None = None, enabled: bool | None = None):
        patch = replication_patch(interval, retention, enabled)
        if patch is not None:
            self._call("patch_protection_groups", obj=name, names=[name],
                       protection_group=patch)

    def add_target(self, name: str, array: str):
        self._call("post_protection_groups_targets", obj=name, group_names=[name],
                   member_names=[array])

    def remove_target(self, name: str, array: str):
        self._call("delete_protection_groups_targets", obj=name, group_names=[name],
                   member_names=[array])

    def allow_replica(self, replica: str):
        self._call("patch_protection_groups_targets", obj=replica, group_names=[replica],
                   target=TargetProtectionGroupPostPatch(allowed=True))

    def add_volumes(self, name: str, volumes: list[str]):
        self._call("post_protection_groups_volumes", obj=name, group_names=[name],
                   member_names=list(volumes))

    def remove_volumes(self, name: str, volumes: list[str]):
        self._call("delete_protection_groups_volumes", obj=name, group_names=[name],
                   member_names=list(volumes))

    def destroy_pgroup(self, name: str):
        self._call("patch_protection_groups", obj=name, names=[name],
                   protection_group=ProtectionGroup(destroyed=True))

    def eradicate_pgroup(self, name: str):
        self._call("delete_protection_groups", obj=name, names=[name])

    # -- protection-group snapshots ------------------------------------------------------
    def snapshot_pgroup(self, name: str, suffix: str, replicate_now: bool = False) -> str:
        return self._one(
            "post_protection_group_snapshots", name, source_names=[name],
            protection_group_snapshot=ProtectionGroupSnapshotPost(suffix=suffix),
            replicate_now=replicate_now or None).name

    def pgroup_snapshots(self, name: str) -> list[PgroupSnapshot]:
        """REST 2.x keeps the creation time and the transfer apart: two listings."""
        snapshots = self._call("get_protection_group_snapshots", obj=name,
                               source_names=[name], destroyed=False)
        progress = {t.name: t for t in self._call(
            "get_protection_group_snapshots_transfer", obj=name, source_names=[name],
            destroyed=False)}
        return [snapshot_of(s, progress.get(s.name)) for s in snapshots]

    def pgroup_snapshot(self, name: str) -> PgroupSnapshot:
        return snapshot_of(self._live_one("get_protection_group_snapshots", name,
                                          "Protection group snapshot", names=[name]))

    def pgroup_snapshot_volumes(self, name: str) -> list[str]:
        """Its volume snapshots are named ``<snapshot>.<volume>``: one filtered listing."""
        return [v.name for v in self._call("get_volume_snapshots", obj=name,
                                           filter=f"name='{name}.*'", destroyed=False)]

    def destroy_pgroup_snapshot(self, name: str):
        self._call("patch_protection_group_snapshots", obj=name, names=[name],
                   protection_group_snapshot=ProtectionGroupSnapshotPatch(
                       destroyed=True))

    def eradicate_pgroup_snapshot(self, name: str):
        self._call("delete_protection_group_snapshots", obj=name, names=[name])

    # -- pods ----------------------------------------------------------------------------
    def create_pod(self, name: str):
        self._call("post_pods", obj=name, names=[name], pod=PodPost())

    def pod_arrays(self, name: str) -> dict[str, PodArray]:
        return pod_arrays_of(self._live_one("get_pods", name, "Pod", names=[name]))

    def stretch_pod(self, name: str, array: str):
        self._call("post_pods_arrays", obj=name, group_names=[name], member_names=[array])

    def unstretch_pod(self, name: str, array: str):
        self._call("delete_pods_arrays", obj=name, group_names=[name], member_names=[array])

    def prefer_array(self, name: str, array: str):
        self._call("patch_pods", obj=name, names=[name], pod=PodPatch(
            failover_preferences=[Reference(name=array)]))

    def destroy_pod(self, name: str):
        self._call("patch_pods", obj=name, names=[name], pod=PodPatch(destroyed=True))

    def eradicate_pod(self, name: str):
        self._call("delete_pods", obj=name, names=[name])


def flasharray_rest2_driver(endpoints: Iterable[ArrayEndpoint], *,
                            connect_timeout: float = 5.0, read_timeout: float = 30.0,
                            **options) -> StorageDriver:
    """A :class:`StorageDriver` over the given arrays, through REST 2.x."""
    clients = {e.name: FlashArrayRest2Client(e, connect_timeout=connect_timeout,
                                             read_timeout=read_timeout) for e in endpoints}
    return StorageDriver(clients, **options)
