"""The panel's tables and their actions.

The service decides what a user may do; the tables only hide what would be refused: a
change needs a writing role (webhook/policy.py: ``member`` or ``admin``; a ``reader``
reads); a protect, unprotect or reprotect runs on the group's primary site (where its
servers run now), a drill, failover or failback on its secondary site (docs/api.md,
Operations); and a group's status allows some operations only (below).
"""

from datetime import UTC, datetime

from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy
from horizon import messages, tables

from site_recovery.dashboard import api
from site_recovery.dashboard.operations import duration
from site_recovery.dashboard.rows import ServiceRows

WRITE_ROLES = {"member", "admin"}
# A group running on its DR site from copies (core.model.GroupStatus.away). The service
# refuses such a group a protect, an unprotect or a failover, and any other group a
# failback or a reprotect (409, core.operations.check_group).
AWAY = frozenset({"failed_over", "reprotected"})
INDEX_URL = "horizon:project:protection_groups:index"
OPERATION_URL = "horizon:project:protection_groups:operation"


def may_change(request) -> bool:
    return bool(WRITE_ROLES & {role["name"].lower() for role in request.user.roles})


def local_site(request) -> str | None:
    """This Horizon's site, asked of the service once per request; None if it does not
    say (then every action shows and the service decides)."""
    if not hasattr(request, "_site_recovery_local"):
        try:
            sites = api.list_sites(request)
        except api.ProtectorError:
            sites = []
        request._site_recovery_local = next(
            (site["name"] for site in sites if site["role"] == "local"), None)
    return request._site_recovery_local


def runs_here(request, group, where: str) -> bool:
    """A change by a writer, on the group's ``where`` site (or anywhere, unknown)."""
    here = local_site(request)
    return may_change(request) and (
        group is None or here is None or group[where] == here)


def operation_url(operation: dict) -> str:
    return reverse(OPERATION_URL, args=(operation["id"],))


# -- protection groups -----------------------------------------------------------------------
class CreateGroup(tables.LinkAction):
    name = "create"
    verbose_name = _("Create Protection Group")
    url = "horizon:project:protection_groups:create"
    classes = ("ajax-modal",)
    icon = "plus"

    def allowed(self, request, datum=None):
        return may_change(request)


class EditGroup(tables.LinkAction):
    name = "edit"
    verbose_name = _("Edit")
    url = "horizon:project:protection_groups:update"
    classes = ("ajax-modal",)
    icon = "pencil"

    def allowed(self, request, group=None):
        return may_change(request)


class GroupFormAction(tables.LinkAction):
    """A DR action: a modal form that says what will happen and asks what it needs; its
    submission starts one operation, however often it is sent. ``where``: the site it
    runs on; ``away``: only for a group running on its DR site (True), never for one
    (False), or for either (None)."""

    classes = ("ajax-modal",)
    where = "secondary_site"
    away: bool | None = None

    def allowed(self, request, group=None):
        return runs_here(request, group, self.where) and (
            group is None or self.away is None or (group["status"] in AWAY) == self.away)


class ConfirmedOperation(GroupFormAction):
    """An operation that asks nothing but a confirmation."""

    operation = ""

    def get_link_url(self, group=None):
        return reverse("horizon:project:protection_groups:confirm",
                       args=(group["id"], self.operation))


class Protect(ConfirmedOperation):
    name = "protect"
    verbose_name = _("Protect")
    operation = "protect"
    where = "primary_site"
    away = False


class Unprotect(ConfirmedOperation):
    name = "unprotect"
    verbose_name = _("Unprotect")
    operation = "unprotect"
    where = "primary_site"
    away = False


class Reprotect(ConfirmedOperation):
    """After a failover: the group's primary site is the one it now runs on."""

    name = "reprotect"
    verbose_name = _("Reprotect")
    operation = "reprotect"
    where = "primary_site"
    away = True


class TestCleanup(ConfirmedOperation):
    name = "test_cleanup"
    verbose_name = _("Cleanup Test")
    operation = "test-cleanup"


class Failback(ConfirmedOperation):
    name = "failback"
    verbose_name = _("Failback")
    operation = "failback"
    away = True


class TestFailover(GroupFormAction):
    name = "test_failover"
    verbose_name = _("Test Failover")
    url = "horizon:project:protection_groups:test_failover"


class PlannedFailover(GroupFormAction):
    name = "planned_failover"
    verbose_name = _("Planned Failover")
    away = False

    def get_link_url(self, group=None):
        return reverse("horizon:project:protection_groups:failover",
                       args=(group["id"], "planned"))


class UnplannedFailover(GroupFormAction):
    name = "unplanned_failover"
    verbose_name = _("Unplanned Failover")
    away = False

    def get_link_url(self, group=None):
        return reverse("horizon:project:protection_groups:failover",
                       args=(group["id"], "unplanned"))


class ServiceDeleteAction(tables.DeleteAction):
    """Deletes through the service; its refusal is shown in its words."""

    def delete(self, request, obj_id):
        try:
            self.remove(request, obj_id)
        except api.ProtectorError as exc:
            messages.error(request, str(exc))
            raise

    def allowed(self, request, datum=None):
        return may_change(request)


class DeleteGroup(ServiceDeleteAction):
    @staticmethod
    def action_present(count):
        return ngettext_lazy("Delete Protection Group", "Delete Protection Groups", count)

    @staticmethod
    def action_past(count):
        return ngettext_lazy("Deleted Protection Group", "Deleted Protection Groups", count)

    def remove(self, request, group_id):
        api.delete_group(request, group_id)


