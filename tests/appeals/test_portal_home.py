"""The holder's portal home starts with what they can do now: answer a reviewer's question, appeal a decision
before its deadline, or nothing (an appeal is with us)."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from appeals.services import appeal_claim, appeal_file, appeal_message_add
from reviewapp.people.roles import Role

pytestmark = pytest.mark.django_db


def _next_steps(response) -> str:
    html = response.content.decode()
    match = re.search(r'<section class="next-step".*?</section>', html, flags=re.S)
    assert match, "no 'What you can do now' section"
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", match.group(0))).strip()


def test_the_portal_home_says_what_the_holder_can_do_next(signed_in, holder, make_staff):
    deadline = holder.statement.appeal_deadline
    steps = _next_steps(signed_in.get(reverse("appeals:home")))
    assert f"You can appeal decision no. {holder.decision.pk} until {deadline:%-d %B %Y}." in steps
    assert f'href="{reverse("appeals:appeal-file", args=[holder.decision.pk])}"' in \
        signed_in.get(reverse("appeals:home")).content.decode()

    appeal = appeal_file(account=holder.account, decision=holder.decision, grounds="We are researchers.")
    steps = _next_steps(signed_in.get(reverse("appeals:home")))
    assert f"Appeal no. {appeal.pk} is with us: nothing is needed from you now." in steps
    assert "You can appeal" not in steps

    senior = make_staff(Role.SENIOR_REVIEWER)
    appeal_claim(reviewer=senior, appeal=appeal)
    appeal_message_add(appeal=appeal, text="Which programme enrolled you?", staff=senior)
    steps = _next_steps(signed_in.get(reverse("appeals:home")))
    assert f"The reviewer of appeal no. {appeal.pk} asked you a question. Answer it on appeal no. {appeal.pk}" in steps
    assert "nothing is needed from you" not in steps
