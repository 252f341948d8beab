from django.urls import path

from . import views

urlpatterns = [
    path("evidence-access/", views.evidence_access, name="evidence-access"),
    path("evidence-access/outside/", views.evidence_access_outside, name="evidence-access-outside"),
    path("evidence-access/weekly/", views.evidence_access_weekly, name="evidence-access-weekly"),
]
