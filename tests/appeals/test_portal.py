"""The account holders' portal: sign-in links, "email me a new link", the pages, filing an appeal with its
rules (window, one open appeal, attachment limits), messages, and IDOR probes on every holder route and
API endpoint. Everything goes through the real services; emails are the outbox rows they queue."""

from __future__ import annotations

import re
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.core import signing
from django.core.cache import cache
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

import appeals.selectors
import appeals.services
import appeals.views
from appeals.models import Appeal, AppealAttachment, AppealMessage
from appeals.services import appeal_claim, appeal_decide, appeal_message_add
from reviewapp.cases.models import HolderLink
from reviewapp.outbox.models import OutboxMessage
from reviewapp.people.roles import Role

from .conftest import FACTS, PDF, sign_in_path

pytestmark = pytest.mark.django_db
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    cache.clear()


def _text(response) -> str:
    """The visible text of a page, whitespace collapsed (for assertions on what a holder reads)."""
    html = response.content.decode()
    html = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", html, flags=re.S)
    text = re.sub(r"<[^>]+>", " ", html)
    return " ".join(text.replace("&#x27;", "'").replace("&quot;", '"').replace("&amp;", "&").split())


def _follow_message(client, response) -> str:
    assert response.status_code == 302
    return _text(client.get(response.url))


def _file(client, decision, *, grounds="We run a published evaluation harness.", files=(), **extra):
    data = {"grounds": grounds, **extra}
    if files:
        data["attachments"] = list(files)
    return client.post(reverse("appeals:appeal-file", args=[decision.pk]), data)


def _upload(name: str, data: bytes, content_type: str = "application/octet-stream"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data, content_type=content_type)


def _stored_files(directory) -> list:
    return sorted(directory.iterdir()) if directory.exists() else []


def _at(moment, monkeypatch):
    """The appeals services and selectors see ``moment`` as now."""
    clock = SimpleNamespace(now=lambda: moment)
    monkeypatch.setattr(appeals.services, "timezone", clock)
    monkeypatch.setattr(appeals.selectors, "timezone", clock)


# ── Sign-in links ──────────────────────────────────────────────────────────────────────────────────────

def test_a_link_signs_in_once_and_a_get_does_not_use_it_up(client, holder):
    path = sign_in_path(holder.account)
    page = client.get(path)  # what a mail scanner following the link does
    assert page.status_code == 200 and "Continue" in _text(page)
    assert HolderLink.objects.latest("pk").used_at is None
    assert client.get(reverse("appeals:home")).url == reverse("appeals:start")  # not signed in by a GET

    response = client.post(path)
    assert response.status_code == 302 and response.url == reverse("appeals:home")
    assert "acct_a" in _text(client.get(reverse("appeals:home")))

    again = Client()
    refused = again.post(path)
    assert refused.url == reverse("appeals:start")
    assert "This link was already used. Ask for a new one below." in _text(again.get(refused.url))
    assert again.get(reverse("appeals:home")).status_code == 302


def test_an_expired_link_is_refused(client, holder):
    path = sign_in_path(holder.account)
    HolderLink.objects.filter(pk=HolderLink.objects.latest("pk").pk).update(
        expires_at=timezone.now() - timedelta(seconds=1))
    assert "This link has expired." in _follow_message(client, client.post(path))
    assert client.get(reverse("appeals:home")).status_code == 302


@pytest.mark.parametrize("tamper", ["signature", "forged", "garbage"])
def test_a_tampered_link_is_refused(client, holder, tamper):
    path = sign_in_path(holder.account)
    token = path.rstrip("/").rsplit("/", 1)[1]
    if tamper == "signature":
        bad = token[:-1] + ("A" if token[-1] != "A" else "B")
    elif tamper == "forged":  # a well-formed link signed with another key
        bad = signing.dumps("made-up-secret", key="not-our-key-" * 5, salt="reviewapp.holder-link")
    else:
        bad = "not-a-token"
    response = client.post(reverse("appeals:sign-in", args=[bad]))
    assert "This link is not valid." in _follow_message(client, response)
    assert client.get(reverse("appeals:home")).status_code == 302
    assert not HolderLink.objects.filter(used_at__isnull=False).exists()


