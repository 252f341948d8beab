from django.urls import path

from . import views

urlpatterns = [
    path("audit/", views.audit_events, name="audit-events"),
    path("audit/<int:pk>/", views.audit_event, name="audit-event"),
]
