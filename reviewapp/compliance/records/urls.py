"""Compliance console: the decision register and each decision's record (names compliance:decisions, :decision)."""

from django.urls import path

from . import views

urlpatterns = [
    path("decisions/", views.decision_register, name="decisions"),
    path("decisions/<int:pk>/", views.decision_detail, name="decision"),
]
