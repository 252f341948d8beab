from django.apps import AppConfig


class ForumConfig(AppConfig):
    name = "reviewapp.forum"
    label = "forum"
    verbose_name = "Forum sharing"

    def ready(self) -> None:
        # The one seam in from below (receivers.py): an overturned decision withdraws what we shared.
        from appeals.recipients import disclosure_provider
        from flags.withdrawals import withdrawal_provider
        from reviewapp.cases.events import decision_overturned

        from .receivers import withdraw_on_overturn
        from .selectors import flag_withdrawals, shares_about_account

        decision_overturned.connect(withdraw_on_overturn, dispatch_uid="forum.withdraw_on_overturn")
        # The holders' portal lists what we shared about their account (appeals imports nothing of ours).
        disclosure_provider("forum", shares_about_account)
        # The case page marks forum flags whose source the peer revoked (flags imports nothing of ours).
        withdrawal_provider("forum", flag_withdrawals)
