"""``/v1/openapi.json``: the API described from the app itself.

Paths come from the app's URL map and request bodies from the same pydantic models that
validate them, so the document cannot drift from what the service accepts; what a route
does and answers is listed here, once, and :func:`document` refuses an undocumented route.
"""

from __future__ import annotations

from flask import Blueprint, Flask, current_app
from pydantic.json_schema import models_json_schema

from . import schemas
from .alerts import AlertmanagerPayload

bp = Blueprint("openapi", __name__)

ALL_PROJECTS = {"name": "all_projects", "in": "query", "required": False,
                "schema": {"type": "boolean"},
                "description": "every project's objects (admin only)"}
IDEMPOTENCY = {"name": "Idempotency-Key", "in": "header", "required": False,
               "schema": {"type": "string", "pattern": "^[\\x21-\\x7e]{1,64}$"},
               "description": "the same key returns the same operation and starts nothing"}


def _query(name: str, schema: dict, description: str) -> dict:
    return {"name": name, "in": "query", "required": False, "schema": schema,
            "description": description}


VERSION = _query("version", {"type": "integer", "minimum": 1},
                 "the version the change was made against")
STARTS = ([ALL_PROJECTS, IDEMPOTENCY], 202)
FORCE = _query("force", {"type": "boolean"},
               "delete a group that is not unprotected, leaving its replication in place")

