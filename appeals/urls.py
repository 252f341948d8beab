from django.urls import path

from . import views

app_name = "appeals"

urlpatterns = [
    path("", views.start, name="start"),
    path("signin/<str:token>/", views.sign_in, name="sign-in"),
    path("signout/", views.sign_out, name="sign-out"),
    path("account/", views.home, name="home"),
]