def test_sign_out_ends_the_holder_session(signed_in):
    assert signed_in.get(reverse("appeals:sign-out")).status_code == 405
    response = signed_in.post(reverse("appeals:sign-out"))
    assert "You are signed out." in _follow_message(signed_in, response)
    assert signed_in.get(reverse("appeals:home")).url == reverse("appeals:start")


# ── "Email me a new link" ───────────────────────────────────────────────────────────────────────────────

def _link_emails():
    return OutboxMessage.objects.filter(kind="email", idempotency_key__startswith="holder-link-")


def test_a_new_link_answers_the_same_for_known_and_unknown_addresses(holder):
    answers = {}
    for email in ("nobody@example.net", "HOLDER@example.com"):
        client = Client()
        response = client.post(reverse("appeals:start"), {"email": email})
        answers[email] = (response.status_code, response.url, _text(client.get(response.url)))
    assert answers["nobody@example.net"] == answers["HOLDER@example.com"]
    assert "If that address belongs to an account we acted on" in answers["nobody@example.net"][2]

    (email,) = _link_emails()  # only the known address got one
    assert email.payload["to"] == ["holder@example.com"]
    link = re.search(r"https?://\S+(/appeals/signin/\S+/)", email.payload["body"]).group(1)
    client = Client()
    assert client.post(link).url == reverse("appeals:home")  # and it works


def test_a_new_link_is_rate_limited(client, holder, settings):
    settings.HOLDER_LINK_RATE_LIMIT = "3/h"
    statuses = [client.post(reverse("appeals:start"), {"email": "holder@example.com"}).status_code
                for _ in range(5)]
    assert statuses == [302, 302, 302, 429, 429]
    assert _link_emails().count() == 3
    refused = client.post(reverse("appeals:start"), {"email": "someone-else@example.com"})
    assert refused.status_code == 429 and "Too many requests" in _text(refused)  # per address and per IP


def test_the_link_limit_counts_one_mailbox_however_its_address_is_spelled(holder, settings):
    """Case, spaces and the domain's IDNA form do not buy more emails to one mailbox (each try from its own IP)."""
    settings.HOLDER_LINK_RATE_LIMIT = "3/h"
    spellings = ["holder@example.com", "HOLDER@example.com", " holder@EXAMPLE.com ", "Holder@Example.Com",
                 "holder@example.com.", "hOlDeR@ExAmPlE.cOm", "  HOLDER@EXAMPLE.COM", "holder@example.COM  "]
    statuses = [Client().post(reverse("appeals:start"), {"email": email}, REMOTE_ADDR=f"198.51.100.{i}").status_code
                for i, email in enumerate(spellings, start=1)]
    assert statuses == [302, 302, 302] + [429] * 5
    assert _link_emails().count() == 3


def test_a_new_link_reaches_the_account_however_its_address_is_spelled(holder):
    for i, email in enumerate(["  HOLDER@Example.COM ", "\tHolder@EXAMPLE.com"]):
        Client().post(reverse("appeals:start"), {"email": email}, REMOTE_ADDR=f"198.51.100.{i + 1}")
    assert [message.payload["to"] for message in _link_emails()] == [["holder@example.com"]] * 2


