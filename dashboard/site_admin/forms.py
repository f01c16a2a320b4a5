"""The site failover form: nothing is sent unless the site's name is typed back."""

from django import forms as django_forms
from django.utils.translation import gettext_lazy as _
from horizon import forms, messages

from site_recovery.dashboard import api
from site_recovery.dashboard.operations import StartsOperation


class SiteFailoverForm(StartsOperation):
    site = forms.CharField(widget=forms.HiddenInput())
    failover_type = forms.ChoiceField(
        label=_("Failover Type"),
        choices=[("planned", _("Planned: the site answers; its VMs are stopped first")),
                 ("unplanned", _("Unplanned: the site is lost"))],
        widget=forms.ThemableSelectWidget(attrs={"class": "switchable",
                                                 "data-slug": "failover_type"}))
    force = forms.BooleanField(
        label=_("Force"), required=False,
        help_text=_("Fail over although the site still answers: its VMs are fenced first."),
        widget=forms.CheckboxInput(attrs={"class": "switched",
                                          "data-switch-on": "failover_type",
                                          "data-failover_type-unplanned": _("Force")}))
    confirmation = forms.CharField(
        label=_("Type the site's name to confirm"), max_length=255,
        widget=forms.TextInput(attrs={"autocomplete": "off"}))

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("confirmation") != cleaned.get("site"):
            raise django_forms.ValidationError(
                _("The confirmation does not match the site's name %s: nothing was "
                  "started.") % cleaned.get("site"))
        return cleaned

    def handle(self, request, data):
        """The operation the service started, or ``False`` with its refusal shown."""
        unplanned = data["failover_type"] == "unplanned"
        try:
            operation = api.site_failover(request, data["site"], data["failover_type"],
                                          unplanned and data["force"],
                                          idempotency_key=data["idempotency_key"])
        except api.ProtectorError as exc:
            messages.error(request, _("Site failover of %(site)s refused: %(why)s")
                           % {"site": data["site"], "why": exc})
            return False
        messages.info(request, _("Site failover of %(site)s started: operation %(id)s")
                      % {"site": data["site"], "id": operation["id"]})
        return operation
