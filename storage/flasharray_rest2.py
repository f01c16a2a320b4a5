"""The FlashArray backend over REST 2.x: the DR driver through ``py-pure-client``.

Newer Purity releases grow REST 2.x only, so this backend offers the same
:class:`~.base.ArrayClient` operations as :mod:`.flasharray` over
``pypureclient.flasharray``, and turns every answer back into the REST 1.x shape the
driver reads (references become names, milliseconds become seconds and ISO-8601 times).

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
from urllib3 import exceptions as transport

from .base import ArrayClient, ArrayEndpoint
from .driver import StorageDriver
from .errors import ArrayOperationFailed, ArrayUnreachable, InvalidArgument, NotFound, from_purity

# The SDK renews an expired session (a 401) only while a retry is left; more retries
# would only make a failing array slower to report.
SDK_RETRIES = 1
# The oldest REST 2.x with every call this backend makes (Cinder's Pure driver needs it
# too); an array offering less is reached over REST 1.x.
MINIMUM_REST = (2, 4)


# -- REST 2.x objects in REST 1.x shapes ---------------------------------------------------
def iso_time(milliseconds: int | None) -> str | None:
    """A REST 2.x time (ms since the epoch) as REST 1.x writes one (ISO-8601, ``Z``)."""
    if milliseconds is None:
        return None
    moment = datetime.fromtimestamp(milliseconds / 1000, timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _field(item: Any, name: str) -> Any:
    """A model field, ``None`` when unset (the SDK's models raise on unset fields)."""
    return getattr(item, name, None)


def _ref_name(item: Any, name: str) -> str | None:
    """The name of a reference field: REST 1.x names what REST 2.x references."""
    return _field(_field(item, name), "name")


def _remaining_seconds(item: Any) -> int | None:
    """REST 1.x's ``time_remaining``: seconds until eradication, ``None`` unless destroyed."""
    if not _field(item, "destroyed"):
        return None
    return int((_field(item, "time_remaining") or 0) // 1000)


def volume_view(volume: Any) -> dict:
    """A volume or volume snapshot as REST 1.x lists it."""
    return {"name": volume.name, "serial": _field(volume, "serial"),
            "size": _field(volume, "provisioned"), "created": iso_time(_field(volume, "created")),
            "source": _ref_name(volume, "source"), "time_remaining": _remaining_seconds(volume)}


def pgroup_snapshot_view(snapshot: Any, transfer: Any = None) -> dict:
    """A pgroup snapshot as REST 1.x lists it, with its transfer when one is given."""
    view = {"name": snapshot.name, "source": _ref_name(snapshot, "source"),
            "created": iso_time(_field(snapshot, "created"))}
    if transfer is not None:
        view.update(started=iso_time(_field(transfer, "started")),
                    completed=iso_time(_field(transfer, "completed")),
                    progress=_field(transfer, "progress"),
                    data_transferred=_field(transfer, "data_transferred"),
                    physical_bytes_written=_field(transfer, "physical_bytes_written"))
    return view


def pod_view(pod: Any) -> dict:
    """A pod as REST 1.x shows it: its arrays by name, frozen_at as an ISO time."""
    arrays = [{"name": a.name, "array_id": _field(a, "id"), "status": _field(a, "status"),
               "mediator_status": _field(a, "mediator_status"),
               "frozen_at": iso_time(_field(a, "frozen_at"))} for a in _field(pod, "arrays") or []]
    return {"name": pod.name, "source": _ref_name(pod, "source"), "arrays": arrays,
            "failover_preference": [r.name for r in _field(pod, "failover_preferences") or []],
            "promotion_status": _field(pod, "promotion_status")}


def connection_view(connection: Any) -> dict:
    """An array connection as REST >= 1.17 lists it (one row per peer)."""
    return {"array_name": connection.name, "id": _field(connection, "id"),
            "status": _field(connection, "status"), "type": _field(connection, "type"),
            "version": _field(connection, "version"),
            "management_address": _field(connection, "management_address")}


def _check_options(operation: str, given: Iterable[str], known: set[str]):
    """Refuse a REST 1.x option this backend does not translate, rather than ignore it."""
    unknown = sorted(set(given) - known)
    if unknown:
        raise InvalidArgument(f"{operation}: option(s) {', '.join(unknown)} not supported by "
                              "the REST 2.x backend")


_PGROUP_SETTINGS = {"replicate_enabled", "replicate_frequency", "all_for", "target_all_for"}
_PGROUP_LISTS = {"addvollist": "post_protection_groups_volumes",
                 "remvollist": "delete_protection_groups_volumes",
                 "addtargetlist": "post_protection_groups_targets",
                 "remtargetlist": "delete_protection_groups_targets"}


def pgroup_settings(changes: dict[str, Any]) -> Any:
    """The ``ProtectionGroup`` patch for REST 1.x's schedule and retention settings
    (seconds; REST 2.x schedules count milliseconds), or ``None`` if none is asked."""
    schedule = {}
    if "replicate_enabled" in changes:
        schedule["enabled"] = bool(changes["replicate_enabled"])
    if "replicate_frequency" in changes:
        schedule["frequency"] = int(changes["replicate_frequency"]) * 1000
    fields = {}
    if schedule:
        fields["replication_schedule"] = flasharray.ReplicationSchedule(**schedule)
    if "all_for" in changes:
        fields["source_retention"] = flasharray.RetentionPolicy(
            all_for_sec=int(changes["all_for"]))
    if "target_all_for" in changes:
        fields["target_retention"] = flasharray.RetentionPolicy(
            all_for_sec=int(changes["target_all_for"]))
    return flasharray.ProtectionGroup(**fields) if fields else None


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
        if isinstance(response, flasharray.ErrorResponse) or _field(response, "errors"):
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
    def get_array(self) -> dict:
        array = self._one("get_arrays", self.name)
        return {"array_name": array.name, "id": _field(array, "id"),
                "version": _field(array, "version")}

    def list_array_connections(self) -> list[dict]:
        return [connection_view(c) for c in self._call("get_array_connections")]

    # -- volumes -------------------------------------------------------------------------
    def list_volumes(self, **flags) -> list[dict]:
        """Live volumes; ``snap``: volume snapshots instead; ``pending``: destroyed too."""
        _check_options("list_volumes", flags, {"snap", "pending"})
        operation = "get_volume_snapshots" if flags.get("snap") else "get_volumes"
        live_only = {} if flags.get("pending") else {"destroyed": False}
        return [volume_view(v) for v in self._call(operation, **live_only)]

    def get_volume(self, name: str) -> dict:
        return volume_view(self._live_one("get_volumes", name, "Volume", names=[name]))

    def create_volume(self, name: str, size: int) -> dict:
        return volume_view(self._one("post_volumes", name, names=[name],
                                     volume=flasharray.VolumePost(provisioned=int(size))))

    def copy_volume(self, source: str, dest: str, overwrite: bool = False) -> dict:
        return volume_view(self._one(
            "post_volumes", dest, names=[dest], overwrite=overwrite,
            volume=flasharray.VolumePost(source=flasharray.Reference(name=source))))

    def move_volume(self, name: str, container: str) -> dict:
        """Into the pod ``container``, or to the array's root for ``""``."""
        moved = self._one("patch_volumes", name, names=[name],
                          volume=flasharray.VolumePatch(pod=flasharray.Reference(name=container)))
        return {"name": moved.name}

    def destroy_volume(self, name: str) -> dict:
        return volume_view(self._one("patch_volumes", name, names=[name],
                                     volume=flasharray.VolumePatch(destroyed=True)))

    def eradicate_volume(self, name: str) -> dict:
        self._call("delete_volumes", obj=name, names=[name])
        return {"name": name}

    def list_volume_private_connections(self, name: str) -> list[dict]:
        """Host connections, not those through a host group (REST 1.x's "private")."""
        return [{"name": name, "host": _ref_name(c, "host"), "lun": _field(c, "lun")}
                for c in self._call("get_connections", obj=name, volume_names=[name])
                if _field(c, "host_group") is None]

    # -- protection groups ---------------------------------------------------------------
    def create_pgroup(self, name: str) -> dict:
        return {"name": self._one("post_protection_groups", name, names=[name]).name}

    def get_pgroup(self, name: str, **flags) -> Any:
        """A pgroup (members, targets), a pgroup snapshot (a name with '.'), or with
        ``snap`` the pgroup's snapshots, with ``transfer`` their replication progress."""
        _check_options("get_pgroup", flags, {"snap", "transfer"})
        if flags.get("snap"):
            return self._pgroup_snapshots(name, bool(flags.get("transfer")))
        if "." in name:                  # pgroup names hold no '.'; snapshot names do
            return pgroup_snapshot_view(self._live_one(
                "get_protection_group_snapshots", name, "Protection group snapshot",
                names=[name]))
        group = self._live_one("get_protection_groups", name, "Protection group", names=[name])
        volumes = [_ref_name(m, "member") for m in self._call(
            "get_protection_groups_volumes", obj=name, group_names=[name])]
        targets = [{"name": _ref_name(t, "member"), "allowed": bool(_field(t, "allowed"))}
                   for t in self._call("get_protection_groups_targets", obj=name,
                                       group_names=[name])]
        return {"name": group.name, "source": _ref_name(group, "source"), "volumes": volumes,
                "targets": targets or None}

    def _pgroup_snapshots(self, name: str, transfer: bool) -> list[dict]:
        """REST 2.x keeps the creation time and the transfer apart: two listings."""
        snapshots = self._call("get_protection_group_snapshots", obj=name,
                               source_names=[name], destroyed=False)
        if not transfer:
            return [pgroup_snapshot_view(s) for s in snapshots]
        transfers = {t.name: t for t in self._call(
            "get_protection_group_snapshots_transfer", obj=name, source_names=[name],
            destroyed=False)}
        return [pgroup_snapshot_view(s, transfers.get(s.name)) for s in snapshots]

    def set_pgroup(self, name: str, **changes) -> dict:
        """REST 1.x's one ``set_pgroup`` is several REST 2.x calls: membership lists,
        the replica's ``allowed`` (on the target array), schedule and retention."""
        _check_options("set_pgroup", changes, {*_PGROUP_LISTS, "allowed", *_PGROUP_SETTINGS})
        if "allowed" in changes:
            self._call("patch_protection_groups_targets", obj=name, group_names=[name],
                       target=flasharray.TargetProtectionGroupPostPatch(
                           allowed=bool(changes["allowed"])))
        for option, operation in _PGROUP_LISTS.items():
            if changes.get(option):
                self._call(operation, obj=name, group_names=[name],
                           member_names=list(changes[option]))
        settings = pgroup_settings(changes)
        if settings is not None:
            self._call("patch_protection_groups", obj=name, names=[name],
                       protection_group=settings)
        return {"name": name}

    def create_pgroup_snapshot(self, source: str, **options) -> dict:
        _check_options("create_pgroup_snapshot", options,
                       {"suffix", "replicate_now", "replicate", "apply_retention"})
        suffix = options.get("suffix")
        snapshot = self._one(
            "post_protection_group_snapshots", source, source_names=[source],
            protection_group_snapshot=flasharray.ProtectionGroupSnapshotPost(
                suffix=None if suffix is None else str(suffix)),
            replicate_now=options.get("replicate_now"), replicate=options.get("replicate"),
            apply_retention=options.get("apply_retention"))
        return pgroup_snapshot_view(snapshot)

    def destroy_pgroup(self, name: str) -> dict:
        """A pgroup, or a pgroup snapshot (a name with '.')."""
        if "." in name:
            self._call("patch_protection_group_snapshots", obj=name, names=[name],
                       protection_group_snapshot=flasharray.ProtectionGroupSnapshotPatch(
                           destroyed=True))
        else:
            self._call("patch_protection_groups", obj=name, names=[name],
                       protection_group=flasharray.ProtectionGroup(destroyed=True))
        return {"name": name}

    def eradicate_pgroup(self, name: str) -> dict:
        operation = ("delete_protection_group_snapshots" if "." in name
                     else "delete_protection_groups")
        self._call(operation, obj=name, names=[name])
        return {"name": name}

    # -- pods ----------------------------------------------------------------------------
    def create_pod(self, name: str) -> dict:
        return pod_view(self._one("post_pods", name, names=[name], pod=flasharray.PodPost()))

    def get_pod(self, name: str) -> dict:
        return pod_view(self._live_one("get_pods", name, "Pod", names=[name]))

    def set_pod(self, name: str, **changes) -> dict:
        _check_options("set_pod", changes, {"failover_preference"})
        preference = changes.get("failover_preference")
        patch = flasharray.PodPatch(failover_preferences=None if preference is None else [
            flasharray.Reference(name=array) for array in preference])
        return pod_view(self._one("patch_pods", name, names=[name], pod=patch))

    def add_pod(self, pod: str, array: str) -> dict:
        """Stretch the pod to ``array``."""
        self._call("post_pods_arrays", obj=pod, group_names=[pod], member_names=[array])
        return {"name": pod}

    def remove_pod(self, pod: str, array: str, **options) -> dict:
        """Unstretch the pod from ``array`` (``with_unknown``: though it cannot be reached)."""
        _check_options("remove_pod", options, {"with_unknown"})
        self._call("delete_pods_arrays", obj=pod, group_names=[pod], member_names=[array],
                   with_unknown=options.get("with_unknown"))
        return {"name": pod}

    def destroy_pod(self, name: str) -> dict:
        pod = self._one("patch_pods", name, names=[name], pod=flasharray.PodPatch(destroyed=True))
        return {"name": name, "time_remaining": _remaining_seconds(pod)}

    def eradicate_pod(self, name: str) -> dict:
        self._call("delete_pods", obj=name, names=[name])
        return {"name": name}


def flasharray_rest2_driver(endpoints: Iterable[ArrayEndpoint], *,
                            connect_timeout: float = 5.0, read_timeout: float = 30.0,
                            **options) -> StorageDriver:
    """A :class:`StorageDriver` over the given arrays, through REST 2.x."""
    clients = {e.name: FlashArrayRest2Client(e, connect_timeout=connect_timeout,
                                             read_timeout=read_timeout) for e in endpoints}
    return StorageDriver(clients, **options)
