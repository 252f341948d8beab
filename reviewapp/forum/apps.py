from django.apps import AppConfig


class ForumConfig(AppConfig):
    name = "reviewapp.forum"
    label = "forum"
    verbose_name = "Forum sharing"
