"""The site's processes refuse a database that is behind its migrations and say what to run.
(That they start on a ready one, test_migrations shows on an adopted database.)"""

import pytest

MIGRATE = "run `python manage.py migrate`"


@pytest.fixture(scope="module")
def started(scratch_databases, unmigrated_database):
    """Every process of this module, started at once (each spends its time importing Django)."""
    seed_system = scratch_databases.create_as_seed_system()
    never_created = f"{scratch_databases.prefix}never_created"
    processes = {
        "runserver": (unmigrated_database, "manage.py", "runserver", "--noreload", "127.0.0.1:0"),
        "worker": (
            unmigrated_database, "-m", "celery", "-A", "tradingsite", "worker", "--pool=solo",
            "--loglevel=WARNING",
        ),
        "web": (unmigrated_database, "-c", "import tradingsite.wsgi"),
        "check": (unmigrated_database, "manage.py", "check"),
        "check on a seed system database": (seed_system, "manage.py", "check"),
        "check without a database": (never_created, "manage.py", "check"),
    }  # fmt: skip
    running = {key: scratch_databases.start(*command) for key, command in processes.items()}
    try:
        return {
            key: scratch_databases.finish(process, timeout=60) for key, process in running.items()
        }
    finally:
        for process in running.values():  # the ones left when one did not exit in time
            if process.poll() is None:
                process.kill()
                process.wait()


def test_runserver_refuses_unapplied_migrations(started):
    result = started["runserver"]

    assert result.returncode != 0
    assert f"migrations are not applied: {MIGRATE}" in result.stderr
    # Refused before the server started, not by a crash once it had.
    assert "Starting development server" not in result.stdout
    assert "Traceback" not in result.stderr


def test_celery_worker_refuses_unapplied_migrations(started):
    result = started["worker"]

    assert result.returncode != 0
    assert "Refusing to start the worker" in result.stderr
    assert MIGRATE in result.stderr


def test_the_web_application_refuses_unapplied_migrations(started):
    result = started["web"]

    assert result.returncode != 0
    assert "DatabaseNotReady" in result.stderr
    assert MIGRATE in result.stderr


def test_manage_py_check_warns_about_unapplied_migrations(started):
    result = started["check"]

    # A warning, not an error: migrate runs the checks too, and must not be stopped by them.
    assert result.returncode == 0, result.stderr
    assert "(tradingsite.W001)" in result.stderr
    assert MIGRATE in result.stderr


def test_migrate_itself_is_not_told_to_run_migrate(first_migrate):
    """The warning is for the other commands: migrate is applying those very migrations."""
    _, result = first_migrate

    assert result.returncode == 0, result.stderr
    assert "Applying strategies.0001_initial... OK" in result.stdout
    assert "W001" not in result.stderr and MIGRATE not in result.stderr


def test_a_seed_system_database_is_told_to_migrate_with_fake_initial(started):
    """Plain migrate would stop at "relation already exists"."""
    result = started["check on a seed system database"]

    assert "run `python manage.py migrate --fake-initial`" in result.stderr


def test_manage_py_check_survives_an_unreachable_database(started):
    result = started["check without a database"]

    assert result.returncode == 0, result.stderr
    assert "(tradingsite.W002) Cannot check the schema of database 'default'" in result.stderr


def test_without_a_secret_key_the_site_refuses_and_management_still_works(tmp_path):
    """DEBUG off and no SECRET_KEY: nothing could be signed, so the web process refuses to
    start and `check --deploy` fails, while commands that sign nothing still run."""
    import os
    import subprocess
    import sys

    from django.conf import settings

    env = {
        key: value for key, value in os.environ.items()
        if key not in ("SECRET_KEY", "TESTING", "DEBUG", "DJANGO_SETTINGS_MODULE")
    }  # fmt: skip
    env.update(DEBUG="false", DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    commands = {
        "runserver": ("manage.py", "runserver", "--noreload", "127.0.0.1:0"),
        "web": ("-c", "import tradingsite.wsgi"),
        "deploy": ("manage.py", "check", "--deploy"),
        "makemigrations": ("manage.py", "makemigrations", "--check", "--dry-run"),
    }
    running = {
        name: subprocess.Popen(
            [sys.executable, *command],
            cwd=settings.BASE_DIR,
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        for name, command in commands.items()
    }
    results = {}
    for name, process in running.items():
        out, err = process.communicate(timeout=60)
        results[name] = (process.returncode, out, err)

    refusal = "SECRET_KEY must be set when DEBUG is off"
    code, out, err = results["runserver"]
    assert code != 0 and refusal in err and "Traceback" not in err
    assert "Starting development server" not in out
    code, out, err = results["web"]
    assert code != 0 and refusal in err
    code, out, err = results["deploy"]
    assert code != 0 and f"(tradingsite.E002) {refusal}" in err
    code, out, err = results["makemigrations"]
    assert code == 0, err
    assert "No changes detected" in out


@pytest.mark.parametrize(("trusted", "answer"), [("", "301"), ("true", "401")])
def test_x_forwarded_proto_counts_only_behind_a_trusted_proxy(tmp_path, trusted, answer):
    """Production settings: a plain-HTTP request claiming "X-Forwarded-Proto: https" is still
    sent to HTTPS, unless TRUST_X_FORWARDED_PROTO says a proxy sets that header."""
    import os
    import subprocess
    import sys

    from django.conf import settings

    env = {key: value for key, value in os.environ.items() if key not in ("TESTING", "DEBUG")}
    env.update(
        DEBUG="false",
        SECRET_KEY="x" * 60,
        DATABASE_URL=f"sqlite:///{tmp_path / 'db'}",
        TRUST_X_FORWARDED_PROTO=trusted,
        DJANGO_SETTINGS_MODULE="tradingsite.settings",
    )
    probe = (
        "import django; django.setup()\n"
        "from django.test import Client\n"
        "answer = Client().get('/api/codes/', HTTP_HOST='localhost',\n"
        "                      HTTP_X_FORWARDED_PROTO='https')\n"
        "print(answer.status_code)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=settings.BASE_DIR, env=env,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-1] == answer
