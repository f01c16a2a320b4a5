"""What both panels do with an operation: start it from a form that cannot start it twice,
and show its progress and each group's result on a page that follows it to its end."""

from __future__ import annotations

import uuid

from django import shortcuts
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views import generic
from horizon import exceptions, forms, messages, tables

from site_recovery.dashboard import api
from site_recovery.dashboard.rows import ServiceRows

# An unfinished operation's page reloads itself this often (seconds).
POLL_SECONDS = 2


def new_key() -> str:
    """An ``Idempotency-Key``, made when a form is shown: every submission of that form
    sends it, and the service answers a key it has seen with the operation it started."""
    return uuid.uuid4().hex


class StartsOperation(forms.SelfHandlingForm):
    """A form that starts an operation: a double click or a browser's resubmission of it
    returns the operation its first submission started instead of starting another."""

    idempotency_key = forms.CharField(widget=forms.HiddenInput(), initial=new_key)


def duration(seconds: float) -> str:
    """Seconds as people read them: 45 s, 4 min, 3 h, 2 d."""
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size:.0f} {unit}"
    return f"{max(seconds, 0):.0f} s"


def _rpo_achieved(result):
    achieved = result.get("rpo_achieved_seconds")
    return None if achieved is None else duration(achieved)


def _timings(result):
    return ", ".join(f"{phase} {seconds:.1f}s"
                     for phase, seconds in (result.get("timings") or {}).items())


class ResultsTable(ServiceRows, tables.DataTable):
    """One row per protection group the operation acts on: its step and its errors."""

    protection_group = tables.Column("protection_group", verbose_name=_("Protection Group"))
    status = tables.Column("status", verbose_name=_("Status"))
    step = tables.Column("step", verbose_name=_("Step"))
    reason = tables.Column("reason", verbose_name=_("Error"))
    recovery_point = tables.Column("recovery_point", verbose_name=_("Recovery Point"))
    rpo_achieved = tables.Column(_rpo_achieved, verbose_name=_("RPO Achieved"))
    timings = tables.Column(_timings, verbose_name=_("Timings"))

    id_key = "protection_group_id"
    display_key = "protection_group"

    class Meta:
        name = "results"
        verbose_name = _("Protection Groups")


class OperationView(tables.DataTableView):
    """An operation's progress and its groups' results; the page reloads itself until the
    operation ends, and offers a retry of the failed groups once it has."""

    table_class = ResultsTable
    template_name = "site_recovery/common/operation.html"
    all_projects = False        # any project's operation (an admin's panel)
    index_url = ""              # the panel's first page, for an operation not shown
    retry_url = ""              # the panel's RetryView

    def may_retry(self) -> bool:
        return True

    def get_data(self):
        try:
            self.operation = api.get_operation(self.request, self.kwargs["operation_id"],
                                               all_projects=self.all_projects)
        except api.ProtectorError as exc:
            messages.error(self.request, _("Unable to show the operation: %s") % exc)
            raise exceptions.Http302(reverse(self.index_url)) from None
        return self.operation.get("results") or []

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        operation = self.operation
        retryable = operation["status"] in api.RETRYABLE and self.may_retry()
        context.update(
            operation=operation, page_title=_("%(type)s: %(status)s") % {
                "type": operation["operation_type"], "status": operation["status"]},
            poll_seconds=POLL_SECONDS if operation["status"] in api.UNFINISHED else None,
            retry_url=retryable and reverse(self.retry_url, args=(operation["id"],)),
            retry_key=new_key())
        return context


class RetryView(generic.View):
    """POST only: a new operation for the groups that failed, then its page. The key the
    operation's page was shown with makes a double click retry once."""

    all_projects = False        # every project's failed groups, as a site failover's
    operation_url = ""          # the panel's OperationView

    def post(self, request, operation_id):
        try:
            retried = api.retry_operation(request, operation_id, self.all_projects,
                                          idempotency_key=request.POST.get("idempotency_key"))
        except api.ProtectorError as exc:
            messages.error(request, _("Unable to retry the failed groups: %s") % exc)
            return shortcuts.redirect(self.operation_url, operation_id)
        messages.info(request, _("Retrying the failed groups: operation %s") % retried["id"])
        return shortcuts.redirect(self.operation_url, retried["id"])
