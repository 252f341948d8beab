"""Staff policy pages: the version in force, any version, the history, and a readable diff."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.html import escape

from reviewapp.people.roles import Role
from reviewapp.policy.models import PolicyVersion

from .conftest import POLICY_FILE, edit, heading, load

pytestmark = pytest.mark.django_db


def main(response) -> str:
    """The page's main content (the header carries a fresh CSRF token on every response)."""
    page = response.content.decode()
    return page[page.index('<main id="main">'):page.index("</main>")]


@pytest.fixture
def reviewer(client, make_staff):
    user = make_staff(Role.REVIEWER)
    client.force_login(user)
    return user


@pytest.fixture
def two_versions(policy_dir):
    """v1 of the copied policy, then v2 with UP-2.1 reworded and UP-5.2 made to need a second approver."""
    load(policy_dir)
    path = policy_dir / POLICY_FILE
    edit(path, "is allowed. So is running", "is allowed. It must serve real users. So is running",
         after=heading("UP-2.1"))
    edit(path, "evaluation suite of a reasonable size", "evaluation suite", after=heading("UP-2.1"))
    edit(path, "requires_second_approval: false", "requires_second_approval: true", after=heading("UP-5.2"))
    [result] = load(policy_dir)
    return PolicyVersion.objects.get(number=1), result.version


