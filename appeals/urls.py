from django.urls import path

from . import views

app_name = "appeals"

urlpatterns = [
    path("", views.start, name="start"),
    path("signin/<str:token>/", views.sign_in, name="sign-in"),
    path("signout/", views.sign_out, name="sign-out"),
    path("account/", views.home, name="home"),
    path("statements/<int:pk>/", views.statement, name="statement"),
    path("decisions/<int:pk>/appeal/", views.appeal_file, name="appeal-file"),
    path("appeal/<int:pk>/", views.appeal_detail, name="appeal"),
    path("appeal/<int:pk>/filed/", views.appeal_filed, name="appeal-filed"),
    path("appeal/<int:pk>/messages/", views.appeal_message, name="appeal-message"),
    path("attachments/<int:pk>/", views.attachment, name="attachment"),
]
