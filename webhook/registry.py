"""Protection groups and resource mappings, kept identical on both sites.

Every change is a :class:`Change`: a small serialisable command that turns the current
document of a group or mapping (:mod:`site_recovery.core.model`) into the next one. One
site of the pair makes every change (the coordinator: the first by name); the other
forwards the changes it receives, so two changes never race from two sides. The
coordinator builds the next document with ``version + 1`` and pushes it to the peer, which
takes it only if it still holds the version the change was built on (and no other object
holds its name); only then is it stored on the coordinator. So both sites hold the same
version, or the change is refused:

- peer unreachable (as judged by the prober, or on the push itself): 503;
- another change won the race, or the name is taken: 409.

The other site is therefore never behind the coordinator. The coordinator may be behind
it, when a push was taken but its answer lost (a timeout, a crash): its next conflict
makes it adopt the other site's documents (:meth:`Registry.sync`), and the change that
was lost in doubt is then visible on both sites.

One kind of change is made on one site only: what a failover did, recorded by the site
that now runs the workload while its peer is away (:meth:`Registry.submit_even_alone`).
Each document's clock (:mod:`site_recovery.core.lineage`) counts which site wrote how many
of its versions, so when the sites talk again each copy is known to be newer, older, or
written apart from the other. Newer copies are adopted. Copies written apart are never
chosen between silently: both are kept (:class:`~.models.Divergence`), the object is
refused every change, and it shows ``conflict`` until one copy is kept, by the rule that
a failover's takeover record wins or by people (``resolve``).
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from site_recovery.core import lineage
from site_recovery.core.config import ServiceConfig
from site_recovery.core.model import (
    DEFAULT_DOMAIN,
    MEMBERS_MAX,
    UNFINISHED,
    GroupDocument,
    GroupStatus,
    MappingDocument,
    MemberDocument,
    Project,
    StrEnum,
)
from site_recovery.core.plan import GroupPlan

from . import audit, db
from .errors import APIError, Conflict, Forbidden, NotFound, Unavailable
from .models import (
    Divergence,
    Member,
    Operation,
    OperationResult,
    ProtectionGroup,
    ResourceMapping,
    Site,
    owned_by,
    utcnow,
)
from .peerlink import PeerLink, PeerUnreachable

log = logging.getLogger(__name__)


class DocumentKind(StrEnum):
    PROTECTION_GROUP = "protection_group"
    RESOURCE_MAPPING = "resource_mapping"

    @property
    def noun(self) -> str:
        return self.value.replace("_", " ")


class ChangeAction(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    ADD_MEMBER = "add_member"
    REMOVE_MEMBER = "remove_member"
    CAPTURE = "capture"
    SET_MEMBER = "set_member"          # a member's boot tier and gate
    SET_STATE = "set_state"
    RESOLVE = "resolve"               # keep one of two diverged copies


# -- documents: the whole state of one object, as both sites store it ------------------------

def group_document(group: ProtectionGroup) -> GroupDocument:
    return GroupDocument.model_validate(group, from_attributes=True)


def mapping_document(mapping: ResourceMapping) -> MappingDocument:
    return MappingDocument.model_validate(mapping, from_attributes=True)


def recovery_inputs(session: Session, group_id: str
                    ) -> tuple[ProtectionGroup, GroupPlan, list[MappingDocument]]:
    """What a look at a group's recovery reads of it here: the group, its plan and the
    mappings that may apply; NotFound once it is gone (deleted meanwhile)."""
    group = session.get(ProtectionGroup, group_id)
    if group is None:
        raise NotFound(f"protection group {group_id!r} not found (deleted meanwhile)")
    return group, GroupPlan(group_document(group)), mappings_for(session, group)


def mappings_for(session: Session, group: ProtectionGroup) -> list[MappingDocument]:
    """The mappings that may apply to ``group``: its project's, and its own."""
    return [mapping_document(m) for m in session.scalars(
        select(ResourceMapping).where(owned_by(ResourceMapping, group.project),
                                      or_(ResourceMapping.group_id.is_(None),
                                          ResourceMapping.group_id == group.id)))]


def _columns(document: BaseModel, *, leave: set[str]) -> dict[str, Any]:
    """A document's fields, as the database stores them."""
    values = {name: getattr(document, name) for name in type(document).model_fields
              if name not in leave}
    return {name: value.model_dump(mode="json") if isinstance(value, BaseModel) else value
            for name, value in values.items()}


