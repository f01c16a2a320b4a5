"""The panel's tables over the service's JSON: sites and site operations (an
operation's per-group results are both panels' ``operations.ResultsTable``)."""

from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from horizon import tables

from site_recovery.dashboard.rows import ServiceRows

OPERATION_URL = "horizon:admin:site_recovery:operation"


class SiteFailover(tables.LinkAction):
    """Offered for the peer only: a site is failed over from the site that takes its
    workloads."""

    name = "site_failover"
    verbose_name = _("Site Failover")
    classes = ("ajax-modal", "btn-danger")

    def allowed(self, request, datum=None):
        return datum is not None and datum["role"] == "peer"

    def get_link_url(self, datum=None):
        return reverse("horizon:admin:site_recovery:failover", args=[datum["name"]])


class SitesTable(ServiceRows, tables.DataTable):
    name = tables.Column("name", verbose_name=_("Site"))
    role = tables.Column("role", verbose_name=_("Role"))
    state = tables.Column("state", verbose_name=_("State"))
    since = tables.Column("since", verbose_name=_("Since"))
    last_seen_at = tables.Column("last_seen_at", verbose_name=_("Last Seen"))
    last_error = tables.Column("last_error", verbose_name=_("Last Error"))

    id_key = "name"

    class Meta:
        name = "sites"
        verbose_name = _("Sites")
        row_actions = (SiteFailover,)


class SiteOperationsTable(ServiceRows, tables.DataTable):
    id = tables.Column("id", verbose_name=_("Operation"), link=OPERATION_URL)
    site = tables.Column("site", verbose_name=_("Failed Site"))
    failover_type = tables.Column("failover_type", verbose_name=_("Type"))
    status = tables.Column("status", verbose_name=_("Status"))
    progress = tables.Column("progress", verbose_name=_("Progress %"))
    completed_count = tables.Column("completed_count", verbose_name=_("Completed"))
    failed_count = tables.Column("failed_count", verbose_name=_("Failed"))
    created_at = tables.Column("created_at", verbose_name=_("Started"))

    display_key = "id"

    class Meta:
        name = "site_operations"
        verbose_name = _("Site Operations")
