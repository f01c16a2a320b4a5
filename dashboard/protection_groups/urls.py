"""The Protection Groups panel's pages: groups, their members and mappings, operations."""

from django.urls import re_path

from site_recovery.dashboard.protection_groups import views

GROUP = r"^(?P<group_id>[^/]+)/"
OPERATION = r"^operations/(?P<operation_id>[^/]+)/"

urlpatterns = [
    re_path(r"^$", views.IndexView.as_view(), name="index"),
    re_path(r"^create/$", views.CreateView.as_view(), name="create"),
    re_path(OPERATION + r"$", views.OperationView.as_view(), name="operation"),
    re_path(OPERATION + r"retry/$", views.RetryView.as_view(), name="retry"),
    re_path(GROUP + r"$", views.DetailView.as_view(), name="detail"),
    re_path(GROUP + r"update/$", views.UpdateView.as_view(), name="update"),
    re_path(GROUP + r"members/add/$", views.AddMemberView.as_view(), name="add_member"),
    re_path(GROUP + r"mappings/add/$", views.AddMappingView.as_view(), name="add_mapping"),
    re_path(GROUP + r"test-failover/$", views.TestFailoverView.as_view(),
            name="test_failover"),
    re_path(GROUP + r"failover/(?P<failover_type>planned|unplanned)/$",
            views.FailoverView.as_view(), name="failover"),
    re_path(GROUP + r"(?P<operation>protect|unprotect|reprotect|test-cleanup|failback)/$",
            views.ConfirmOperationView.as_view(), name="confirm"),
]