def store_group(session: Session, doc: GroupDocument, *, force: bool = False
                ) -> ProtectionGroup:
    """Store ``doc`` unless this site already holds that version or a newer one (``force``:
    whatever this site holds)."""
    group = session.get(ProtectionGroup, doc.id)
    if group is not None and group.version >= doc.version and not force:
        return group
    if group is None:
        group = ProtectionGroup(id=doc.id, created_at=doc.created_at)
        session.add(group)
    for name, value in _columns(doc, leave={"id", "created_at", "members"}).items():
        setattr(group, name, value)
    wanted = {m.id: m for m in doc.members}
    for member in list(group.members):
        if member.id not in wanted:
            group.members.remove(member)
    session.flush()                   # a server removed and added again: the old row first
    held = {m.id: m for m in group.members}
    for item in doc.members:
        member = held.get(item.id)
        if member is None:
            member = Member(id=item.id)
            group.members.append(member)
        for name, value in _columns(item, leave={"id"}).items():
            setattr(member, name, value)
    session.flush()
    return group


def store_mapping(session: Session, doc: MappingDocument, *, force: bool = False
                  ) -> ResourceMapping:
    mapping = session.get(ResourceMapping, doc.id)
    if mapping is not None and mapping.version >= doc.version and not force:
        return mapping
    if mapping is None:
        mapping = ResourceMapping(id=doc.id)
        session.add(mapping)
    for name, value in _columns(doc, leave={"id"}).items():
        setattr(mapping, name, value)
    mapping.scope = doc.group_id or "project"
    session.flush()
    return mapping


@dataclass(frozen=True)
class Kind:
    """How one kind of document is kept: its table, document, store and peer path."""

    model: type
    document_type: type[BaseModel]
    document: Any
    store: Any
    path: str


KINDS = {DocumentKind.PROTECTION_GROUP: Kind(ProtectionGroup, GroupDocument, group_document,
                                             store_group, "/v1/internal/protection-groups"),
         DocumentKind.RESOURCE_MAPPING: Kind(ResourceMapping, MappingDocument,
                                             mapping_document, store_mapping,
                                             "/v1/internal/resource-mappings")}


def receive(session: Session, kind: DocumentKind, object_id: str, doc: BaseModel | None,
            expected_version: int, expected_clock: dict | None = None,
            resolution: str | None = None, specs_held: list[str] = ()) -> BaseModel | None:
    """The peer's side of a push: take ``doc`` (None: delete) if this site still holds
    ``expected_version`` (0: nothing) with ``expected_clock`` (None: a peer that does not
    send one), the copy the pusher built on. ``resolution``: the push keeps one of two
    diverged copies, and says why; ``specs_held``: members sent without their spec, which
    is this site's. Raises Conflict carrying this site's copy."""
    kind = DocumentKind(kind)
    keeping = KINDS[kind]
    if doc is not None and doc.id != object_id:
        raise APIError(f"the document is {doc.id}, not {object_id}", field="document.id")
    row = session.get(keeping.model, object_id, with_for_update=True)
    if specs_held and doc is not None:
        doc = _with_held_specs(doc, row, specs_held)
    held = row.version if row is not None else 0
    if doc is None and row is None:
        return None                                     # already gone: a repeated delete
    if doc is not None and row is not None and held >= doc.version and \
            keeping.document(row) == doc:
        return doc                                      # a repeated push
    apart = row is not None and expected_clock is not None and row.clock != expected_clock
    if held != expected_version or apart:
        current = keeping.document(row).model_dump(mode="json") if row else None
        raise Conflict(f"{kind.noun} {object_id} is at version {held} here"
                       + (f", written apart from the copy the push was built on (clock "
                          f"{row.clock} here)" if apart and held == expected_version
                          else f", not {expected_version}"), current=current)
    if doc is not None and doc.version <= held:
        raise APIError(f"{kind.noun} {object_id} is at version {held} here: a push moves "
                       f"it forward, not to version {doc.version}", field="document.version")
    if doc is not None and row is not None and doc.project != row.project:
        raise Forbidden(f"{kind.noun} {object_id} belongs to project {row.project}: a push "
                        "cannot give it to another project")
    if doc is None:
        if kind is DocumentKind.PROTECTION_GROUP:
            refuse_while_busy(session, object_id)
        session.delete(row)
        session.flush()
        return None
    try:
        with session.begin_nested():
            stored = keeping.document(keeping.store(session, doc))
            if resolution:
                settle_divergences(session, object_id, resolution)
            return stored
    except IntegrityError:
        raise Conflict(f"another {kind.noun} of project {doc.project} has that name, "
                       "or maps that source, here") from None


def _with_held_specs(doc: GroupDocument, row: ProtectionGroup | None,
                     specs_held: list[str]) -> GroupDocument:
    """``doc`` with the specs of ``specs_held`` members taken from this site's copy."""
    held = {m.id: m.spec for m in row.members} if row is not None else {}
    missing = sorted(set(specs_held) - {k for k, v in held.items() if v is not None})
    if missing:
        raise Conflict(f"protection group {doc.id}: members {missing[:5]} have no captured "
                       "spec here to keep", current=None)
    wanted = set(specs_held)
    return doc.model_copy(update={"members": [
        m.model_copy(update={"spec": held[m.id]}) if m.id in wanted else m
        for m in doc.members]})


