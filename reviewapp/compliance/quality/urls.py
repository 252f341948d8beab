"""Pages of the second look (compliance:quality-…) and of detector calibration (compliance:calibration)."""

from django.urls import path

from . import views

urlpatterns = [
    path("quality/", views.quality, name="quality"),
    path("quality/draw/", views.draw, name="quality-draw"),
    path("quality/samples/<int:pk>/", views.sample, name="quality-sample"),
    path("quality/disagreements/", views.disagreements, name="quality-disagreements"),
    path("quality/second-looks/", views.reviews, name="quality-reviews"),
    path("quality/second-looks/<int:pk>/", views.review, name="quality-review"),
    path("quality/second-looks/<int:pk>/evidence/", views.review_evidence, name="quality-review-evidence"),
    path("calibration/", views.calibration, name="calibration"),
]
