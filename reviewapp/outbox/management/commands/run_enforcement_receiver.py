import signal
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from reviewapp.outbox.receiver import EnforcementReceiver


def _stop(signum, frame):
    _exiting()
    raise SystemExit(0)


def _exiting() -> None:
    # Once exiting, a second signal must not interrupt the exit itself (atexit handlers, such as the
    # embedded PostgreSQL's handle bookkeeping, run after this).
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class Command(BaseCommand):
    help = (
        "Run a local enforcement endpoint standing in for the platform: verifies each webhook's signature "
        "(ENFORCEMENT_WEBHOOK_SECRET), applies each Idempotency-Key once, appends what it applied to a "
        "JSON-lines log and prints one line per action."
    )

    def add_arguments(self, parser):
        default_port = urlsplit(settings.ENFORCEMENT_WEBHOOK_URL).port or 8025
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=default_port)
        parser.add_argument("--log", default=str(settings.DATA_DIR / "enforcement-received.jsonl"),
                            help="JSON-lines file of applied actions (default: .data/enforcement-received.jsonl)")

    def handle(self, *args, host: str, port: int, log: str, **options):
        if not settings.ENFORCEMENT_WEBHOOK_SECRET:
            raise CommandError("ENFORCEMENT_WEBHOOK_SECRET is not set; the receiver cannot verify signatures")
        try:
            server = EnforcementReceiver((host, port), secret=settings.ENFORCEMENT_WEBHOOK_SECRET, log_path=log)
        except OSError as exc:
            raise CommandError(f"cannot listen on {host}:{port}: {exc}") from exc
        signal.signal(signal.SIGTERM, _stop)
        self.stdout.write(f"enforcement receiver on http://{host}:{port}/ (log: {log})")
        self.stdout.flush()
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            _exiting()
        finally:
            server.server_close()