def held_specs(doc: GroupDocument, base: GroupDocument | None) -> list[str]:
    """The members of ``doc`` whose captured spec is as in ``base``: what a push need not
    carry."""
    if base is None:
        return []
    before = {m.id: m.spec for m in base.members}
    return [m.id for m in doc.members if m.spec is not None and before.get(m.id) == m.spec]


def open_divergence(session: Session, object_id: str) -> Divergence | None:
    return session.scalar(select(Divergence).where(Divergence.open_for == object_id))


def refuse_while_diverged(session: Session, kind: DocumentKind, object_id: str):
    """Two copies written apart: nothing changes the object until one is kept."""
    found = open_divergence(session, object_id)
    if found is None:
        return
    group = kind is DocumentKind.PROTECTION_GROUP
    name = found.ours.get("name") or object_id
    command = "protection-group" if group else "mapping"
    raise Conflict(
        f"{kind.noun} {name} diverged: this site holds version {found.ours['version']} and "
        f"peer site {found.peer_site} version {found.theirs['version']}, written apart "
        f"while the sites could not talk (detected "
        f"{found.detected_at.isoformat(timespec='seconds')}). Both copies are kept; "
        f"nothing changes it until one is kept: 'openstack protector {command} resolve "
        f"{name} --keep <site>'", diverged_since=found.detected_at.isoformat())


def settle_divergences(session: Session, object_id: str, resolution: str):
    found = open_divergence(session, object_id)
    if found is not None:
        found.open_for, found.resolved_at, found.resolution = None, utcnow(), resolution


def refuse_while_busy(session: Session, group_id: str, what: str = "delete it"):
    """A group under an operation on this site may not be deleted, nor reshaped."""
    busy = session.scalar(select(Operation.id).where(
        Operation.status.in_(UNFINISHED),
        Operation.results.any(OperationResult.group_id == group_id)))
    if busy:
        raise Conflict(f"operation {busy} is under way on this group; {what} once the "
                       "operation has ended", operation_id=busy)


# What a recovery and its failback rely on staying as it was: the group's name (its stack
# and copies are named after it), its volume type and its members.
SHAPE = frozenset({"name", "volume_type"})


def _refuse_reshaping(session: Session, current: GroupDocument, action: ChangeAction,
                      values: dict):
    """Members, name and volume type stay as they are while an operation runs on the
    group, and while it is failed over (its failback returns exactly what failed over)."""
    if action not in (ChangeAction.ADD_MEMBER, ChangeAction.REMOVE_MEMBER) and not (
            action is ChangeAction.UPDATE and SHAPE & {
                k for k, v in values.items() if getattr(current, k) != v}):
        return
    what = ("change its members" if action is not ChangeAction.UPDATE
            else "change its name or volume type")
    if current.status.away:
        raise Conflict(f"protection group {current.name} is {current.status.label}: running on "
                       f"{current.primary_site}, it comes back as it left with its "
                       f"failback; {what} after that")
    refuse_while_busy(session, current.id, what)


def _refuse_deleting_replication(current: GroupDocument, force: bool):
    """A group whose replication may be in place (its Cinder group, its array pgroup or
    pod) is unprotected before it is deleted, or deleted with ``force``, which leaves that
    replication as it is (the audit entry says so). A group that runs on its DR site is
    never deleted, even with ``force``: its original VMs stay fenced and its copies run,
    with nothing left to fail back from."""
    if current.status.away:
        raise Conflict(f"protection group {current.name} is {current.status.label}: it runs "
                       f"on {current.primary_site} from copies while its original VMs are "
                       f"kept down; fail it back first (openstack dr failback "
                       f"{current.name}), then unprotect and delete it",
                       group_status=current.status)
    if force or current.status == GroupStatus.UNPROTECTED:
        return
    first = (f"unprotect it first: openstack protector protection-group unprotect "
             f"{current.name}")
    raise Conflict(f"protection group {current.name} is {current.status}: its replication "
                   f"(Cinder group, array pgroup or pod) is in place; {first}. Or delete it "
                   "with --force (force=true), which leaves that replication in place",
                   group_status=current.status)


# -- changes ---------------------------------------------------------------------------------

