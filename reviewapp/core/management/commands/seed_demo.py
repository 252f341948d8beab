from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from reviewapp.core.demo import demo_ensure


class Command(BaseCommand):
    help = ("Create the demonstration data (demo mode only): one login per role and a synthetic distillation "
            "campaign. Idempotent.")

    def handle(self, *args, **options):
        if not (settings.DEMO_MODE or settings.DEBUG):
            raise CommandError("seed_demo runs only in demo mode (REVIEWAPP_DEMO=1) or with DEBUG on")
        demo = demo_ensure()
        for line in demo.login_lines():
            self.stdout.write(line)
        self.stdout.write(demo.summary_line())