def test_an_international_domain_is_one_mailbox_in_unicode_and_punycode(holder, settings):
    from appeals.services import holder_email_normalise

    holder.account.contact_email = "Joerg@Bücher.example"
    holder.account.save(update_fields=["contact_email"])
    assert holder_email_normalise(" JOERG@BÜCHER.example ") == "joerg@xn--bcher-kva.example"
    assert holder_email_normalise("joerg@xn--bcher-kva.example") == "joerg@xn--bcher-kva.example"
    assert holder_email_normalise("Straße@example.com") == holder_email_normalise("STRASSE@example.com")
    settings.HOLDER_LINK_RATE_LIMIT = "2/h"
    statuses = [Client().post(reverse("appeals:start"), {"email": email}, REMOTE_ADDR=f"198.51.100.{i}").status_code
                for i, email in enumerate(["joerg@bücher.example", "JOERG@xn--bcher-kva.example",
                                           "Joerg@BÜCHER.example"], start=1)]
    assert statuses == [302, 302, 429]
    assert [message.payload["to"] for message in _link_emails()] == [["Joerg@Bücher.example"]] * 2


# ── The pages ──────────────────────────────────────────────────────────────────────────────────────────

def test_home_lists_the_decisions_with_deadline_statement_and_appeal(signed_in, holder):
    text = _text(signed_in.get(reverse("appeals:home")))
    deadline = holder.statement.appeal_deadline
    assert "Suspension" in text and f"decision no. {holder.decision.pk}" in text
    assert f"In force until {holder.decision.ends_at:%-d %B %Y}" in text
    assert f"Appeal deadline {deadline:%-d %B %Y, %H:%M} UTC" in text
    assert f"Read statement of reasons no. {holder.statement.pk}" in text
    assert f"Appeal decision no. {holder.decision.pk}" in text
    assert "You have not filed any appeal." in text

    _file(signed_in, holder.decision)
    text = _text(signed_in.get(reverse("appeals:home")))
    appeal = Appeal.objects.get()
    assert f"You appealed this decision (appeal no. {appeal.pk}): Received, waiting for a reviewer" in text
    assert f"Appeal decision no. {holder.decision.pk}" not in text  # one open appeal per decision
    assert f"Appeal no. {appeal.pk}" in text


def test_the_statement_page_says_it_all_in_plain_language(signed_in, holder):
    response = signed_in.get(reverse("appeals:statement", args=[holder.statement.pk]))
    text = _text(response)
    assert f"Statement of reasons no. {holder.statement.pk}" in text
    assert "Suspension." in text and FACTS in text
    assert "T-1 Automated extraction" in text and "Do not extract outputs at scale." in text  # the clause text
    assert "Our automated detection systems flagged the activity of your account." in text
    assert "A person reviewed the evidence and took the decision. It was not taken by automated means." in text
    assert f"until {holder.statement.appeal_deadline:%-d %B %Y, %H:%M} UTC" in text
    assert "out-of-court dispute settlement body (DSA Art. 21)" in text  # as issued
    assert "Out-of-court dispute settlement bodies are independent" in text
    assert reverse("appeals:appeal-file", args=[holder.decision.pk]) in response.content.decode()


def test_filing_an_appeal_confirms_it_and_emails_a_receipt(signed_in, holder, portal_attachments):
    response = _file(signed_in, holder.decision, grounds="We are researchers; this was our benchmark run.",
                     researcher_claim="on", affiliation="Example University",
                     files=[_upload("letter.pdf", PDF, "application/pdf"), _upload("notes.txt", b"Run log.")])
    appeal = Appeal.objects.get()
    assert response.status_code == 302 and response.url == reverse("appeals:appeal-filed", args=[appeal.pk])
    assert (appeal.account, appeal.decision, appeal.state) == (holder.account, holder.decision, Appeal.State.FILED)
    assert appeal.researcher_claim and appeal.affiliation == "Example University"
    assert sorted(a.name for a in appeal.attachments.all()) == ["letter.pdf", "notes.txt"]
    assert len(_stored_files(portal_attachments)) == 2

    text = _text(signed_in.get(response.url))
    assert "We received your appeal" in text and f"Your appeal no. {appeal.pk}" in text
    assert "A person who took no part in the original decision reviews your appeal." in text
    assert "We are emailing a receipt to holder@example.com." in text

    receipt = OutboxMessage.objects.get(kind="email", idempotency_key=f"appeal-receipt-{appeal.pk}")
    assert receipt.payload["to"] == ["holder@example.com"]
    assert "We are researchers; this was our benchmark run." in receipt.payload["body"]