@dataclass
class Change:
    """One change, as forwarded between sites: ``action`` on ``kind`` ``object_id``."""

    kind: DocumentKind
    action: ChangeAction
    object_id: str
    project_name: str
    values: dict = field(default_factory=dict)
    expected_version: int | None = None
    project_domain: str = DEFAULT_DOMAIN

    def __post_init__(self):
        self.kind, self.action = DocumentKind(self.kind), ChangeAction(self.action)

    @property
    def project(self) -> Project:
        return Project(self.project_domain, self.project_name)

    def as_dict(self) -> dict:
        return {"kind": self.kind, "action": self.action, "object_id": self.object_id,
                "project_name": self.project_name, "project_domain": self.project_domain,
                "values": self.values, "expected_version": self.expected_version}

    @classmethod
    def from_dict(cls, data: dict) -> Change:
        return cls(**data)

    @property
    def audit_action(self) -> str:
        return f"{self.kind}.{self.action}"

    @property
    def audit_details(self) -> dict:
        """What the audit log keeps of the change: its values, except that a capture is
        summed up (which servers' specs changed, how many were as they were), never
        stored whole at every capture."""
        if self.action is not ChangeAction.CAPTURE:
            return {"values": self.values}
        return {"changed": sorted(self.values.get("specs", {})),
                "unchanged": len(self.values.get("unchanged", []))}

    def next_document(self, session: Session, current: BaseModel | None,
                      sites: tuple[str, str], writer: str, alone: bool = False
                      ) -> BaseModel | None:
        """The document after this change (None: deleted), as ``writer`` writes it, on
        both sites or (``alone``) on its own; refuses what cannot be."""
        noun, document_type = self.kind.noun, KINDS[self.kind].document_type
        group = self.kind is DocumentKind.PROTECTION_GROUP
        if self.action is ChangeAction.CREATE:
            if current is not None:
                raise Conflict(f"{noun} {self.object_id} exists already")
            fields = {"id": self.object_id, "version": 1, **self.values,
                      "clock": lineage.tick({}, writer)}
            if group:
                now = utcnow()
                fields.update(members=[], created_at=now, updated_at=now)
            doc = document_type.model_validate(fields)
            if group:
                _check_group(session, doc, sites)
            else:
                _check_mapping(session, doc)
            return doc
        if current is None:
            raise NotFound(f"{noun} {self.object_id} not found")
        refuse_while_diverged(session, self.kind, self.object_id)
        if self.action is ChangeAction.RESOLVE:
            raise APIError(f"{noun} {self.object_id}: a resolution is made by the "
                           "coordinating site only")
        if self.expected_version is not None and current.version != self.expected_version:
            raise Conflict(f"{noun} {self.object_id} is at version {current.version}, "
                           f"not {self.expected_version}: it changed since you read it",
                           version=current.version)
        if self.action is ChangeAction.DELETE:
            if group:
                refuse_while_busy(session, self.object_id)
                _refuse_deleting_replication(current, bool(self.values.get("force")))
            return None
        changes: dict = {"version": current.version + 1,
                         "clock": lineage.tick(current.clock, writer)}
        if group:
            _refuse_reshaping(session, current, self.action, self.values)
            changes["updated_at"] = utcnow()
            took_over = (self.action is ChangeAction.SET_STATE
                         and self.values.get("primary_site") == writer)
            changes["taken_over_by"] = (None if not alone else writer if took_over
                                        else current.taken_over_by)
        if self.action in (ChangeAction.UPDATE, ChangeAction.SET_STATE):
            changes.update(self.values)
        elif self.action is ChangeAction.ADD_MEMBER:
            changes["members"] = _with_member(current.members, self.values)
        elif self.action is ChangeAction.REMOVE_MEMBER:
            changes["members"] = _without_member(current, self.values["server_id"])
        elif self.action is ChangeAction.SET_MEMBER:
            changes["members"] = _member_set(current, self.values)
        elif self.action is ChangeAction.CAPTURE:
            changes["members"] = _with_specs(current, self.values.get("specs", {}),
                                             self.values.get("unchanged", []))
        doc = document_type.model_validate({**current.model_dump(), **changes})
        if self.action is ChangeAction.UPDATE and group:
            _check_group(session, doc, sites)
        elif self.action is ChangeAction.SET_STATE:
            check_sites(doc.primary_site, doc.secondary_site, sites)
        return doc


def _check_group(session: Session, doc: GroupDocument, sites: tuple[str, str]):
    check_sites(doc.primary_site, doc.secondary_site, sites)
    clash = session.scalar(select(ProtectionGroup.id).where(
        owned_by(ProtectionGroup, doc.project),
        ProtectionGroup.name == doc.name, ProtectionGroup.id != doc.id))
    if clash:
        raise Conflict(f"project {doc.project} already has a protection group "
                       f"named {doc.name!r}", id=clash)


def check_sites(primary: str, secondary: str, sites: tuple[str, str]):
    """A group's sites are the two of this pair, one each."""
    for role, site in (("primary_site", primary), ("secondary_site", secondary)):
        if site not in sites:
            raise APIError(f"{role} {site!r} is not a site of this pair "
                           f"({' and '.join(sites)})", field=role)
    if primary == secondary:
        raise APIError("primary_site and secondary_site must be different sites",
                       field="secondary_site")


