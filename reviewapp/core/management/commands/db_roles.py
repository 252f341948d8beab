import os

from django.core.management.base import BaseCommand, CommandError

from reviewapp.core.db_roles import RESTRICTED, DbRoleError, app_role_apply, app_role_problems


class Command(BaseCommand):
    help = ("Create or update the database role the application connects as: full DML on every table, but no "
            "UPDATE (beyond the columns the code needs), DELETE or TRUNCATE on the audit trail, the stored flags "
            "and the published policy. Run it as the owner (DATABASE_URL set to the owner's URL) after every migrate. "
            "Idempotent.")

    def add_arguments(self, parser):
        parser.add_argument("--app-role", required=True, help="the role the application connects as (DATABASE_URL)")
        parser.add_argument("--password-env", metavar="VARIABLE",
                            help="set the role's password from this environment variable (never on the command line)")
        parser.add_argument("--database", default="default", help="the connection to run on, as the owner")
        parser.add_argument("--check", action="store_true",
                            help="change nothing; exit 1 naming each privilege that is not as it should be")

    def handle(self, *args, app_role, password_env, database, check, verbosity, **options):
        using = database
        if check:
            problems = app_role_problems(app_role=app_role, using=using)
            for problem in problems:
                self.stderr.write(problem)
            if problems:
                raise CommandError(f"{len(problems)} privilege(s) of {app_role} are not as they should be")
            self.stdout.write(f"{app_role}: privileges as they should be on {len(RESTRICTED)} restricted tables")
            return
        password = None
        if password_env:
            password = os.environ.get(password_env)
            if not password:
                raise CommandError(f"{password_env} is not set (or empty): it should hold {app_role}'s password")
        try:
            statements = app_role_apply(app_role=app_role, password=password, using=using)
        except DbRoleError as exc:
            raise CommandError(str(exc)) from exc
        if verbosity > 1:
            for statement in statements:
                self.stdout.write(statement)
        for restricted in RESTRICTED:
            columns = ("every column" if restricted.update is None
                       else ", ".join(restricted.update_columns()) or "nothing")
            self.stdout.write(f"  {restricted.table}: no DELETE or TRUNCATE; UPDATE {columns}")
        self.stdout.write(f"{app_role}: full DML on the other tables; privileges set")
