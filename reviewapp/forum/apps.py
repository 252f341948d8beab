from django.apps import AppConfig


class ForumConfig(AppConfig):
    name = "reviewapp.forum"
    label = "forum"
    verbose_name = "Forum sharing"

    def ready(self) -> None:
        # The one seam in from below (receivers.py): an overturned decision withdraws what we shared.
        from reviewapp.cases.events import decision_overturned

        from .receivers import withdraw_on_overturn

        decision_overturned.connect(withdraw_on_overturn, dispatch_uid="forum.withdraw_on_overturn")
