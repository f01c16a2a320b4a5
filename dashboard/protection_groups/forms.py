"""The panel's forms: each is one call to the service; a refusal is shown in its words and
changes nothing (the form stays open)."""

from django.utils.translation import gettext_lazy as _
from horizon import exceptions, forms, messages
from openstack_dashboard.api import neutron, nova

from site_recovery.dashboard import api
from site_recovery.dashboard.operations import StartsOperation

REPLICATION_TYPES = (("async", _("Asynchronous (array snapshots)")),
                     ("sync", _("Synchronous (ActiveCluster pod)")))
MAPPING_KINDS = (("network", _("Network")), ("flavor", _("Flavor")),
                 ("security_group", _("Security Group")), ("ip_rule", _("IP Rule (CIDR)")),
                 ("availability_zone", _("Availability Zone")))


class ServiceForm(forms.SelfHandlingForm):
    """``call`` does the work; what the service refuses becomes Horizon's error."""

    failure = _("The protection service refused")

    def handle(self, request, data):
        try:
            return self.call(request, data) or True
        except api.ProtectorError as exc:
            messages.error(request, f"{self.failure}: {exc}")
            return False


# Text fields the service clears with null, not with an empty string.
CLEARED_BY_EMPTY = ("drill_schedule", "drill_network")


def _site_choices(request):
    try:
        return [(site["name"], site["name"]) for site in api.list_sites(request)]
    except api.ProtectorError as exc:
        messages.error(request, _("Unable to list the sites: %s") % exc)
        return []


class CreateGroupForm(ServiceForm):
    name = forms.CharField(label=_("Name"), max_length=255)
    replication_type = forms.ChoiceField(label=_("Replication Type"), choices=REPLICATION_TYPES)
    primary_site = forms.ChoiceField(label=_("Primary Site"),
                                     help_text=_("Where the servers run now"))
    secondary_site = forms.ChoiceField(label=_("Secondary Site"),
                                       help_text=_("Where they are recovered"))
    volume_type = forms.CharField(label=_("Volume Type"),
                                  help_text=_("A replicated volume type of the primary site"))
    description = forms.CharField(label=_("Description"), required=False,
                                  widget=forms.Textarea(attrs={"rows": 3}))
    rpo_target_seconds = forms.IntegerField(label=_("RPO Target (seconds)"), required=False,
                                            min_value=0)
    rto_target_seconds = forms.IntegerField(
        label=_("RTO Target (seconds)"), required=False, min_value=1,
        help_text=_("Longest acceptable recovery, from the request to the servers running"))
    drill_schedule = forms.CharField(
        label=_("Drill Schedule"), required=False, max_length=64,
        help_text=_("A cron pattern, UTC (0 3 * * 6: Saturdays at 03:00): the secondary site "
                    "drills the group by itself, checks the drill and cleans it up"))
    drill_network = forms.CharField(
        label=_("Drill Network"), required=False, max_length=255,
        help_text=_("A network of the secondary site that scheduled drills recover every "
                    "mapped network onto (empty: the group's mappings)"))

    failure = _("Unable to create the protection group")

    def __init__(self, request, *args, **kwargs):
        super().__init__(request, *args, **kwargs)
        sites = _site_choices(request)
        self.fields["primary_site"].choices = sites
        self.fields["secondary_site"].choices = sites[::-1]

    def clean(self):
        data = super().clean()
        if data.get("primary_site") and data.get("primary_site") == data.get("secondary_site"):
            raise forms.ValidationError(_("The primary and secondary sites must differ."))
        return data

    def call(self, request, data):
        group = api.create_group(request, **{key: value for key, value in data.items()
                                             if value not in (None, "")})
        messages.success(request, _("Created protection group %s.") % group["name"])
        return group


class UpdateGroupForm(ServiceForm):
    group_id = forms.CharField(widget=forms.HiddenInput())
    version = forms.IntegerField(widget=forms.HiddenInput())
    name = forms.CharField(label=_("Name"), max_length=255)
    volume_type = forms.CharField(label=_("Volume Type"))
    description = forms.CharField(label=_("Description"), required=False,
                                  widget=forms.Textarea(attrs={"rows": 3}))
    rpo_target_seconds = forms.IntegerField(label=_("RPO Target (seconds)"), required=False,
                                            min_value=0)
    rto_target_seconds = forms.IntegerField(
        label=_("RTO Target (seconds)"), required=False, min_value=1,
        help_text=_("Longest acceptable recovery, from the request to the servers running"))
    drill_schedule = forms.CharField(
        label=_("Drill Schedule"), required=False, max_length=64,
        help_text=_("A cron pattern, UTC (0 3 * * 6: Saturdays at 03:00): the secondary site "
                    "drills the group by itself, checks the drill and cleans it up"))
    drill_network = forms.CharField(
        label=_("Drill Network"), required=False, max_length=255,
        help_text=_("A network of the secondary site that scheduled drills recover every "
                    "mapped network onto (empty: the group's mappings)"))

    failure = _("Unable to update the protection group")

    def call(self, request, data):
        """Only what changed is sent: a running group refuses a new name or volume type
        even when it is the same."""
        changed = {field: None if field in CLEARED_BY_EMPTY and not data[field]
                   else data[field] for field in self.changed_data
                   if field not in ("group_id", "version")}
        group = api.update_group(request, data["group_id"], version=data["version"], **changed)
        messages.success(request, _("Updated protection group %s.") % group["name"])
        return group


