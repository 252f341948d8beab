"""The transparency report (compliance:transparency) and the CSV behind each chart
(compliance:transparency-csv-<chart>, at /compliance/transparency/<chart>.csv)."""

from django.urls import path

from . import views
from .selectors import CHARTS

urlpatterns = [
    path("transparency/", views.report, name="transparency"),
    *[path(f"transparency/{chart}.csv", views.chart_csv, {"chart": chart}, name=f"transparency-csv-{chart}")
      for chart in CHARTS],
]
