"""The panel's pages, thin over the service: what it refuses appears as an error message
in its words. Lists and reads ask for every project, as a site failover spans them."""

from django import http
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views import generic
from horizon import exceptions, forms, messages, tables

from site_recovery.dashboard import api
from site_recovery.dashboard.site_admin.forms import SiteFailoverForm
from site_recovery.dashboard.site_admin.tables import (
    OPERATION_URL,
    GroupResultsTable,
    SiteOperationsTable,
    SitesTable,
)

INDEX_URL = "horizon:admin:site_recovery:index"


class IndexView(tables.MultiTableView):
    table_classes = (SitesTable, SiteOperationsTable)
    template_name = "site_recovery/site_admin/index.html"
    page_title = _("Site Recovery")

    def get_sites_data(self):
        try:
            return api.list_sites(self.request)
        except api.ProtectorError as exc:
            messages.error(self.request, _("Unable to show the sites: %s") % exc)
            return []

    def get_site_operations_data(self):
        try:
            operations = api.list_operations(self.request, all_projects=True)
        except api.ProtectorError as exc:
            messages.error(self.request, _("Unable to list site operations: %s") % exc)
            return []
        return [operation for operation in operations if operation["scope"] == "site"]


class SiteFailoverView(forms.ModalFormView):
    form_class = SiteFailoverForm
    template_name = "site_recovery/site_admin/failover.html"
    modal_id = "site_failover_modal"
    submit_label = _("Fail Over Site")

    def get_initial(self):
        return {"site": self.kwargs["site"]}

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["site"] = self.kwargs["site"]
        context["page_title"] = _("Site Failover of %s") % self.kwargs["site"]
        context["submit_url"] = reverse("horizon:admin:site_recovery:failover",
                                        args=[self.kwargs["site"]])
        return context

    def get_success_url_from_handled(self, operation):
        """Straight to the operation's progress."""
        return reverse(OPERATION_URL, args=[operation["id"]])


class OperationView(tables.DataTableView):
    """One site operation and its groups' results; the page reloads itself while the
    operation runs."""

    table_class = GroupResultsTable
    template_name = "site_recovery/site_admin/operation.html"

    def get_data(self):
        try:
            self.operation = api.get_operation(self.request, self.kwargs["operation_id"],
                                               all_projects=True)
        except api.ProtectorError as exc:
            messages.error(self.request, _("Unable to show the operation: %s") % exc)
            raise exceptions.Http302(reverse(INDEX_URL)) from None
        return self.operation["results"]

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        operation = self.operation
        context.update(operation=operation, page_title=_("Site Failover %s") % operation["id"],
                       running=operation["status"] in api.UNFINISHED,
                       retryable=operation["status"] in api.RETRYABLE)
        return context


class RetryView(generic.View):
    """The failed groups of a site operation, again: a new operation, shown at once."""

    def post(self, request, operation_id):
        try:
            retried = api.retry_operation(request, operation_id, all_projects=True)
        except api.ProtectorError as exc:
            messages.error(request, _("Unable to retry the failed groups: %s") % exc)
            return http.HttpResponseRedirect(reverse(OPERATION_URL, args=[operation_id]))
        messages.info(request, _("Retrying the failed groups: operation %s") % retried["id"])
        return http.HttpResponseRedirect(reverse(OPERATION_URL, args=[retried["id"]]))
