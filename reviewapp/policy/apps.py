from django.apps import AppConfig


class PolicyConfig(AppConfig):
    name = "reviewapp.policy"
    label = "policy"
    verbose_name = "Policy"
