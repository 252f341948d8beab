"""Compliance console: exports, /compliance/exports/ (the form, compliance:exports), /compliance/exports/download
(its submission, compliance:export-download) and /compliance/exports/<dataset>.<fmt> (names
compliance:export-<dataset>-<fmt>)."""

from django.urls import path

from . import views
from .selectors import DATASETS, FORMATS

urlpatterns = [
    path("exports/", views.export_page, name="exports"),
    path("exports/download", views.export_start, name="export-download"),
    *(path(f"exports/{dataset}.{fmt}", views.download, {"dataset": dataset, "fmt": fmt}, name=f"export-{dataset}-{fmt}")
      for dataset in DATASETS for fmt in FORMATS),
]
