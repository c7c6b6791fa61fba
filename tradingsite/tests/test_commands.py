"""Management commands refuse a bad argument with a CommandError naming it, not a traceback."""

import socket

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("username", "reason"),
    [
        ("", "--username: This field cannot be blank."),
        ("a" * 200, "--username: Ensure this value has at most 150 characters (it has 200)."),
    ],
)
def test_ensure_admin_names_a_username_it_cannot_create(username, reason):
    with pytest.raises(CommandError) as refused:
        call_command("ensure_admin", f"--username={username}")
    assert str(refused.value) == reason
    assert not User.objects.exists()


@pytest.mark.parametrize(
    ("arguments", "reason"),
    [
        (["--port", "99999"], "--port 99999: a port is 0 to 65535 (0 picks a free one)."),
        (["--port", "-1"], "--port -1: a port is 0 to 65535 (0 picks a free one)."),
    ],
)
def test_ibgateway_names_a_port_that_is_not_one(arguments, reason):
    with pytest.raises(CommandError) as refused:
        call_command("ibgateway", *arguments)
    assert str(refused.value) == reason


def test_ibgateway_refuses_a_bars_folder_that_is_not_there(tmp_path):
    missing = tmp_path / "bars"
    with socket.socket() as taken:  # were the folder accepted, it would stop here, not serve
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(CommandError) as refused:
            call_command("ibgateway", "--port", str(taken.getsockname()[1]),
                         "--bars-dir", str(missing))  # fmt: skip
    assert str(refused.value) == f"--bars-dir {missing}: no such folder."


def test_check_schema_names_a_database_the_settings_do_not_define():
    with pytest.raises(CommandError) as refused:
        call_command("check_schema", "--database", "bogus")
    assert str(refused.value) == (
        "--database 'bogus': the settings define no such database (only default)."
    )
