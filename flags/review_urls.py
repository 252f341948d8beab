"""The reviewer's pages under one namespace, ``review``: reviewapp.cases' own (queues, claims, approvals,
campaigns, statements) and the case workspace, which shows the case's flags and so is served from here,
above cases (flags.case_pages; DESIGN.md: dependencies run one way)."""

from django.urls import path

from reviewapp.cases.page_urls import urlpatterns as case_pages_urlpatterns

from . import case_pages

app_name = "review"

urlpatterns = [
    *case_pages_urlpatterns,
    path("cases/<int:pk>/", case_pages.case_detail, name="case"),
    path("cases/<int:pk>/evidence/", case_pages.case_evidence, name="case-evidence"),
    path("cases/<int:pk>/notes/", case_pages.case_note, name="case-note"),
    path("cases/<int:pk>/decision/", case_pages.case_decide, name="case-decide"),
    path("decisions/<int:pk>/approve/", case_pages.decision_approve_view, name="decision-approve"),
    path("decisions/<int:pk>/send-back/", case_pages.decision_send_back_view, name="decision-send-back"),
]
