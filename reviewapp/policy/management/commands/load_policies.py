import getpass
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from reviewapp.audit.services import SYSTEM, Actor
from reviewapp.policy.loader import PolicyLoadError
from reviewapp.policy.services import policies_load


def _os_user() -> str:
    # runstack calls this command at start-up; a container user without a passwd entry must not stop it.
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown user"


class Command(BaseCommand):
    help = ("Load the documented policy from policies/*.md: a changed file publishes a new version, an unchanged "
            "one does nothing. Nothing is written if any file has an error.")

    def add_arguments(self, parser):
        parser.add_argument("--directory", type=Path, default=None,
                            help="directory of policy files (default: settings.POLICIES_DIR)")

    def handle(self, *args, directory: Path | None, verbosity: int, **options):
        actor = Actor(type=SYSTEM.type, id="manage.py load_policies", display=f"load_policies (by {_os_user()})")
        try:
            results = policies_load(directory=directory or settings.POLICIES_DIR, actor=actor)
        except PolicyLoadError as exc:
            raise CommandError(f"policies not loaded, nothing was written:\n{exc}") from exc
        if verbosity > 0:
            for result in results:
                self.stdout.write(str(result))
