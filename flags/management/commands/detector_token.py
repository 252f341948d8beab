import getpass

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from flags.forms import detector_slug_validator
from flags.models import Detector
from flags.services import detector_ensure, detector_token_create
from reviewapp.audit.services import SYSTEM, Actor


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in some containers
        return "unknown"


class Command(BaseCommand):
    help = ("Issue a new token for a detector, creating the detector if it does not exist. "
            "The token is the last line of the output and is not shown again.")

    def add_arguments(self, parser):
        parser.add_argument("slug", help="the detector's slug, as its flags name it (e.g. prompt-templates)")
        parser.add_argument("--name", default="", help="for a new detector (default: the slug)")
        parser.add_argument("--owner-team", default="", help="for a new detector")
        parser.add_argument("--description", default="", help="for a new detector")

    def handle(self, *args, slug, name, owner_team, description, **options):
        if len(slug) > 64:
            raise CommandError(f"Invalid detector slug '{slug}': at most 64 characters.")
        try:
            detector_slug_validator(slug)
        except ValidationError as exc:
            raise CommandError(f"Invalid detector slug '{slug}': {' '.join(exc.messages)}") from exc
        actor = Actor(type=SYSTEM.type, id="manage.py detector_token", display=f"detector_token (by {_os_user()})")
        existed = Detector.objects.filter(slug=slug).exists()
        detector = detector_ensure(actor=actor, slug=slug, name=name, owner_team=owner_team, description=description)
        if not detector.active:
            raise CommandError(f"Detector '{slug}' is inactive; reactivate it on the Detectors page first.")
        if not existed:
            self.stdout.write(f"Created detector {detector.slug} ({detector.name}).")
        elif name or owner_team or description:
            self.stdout.write(f"Detector {detector.slug} already exists; --name, --owner-team and --description "
                              "apply only to a new detector and were ignored.")
        row, token = detector_token_create(actor=actor, detector=detector)
        self.stdout.write(f"New token {row.prefix}… for {detector.slug}; copy it now, it is not shown again:")
        self.stdout.write(token)
