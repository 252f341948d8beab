"""Compliance console: exports, /compliance/exports/<dataset>.<fmt> (names compliance:export-<dataset>-<fmt>)."""

from django.urls import path

from . import views
from .selectors import DATASETS, FORMATS

urlpatterns = [
    path(f"exports/{dataset}.{fmt}", views.download, {"dataset": dataset, "fmt": fmt}, name=f"export-{dataset}-{fmt}")
    for dataset in DATASETS for fmt in FORMATS
]