# endpoint -> (tag, summary, body model, extra parameters, success status)
ROUTES: dict[str, tuple] = {
    "versions.versions": ("service", "The API versions (no token needed)", None, [], 200),
    "healthz": ("service", "Alive, and the database answers", None, [], 200),
    "metrics": ("service", "Prometheus metrics", None, [], 200),
    "openapi.spec": ("service", "This document", None, [], 200),
    "sites.list_sites": ("sites", "This site and its peer, with reachability", None, [], 200),
    "sites.show_site": ("sites", "One site", None, [], 200),
    "groups.list_groups": ("protection groups", "Protection groups", None, [ALL_PROJECTS],
                           200),
    "groups.create_group": ("protection groups", "Create a group on both sites",
                            schemas.GroupCreate, [], 201),
    "groups.show_group": ("protection groups", "One group", None, [ALL_PROJECTS], 200),
    "groups.update_group": ("protection groups", "Change a group on both sites",
                            schemas.GroupUpdate, [ALL_PROJECTS], 200),
    "groups.delete_group": ("protection groups", "Delete a group on both sites; a group "
                            "that is not unprotected only with force, which leaves its "
                            "replication in place", None, [ALL_PROJECTS, VERSION, FORCE],
                            204),
    "groups.resolve_group": ("protection groups", "Keep one of a diverged group's two "
                             "copies, on both sites", schemas.Resolution, [ALL_PROJECTS],
                             200),
    "groups.show_readiness": ("protection groups", "The group's last readiness check, "
                                 "on its DR site", None, [ALL_PROJECTS], 200),
    "groups.check_readiness": ("protection groups", "Check now whether the group would "
                                  "recover, on its DR site", None, [ALL_PROJECTS], 200),
    "groups.list_members": ("protection groups", "A group's VMs", None, [ALL_PROJECTS], 200),
    "groups.add_member": ("protection groups", "Add a VM to a group; to a protected one "
                          "once its volumes are found to replicate the group's way, and "
                          "a protect starts (the answer's operation)", schemas.MemberAdd,
                          [ALL_PROJECTS], 201),
    "groups.remove_member": ("protection groups", "Remove a VM from a group; from a "
                             "protected one, a protect starts that takes its volumes out "
                             "of replication (202, with the operation)", None,
                             [ALL_PROJECTS], 204),
    "groups.set_member": ("protection groups", "Set a member's boot tier and health gate "
                          "for its group's recoveries, on both sites",
                          schemas.MemberSettings, [ALL_PROJECTS], 200),
    "groups.list_mappings": ("resource mappings", "Resource mappings", None,
                             [ALL_PROJECTS, _query("protection_group", {"type": "string"},
                                                   "a group's mappings and its project's")],
                             200),
    "groups.create_mapping": ("resource mappings", "Map a resource to its DR equivalent",
                              schemas.MappingCreate, [ALL_PROJECTS], 201),
    "groups.show_mapping": ("resource mappings", "One mapping", None, [ALL_PROJECTS], 200),
    "groups.update_mapping": ("resource mappings", "Change a mapping's target",
                              schemas.MappingUpdate, [ALL_PROJECTS], 200),
    "groups.resolve_mapping": ("resource mappings", "Keep one of a diverged mapping's two "
                               "copies, on both sites", schemas.Resolution, [ALL_PROJECTS],
                               200),
    "groups.delete_mapping": ("resource mappings", "Delete a mapping", None, [ALL_PROJECTS],
                              204),
    "operations.protect": ("operations", "Protect a group: replicate it and capture its "
                           "VMs, on its primary site", schemas.NoOptions, *STARTS),
    "operations.unprotect": ("operations", "Unprotect a group: its Cinder group and array "
                             "objects removed on both sites, replication stopped, its "
                             "volumes kept, on its primary site", schemas.NoOptions,
                             *STARTS),
    "operations.test_failover": ("operations", "Start a DR drill", schemas.TestFailover,
                                 *STARTS),
    "operations.test_cleanup": ("operations", "Remove a drill's resources",
                                schemas.NoOptions, *STARTS),
    "operations.failover": ("operations", "Fail a group over to this site",
                            schemas.Failover, *STARTS),
    "operations.failback": ("operations", "Bring a failed-over group back",
                            schemas.NoOptions, *STARTS),
    "operations.reprotect": ("operations", "Protect a failed-over group where it runs: its "
                             "copies replicate home, on the site it failed over to",
                             schemas.NoOptions, *STARTS),
    "operations.site_failover": ("operations", "Fail over every group of the peer site",
                                 schemas.SiteFailover, [IDEMPOTENCY], 202),
    "operations.list_operations": ("operations", "Operations, newest first", None,
                                   [ALL_PROJECTS, _query("status", {"type": "string"},
                                                         "only operations in this status"),
                                    _query("protection_group", {"type": "string"},
                                           "only operations on this group"),
                                    _query("scope", {"type": "string", "enum": [
                                        "protection_group", "site"]},
                                           "only a group's operations, or site failovers")],
                                   200),
    "operations.show_operation": ("operations", "One operation with its groups' results "
                                  "(each with its step, timings and details)",
                                  None, [ALL_PROJECTS], 200),
    "operations.operation_report": (
        "operations", "A recovery's report: each group's recovery point, RPO and RTO "
        "against its targets, its servers' boot times, production's replication and its "
        "last drills (as a chart in html and pdf)", None,
        [ALL_PROJECTS, _query("format", {"type": "string", "enum": ["json", "html", "pdf"]},
                              "json (the default), html or pdf")], 200),
    "operations.retry": ("operations", "Retry the groups that failed", None, STARTS[0],
                         202),
    "operations.cancel": ("operations", "Stop an unfinished operation: it ends failed, "
                          "its execution is cancelled, what it built stays", None,
                          [ALL_PROJECTS], 200),
    "sites.list_audit_entries": ("audit", "The audit log, newest first", None,
                           [ALL_PROJECTS, _query("limit", {"type": "integer", "minimum": 1,
                                                           "maximum": 1000}, "at most"),
                            _query("marker", {"type": "integer", "minimum": 0},
                                   "entries older than this id"),
                            _query("target", {"type": "string"},
                                   "only entries about this group, site or operation")],
                           200),
    "alerts.alertmanager": ("monitoring", "Alertmanager webhook (version 4)",
                            AlertmanagerPayload, [], 200),
    "internal.list_groups": ("internal", "Every group, for the coordinator to catch up",
                             None, [], 200),
    "internal.list_mappings": ("internal", "Every mapping, or one project's",
                               None, [_query("project_name", {"type": "string"},
                                             "only this project's")], 200),
    "internal.show_group": ("internal", "One group, with its members' captured specs",
                            None, [], 200),
    "internal.record_capture": ("internal", "Capture's result, stored on both sites",
                                schemas.Capture, [], 200),
    "internal.set_state": ("internal", "A group's status and, after a failover, its sites",
                           schemas.GroupState, [], 200),
    "internal.push_group": ("internal", "A group pushed by the peer", schemas.GroupPush, [],
                            200),
    "internal.push_group_deletion": ("internal", "A group deleted on the peer", None,
                                     [VERSION], 204),
    "internal.push_mapping": ("internal", "A mapping pushed by the peer",
                              schemas.MappingPush, [], 200),
    "internal.push_mapping_deletion": ("internal", "A mapping deleted on the peer", None,
                                       [VERSION], 204),
    "internal.busy": ("internal", "Which of the asking site's groups an operation here "
                      "holds", schemas.BusyQuery, [], 200),
    "internal.diverged": ("internal", "An object the peer found written apart: both "
                          "copies, kept here too", schemas.Divergence, [], 204),
    "internal.forward": ("internal", "A change for this site to coordinate",
                         schemas.Forwarded, [], 200),
    "operations.report_progress": ("internal", "An action's report from inside a Mistral "
                                   "execution: whether it may act, and its progress",
                                   schemas.ExecutionReport, [], 200),
    "operations.start_peer_step": ("internal", "A step the peer's operation needs of this "
                                   "site's cloud, run here with this site's keys",
                                   schemas.PeerStepRequest, [], 202),
    "operations.start_scheduled": ("internal", "A scheduled drill's run starts its drill "
                                   "or its cleanup (or skips, saying why)",
                                   schemas.ScheduledStart, [], 200),
    "operations.scheduled_operation": ("internal", "Whether a scheduled drill's operation "
                                       "ended", None, [], 200),
    "operations.verify_scheduled": ("internal", "A scheduled drill's report kept and "
                                    "checked", None, [], 200),
    "operations.finish_scheduled": ("internal", "How a scheduled drill's run went, "
                                    "recorded", schemas.ScheduledOutcome, [], 200),
    "operations.show_peer_step": ("internal", "A peer step, as the peer waits for it", None,
                                  [], 200),
    "internal.project_id": ("internal", "The id this site recorded for a project, which "
                            "the engine scopes to", None, [], 200),
    "internal.find_reference": ("internal", "What a mapping's target names on this site, "
                                "as the project sees it",
                                None, [_query(n, {"type": "string"}, d) for n, d in (
                                    ("project_domain", "the project's domain"),
                                    ("project_name", "the project"),
                                    ("kind", "network, flavor, security_group, ip_rule "
                                             "or availability_zone"),
                                    ("ref", "the target, a name or an id"))], 200),
    "internal.copies": ("internal", "A group's copies on this site's cloud, by the volume "
                        "each copies", None,
                        [_query("purpose", {"type": "string", "enum": ["drill", "failover"]},
                                "which copies")], 200),
}
PUBLIC = {"healthz", "metrics", "openapi.spec", "alerts.alertmanager"}
ERROR = {"$ref": "#/components/schemas/Error"}