def test_the_appeal_page_shows_status_history_and_own_attachments(signed_in, holder):
    _file(signed_in, holder.decision, files=[_upload("letter.pdf", PDF, "application/pdf")])
    appeal = Appeal.objects.get()
    page = signed_in.get(reverse("appeals:appeal", args=[appeal.pk]))
    text = _text(page)
    assert "Received, waiting for a reviewer" in text and "We run a published evaluation harness." in text
    assert "You filed the appeal." in text and "letter.pdf" in text

    attachment = appeal.attachments.get()
    download = signed_in.get(reverse("appeals:attachment", args=[attachment.pk]))
    assert download.status_code == 200 and download.content == PDF
    assert download["Content-Type"] == "application/pdf"
    assert download["Content-Disposition"] == 'attachment; filename="letter.pdf"'
    assert download["X-Content-Type-Options"] == "nosniff"


def test_the_holder_answers_the_reviewers_question(signed_in, holder, make_staff):
    _file(signed_in, holder.decision)
    appeal = Appeal.objects.get()
    senior = make_staff(Role.SENIOR_REVIEWER, username="olga")
    appeal_claim(reviewer=senior, appeal=appeal)
    appeal_message_add(appeal=appeal, staff=senior, text="Which benchmark did you run?")

    text = _text(signed_in.get(reverse("appeals:appeal", args=[appeal.pk])))
    assert "The reviewer asked you for more information." in text
    assert "The reviewer wrote: Which benchmark did you run?" in text and "Answer the reviewer" in text

    url = reverse("appeals:appeal-message", args=[appeal.pk])
    empty = signed_in.post(url, {"text": "   "})
    assert empty.status_code == 422 and "This field is required." in _text(empty)

    response = signed_in.post(url, {"text": "MMLU-style sweep, 1,200 prompts."})
    assert response.status_code == 302
    text = _follow_message(signed_in, response)
    assert "Your message is sent to the reviewer." in text and "You wrote: MMLU-style sweep, 1,200 prompts." in text
    appeal.refresh_from_db()
    assert appeal.state == Appeal.State.IN_REVIEW
    assert AppealMessage.objects.filter(appeal=appeal, author_type="holder").count() == 1


def test_the_decided_appeal_shows_the_outcome_with_reasons(signed_in, holder, make_staff):
    _file(signed_in, holder.decision)
    appeal = Appeal.objects.get()
    senior = make_staff(Role.SENIOR_REVIEWER, username="olga")
    appeal_claim(reviewer=senior, appeal=appeal)
    appeal_decide(reviewer=senior, appeal=appeal, outcome="overturned", reason="The run was a documented benchmark.")

    page = signed_in.get(reverse("appeals:appeal", args=[appeal.pk]))
    text = _text(page)
    assert "Decided: the decision is reversed" in text and "The run was a documented benchmark." in text
    assert "out-of-court dispute settlement body" in text
    assert "Write to the reviewer" not in text  # a decided appeal takes no more messages
    refused = signed_in.post(reverse("appeals:appeal-message", args=[appeal.pk]), {"text": "Thanks!"})
    assert refused.status_code == 422 and "This appeal is decided; it takes no more messages." in _text(refused)
    home = _text(signed_in.get(reverse("appeals:home")))
    assert "Reversed on appeal: no longer in force" in home
    assert "This decision was reversed: there is nothing left to appeal." in home
    assert f"Appeal decision no. {holder.decision.pk}" not in home


# ── Filing rules ────────────────────────────────────────────────────────────────────────────────────────

