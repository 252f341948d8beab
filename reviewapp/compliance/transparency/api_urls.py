"""The transparency report API under /api/v1/compliance/ (name compliance:transparency-api)."""

from django.urls import path

from .api import TransparencyReportView

urlpatterns = [
    path("transparency/", TransparencyReportView.as_view(), name="transparency-api"),
]
