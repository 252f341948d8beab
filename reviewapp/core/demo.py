"""The demo `make run` shows (demo mode only): the staff logins and a synthetic distillation campaign.

One function for `manage.py seed_demo` and `manage.py runstack`, so both build the same demo. It lives in
core, the top layer: people (logins) and flags (the campaign) do not know about each other.
"""

from __future__ import annotations

from dataclasses import dataclass

from flags.demo import DemoSummary, demo_campaign_ensure
from reviewapp.people.demo import DEMO_ACTOR, DemoLogin, demo_staff_ensure


@dataclass(frozen=True)
class Demo:
    logins: list[DemoLogin]
    campaign: DemoSummary

    def login_lines(self) -> list[str]:
        """One line per login: username, role, one-time password (chosen anew at first sign-in)."""
        return [f"  {login.username:<8} {login.role.label:<20} {login.password}" for login in self.logins]

    def summary_line(self) -> str:
        return f"Demo data: {self.campaign}"


def demo_ensure() -> Demo:
    """Create whatever part of the demo is missing and describe it. Idempotent: a second run changes nothing."""
    logins = demo_staff_ensure()
    return Demo(logins=logins, campaign=demo_campaign_ensure(actor=DEMO_ACTOR))
