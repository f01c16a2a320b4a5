"""The Site Recovery panel's pages: the sites, a site failover, its operation."""

from django.urls import re_path

from site_recovery.dashboard.site_admin import views

urlpatterns = [
    re_path(r"^$", views.IndexView.as_view(), name="index"),
    re_path(r"^sites/(?P<site>[^/]+)/failover/$", views.SiteFailoverView.as_view(),
            name="failover"),
    re_path(r"^operations/(?P<operation_id>[^/]+)/$", views.OperationView.as_view(),
            name="operation"),
    re_path(r"^operations/(?P<operation_id>[^/]+)/retry/$", views.RetryView.as_view(),
            name="retry"),
]