def _recovery_point_age(group):
    """How old the newest recovery point a drill or failover used on this site is (the
    service records them where those run: the group's DR site)."""
    created = (group.get("last_recovery_point") or {}).get("created_at")
    try:
        when = datetime.fromisoformat(created)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return duration((datetime.now(UTC) - when).total_seconds())


def _rpo_achieved(group):
    """The data that recovery point lacked, against the group's target when it has one."""
    achieved = (group.get("last_recovery_point") or {}).get("rpo_achieved_seconds")
    target = group.get("rpo_target_seconds")
    if achieved is None:
        return None
    if target is None:
        return duration(achieved)
    figures = {"achieved": duration(achieved), "target": duration(target)}
    if achieved <= target:
        return _("%(achieved)s (target %(target)s)") % figures
    return _("%(achieved)s (over the %(target)s target)") % figures


def _ready(group):
    """Its DR site's last readiness verdict (the other site has none)."""
    return {True: _("Ready"), False: _("Not ready")}.get(group.get("ready"))


class ProtectionGroupsTable(ServiceRows, tables.DataTable):
    name = tables.Column("name", verbose_name=_("Name"),
                         link="horizon:project:protection_groups:detail")
    replication_type = tables.Column("replication_type", verbose_name=_("Replication"))
    primary_site = tables.Column("primary_site", verbose_name=_("Primary Site"))
    secondary_site = tables.Column("secondary_site", verbose_name=_("Secondary Site"))
    status = tables.Column("status", verbose_name=_("Status"))
    member_count = tables.Column("member_count", verbose_name=_("Members"))
    recovery_point_age = tables.Column(_recovery_point_age, classes=("recovery_point_age",),
                                       verbose_name=_("Last Recovery Point Age"))
    rpo_achieved = tables.Column(_rpo_achieved, classes=("rpo_achieved",),
                                 verbose_name=_("RPO Achieved"))
    ready = tables.Column(_ready, classes=("ready",), verbose_name=_("Readiness"),
                          empty_value="-")

    class Meta:
        name = "protection_groups"
        verbose_name = _("Protection Groups")
        table_actions = (CreateGroup, DeleteGroup)
        row_actions = (EditGroup, Protect, Reprotect, TestFailover, TestCleanup,
                       PlannedFailover, UnplannedFailover, Failback, Unprotect, DeleteGroup)


# -- members and mappings (the detail page's tabs) --------------------------------------------
class GroupTabLinkAction(tables.LinkAction):
    """A table action of a detail tab: its URL names the group the page shows."""

    classes = ("ajax-modal",)
    icon = "plus"

    def allowed(self, request, datum=None):
        return may_change(request)

    def get_link_url(self, datum=None):
        return reverse(self.url, args=(self.table.kwargs["group_id"],))


class AddMember(GroupTabLinkAction):
    name = "add_member"
    verbose_name = _("Add Member")
    url = "horizon:project:protection_groups:add_member"


class RemoveMember(ServiceDeleteAction):
    @staticmethod
    def action_present(count):
        return ngettext_lazy("Remove Member", "Remove Members", count)

    @staticmethod
    def action_past(count):
        return ngettext_lazy("Removed Member", "Removed Members", count)

    def remove(self, request, server_id):
        api.remove_member(request, self.table.kwargs["group_id"], server_id)


class MembersTable(ServiceRows, tables.DataTable):
    server_name = tables.Column("server_name", verbose_name=_("Server"))
    server_id = tables.Column("server_id", verbose_name=_("Server ID"))
    position = tables.Column("position", verbose_name=_("Boot Order"))
    captured_at = tables.Column("captured_at", verbose_name=_("Captured"))

    id_key = "server_id"
    display_key = "server_name"

    class Meta:
        name = "members"
        verbose_name = _("Members")
        table_actions = (AddMember, RemoveMember)
        row_actions = (RemoveMember,)


class AddMapping(GroupTabLinkAction):
    name = "add_mapping"
    verbose_name = _("Add Mapping")
    url = "horizon:project:protection_groups:add_mapping"


class DeleteMapping(ServiceDeleteAction):
    @staticmethod
    def action_present(count):
        return ngettext_lazy("Delete Mapping", "Delete Mappings", count)

    @staticmethod
    def action_past(count):
        return ngettext_lazy("Deleted Mapping", "Deleted Mappings", count)

    def remove(self, request, mapping_id):
        api.delete_mapping(request, mapping_id)


def _scope(mapping):
    return _("this group") if mapping.get("protection_group_id") else _("whole project")


class MappingsTable(ServiceRows, tables.DataTable):
    kind = tables.Column("kind", verbose_name=_("Kind"))
    source = tables.Column("source", verbose_name=_("Source"))
    target = tables.Column("target", verbose_name=_("Target"))
    scope = tables.Column(_scope, verbose_name=_("Applies To"))

    class Meta:
        name = "mappings"
        verbose_name = _("Resource Mappings")
        table_actions = (AddMapping, DeleteMapping)
        row_actions = (DeleteMapping,)

    def get_object_display(self, mapping):
        return f"{mapping['kind']} {mapping['source']}"


# -- operations --------------------------------------------------------------------------------
def _progress(operation):
    return f"{operation.get('progress') or 0}%"


class OperationsTable(ServiceRows, tables.DataTable):
    display_key = "id"                         # an operation has no name
    operation_type = tables.Column("operation_type", verbose_name=_("Operation"),
                                   link=lambda operation: operation_url(operation))
    site = tables.Column("site", verbose_name=_("Site"))
    status = tables.Column("status", verbose_name=_("Status"))
    progress = tables.Column(_progress, verbose_name=_("Progress"))
    error = tables.Column("error", verbose_name=_("Error"))
    created_at = tables.Column("created_at", verbose_name=_("Requested"))

    class Meta:
        name = "operations"
        verbose_name = _("Operations")
