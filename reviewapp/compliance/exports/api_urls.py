"""The exports API under /api/v1/compliance/: exports/ (name exports-api) and exports/<dataset>.<fmt> (names
export-api-<dataset>-<fmt>), the console's URLs under the API."""

from django.urls import path

from .api import ExportIndexView, download_view
from .selectors import DATASETS, FORMATS

urlpatterns = [
    path("exports/", ExportIndexView.as_view(), name="exports-api"),
    *(path(f"exports/{slug}.{fmt}", download_view(dataset, fmt), name=f"export-api-{slug}-{fmt}")
      for slug, dataset in DATASETS.items() for fmt in FORMATS),
]
