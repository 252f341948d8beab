from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from reviewapp.people.demo import demo_staff_ensure


class Command(BaseCommand):
    help = "Create the demonstration data (demo mode only): one login per role. Idempotent."

    def handle(self, *args, **options):
        if not (settings.DEMO_MODE or settings.DEBUG):
            raise CommandError("seed_demo runs only in demo mode (REVIEWAPP_DEMO=1) or with DEBUG on")
        for role, username, password in demo_staff_ensure():
            self.stdout.write(f"  {role.label:<20} {username:<8} {password}")