def _check_mapping(session: Session, doc: MappingDocument):
    clash = session.scalar(select(ResourceMapping.id).where(
        owned_by(ResourceMapping, doc.project),
        ResourceMapping.group_id.is_(None) if doc.group_id is None
        else ResourceMapping.group_id == doc.group_id,
        ResourceMapping.kind == doc.kind, ResourceMapping.source == doc.source))
    if clash:
        raise Conflict(f"{doc.kind} {doc.source!r} is already mapped here "
                       f"(mapping {clash}); change that one", id=clash)


def _with_member(members: list[MemberDocument], values: dict) -> list[MemberDocument]:
    if any(m.server_id == values["server_id"] for m in members):
        raise Conflict(f"server {values['server_id']} is already a member")
    if len(members) >= MEMBERS_MAX:
        raise Conflict(f"a protection group holds at most {MEMBERS_MAX} servers; this one "
                       "is full")
    position = max((m.position for m in members), default=-1) + 1
    return [*members, MemberDocument(id=str(uuid.uuid4()), server_id=values["server_id"],
                                     server_name=values.get("server_name") or "",
                                     position=position, spec=None, captured_at=None)]


def _without_member(current: GroupDocument, server_id: str) -> list[MemberDocument]:
    if not any(m.server_id == server_id for m in current.members):
        raise NotFound(f"server {server_id} is not a member of protection group "
                       f"{current.name}")
    return [m for m in current.members if m.server_id != server_id]


def _member_set(current: GroupDocument, values: dict) -> list[dict]:
    """The members with one's boot tier and gate as given (the others as they were)."""
    server_id = values["server_id"]
    if not any(m.server_id == server_id for m in current.members):
        raise NotFound(f"server {server_id} is not a member of protection group "
                       f"{current.name}")
    given = {k: v for k, v in values.items() if k in ("boot_tier", "gate")}
    return [{**m.model_dump(), **given} if m.server_id == server_id else m.model_dump()
            for m in current.members]


def _with_specs(current: GroupDocument, specs: dict[str, dict], unchanged: list[str]
                ) -> list[dict]:
    """The members after a capture: new specs, and a new capture time for those captured
    again as they were (a member never captured has nothing to keep)."""
    members = {m.server_id for m in current.members}
    strangers = sorted((set(specs) | set(unchanged)) - members)
    if strangers:
        raise APIError(f"servers {strangers} are not members of protection group "
                       f"{current.name}", field="specs")
    again = set(unchanged)
    at = utcnow()
    return [{**m.model_dump(), "spec": specs[m.server_id], "captured_at": at}
            if m.server_id in specs else
            {**m.model_dump(), "captured_at": at} if m.server_id in again and m.spec
            else m.model_dump() for m in current.members]


SYNC_ACTOR = {"user": "site-recovery (catch-up with the peer site)", "roles": []}


def without_specs(doc: BaseModel) -> dict:
    """A document without its members' captured specs (hundreds of VMs' specs are
    megabytes; capture records them again): what a change answers and what a divergence
    keeps of each copy."""
    if isinstance(doc, GroupDocument):
        return doc.model_dump(mode="json", exclude={"members": {"__all__": {"spec"}}})
    return doc.model_dump(mode="json")


def from_summary(kind: DocumentKind, data: dict) -> BaseModel:
    """A document sent without its specs (:func:`without_specs`), read back."""
    if kind is DocumentKind.PROTECTION_GROUP:
        data = {**data, "members": [{**m, "spec": None} for m in data.get("members", [])]}
    return KINDS[kind].document_type.model_validate(data)


def record_divergence(session: Session, kind: DocumentKind, peer: str, ours: BaseModel,
                      theirs: BaseModel):
    """Keep both copies of an object written apart, without their specs (once: a second
    detection of the same divergence adds nothing)."""
    if open_divergence(session, ours.id) is not None:
        return
    try:
        with session.begin_nested():
            session.add(Divergence(
                kind=kind, object_id=ours.id, open_for=ours.id,
                project_domain=ours.project_domain, project_name=ours.project_name,
                peer_site=peer, ours=without_specs(ours), theirs=without_specs(theirs)))
    except IntegrityError:
        return                     # another worker recorded it a moment ago
    audit.record_in(session, SYNC_ACTOR, f"{kind}.diverged", ours.id, "recorded",
                    f"version {ours.version} here and version {theirs.version} on peer site "
                    f"{peer} were written apart while the sites could not talk; both are "
                    "kept, and the object is refused every change until one is kept",
                    project=ours.project)


# -- the coordinator -------------------------------------------------------------------------

