import getpass

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from reviewapp.audit.services import SYSTEM, Actor
from reviewapp.people.roles import Role
from reviewapp.people.services import StaffError, staff_create


class Command(BaseCommand):
    help = ("Create a staff member in one role. Prints a generated one-time password unless --password is "
            "given; either way they must choose their own password at first sign-in.")

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=Role.values)
        parser.add_argument("--email", default="")
        parser.add_argument("--first-name", default="")
        parser.add_argument("--last-name", default="")
        parser.add_argument("--password", default=None, help="default: a random one-time password, printed once")

    def handle(self, *args, username, role, email, first_name, last_name, password, **options):
        actor = Actor(type=SYSTEM.type, id="manage.py create_staff", display=f"create_staff (by {getpass.getuser()})")
        try:
            user, password = staff_create(
                actor=actor, username=username, role=Role(role), email=email,
                first_name=first_name, last_name=last_name, password=password, must_change_password=True,
            )
        except StaffError as exc:
            raise CommandError(str(exc)) from exc
        except ValidationError as exc:
            raise CommandError("password rejected: " + " ".join(exc.messages)) from exc
        self.stdout.write(f"Created {user.username} ({Role(role).label}); they must choose their own password "
                          "when they first sign in.")
        self.stdout.write(f"One-time password: {password}")
