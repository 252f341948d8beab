"""The reviewer's pages that read cases only (the API's routes are in urls.py).

The case workspace and the actions that answer with it show the case's flags: their routes are in
flags.review_urls, which serves these too, under the one ``review`` namespace (DESIGN.md: one-way layers).
"""

from django.urls import path

from . import views

urlpatterns = [
    path("queues/", views.queue_list, name="queues"),
    path("queues/<slug:queue>/", views.queue_detail, name="queue"),
    path("queues/<slug:queue>/claim-next/", views.queue_claim_next, name="claim-next"),
    path("cases/<int:pk>/claim/", views.case_claim_view, name="case-claim"),
    path("cases/<int:pk>/release/", views.case_release_view, name="case-release"),
    path("approvals/", views.approvals, name="approvals"),
    path("campaigns/<int:pk>/", views.campaign_detail, name="campaign"),
    path("campaigns/<int:pk>/decide/", views.campaign_decide_view, name="campaign-decide"),
    path("statements/<int:pk>/", views.statement_detail, name="statement"),
    path("statements/<int:pk>/dsa.json", views.statement_dsa, name="statement-dsa"),
]
