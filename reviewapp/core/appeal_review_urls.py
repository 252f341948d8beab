"""Appeal review pages for staff, under /review/appeals/, in the one ``appeal-review`` namespace: appeals' own
(appeals/staff_urls.py) and the two that read flags as well (core.appeal_pages, composed above both)."""

from django.urls import path

from appeals.staff_urls import urlpatterns as appeal_review_urlpatterns

from . import appeal_pages

app_name = "appeal-review"

urlpatterns = [
    *appeal_review_urlpatterns,
    path("rates/", appeal_pages.rates, name="rates"),
    path("<int:pk>/evidence/", appeal_pages.appeal_evidence_view, name="evidence"),
]
