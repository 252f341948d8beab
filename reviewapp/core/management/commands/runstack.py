import os
import signal
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from reviewapp.core.stack import Stack


class Command(BaseCommand):
    help = (
        "Run everything `make run` needs in the foreground: migrate, seed the demo (demo mode), then a "
        "Celery worker, Celery beat and the web server. Ctrl-C stops every process it started."
    )

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))

    def handle(self, *args, port: int, **options):
        call_command("migrate", interactive=False, verbosity=0)
        # Publishes a new policy version if policies/*.md changed; stops here, naming the problem, if one is wrong.
        call_command("load_policies", verbosity=0)
        call_command("createcachetable", verbosity=0)
        demo = None
        if settings.DEMO_MODE:
            from reviewapp.core.demo import demo_ensure

            demo = demo_ensure()

        stack = Stack(port=port)
        stopping = {"signal": None}

        def request_stop(signum, frame):
            stopping["signal"] = signum

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)
        stack.start()
        try:
            if not stack.wait_until_healthy():
                dead = stack.first_dead()
                raise CommandError(f"{dead or 'the web server'} did not come up; see the log above")
            self.stdout.write(self.style.SUCCESS(f"\nreviewapp is running on http://127.0.0.1:{port}/"))
            if demo:
                self.stdout.write("Demo logins (demo mode only):")
                for line in demo.login_lines():
                    self.stdout.write(line)
                self.stdout.write(demo.summary_line())
            self.stdout.write("Press Ctrl-C to stop.\n")
            while stopping["signal"] is None:
                dead = stack.first_dead()
                if dead:
                    raise CommandError(f"{dead} exited unexpectedly; stopping the rest")
                time.sleep(0.5)
        finally:
            self.stdout.write("Stopping…")
            stack.stop(interrupted=stopping["signal"] == signal.SIGINT)
            self.stdout.write("Stopped.")