def test_no_appeal_after_the_deadline(signed_in, holder, monkeypatch):
    deadline = holder.statement.appeal_deadline
    _at(deadline + timedelta(seconds=1), monkeypatch)
    form = signed_in.get(reverse("appeals:appeal-file", args=[holder.decision.pk]))
    assert f"The appeal window for this decision closed on {deadline:%-d %B %Y}" in _text(form)
    assert b"File my appeal" not in form.content

    refused = _file(signed_in, holder.decision)
    assert refused.status_code == 422
    assert "Your appeal is not filed yet. The appeal window for this decision closed on" in _text(refused)
    assert not Appeal.objects.exists()
    assert "The appeal window closed on" in _text(signed_in.get(reverse("appeals:home")))

    _at(deadline - timedelta(minutes=1), monkeypatch)  # the last minute still counts
    assert _file(signed_in, holder.decision).status_code == 302


def test_one_open_appeal_per_decision(signed_in, holder):
    assert _file(signed_in, holder.decision).status_code == 302
    second = _file(signed_in, holder.decision, grounds="Again, with feeling.")
    assert second.status_code == 422
    assert "You already have an open appeal against this decision." in _text(second)
    assert Appeal.objects.count() == 1
    form = signed_in.get(reverse("appeals:appeal-file", args=[holder.decision.pk]))
    assert "You already have an open appeal against this decision" in _text(form)


@pytest.mark.parametrize(("files", "message"), [
    ([_upload("report.pdf", b"MZ\x90\x00 this is really an executable")],
     "report.pdf does not look like a .pdf file"),
    ([_upload("tool.exe", b"MZ\x90\x00")], "tool.exe: only PDF, PNG, JPEG and plain-text files can be attached"),
    ([_upload("page.html", b"<script>alert(1)</script>", "text/html")], "page.html: only PDF, PNG, JPEG"),
    ([_upload("notes.txt", b"\xff\xfe\x00bad utf")], "notes.txt is not plain UTF-8 text"),
    ([_upload("empty.pdf", b"")], "The submitted file is empty."),
    ([_upload("letter.pdf", PDF, "application/pdf"), _upload("photo.png", b"GIF89a not a png")],
     "photo.png does not look like a .png file"),
    ([_upload(f"page-{i}.png", PNG, "image/png") for i in range(6)], "Attach at most 5 files."),
], ids=["fake-pdf", "exe", "html", "not-utf8", "empty", "one-bad-of-two", "six-files"])
def test_attachment_limits_refuse_the_whole_appeal_and_keep_what_was_typed(
        signed_in, holder, portal_attachments, files, message):
    response = _file(signed_in, holder.decision, grounds="My grounds, typed with care.", affiliation="Example Lab",
                     files=files)
    assert response.status_code == 422
    assert message in _text(response)
    assert "Files are not kept when an appeal is not filed: please attach them again." in _text(response)
    html = response.content.decode()
    assert "My grounds, typed with care.</textarea>" in html and 'value="Example Lab"' in html
    assert not Appeal.objects.exists() and not AppealAttachment.objects.exists()
    assert _stored_files(portal_attachments) == []


def test_a_file_over_the_size_limit_is_refused_and_the_limits_are_stated(signed_in, holder, settings,
                                                                         portal_attachments):
    form = _text(signed_in.get(reverse("appeals:appeal-file", args=[holder.decision.pk])))
    assert "Up to 5 files, each at most 5 MB" in form and ".pdf, .png, .jpg, .jpeg, .txt" in form

    settings.APPEAL_ATTACHMENT_MAX_BYTES = 1024 * 1024
    big = _upload("scan.pdf", b"%PDF-" + b"0" * (1024 * 1024), "application/pdf")
    response = _file(signed_in, holder.decision, files=[big])
    assert response.status_code == 422
    assert "scan.pdf is 1024 KB; each file may be at most 1 MB." in _text(response)
    assert not Appeal.objects.exists() and _stored_files(portal_attachments) == []


