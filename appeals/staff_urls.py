"""Appeal review pages for staff, under /review/appeals/ (the holder portal is appeals/urls.py).

Opening the evidence and the overturn rates by detector read flags too, so those two pages are composed above
appeals and flags (reviewapp.core.appeal_pages); reviewapp.core.appeal_review_urls serves them with these
under the one ``appeal-review`` namespace.
"""

from django.urls import path

from . import staff_views

urlpatterns = [
    path("", staff_views.queue, name="queue"),
    path("<int:pk>/", staff_views.appeal_detail, name="appeal"),
    path("<int:pk>/claim/", staff_views.appeal_claim_view, name="claim"),
    path("<int:pk>/messages/", staff_views.appeal_message_view, name="message"),
    path("<int:pk>/outcome/", staff_views.appeal_outcome_view, name="outcome"),
    path("<int:pk>/attachments/<int:attachment_pk>/", staff_views.appeal_attachment_view, name="attachment"),
]
