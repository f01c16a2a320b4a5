"""The panel's pages, thin over the service: what it refuses appears as an error message
in its words. Lists and reads ask for every project, as a site failover spans them."""

from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from horizon import forms, messages, tables

from site_recovery.dashboard import api, operations
from site_recovery.dashboard.site_admin.forms import SiteFailoverForm
from site_recovery.dashboard.site_admin.tables import (
    OPERATION_URL,
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
            return api.list_operations(self.request, all_projects=True, scope="site")
        except api.ProtectorError as exc:
            messages.error(self.request, _("Unable to list site operations: %s") % exc)
            return []


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


class OperationView(operations.OperationView):
    """A site operation, of every project's groups."""

    all_projects = True
    index_url = INDEX_URL
    retry_url = "horizon:admin:site_recovery:retry"


class RetryView(operations.RetryView):
    all_projects = True
    operation_url = OPERATION_URL