def test_filing_and_messages_are_rate_limited(signed_in, holder, monkeypatch):
    monkeypatch.setitem(appeals.views.WRITE_RATES, "appeals.file", "2/h")
    monkeypatch.setitem(appeals.views.WRITE_RATES, "appeals.message", "2/h")
    statuses = [_file(signed_in, holder.decision).status_code for _ in range(3)]
    assert statuses == [302, 422, 429]  # the second is refused (one open appeal), and counted
    appeal = Appeal.objects.get()
    url = reverse("appeals:appeal-message", args=[appeal.pk])
    statuses = [signed_in.post(url, {"text": f"note {i}"}).status_code for i in range(3)]
    assert statuses == [302, 302, 429]
    assert "Too many requests" in _text(signed_in.post(url, {"text": "again"}))
    assert appeal.messages.count() == 2


def test_every_portal_form_needs_the_csrf_token(holder):
    client = Client(enforce_csrf_checks=True)
    assert client.post(reverse("appeals:start"), {"email": "holder@example.com"}).status_code == 403
    assert client.post(sign_in_path(holder.account)).status_code == 403
    assert HolderLink.objects.filter(used_at__isnull=False).count() == 0

    page = client.get(sign_in_path(holder.account))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()).group(1)
    assert client.post(page.request["PATH_INFO"], {"csrfmiddlewaretoken": token}).status_code == 302
    file_url = reverse("appeals:appeal-file", args=[holder.decision.pk])
    assert client.post(file_url, {"grounds": "No token."}).status_code == 403
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', client.get(file_url).content.decode()).group(1)
    assert client.post(file_url, {"grounds": "With the token.", "csrfmiddlewaretoken": token}).status_code == 302
    appeal = Appeal.objects.get()
    assert client.post(reverse("appeals:appeal-message", args=[appeal.pk]), {"text": "x"}).status_code == 403
    assert client.post(reverse("appeals:sign-out")).status_code == 403


# ── IDOR probes: signed in as A, every URL of B's things is 404; signed out, nothing is shown ─────────────

def _portal_probes(b):
    """(method, url, data) for every holder route that names an object, each pointed at account B's."""
    return [
        ("get", reverse("appeals:statement", args=[b.statement.pk]), None),
        ("get", reverse("appeals:appeal-file", args=[b.decision.pk]), None),
        ("post", reverse("appeals:appeal-file", args=[b.decision.pk]), {"grounds": "Appealing B's decision."}),
        ("get", reverse("appeals:appeal", args=[b.appeal.pk]), None),
        ("get", reverse("appeals:appeal-filed", args=[b.appeal.pk]), None),
        ("post", reverse("appeals:appeal-message", args=[b.appeal.pk]), {"text": "Writing on B's appeal."}),
        ("get", reverse("appeals:attachment", args=[b.attachment.pk]), None),
    ]


def _api_probes(b):
    return [
        ("get", reverse("holder_api:appeal", args=[b.appeal.pk]), None),
        ("post", reverse("holder_api:appeal-messages", args=[b.appeal.pk]), {"text": "Writing on B's appeal."}),
        ("post", reverse("holder_api:appeals"), {"decision": b.decision.pk, "grounds": "Appealing B's decision."}),
    ]


def test_the_probes_cover_every_holder_route_and_endpoint():
    from appeals import api_urls, urls

    probed = {"statement", "appeal-file", "appeal", "appeal-filed", "appeal-message", "attachment"}
    public_or_own = {"start", "sign-in", "sign-out", "home"}  # name no object
    assert {pattern.name for pattern in urls.urlpatterns} == probed | public_or_own
    assert {pattern.name for pattern in api_urls.urlpatterns} == {"decisions", "appeals", "appeal", "appeal-messages"}


