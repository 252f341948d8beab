"""Serve the local Forum hub (medallion 3.0.0) with a collection per configured trust group."""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from reviewapp.forum.hub import serve, write_hub_files


class Command(BaseCommand):
    help = "Run a local TAXII 2.1 server standing in for the Forum hub (the demo's and the tests' peer)."
    # A peer, not the web app: it needs neither the URL configuration nor the models checked (and starts faster).
    requires_system_checks: list[str] = []

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, required=True)
        parser.add_argument("--dir", default=str(settings.DATA_DIR / "forum-hub"),
                            help="Where to write medallion's configuration and data files.")
        parser.add_argument("--seed", default="", help='JSON file {"<collection id>": [STIX objects]} to start with.')

    def handle(self, *args, port: int, dir: str, seed: str, **options):
        objects = json.loads(Path(seed).read_text()) if seed else None
        config = write_hub_files(Path(dir), port=port, seed=objects)
        self.stdout.write(f"Forum hub (TAXII 2.1, medallion) on http://127.0.0.1:{port}/taxii2/", ending="\n")
        self.stdout.flush()
        serve(config, port=port)
