import contextlib
import json
import os
import signal
import time
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from reviewapp.core.stack import Stack
from reviewapp.embedded import ensure_broker_tables


class Command(BaseCommand):
    help = (
        "Run everything `make run` needs in the foreground: migrate, seed the demo (demo mode), then a "
        "Celery worker, Celery beat, the web server and the local peers, restarting any that dies (with a "
        "back-off). Ctrl-C or SIGTERM stops every process it started."
    )

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))

    def handle(self, *args, port: int, **options):
        call_command("migrate", interactive=False, verbosity=0)
        # Publishes a new policy version if policies/*.md changed; stops here, naming the problem, if one is wrong.
        call_command("load_policies", verbosity=0)
        call_command("createcachetable", verbosity=0)
        # kombu's SQLAlchemy transport creates its tables on first use; two processes doing that at once
        # collide, so create them here, once, before any child starts.
        ensure_broker_tables(settings.CELERY_BROKER_URL)

        stack = Stack(port=port, log=lambda line: (self.stderr.write(line), self.stderr.flush()))
        stack.choose_peer_ports()
        # This process agrees with its children on where the peers are (anything it enqueues or prints).
        if "receiver" in stack.peer_ports:
            chosen = urlsplit(stack.receiver_url()).netloc
            witness = urlsplit(getattr(settings, "AUDIT_WITNESS_URL", ""))
            if witness.netloc == urlsplit(settings.ENFORCEMENT_WEBHOOK_URL).netloc:  # the local receiver is the witness
                settings.AUDIT_WITNESS_URL = urlunsplit(witness._replace(netloc=chosen))
            settings.ENFORCEMENT_WEBHOOK_URL = stack.receiver_url()
        if "smtp" in stack.peer_ports:
            settings.EMAIL_PORT = stack.peer_ports["smtp"]
        if "forum_hub" in stack.peer_ports:
            settings.FORUM_TAXII_API_ROOT = stack.forum_api_root()
        demo = None
        if settings.DEMO_MODE:
            from reviewapp.core.demo import demo_ensure

            demo = demo_ensure()

        stopping = {"signal": None}

        def request_stop(signum, frame):
            stopping["signal"] = signum

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGHUP, request_stop)  # the terminal closed
        # manage.py in a second terminal reads where the peers are from here (settings/dev.py).
        peers_file = settings.DATA_DIR / "run-peers.json"
        if stack.peer_ports:
            env = stack.environment()
            peers_file.write_text(json.dumps({key: env[key] for key in ("ENFORCEMENT_WEBHOOK_URL", "EMAIL_PORT",
                                                                           "FORUM_TAXII_API_ROOT")
                                              if key in env}))
        stack.start()
        try:
            if not stack.wait_until_healthy():
                dead = stack.first_dead()
                raise CommandError(f"{dead or 'the web server'} did not come up; see the log above")
            self.stdout.write(self.style.SUCCESS(f"\nreviewapp is running on http://127.0.0.1:{port}/"))
            for line in stack.peer_lines():
                self.stdout.write(line)
            if demo:
                self.stdout.write("Demo logins (demo mode only) — username, role, one-time password "
                                  "(each person chooses their own at first sign-in):")
                for line in demo.login_lines():
                    self.stdout.write(line)
                self.stdout.write(demo.summary_line())
            self.stdout.write("Press Ctrl-C to stop.\n")
            self.stdout.flush()
            while stopping["signal"] is None:
                stack.supervise()
                time.sleep(0.25)
        finally:
            self.stdout.write("Stopping…")
            stack.stop(interrupted=stopping["signal"] == signal.SIGINT)
            if stack.peer_ports:
                with contextlib.suppress(FileNotFoundError):
                    peers_file.unlink()
            from reviewapp.audit.checkpoints import checkpoint_now

            checkpoint_now()  # sign the head the stopped processes left: nothing they wrote stays unwitnessed
            self.stdout.write("Stopped.")