class Registry:
    def __init__(self, sessions: sessionmaker[Session], config: ServiceConfig,
                 peer: PeerLink):
        self.sessions, self.config, self.peer = sessions, config, peer

    @property
    def coordinator(self) -> str:
        """The site that makes every change: the first of the pair by name."""
        return min(self.config.sites)

    def submit(self, change: Change, actor: dict) -> BaseModel | None:
        """Make ``change`` on both sites, here or through the coordinator; the new document."""
        try:
            if change.kind is DocumentKind.PROTECTION_GROUP and \
                    change.action is ChangeAction.CREATE:
                check_sites(change.values["primary_site"], change.values["secondary_site"],
                            self.config.sites)
            self.require_peer()
            if self.coordinator != self.config.site:
                return self._forward(change, actor)
            return self.coordinate(change, actor)
        except APIError as exc:
            audit.record(self.sessions, actor, change.audit_action, change.object_id,
                         "refused", exc.message, project=change.project)
            raise

    def submit_even_alone(self, change: Change, actor: dict) -> BaseModel | None:
        """Like :meth:`submit`, but when the peer cannot take the change, make it here only.

        For what a failover did, which is true whether or not the lost site hears of it:
        the site that now runs the workload records it, its clock ticking for this site.
        When the sites talk again the other adopts it (:meth:`sync`); had the other
        recorded something of its own meanwhile, the two copies diverged, and the one
        recording the takeover wins.
        """
        try:
            return self.submit(change, actor)
        except Unavailable as exc:
            keeping = KINDS[change.kind]
            with db.transaction(self.sessions) as session:
                row = session.get(keeping.model, change.object_id, with_for_update=True)
                after = change.next_document(session, keeping.document(row) if row else None,
                                             self.config.sites, self.config.site, alone=True)
                keeping.store(session, after)
                audit.record_in(session, actor, change.audit_action, change.object_id,
                                "accepted",
                                f"version {after.version} on this site only: {exc.message}",
                                project=change.project,
                                details={**change.audit_details, "unsynced": True})
            return after

    def require_peer(self):
        """Refuse at once when the prober already judged the peer unreachable."""
        with self.sessions() as session:
            peer = session.get(Site, self.config.peer.name)
        if peer is not None and peer.reachable is False:
            since = peer.state_since.isoformat(timespec="seconds") if peer.state_since else "?"
            raise Unavailable(
                f"peer site {peer.name} has been unreachable since {since}; changes are "
                f"refused until it is back, so that both sites stay identical. Nothing was "
                f"changed.", peer=peer.name, since=since, last_error=peer.last_error)

    def coordinate(self, change: Change, actor: dict) -> BaseModel | None:
        if change.action is ChangeAction.RESOLVE:
            return self._resolve(change, actor)
        try:
            current, after = self._next(change)
        except Conflict:                # maybe only because this site is behind the peer
            if not self.sync([change.kind], prune=True):
                raise
            current, after = self._next(change)
        self._push(change, after, current)
        try:
            self._store(change, after, current, actor)
        except IntegrityError:          # this site was behind the peer: catch up, then store
            self.sync([change.kind], prune=True)
            self._store(change, after, current, actor)
        return after

    def _next(self, change: Change) -> tuple[BaseModel | None, BaseModel | None]:
        """The object's document here and after ``change``."""
        keeping = KINDS[change.kind]
        with self.sessions() as session:
            row = session.get(keeping.model, change.object_id)
            current = keeping.document(row) if row is not None else None
            return current, change.next_document(session, current, self.config.sites,
                                                 self.config.site)

    def _store(self, change: Change, after: BaseModel | None, current: BaseModel | None,
               actor: dict):
        keeping = KINDS[change.kind]
        with db.transaction(self.sessions) as session:
            if after is None:
                row = session.get(keeping.model, change.object_id)
                if row is not None:
                    session.delete(row)
            else:
                keeping.store(session, after)
            version = after.version if after else current.version if current else 0
            audit.record_in(session, actor, change.audit_action, change.object_id,
                            "accepted", f"version {version} on both sites",
                            project=change.project, details=change.audit_details)

    def _push(self, change: Change, after: BaseModel | None, base: BaseModel | None):
        """Send the peer ``after``, built on ``base`` (None: created), or its deletion."""
        try:
            if after is None:
                reply = self.peer.request(
                    "DELETE", f"{KINDS[change.kind].path}/{change.object_id}"
                              f"?version={base.version if base else 0}")
            else:
                reply = self._push_document(change.kind, after, base)
        except PeerUnreachable as exc:
            raise self._unreachable(exc) from None
        if reply.status in (200, 204):
            return
        error = reply.body.get("error", {})
        if reply.status == 409:
            self.sync([change.kind], prune=True)
            with self.sessions() as session:
                refuse_while_diverged(session, change.kind, change.object_id)
            raise Conflict(f"peer site {self.peer.name} refused the change: "
                           f"{error.get('message')}. This site has caught up with it; read "
                           "the object again before changing it")
        raise APIError(f"peer site {self.peer.name} refused the change: "
                       f"{error.get('message', reply.status)}", status=502)

    def _push_document(self, kind: DocumentKind, doc: BaseModel, base: BaseModel | None,
                       resolution: str | None = None):
        """PUT ``doc`` to the peer, which takes it if it still holds ``base``."""
        body = {"document": doc.model_dump(mode="json"),
                "expected_version": base.version if base else 0,
                "expected_clock": base.clock if base else {}}
        if kind is DocumentKind.PROTECTION_GROUP:
            same = held_specs(doc, base)
            if same:
                body["specs_held"] = same
                kept = set(same)
                for member in body["document"]["members"]:
                    if member["id"] in kept:
                        member["spec"] = None
        if resolution:
            body["resolution"] = resolution
        return self.peer.request("PUT", f"{KINDS[kind].path}/{doc.id}", body)

    def sync(self, kinds=None, *, prune: bool = False) -> int | None:
        """Bring this site's documents in line with the peer's: adopt every copy the peer
        holds newer (what it recorded alone while this site was away, or a push whose
        answer was lost). The coordinator also sends the peer what it holds newer and
        records copies written apart (:meth:`_diverged`); ``prune`` (after the peer
        refused a push): it removes what the peer no longer holds, a deletion whose answer
        was lost. Returns how many objects changed here, or None when the peer did not
        answer (try again later)."""
        changed = 0
        for kind in kinds or KINDS:
            documents = self._peer_documents(kind)
            if documents is None:
                return None
            theirs = {doc.id: doc for doc in documents}
            try:
                changed += self._sync_kind(kind, theirs, prune)
            except IntegrityError:
                # A concurrent change stored one of these documents between our read and
                # our write (the winner of two creates of one name, while the loser catches
                # up): read again, and it is there.
                changed += self._sync_kind(kind, theirs, prune)
        return changed

    def _sync_kind(self, kind: DocumentKind, theirs: dict[str, BaseModel], prune: bool
                   ) -> int:
        keeping = KINDS[kind]
        coordinating = self.coordinator == self.config.site
        with self.sessions() as session:
            ours = {row.id: keeping.document(row)
                    for row in session.scalars(select(keeping.model)).all()}
        adopt, ahead, apart = [], [], []
        for object_id, their_copy in theirs.items():
            our_copy = ours.get(object_id)
            order = lineage.Order.BEHIND if our_copy is None else lineage.compare(
                our_copy.clock, our_copy.version, their_copy.clock, their_copy.version,
                our_copy == their_copy)
            if order is lineage.Order.BEHIND:
                adopt.append(their_copy)
            elif order is lineage.Order.AHEAD:
                ahead.append((our_copy, their_copy))
            elif order is lineage.Order.DIVERGED:
                apart.append((our_copy, their_copy))
        gone = [object_id for object_id in ours if object_id not in theirs] \
            if coordinating and prune else []
        with db.transaction(self.sessions) as session:
            for object_id in gone:          # the peer took a deletion whose answer was lost
                session.delete(session.get(keeping.model, object_id))
            session.flush()
            for doc in adopt:
                keeping.store(session, doc, force=True)
                audit.record_in(session, SYNC_ACTOR, f"{kind}.catch_up", doc.id, "accepted",
                                f"version {doc.version} from peer site {self.peer.name}, "
                                "newer there", project=doc.project)
        if coordinating:
            for our_copy, their_copy in ahead:          # the peer catches up with this site
                self._offer(kind, our_copy, their_copy)
            for our_copy, their_copy in apart:
                self._diverged(kind, our_copy, their_copy)
        return len(gone) + len(adopt)

    def _offer(self, kind: DocumentKind, doc: BaseModel, base: BaseModel):
        """Best effort: the peer's own catch-up, or the next sync, tries again."""
        with contextlib.suppress(PeerUnreachable):
            self._push_document(kind, doc, base)

    def _diverged(self, kind: DocumentKind, ours: BaseModel, theirs: BaseModel):
        """Two copies written apart: kept side by side on both sites; then the copy that
        records a failover's takeover, if only one does, is kept on both."""
        self._record_divergence(kind, ours, theirs)
        winner = lineage.takeover_winner(getattr(ours, "taken_over_by", None),
                                         getattr(theirs, "taken_over_by", None))
        if winner is None:
            return
        kept = ours if winner == "ours" else theirs
        try:
            self._settle(kind, kept, ours, theirs, SYNC_ACTOR,
                         f"the failover recorded by site {kept.taken_over_by} while the "
                         f"sites could not talk wins: it runs the workload (version "
                         f"{kept.version} kept; the other copy stays in the divergence "
                         "record)")
        except APIError as exc:
            log.warning("%s %s stays diverged for now: %s", kind.noun, ours.id, exc.message)

    def _record_divergence(self, kind: DocumentKind, ours: BaseModel, theirs: BaseModel):
        with contextlib.suppress(PeerUnreachable):       # else there on the next sync
            self.peer.request("POST", "/v1/internal/divergences", {
                "kind": kind, "object_id": ours.id, "ours": without_specs(theirs),
                "theirs": without_specs(ours)})
        with db.transaction(self.sessions) as session:
            record_divergence(session, kind, self.peer.name, ours, theirs)

    def _settle(self, kind: DocumentKind, kept: BaseModel, ours: BaseModel,
                theirs: BaseModel, actor: dict, resolution: str) -> BaseModel:
        """Keep ``kept``, one of two diverged copies, on both sites: a version newer than
        both, sent to the peer (which holds ``theirs``), then stored here."""
        keeping = KINDS[kind]
        update = {"version": max(ours.version, theirs.version) + 1,
                  "clock": lineage.tick(lineage.merge(ours.clock, theirs.clock),
                                        self.config.site)}
        if kind is DocumentKind.PROTECTION_GROUP:
            update.update(taken_over_by=None, updated_at=utcnow())
        resolved = kept.model_copy(update=update)
        try:
            reply = self._push_document(kind, resolved, theirs, resolution)
        except PeerUnreachable as exc:
            raise self._unreachable(exc) from None
        if reply.status != 200:
            message = reply.body.get("error", {}).get("message", f"HTTP {reply.status}")
            raise Conflict(f"peer site {self.peer.name} did not take the resolution: "
                           f"{message}")
        with db.transaction(self.sessions) as session:
            keeping.store(session, resolved, force=True)
            settle_divergences(session, resolved.id, resolution)
            audit.record_in(session, actor, f"{kind}.resolve", resolved.id, "accepted",
                            resolution, project=resolved.project,
                            details={"kept": without_specs(kept),
                                     "version": resolved.version})
        return resolved

    def _resolve(self, change: Change, actor: dict) -> BaseModel:
        """People keep one of two diverged copies: the one ``values["keep"]`` names the
        site of."""
        keep = change.values["keep"]
        if keep not in self.config.sites:
            raise APIError(f"keep {keep!r} is not a site of this pair "
                           f"({' and '.join(self.config.sites)})", field="keep")
        keeping = KINDS[change.kind]
        with self.sessions() as session:
            found = open_divergence(session, change.object_id)
            if found is None:
                raise Conflict(f"{change.kind.noun} {change.object_id} has not diverged: "
                               "there is nothing to resolve")
            ours = keeping.document(session.get(keeping.model, change.object_id))
        theirs = next((doc for doc in self._peer_documents(change.kind) or ()
                       if doc.id == change.object_id), None)
        if theirs is None:
            raise Unavailable(f"peer site {self.peer.name} did not give its copy of "
                              f"{change.kind.noun} {change.object_id}: a resolution needs "
                              "both sites; try again once it answers")
        kept = ours if keep == self.config.site else theirs
        who = actor.get("user") or "?"
        return self._settle(change.kind, kept, ours, theirs, actor,
                            f"resolved by {who}: site {keep}'s copy (version {kept.version}) "
                            "kept; the other stays in the divergence record")

    def _peer_documents(self, kind: DocumentKind) -> list[BaseModel] | None:
        """Every document of one kind as the peer holds it; None when it does not answer."""
        try:
            reply = self.peer.request("GET", KINDS[kind].path)
        except PeerUnreachable:
            return None
        if reply.status != 200:
            return None
        return [KINDS[kind].document_type.model_validate(doc)
                for doc in reply.body.get("documents", [])]

    def _forward(self, change: Change, actor: dict) -> BaseModel | None:
        try:
            reply = self.peer.request("POST", "/v1/internal/forward",
                                      {"change": change.as_dict(), "actor": actor})
        except PeerUnreachable as exc:
            raise self._unreachable(exc) from None
        if reply.status >= 300:
            error = reply.body.get("error", {})
            message = error.get("message", f"HTTP {reply.status}")
            if reply.status in (400, 404, 409, 503):    # about the change itself
                raise APIError(message, status=reply.status, **error.get("details", {}))
            raise APIError(f"coordinating site {self.coordinator} could not make the change: "
                           f"{message}", status=502)
        document = reply.body.get("document")   # its push has already stored it here
        return KINDS[change.kind].document_type.model_validate(document) if document else None

    def _unreachable(self, exc: PeerUnreachable) -> Unavailable:
        at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        outcome = ("it may have taken the change before it stopped answering: if so, the "
                   "next change finds it there" if exc.maybe_delivered
                   else "nothing was changed")
        return Unavailable(f"peer site {self.peer.name} did not answer at {at} ({exc}); the "
                           f"change needs both sites, so it was not made here; {outcome}",
                           peer=self.peer.name, since=at)
