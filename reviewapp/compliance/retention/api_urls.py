"""The retention API under /api/v1/compliance/ (name compliance:retention-api)."""

from django.urls import path

from .api import RetentionReportView

urlpatterns = [
    path("retention/", RetentionReportView.as_view(), name="retention-api"),
]
