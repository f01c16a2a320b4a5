"""The panel's pages: what the service refuses appears as an error message in its words."""

from django.urls import reverse, reverse_lazy
from django.utils.translation import gettext_lazy as _
from horizon import exceptions, forms, messages, tables, tabs

from site_recovery.dashboard import api, operations
from site_recovery.dashboard.protection_groups import forms as group_forms
from site_recovery.dashboard.protection_groups import tables as group_tables
from site_recovery.dashboard.protection_groups.tabs import GroupTabs

INDEX_URL = group_tables.INDEX_URL
DETAIL_URL = "horizon:project:protection_groups:detail"
FORM_TEMPLATE = "site_recovery/protection_groups/form.html"
# The operations that ask nothing: their modal's title, button and what it tells.
CONFIRMATIONS = {
    "protect": (_("Protect"), _("Protect"), _(
        "The volumes of %(name)s's servers start replicating from %(primary_site)s to "
        "%(secondary_site)s, and the servers are recorded as they are, so that they can "
        "be recovered there. The servers keep running.")),
    "unprotect": (_("Unprotect"), _("Unprotect"), _(
        "%(name)s stops replicating: its Cinder groups and array objects on "
        "%(primary_site)s and %(secondary_site)s are removed, its recovery points with "
        "them (the arrays keep what they destroy for their eradication window). Its "
        "servers and volumes are not touched; it cannot be recovered on "
        "%(secondary_site)s until it is protected again.")),
    "reprotect": (_("Reprotect"), _("Reprotect"), _(
        "%(name)s has run on %(primary_site)s since its failover. Its volumes there "
        "start replicating to %(secondary_site)s, which must answer, so that it is "
        "protected again and its failback is a planned move home from a recovery point "
        "already there. Its servers keep running.")),
    "test-cleanup": (_("Cleanup Test"), _("Clean Up"), _(
        "Everything the test failover of %(name)s built on %(secondary_site)s is deleted: "
        "its test servers, their stack and the volume copies. Production and its "
        "replication are not touched.")),
    "failback": (_("Failback"), _("Fail Back"), _(
        "%(name)s comes home to %(secondary_site)s: the servers running on "
        "%(primary_site)s stop, their data is written back over the original servers' "
        "volumes, the original servers start again with the same addresses, and the "
        "copies on %(primary_site)s are deleted.")),
}


def _group_or_index(request, group_id: str) -> dict:
    try:
        return api.get_group(request, group_id)
    except api.ProtectorError as exc:
        messages.error(request, _("Unable to show protection group: %s") % exc)
        raise exceptions.Http302(reverse(INDEX_URL)) from None


class IndexView(tables.DataTableView):
    table_class = group_tables.ProtectionGroupsTable
    template_name = "horizon/common/_data_table_view.html"
    page_title = _("Protection Groups")

    def get_data(self):
        try:
            return api.list_groups(self.request)
        except api.ProtectorError as exc:
            messages.error(self.request, _("Unable to list protection groups: %s") % exc)
            return []


class DetailView(tabs.TabbedTableView):
    tab_group_class = GroupTabs
    template_name = "horizon/common/_detail.html"

    def get_tabs(self, request, **kwargs):
        self.group = _group_or_index(request, kwargs["group_id"])
        return self.tab_group_class(request, group=self.group, **kwargs)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        table = group_tables.ProtectionGroupsTable(self.request)
        context.update(page_title=self.group["name"], url=reverse(INDEX_URL),
                       actions=table.render_row_actions(self.group))
        return context


class GroupFormView(forms.ModalFormView):
    """A modal form about one group; the group's page afterwards."""

    template_name = FORM_TEMPLATE

    def get_initial(self):
        return {"group_id": self.kwargs["group_id"]}

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["submit_url"] = self.request.get_full_path()
        return context

    def get_success_url(self):
        return reverse(DETAIL_URL, args=(self.kwargs["group_id"],))


class OperationFormView(GroupFormView):
    """A form that starts an operation: its progress page afterwards."""

    def get_success_url_from_handled(self, operation):
        return group_tables.operation_url(operation)


class CreateView(forms.ModalFormView):
    form_class = group_forms.CreateGroupForm
    template_name = FORM_TEMPLATE
    modal_header = page_title = _("Create Protection Group")
    submit_label = _("Create")
    submit_url = reverse_lazy("horizon:project:protection_groups:create")
    success_url = reverse_lazy(INDEX_URL)


class UpdateView(GroupFormView):
    form_class = group_forms.UpdateGroupForm
    modal_header = page_title = _("Edit Protection Group")
    submit_label = _("Save")

    def get_initial(self):
        group = _group_or_index(self.request, self.kwargs["group_id"])
        return {"group_id": group["id"], **{field: group.get(field) for field in (
            "version", "name", "volume_type", "description", "rpo_target_seconds",
            "rto_target_seconds", "drill_schedule", "drill_network")}}


class AddMemberView(GroupFormView):
    form_class = group_forms.AddMemberForm
    modal_header = page_title = _("Add Member")
    submit_label = _("Add")

    def get_initial(self):
        try:
            members = api.list_members(self.request, self.kwargs["group_id"])
        except api.ProtectorError as exc:
            messages.error(self.request, _("Unable to list members: %s") % exc)
            members = []
        return {**super().get_initial(),
                "member_ids": [member["server_id"] for member in members]}


class AddMappingView(GroupFormView):
    form_class = group_forms.AddMappingForm
    modal_header = page_title = _("Add Resource Mapping")
    submit_label = _("Add")


class TestFailoverView(OperationFormView):
    form_class = group_forms.TestFailoverForm
    modal_header = page_title = _("Test Failover")
    submit_label = _("Start Test Failover")


class ConfirmOperationView(OperationFormView):
    """Protect, Unprotect, Reprotect, Cleanup Test or Failback, once the user read what it
    does."""

    form_class = group_forms.ConfirmOperationForm

    def get_initial(self):
        return {**super().get_initial(), "operation": self.kwargs["operation"]}

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        title, submit, explanation = CONFIRMATIONS[self.kwargs["operation"]]
        group = _group_or_index(self.request, self.kwargs["group_id"])
        context.update(modal_header=title, page_title=title, submit_label=submit,
                       explanation=explanation % group)
        return context


class FailoverView(OperationFormView):
    form_class = group_forms.FailoverForm
    submit_label = _("Fail Over")

    def get_initial(self):
        return {**super().get_initial(), "failover_type": self.kwargs["failover_type"]}

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["modal_header"] = context["page_title"] = (
            _("Unplanned Failover") if self.kwargs["failover_type"] == "unplanned"
            else _("Planned Failover"))
        return context


class OperationView(operations.OperationView):
    index_url = INDEX_URL
    retry_url = "horizon:project:protection_groups:retry"

    def may_retry(self) -> bool:
        return group_tables.may_change(self.request)


class RetryView(operations.RetryView):
    operation_url = group_tables.OPERATION_URL
