"""The production recipe: `honcho start` runs the Procfile (gunicorn with three workers,
two Celery workers, beat and the broker listener) against PostgreSQL and Redis, every process
connected to one gateway under its own client id (and only those hold one); beat sends its
jobs and a worker runs them; authenticated API requests reach IB from each web worker; static
files come from WhiteNoise; stopping gives every id back."""

import http.client
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis
from django.db import connection
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from ibgateway.protocol import In
from tradingsite.testing.faults import RedisServer

ROOT = Path(__file__).resolve().parents[2]
SECRET = "production-test-key-" + "k3y" * 20
pytestmark = pytest.mark.django_db(transaction=True)


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(condition, what, timeout, output):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}; the processes said:\n{''.join(output)[-6000:]}")
        time.sleep(0.2)


def request(port, method, path, token, body=None):
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Token {token}", "X-Forwarded-Proto": "https",
               "Content-Type": "application/json"}  # fmt: skip
    client.request(method, path, body=json.dumps(body) if body else None, headers=headers)
    answer = client.getresponse()
    content = answer.read()
    client.close()
    return answer.status, content, answer.headers


@pytest.fixture
def own_redis(tmp_path):
    """A Redis of the test's own: the suite's session worker, on the suite's Redis, would
    otherwise take the jobs beat sends to the Procfile's workers."""
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


def test_honcho_runs_the_procfile_each_process_under_its_own_client_id(
    gateway, settings, django_user_model, tmp_path, own_redis
):
    from rest_framework.authtoken.models import Token

    staff = django_user_model.objects.create_user("ops", password="pw-ops-123456", is_staff=True)
    token = Token.objects.create(user=staff).key
    db = connection.settings_dict
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("TESTING", "DEBUG")},
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "DEBUG": "false", "SECRET_KEY": SECRET, "ALLOWED_HOSTS": "127.0.0.1",
        "TRUST_X_FORWARDED_PROTO": "true",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": own_redis.url(), "STATIC_ROOT": str(tmp_path / "static"),
        "IBKR_HOST": "127.0.0.1", "IBKR_PORT": str(settings.IBKR_PORT),
        "IBKR_MASTER_CLIENT_ID": str(settings.IBKR_MASTER_CLIENT_ID),
        "IBKR_PACING_CLOCK": "simulated", "IBKR_CLIENT_ID_RANGE": "30-39",
        "WEB_BIND": f"127.0.0.1:{port}", "PYTHONUNBUFFERED": "1",
        "MEDIA_ROOT": str(tmp_path / "media"),
    }  # fmt: skip
    deploy = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput"],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert deploy.returncode == 0, deploy.stderr
    check = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr

    # Beat sends this every second to the housekeeping worker (the broker queue): it shows
    # that beat runs and that its tasks are consumed.
    every_second = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.create(name="production test: sweep", interval=every_second,
                                task="workflows.tasks.executions_sweep_task")  # fmt: skip

    honcho = subprocess.Popen(
        [sys.executable, "-m", "honcho", "start", "--no-prefix"], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    output = []
    reader = threading.Thread(target=lambda: output.extend(honcho.stdout), daemon=True)
    reader.start()
    try:
        # Three web workers, two Celery workers and the listener (its master id): six clients.
        def ready():
            return sorted(s.client_id for s in gateway.server.sessions if s.ready)

        wait_until(lambda: len(ready()) == 6, "not every process connected", 90, output)
        ids = ready()
        assert settings.IBKR_MASTER_CLIENT_ID in ids
        leased = sorted(set(ids) - {settings.IBKR_MASTER_CLIENT_ID})
        assert leased == [30, 31, 32, 33, 34]  # five leases, no id twice, none refused
        server = redis.Redis.from_url(own_redis.url())
        prefix = f"tradingsite:ib-client-id:127.0.0.1:{settings.IBKR_PORT}:"
        # Only the processes that talk to IB hold an id: not gunicorn's master, not beat.
        assert len(server.keys(prefix + "*")) == 5
        holders = {i: server.get(prefix + str(i)).decode() for i in leased}
        pids = {i: int(re.match(r"(web|worker) pid (\d+) ", h)[2]) for i, h in holders.items()}
        assert len(set(pids.values())) == 5, holders  # five processes, one id each
        web = {pids[i]: i for i, h in holders.items() if h.startswith("web ")}
        workers = [pids[i] for i, h in holders.items() if h.startswith("worker ")]
        assert len(web) == 3 and len(workers) == 2, holders

        # Beat runs: it sends the sweep every second (nothing else does), and the housekeeping
        # worker runs each.
        ran = re.compile(r"Task workflows\.tasks\.executions_sweep_task\[[-0-9a-f]+\] succeeded")
        wait_until(lambda: sum(bool(ran.search(line)) for line in list(output)) >= 2,
                   "beat's task was not run every second", 60, output)  # fmt: skip

        # Authenticated API requests reach IB from each of the three web workers.
        served = {}
        for _ in range(300):
            status, content, _ = request(
                port, "POST", "/api/codes/resolve/", token, {"symbol": "AAPL"}
            )
            assert status in (200, 201), content
            assert json.loads(content)["conid"] == 265598
            if len(served) == 3:
                break
            lines = [line for line in list(output) if "/api/codes/resolve/" in line]
            served = {int(re.search(r"pid=<(\d+)>", line)[1]) for line in lines}
        assert served == set(web)
        by_id = {s.client_id: s for s in gateway.server.sessions if s.ready}
        for pid, client_id in web.items():
            assert by_id[client_id].requests[In.REQ_CONTRACT_DATA] >= 1, (pid, client_id)
        assert request(port, "GET", "/api/codes/", "not-a-token")[0] == 401

        # Static files from WhiteNoise, under their hashed names (collected at deploy).
        status, content, _ = request(port, "GET", "/admin/login/", token)
        assert status == 200
        css = re.search(rb'href="(/static/admin/css/base\.[0-9a-f]{12}\.css)"', content)
        assert css, content[:2000]
        status, _, headers = request(port, "GET", css[1].decode(), token)
        assert status == 200
        assert "max-age=315360000" in headers["Cache-Control"]
    finally:
        honcho.terminate()  # honcho stops every process it started
        try:
            honcho.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(honcho.pid, 9)
            honcho.wait()
    # Every process gave its id back as it stopped, and its connection is closed.
    assert server.keys(prefix + "*") == []
    wait_until(lambda: not any(s.ready for s in gateway.server.sessions),
               "connections left open", 10, output)  # fmt: skip


def test_gunicorn_refuses_to_start_when_no_client_id_can_be_leased(gateway, settings):
    db = connection.settings_dict
    env = {
        **{k: v for k, v in os.environ.items() if k != "TESTING"},
        "DEBUG": "false", "SECRET_KEY": SECRET,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": "redis://127.0.0.1:1/0", "IBKR_HOST": "127.0.0.1",
        "IBKR_PORT": str(settings.IBKR_PORT), "WEB_BIND": f"127.0.0.1:{free_port()}",
    }  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--bind", env["WEB_BIND"], "--workers", "1"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0
    assert (
        "Refusing to start: Cannot lease an IB client id: Redis at redis://127.0.0.1:1/0 "
        "does not answer"
    ) in done.stderr
    assert "Worker failed to boot" in done.stderr
    assert [s for s in gateway.server.sessions if s.ready] == []