class AddMemberForm(ServiceForm):
    group_id = forms.CharField(widget=forms.HiddenInput())
    server = forms.ChoiceField(label=_("Server"),
                               help_text=_("One of the project's servers on this site"))

    failure = _("Unable to add the member")

    def __init__(self, request, *args, **kwargs):
        super().__init__(request, *args, **kwargs)
        try:
            servers, _more = nova.server_list(request)
        except Exception:
            exceptions.handle(request, _("Unable to list the project's servers."))
            servers = []
        members = set(kwargs.get("initial", {}).get("member_ids", ()))
        self.servers = {server.id: server.name for server in servers if server.id not in members}
        self.fields["server"].choices = sorted(self.servers.items(), key=lambda item: item[1])

    def call(self, request, data):
        added = api.add_member(request, data["group_id"], data["server"],
                               self.servers.get(data["server"]))
        messages.success(request, _("Added %s to the protection group.")
                         % added["member"]["server_name"])
        return added


class AddMappingForm(ServiceForm):
    group_id = forms.CharField(widget=forms.HiddenInput())
    kind = forms.ChoiceField(label=_("Kind"), choices=MAPPING_KINDS)
    source = forms.CharField(label=_("Source"),
                             help_text=_("Name or ID on the primary site (a CIDR for an IP "
                                         "rule)"))
    target = forms.CharField(label=_("Target"),
                             help_text=_("Name or ID on the secondary site"))
    whole_project = forms.BooleanField(label=_("For every group of the project"),
                                       required=False)

    failure = _("Unable to add the mapping")

    def call(self, request, data):
        mapping = api.create_mapping(request, data["kind"], data["source"], data["target"],
                                     None if data["whole_project"] else data["group_id"])
        messages.success(request, _("Mapped %(kind)s %(source)s to %(target)s.") % mapping)
        return mapping


class GroupOperationForm(StartsOperation, ServiceForm):
    """Starts one of the service's operations on the group (its progress page follows)."""

    group_id = forms.CharField(widget=forms.HiddenInput())

    def start(self, request, data, operation: str, **body) -> dict:
        return api.run_group_operation(request, data["group_id"], operation,
                                       idempotency_key=data["idempotency_key"], **body)


class ConfirmOperationForm(GroupOperationForm):
    """An operation that asks nothing: the modal says what it does, and starts it."""

    operation = forms.ChoiceField(widget=forms.HiddenInput(), choices=(
        ("protect", _("Protect")), ("unprotect", _("Unprotect")),
        ("reprotect", _("Reprotect")), ("test-cleanup", _("Cleanup Test")),
        ("failback", _("Failback"))))

    failure = _("Unable to start the operation")

    def call(self, request, data):
        return self.start(request, data, data["operation"])


class TestFailoverForm(GroupOperationForm):
    """A drill sends every network the group's mappings name to one isolated network of
    this (the DR) site, as ``openstack dr test failover --network-mapping`` does per
    network: production's addresses must route nowhere."""

    network = forms.ChoiceField(label=_("Isolated Network"),
                                help_text=_("A network of this site the test servers attach "
                                            "to instead of their mapped networks"))

    failure = _("Unable to start the test failover")

    def __init__(self, request, *args, **kwargs):
        super().__init__(request, *args, **kwargs)
        try:
            networks = neutron.network_list_for_tenant(request, request.user.project_id)
        except Exception:
            exceptions.handle(request, _("Unable to list this site's networks."))
            networks = []
        # The project's own: a shared or external network reaches beyond the drill.
        self.fields["network"].choices = sorted(
            ((network.id, network.name or network.id) for network in networks
             if not getattr(network, "shared", False)
             and not getattr(network, "router__external", False)),
            key=lambda item: item[1])

    def call(self, request, data):
        sources = {mapping["source"] for mapping in api.list_mappings(request, data["group_id"])
                   if mapping["kind"] == "network"}
        return self.start(request, data, "test-failover",
                          network_mapping={source: data["network"] for source in sources})


class FailoverForm(GroupOperationForm):
    """Planned (the peer stops the VMs and replicates once more) or unplanned (the newest
    recovery point; while the peer answers only with ``force``, which fences it first)."""

    failover_type = forms.CharField(widget=forms.HiddenInput())
    force = forms.BooleanField(
        label=_("Force: fail over even though the primary site answers (its servers are "
                "stopped and locked first)"), required=False)

    failure = _("Unable to start the failover")

    def __init__(self, request, *args, **kwargs):
        super().__init__(request, *args, **kwargs)
        if kwargs.get("initial", {}).get("failover_type") != "unplanned":
            del self.fields["force"]

    def call(self, request, data):
        return self.start(request, data, "failover", failover_type=data["failover_type"],
                          force=data.get("force", False))
