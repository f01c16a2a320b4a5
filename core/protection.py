"""May these VMs be protected together? Their volumes must replicate the group's way.

A protection group is one Cinder group and one array pgroup (async) or pod (sync), so every
volume of every member must be of a volume type that Cinder's Pure driver replicates
(``replication_enabled='<is> True'``) with the group's replication type
(``replication_type='<in> async'`` or ``'<in> sync'``). Anything else is refused before
anything is created, naming each volume and what its type lacks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


class Unprotectable(ValueError):
    """Some member volumes cannot join the group; the message names each one."""


@dataclass(frozen=True)
class MemberVolume:
    server: str                       # the VM's name
    volume_id: str
    volume_name: str
    volume_type: str | None


def replication_of(extra_specs: Mapping[str, str]) -> str | None:
    """The replication type a volume type's extra specs promise (async, sync), or None."""
    if extra_specs.get("replication_enabled", "").replace(" ", "").lower() != "<is>true":
        return None
    wanted = extra_specs.get("replication_type", "<in> async")   # Pure's default: async
    kind = wanted.replace("<in>", "").strip().lower()
    return kind if kind in ("async", "sync") else None


def check(volumes: Sequence[MemberVolume], type_specs: Mapping[str, Mapping[str, str]],
          replication_type: str):
    """Refuse, naming every offending volume, unless all replicate ``replication_type``."""
    problems = []
    for volume in volumes:
        label = f"{volume.server}: volume {volume.volume_name or volume.volume_id}"
        if volume.volume_type not in type_specs:
            problems.append(f"{label} has volume type {volume.volume_type!r}, which is not "
                            "replicated")
            continue
        actual = replication_of(type_specs[volume.volume_type])
        if actual is None:
            problems.append(f"{label} has volume type {volume.volume_type!r}, which is not "
                            "replication-enabled")
        elif actual != replication_type:
            problems.append(f"{label} has volume type {volume.volume_type!r}, which "
                            f"replicates {actual}, not {replication_type}")
    if problems:
        raise Unprotectable("these volumes cannot join a group replicating "
                            f"{replication_type}: " + "; ".join(problems))


def member_volumes(conn, server_ids: Sequence[str]) -> tuple[list[MemberVolume], dict]:
    """The members' volumes and the specs of their types, read on the primary site."""
    volumes, specs = [], {}
    for server_id in server_ids:
        server = conn.compute.get_server(server_id)
        for attachment in conn.compute.volume_attachments(server):
            volume = conn.block_storage.get_volume(attachment.volume_id)
            volumes.append(MemberVolume(server.name, volume.id, volume.name,
                                        volume.volume_type))
            if volume.volume_type and volume.volume_type not in specs:
                found = conn.block_storage.find_type(volume.volume_type, ignore_missing=True)
                if found is not None:
                    specs[volume.volume_type] = dict(found.extra_specs or {})
    return volumes, specs
