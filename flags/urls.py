from django.urls import path

from .api import FlagIngestView

urlpatterns = [
    path("flags/", FlagIngestView.as_view(), name="flags-ingest"),
]