def document(app: Flask) -> dict:
    models = sorted({route[2] for route in ROUTES.values() if route[2]},
                    key=lambda m: m.__name__)
    _, definitions = models_json_schema([(m, "validation") for m in models],
                                        ref_template="#/components/schemas/{model}")
    components = dict(definitions.get("$defs", {}))
    components["Error"] = {
        "type": "object", "required": ["error"],
        "properties": {"error": {"type": "object", "required": ["code", "message", "details"],
                                 "properties": {"code": {"type": "integer"},
                                                "message": {"type": "string", "minLength": 1},
                                                "details": {"type": "object"}}}}}
    paths: dict[str, dict] = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint not in ROUTES:
            raise LookupError(f"route {rule.rule} ({rule.endpoint}) is not documented")
        tag, summary, model, parameters, success = ROUTES[rule.endpoint]
        path = rule.rule.replace("<", "{").replace(">", "}")
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _operation(
                rule, tag, summary, model, parameters, success)
    return {"openapi": "3.0.3",
            "info": {"title": "Site Recovery protection service", "version": "1",
                     "description": "Protection groups kept identical on two sites, and "
                                    "the DR operations that recover them."},
            "servers": [{"url": "/"}], "paths": paths,
            "components": {"schemas": components, "securitySchemes": {
                "keystone": {"type": "apiKey", "in": "header", "name": "X-Auth-Token"},
                "alert_secret": {"type": "http", "scheme": "bearer"}}}}


def _operation(rule, tag, summary, model, parameters, success) -> dict:
    operation = {"tags": [tag], "summary": summary, "operationId": rule.endpoint,
                 "parameters": [{"name": name, "in": "path", "required": True,
                                 "schema": {"type": "string", "minLength": 1}}
                                for name in rule.arguments] + parameters,
                 "responses": {str(success): {"description": "done"},
                               "default": {"description": "an error", "content": {
                                   "application/json": {"schema": ERROR}}}}}
    if model is not None:
        required = any(f.is_required() for f in model.model_fields.values())
        operation["requestBody"] = {"required": required,
                                    "content": {"application/json": {"schema": {
                                        "$ref": f"#/components/schemas/{model.__name__}"}}}}
    if rule.endpoint == "alerts.alertmanager":
        operation["security"] = [{"alert_secret": []}]
    elif rule.endpoint not in PUBLIC:
        operation["security"] = [{"keystone": []}]
    return operation


@bp.get("/v1/openapi.json")
def spec():
    app = current_app._get_current_object()
    if "openapi" not in app.extensions:
        app.extensions["openapi"] = document(app)
    return app.extensions["openapi"]
