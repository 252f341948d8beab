"""Appeal review pages for staff, under /review/appeals/ (the holder portal is appeals/urls.py)."""

from django.urls import path

from . import staff_views

app_name = "appeal-review"

urlpatterns = [
    path("", staff_views.queue, name="queue"),
    path("rates/", staff_views.rates, name="rates"),
    path("<int:pk>/", staff_views.appeal_detail, name="appeal"),
    path("<int:pk>/claim/", staff_views.appeal_claim_view, name="claim"),
    path("<int:pk>/messages/", staff_views.appeal_message_view, name="message"),
    path("<int:pk>/outcome/", staff_views.appeal_outcome_view, name="outcome"),
    path("<int:pk>/evidence/", staff_views.appeal_evidence_view, name="evidence"),
    path("<int:pk>/attachments/<int:attachment_pk>/", staff_views.appeal_attachment_view, name="attachment"),
]
