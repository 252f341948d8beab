from django.urls import path

from . import api

urlpatterns = [
    path("evidence-access/", api.EvidenceAccessView.as_view(), name="evidence-access-api"),
    path("evidence-access/outside/", api.EvidenceAccessOutsideView.as_view(), name="evidence-access-outside-api"),
    path("evidence-access/weekly/", api.EvidenceAccessWeeklyView.as_view(), name="evidence-access-weekly-api"),
]