@pytest.mark.parametrize("role", list(Role))
def test_every_role_reads_the_version_in_force_with_every_clause(client, make_staff, loaded, role):
    client.force_login(make_staff(role))
    response = client.get(reverse("policy:current"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "API Usage Policy" in page and "Version 1" in page and loaded.source_sha256 in page
    for clause in loaded.clauses.all():
        assert f'<h3 id="{clause.ref}-title">{clause.ref} {clause.title}</h3>' in page
        assert escape(clause.evidence_required) in page
        assert escape(clause.text.split("\n\n")[0]) in page
    assert "No violation, Warning</td>" in page  # UP-6.1 can only clear or warn
    assert "Other violation of provider&#x27;s terms and conditions" in page
    assert "STATEMENT_CATEGORY_SCAMS_AND_FRAUD" in page
    assert "730 days after the decision" in page and "180 days</td>" in page
    assert '<a href="/policy/" aria-current="page" data-shortcut="g p">Policy</a>' in page


def test_the_page_says_when_no_policy_is_loaded(client, reviewer):
    page = client.get(reverse("policy:current")).content.decode()
    assert "No policy is in force yet" in page and "manage.py load_policies" in page


def test_a_version_published_ahead_of_its_date_is_announced_not_applied(client, reviewer, policy_dir):
    load(policy_dir)
    edit(policy_dir / POLICY_FILE, "effective_from: 2026-10-01", "effective_from: 2999-01-01")
    load(policy_dir)
    page = client.get(reverse("policy:current")).content.decode()
    assert "Version 1" in page and "Published, not yet in force" in page
    assert 'href="/policy/usage-policy/v2/">API Usage Policy v2</a>, effective from 1 January 2999' in page
    history = client.get(reverse("policy:history", args=["usage-policy"])).content.decode()
    assert history.index("<td>upcoming</td>") < history.index('<span class="status-ok">in force</span>')


def test_history_lists_every_version_newest_first(client, reviewer, two_versions):
    v1, v2 = two_versions
    response = client.get(reverse("policy:history", args=["usage-policy"]))
    page = response.content.decode()
    assert response.status_code == 200
    assert page.index('href="/policy/usage-policy/v2/"') < page.index('href="/policy/usage-policy/v1/"')
    assert '<span class="status-ok">in force</span>' in page and "superseded" in page
    assert f'title="{v1.source_sha256}"' in page and f'title="{v2.source_sha256}"' in page
    assert 'href="/policy/usage-policy/diff/?from=1&amp;to=2">from v1</a>' in page


def test_an_old_version_keeps_its_text(client, reviewer, two_versions):
    page = client.get(reverse("policy:version", args=["usage-policy", 1])).content.decode()
    assert "superseded" in page and "of a reasonable size" in page and "It must serve real users." not in page
    page = client.get(reverse("policy:version", args=["usage-policy", 2])).content.decode()
    assert "in force" in page and "It must serve real users." in page


def test_the_diff_marks_what_changed_clause_by_clause(client, reviewer, two_versions):
    response = client.get(reverse("policy:diff", args=["usage-policy"]), {"from": 1, "to": 2})
    assert response.status_code == 200
    page = main(response)
    assert "0 added, 2 changed, 0 removed</strong>, 9 unchanged" in page
    assert 'id="change-UP-2.1">UP-2.1 Automated extraction at scale' in page
    assert '<ins class="diff-added"><span class="visually-hidden">[added: </span>It must serve real users. ' \
        in page
    assert '<span class="visually-hidden">[removed: </span>of a reasonable size' in page
    second = page[page.index('id="change-UP-5.2"'):]
    assert "<h3>Second approval</h3>" in second and "[was: </span>no" in second and "[now: </span>yes" in second
    assert 'id="change-UP-1.1"' not in page and "Unchanged clauses: UP-1.1, UP-1.2, UP-2.2" in page
    assert "+requires_second_approval: true" in page  # the whole-document unified diff
    # Without parameters: the latest version against the one before it.
    assert main(client.get(reverse("policy:diff", args=["usage-policy"]))) == page


def test_the_diff_the_other_way_round_shows_the_reverse(client, reviewer, two_versions):
    page = client.get(reverse("policy:diff", args=["usage-policy"]), {"from": 2, "to": 1}).content.decode()
    assert '<span class="visually-hidden">[removed: </span>It must serve real users. ' in page


@pytest.mark.parametrize(("name", "args", "query"), [
    ("policy:history", ["no-such-policy"], {}),
    ("policy:diff", ["no-such-policy"], {}),
    ("policy:version", ["no-such-policy", 1], {}),
    ("policy:version", ["usage-policy", 99], {}),
    ("policy:diff", ["usage-policy"], {"from": 1, "to": 99}),
    ("policy:diff", ["usage-policy"], {"from": 0, "to": 1}),
])
def test_unknown_policies_and_versions_are_not_found(client, reviewer, loaded, name, args, query):
    assert client.get(reverse(name, args=args), query).status_code == 404


def test_a_version_number_that_is_not_a_number_is_a_bad_request(client, reviewer, loaded):
    assert client.get(reverse("policy:diff", args=["usage-policy"]), {"from": "latest"}).status_code == 400


@pytest.mark.parametrize(("name", "args"), [
    ("policy:current", []), ("policy:history", ["usage-policy"]), ("policy:diff", ["usage-policy"]),
    ("policy:version", ["usage-policy", 1]),
])
def test_signed_out_visitors_are_sent_to_sign_in_and_people_without_a_role_are_refused(client, loaded, name, args):
    response = client.get(reverse(name, args=args))
    assert response.status_code == 302 and response.url.startswith(reverse("people:login"))
    client.force_login(get_user_model().objects.create_user("no-role", password="correct horse battery"))
    assert client.get(reverse(name, args=args)).status_code == 403


def test_the_page_in_force_does_not_query_per_policy_or_clause(client, reviewer, policy_dir):
    from .test_loader import RESEARCH_TERMS

    load(policy_dir)
    with CaptureQueriesContext(connection) as one_policy:
        client.get(reverse("policy:current"))
    (policy_dir / "research-programme.md").write_text(RESEARCH_TERMS)
    load(policy_dir)
    with CaptureQueriesContext(connection) as two_policies:
        page = client.get(reverse("policy:current")).content.decode()
    assert "RP-1.1 Disclosure of findings" in page and "UP-6.1" in page
    assert len(two_policies) == len(one_policy)