def test_another_accounts_things_are_not_found_by_url_or_api(signed_in, holder, other_holder):
    b = other_holder
    for method, url, data in _portal_probes(b) + _api_probes(b):
        response = getattr(signed_in, method)(url, data) if data else getattr(signed_in, method)(url)
        assert response.status_code == 404, (method, url, response.status_code)
    assert Appeal.objects.filter(account=holder.account).count() == 0  # nothing was filed as or for B
    assert Appeal.objects.filter(account=b.account).count() == 1
    assert not AppealMessage.objects.exists()

    # A's own lists never show B's things.
    home = _text(signed_in.get(reverse("appeals:home")))
    assert f"decision no. {b.decision.pk}" not in home and f"Appeal no. {b.appeal.pk}" not in home
    decisions = signed_in.get(reverse("holder_api:decisions")).json()
    assert [d["id"] for d in decisions] == [holder.decision.pk]
    assert signed_in.get(reverse("holder_api:appeals")).json() == []


def test_signed_out_every_holder_route_sends_to_the_start_and_the_api_refuses(client, holder, other_holder):
    b = other_holder
    own = [("get", reverse("appeals:home"), None),
           ("get", reverse("appeals:statement", args=[holder.statement.pk]), None),
           ("get", reverse("appeals:appeal-file", args=[holder.decision.pk]), None)]
    for method, url, data in own + _portal_probes(b):
        response = getattr(client, method)(url, data) if data else getattr(client, method)(url)
        assert (response.status_code, response.get("Location")) == (302, reverse("appeals:start")), (method, url)
    api = [("get", reverse("holder_api:decisions"), None), ("get", reverse("holder_api:appeals"), None)]
    for method, url, data in api + _api_probes(b):
        response = getattr(client, method)(url, data) if data else getattr(client, method)(url)
        assert response.status_code == 403, (method, url, response.status_code)
    assert Appeal.objects.count() == 1 and not AppealMessage.objects.exists()


def _staff_urls() -> list[str]:
    """Every URL of the project outside the holder's own (portal, holder API), parameters filled in."""
    urls = []

    def walk(patterns, prefix):
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern):
                urls.append(route)

    walk(get_resolver().url_patterns, "")
    filled = []
    for route in urls:
        path = re.sub(r"<int:\w+>", "1", route)
        path = re.sub(r"<(?:str|slug):\w+>", "x", path)
        path = re.sub(r"\(\?P<\w+>[^)]*\)", "1", path)
        path = "/" + re.sub(r"[\^$?]|\\\.|/\?", lambda m: "." if m.group() == "\\." else "", path)
        # /healthz and /metrics are for machines: what decides is the caller's address or token, not a session.
        if path.startswith(("/appeals/", "/api/v1/holder/", "/static/")) or path in ("/login/", "/healthz", "/metrics"):
            continue
        filled.append(path)
    return filled


def test_no_staff_page_or_staff_api_is_reachable_with_a_holder_session(signed_in):
    urls = _staff_urls()
    assert {"/", "/audit/", "/staff/", "/queues/", "/outbox/", "/api/v1/cases", "/api/schema/"} <= set(urls)
    anonymous = Client()
    for method, url in [("get", url) for url in urls] + [("post", url) for url in urls if url != "/logout/"]:
        response, as_nobody = getattr(signed_in, method)(url), getattr(anonymous, method)(url)
        # The holder session opens nothing that no session at all does not (only the public API docs, and the
        # Forum's STIX extension definitions, which peers read out of band: a schema, no data of anyone's).
        assert (response.status_code, response.get("Location")) == (as_nobody.status_code, as_nobody.get("Location"))
        if response.status_code == 302:
            assert response.url.startswith(reverse("people:login")), (method, url, response.url)
        elif url not in ("/api/schema/", "/api/docs/", "/forum/extension-definitions.json"):
            assert response.status_code in (401, 403, 405), (method, url, response.status_code)
    assert signed_in.get(reverse("appeals:home")).status_code == 200  # still the holder, and nothing more
