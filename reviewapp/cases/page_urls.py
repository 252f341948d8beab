"""The reviewer's pages (the API's routes are in urls.py)."""

from django.urls import path

from . import views

app_name = "review"

urlpatterns = [
    path("queues/", views.queue_list, name="queues"),
    path("queues/<slug:queue>/", views.queue_detail, name="queue"),
    path("queues/<slug:queue>/claim-next/", views.queue_claim_next, name="claim-next"),
    path("cases/<int:pk>/", views.case_detail, name="case"),
    path("cases/<int:pk>/claim/", views.case_claim_view, name="case-claim"),
    path("cases/<int:pk>/release/", views.case_release_view, name="case-release"),
    path("cases/<int:pk>/evidence/", views.case_evidence, name="case-evidence"),
    path("cases/<int:pk>/notes/", views.case_note, name="case-note"),
    path("cases/<int:pk>/decision/", views.case_decide, name="case-decide"),
    path("approvals/", views.approvals, name="approvals"),
    path("decisions/<int:pk>/approve/", views.decision_approve_view, name="decision-approve"),
    path("decisions/<int:pk>/send-back/", views.decision_send_back_view, name="decision-send-back"),
    path("campaigns/<int:pk>/", views.campaign_detail, name="campaign"),
    path("campaigns/<int:pk>/decide/", views.campaign_decide_view, name="campaign-decide"),
    path("statements/<int:pk>/", views.statement_detail, name="statement"),
    path("statements/<int:pk>/dsa.json", views.statement_dsa, name="statement-dsa"),
]
