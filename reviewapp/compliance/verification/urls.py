from django.urls import path

from . import views

urlpatterns = [
    path("verify/", views.verify, name="verify"),
    path("verify/<int:pk>/", views.verification, name="verification"),
]
