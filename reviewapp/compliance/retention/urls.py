"""The retention page (compliance:retention, at /compliance/retention/)."""

from django.urls import path

from . import views

urlpatterns = [
    path("retention/", views.retention, name="retention"),
]
