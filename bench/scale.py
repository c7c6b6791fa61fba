"""Runs per minute with 1, 2 and 4 Celery worker processes against one gateway, and beat's lag.

    .venv/bin/python bench/scale.py [--strategies 60] [--workers 1,2,4] [--beat 1000]
    .venv/bin/python bench/scale.py --quick        # 20 runs, 1 and 2 workers, no beat (~2 min)
    .venv/bin/python bench/scale.py --profile DIR  # also cProfile each worker and the gateway

Each worker is a `celery worker --pool=solo -Q runs` process, as the Procfile's `runs` line,
against PostgreSQL (`tradingsite_bench_scale`, created and migrated here; BENCH_DATABASE_URL
moves it), Redis (BENCH_REDIS_URL, default redis://127.0.0.1:6379/13: its queues are emptied)
and one loopback gateway (`manage.py ibgateway`, a process of its own). The strategies have 3
codes each, on the two-indicator workflow with its wait at 0 and the offline model; the cache
is warm (every code's bars fetched before the clock starts), so the runs ask IB for prices and
orders only. Each worker count first runs a warm-up batch (imports, numba's cache), then
`--strategies` runs at once, timed from the enqueue to the last end. It reports runs per
minute, the speed-up over one worker, failed runs, and the client-id and pacing errors in the
workers' logs (IB's 326 and 162, a client id that could not be leased); and where the CPU goes
per run during the timed batch: the workers' processes, the gateway's, and the PostgreSQL
sessions of the bench's database (each process's user + system time, from /proc). The load
average and the CPU count head the table: on a loaded machine the speed-up says little, the
CPU per run still does. With --profile DIR, each worker and the gateway run under cProfile (by
CPU time, not wall time) and write DIR/worker-N-I.prof and DIR/gateway.prof (read them with
`python -m pstats`); the bench prints the functions with the most CPU of their own.

Beat: `--beat` active strategies scheduled every minute (crontab `* * * * *`), beat started
(DatabaseScheduler, as in production) for two ticks, no worker consuming; the lag is the time
from each minute's tick to beat's "Sending due task" line of each strategy.

Goal: 2 workers >= 1.8x one on a machine with 2 free cores, zero failed runs, zero client-id
or pacing errors; every strategy enqueued within 10 s of its tick.
"""

import argparse
import os
import pstats
import re
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://root@127.0.0.1:5432/tradingsite_bench_scale"
)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
os.environ.update(
    DATABASE_URL=DATABASE_URL, REDIS_URL=REDIS_URL, DEBUG="true", IBKR_PACING_CLOCK="simulated",
    MARKET_DATA_CACHE_SECONDS="86400", DJANGO_SETTINGS_MODULE="tradingsite.settings",
)  # fmt: skip
os.environ.pop("TESTING", None)

import django  # noqa: E402

from bench.common import ensure_database  # noqa: E402

# `python -c PROFILED OUT -m MODULE ARGS...` (or `OUT SCRIPT ARGS...`): the program under
# cProfile timed by the process's CPU clock, not the wall's, so that what a process waits for
# (the database, Redis, IB, the other processes on a loaded machine) costs nothing in it.
PROFILED = """
import cProfile, runpy, sys, time
out, target = sys.argv[1], sys.argv[2:]
profile = cProfile.Profile(time.process_time)
if target[0] == "-m":
    sys.argv = target[1:]
    run = lambda: runpy.run_module(target[1], run_name="__main__", alter_sys=True)
else:
    sys.argv = target
    sys.path.insert(0, ".")
    run = lambda: runpy.run_path(target[0], run_name="__main__")
try:
    profile.runcall(run)
except SystemExit:
    pass
finally:
    profile.dump_stats(out)
"""
OWN_CODE = r"/(workflows|marketdata|orders|strategies|tradingsite|ibgateway)/"
ERRORS = re.compile(r"error 326|Error 326|client id .* in use|No free IB client id|"
                    r"Cannot lease|error 162|pacing violation", re.I)  # fmt: skip


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(command, log, env):
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=open(log, "wb"),  # noqa: SIM115
                            stderr=subprocess.STDOUT)  # fmt: skip


def stop(processes):
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategies", type=int, default=60)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--beat", type=int, default=1000, help="0 skips the beat measure")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="--strategies 20 --workers 1,2 --beat 0: about two minutes",
    )
    parser.add_argument("--profile", type=Path, help="cProfile the workers and the gateway")
    args = parser.parse_args()
    if args.quick:
        args.strategies, args.workers, args.beat = 20, "1,2", 0
    profiled = []
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)

    def python(name):
        """This interpreter, under cProfile (writing DIR/name.prof) with --profile."""
        if not args.profile:
            return [sys.executable]
        profiled.append(args.profile / f"{name}.prof")
        return [sys.executable, "-c", PROFILED, str(profiled[-1])]

    ensure_database(DATABASE_URL)
    django.setup()
    import redis
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django_celery_beat.models import PeriodicTask

    call_command("migrate", verbosity=0)

    from ibgateway import STOCKS

    # The site's modules once main() has set Django up (this script picks its database first).
    from marketdata.services import code_resolve, market_data_get
    from strategies.models import Strategy
    from tradingsite.broker import reset_broker
    from tradingsite.celery import app
    from workflows.models import Workflow, WorkflowExecution
    from workflows.services import execution_start, strategy_create, workflow_create
    from workflows.templates import TEMPLATES

    logs = ROOT / "var" / "bench-scale"
    logs.mkdir(parents=True, exist_ok=True)
    queues = redis.Redis.from_url(REDIS_URL)
    queues.flushdb()
    port = free_port()
    env = {**os.environ, "IBKR_HOST": "127.0.0.1", "IBKR_PORT": str(port),
           "IBKR_MASTER_CLIENT_ID": "4", "MEDIA_ROOT": str(ROOT / "var" / "bench-media"),
           "PYTHONUNBUFFERED": "1"}  # fmt: skip
    gateway = start([*python("gateway"), "manage.py", "ibgateway", "--port", str(port),
                     "--seed", "3", "--date", "2025-03-14", "--master-client-id", "4"],
                    logs / "gateway.log", env)  # fmt: skip
    settings.IBKR_HOST, settings.IBKR_PORT = "127.0.0.1", port
    settings.IBKR_MASTER_CLIENT_ID = 4
    reset_broker()
    processes = [gateway]
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("the loopback gateway did not start") from None
                time.sleep(0.2)

        with connection.cursor() as cursor:  # a clean slate: an earlier bench's rows go
            cursor.execute("TRUNCATE trade_exits, order_executions, trades, positions, orders, "
                           "decision, agent_conversations, workflow_execution CASCADE")  # fmt: skip
        PeriodicTask.objects.filter(name__startswith="strategy ").delete()
        Strategy.objects.all().delete()
        template = TEMPLATES["two_indicator"]
        steps = [{**s, "config": {"seconds": 0}} if s["type"] == "wait" else s
                 for s in template["steps"]]  # fmt: skip
        Workflow.objects.filter(name__startswith="bench ").delete()
        workflow = workflow_create(
            name="bench scale two_indicator", type="two_indicator", steps=steps,
            default_params=template["default_params"],
        )  # fmt: skip
        started = time.perf_counter()
        codes = [code_resolve(symbol=s) for s in list(STOCKS)]
        for code in codes:  # a warm cache
            for n in (1, 2):
                market_data_get(code=code, period=template["default_params"][f"period_{n}"],
                                bar=template["default_params"][f"bar_{n}"])  # fmt: skip
        print(f"setup: {len(codes)} codes resolved and their bars cached in "
              f"{time.perf_counter() - started:.1f}s")  # fmt: skip
        reset_broker()

        def strategies(count, label):
            return [
                strategy_create(
                    name=f"bench {label} {i}",
                    type="two_indicator",
                    workflow=workflow,
                    codes=[codes[(3 * i + k) % len(codes)] for k in range(3)],
                )  # fmt: skip
                for i in range(count)
            ]

        def batch(items):
            ids = [execution_start(strategy=s).pk for s in items]
            t0 = time.perf_counter()
            while WorkflowExecution.objects.filter(
                pk__in=ids, status__in=("pending", "running")
            ).exists():
                time.sleep(0.2)
            return ids, time.perf_counter() - t0

        def sessions():
            """PostgreSQL sessions opened on the database so far (pg_stat_database)."""
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_stat_clear_snapshot()")
                cursor.execute("SELECT sessions FROM pg_stat_database WHERE datname = "
                               "current_database()")  # fmt: skip
                return cursor.fetchone()[0]

        rows = []
        for count in [int(n) for n in args.workers.split(",") if int(n)]:
            workers = [
                start(
                    [
                        *python(f"worker-{count}-{i}"),
                        "-m",
                        "celery",
                        "-A",
                        "tradingsite",
                        "worker",
                        "--pool=solo",
                        "-Q",
                        "runs",
                        "-n",
                        f"bench{count}-{i}@%h",
                        "--without-gossip",
                        "--without-mingle",
                        "--loglevel=INFO",
                    ],
                    logs / f"worker-{count}-{i}.log",
                    env,
                )  # fmt: skip
                for i in range(count)
            ]
            processes += workers
            deadline = time.monotonic() + 120
            while len(app.control.ping(timeout=1) or []) < count:
                if time.monotonic() > deadline:
                    raise SystemExit(f"{count} workers did not start; see {logs}")
            batch(strategies(2 * count, f"warm-up {count}"))
            items = strategies(args.strategies, f"x{count}")
            sessions_before = sessions()
            load = os.getloadavg()[0]
            cpu_before = cpu_of(workers, gateway)
            ids, seconds = batch(items)
            cpu = [after - before for before, after in
                   zip(cpu_before, cpu_of(workers, gateway), strict=True)]  # fmt: skip
            opened = sessions() - sessions_before
            runs = WorkflowExecution.objects.filter(pk__in=ids)
            failed = runs.exclude(status="completed").count()
            partial = sum(1 for r in runs if r.partial)
            paced = sum(1 for r in runs for log in (r.results or {}).get("execution_logs", [])
                        if "historical-data pacing" in log["message"])  # fmt: skip
            stop(workers)
            processes = [p for p in processes if p not in workers]
            errors = sum(
                len(ERRORS.findall((logs / f"worker-{count}-{i}.log").read_text(errors="replace")))
                for i in range(count)
            )
            rows.append((count, len(ids) / seconds * 60, seconds, failed, partial, errors, paced,
                         opened, load, *(1000 * c / len(ids) for c in cpu)))  # fmt: skip

        if rows:
            report(args.strategies, rows)

        if args.beat:
            beat_lag(args.beat, codes, workflow, logs, env, strategy_create, PeriodicTask, queues)
    finally:
        stop(processes)
        for path in profiled:
            if path.exists():
                print(f"\n{path.name}: the 15 functions with the most CPU of their own, and "
                      "the site's own with the most in all")  # fmt: skip
                stats = pstats.Stats(str(path))
                stats.sort_stats("tottime").print_stats(15)
                stats.sort_stats("cumtime").print_stats(OWN_CODE, 25)


def cpu_seconds(pid):
    """User + system CPU seconds of process ``pid`` so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_of(workers, gateway):
    """CPU seconds so far of the workers, the gateway and the database's other sessions (the
    workers' connections: they persist, CONN_MAX_AGE)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                       "AND pid <> pg_backend_pid()")  # fmt: skip
        backends = [pid for (pid,) in cursor.fetchall()]
    return (sum(cpu_seconds(w.pid) for w in workers), cpu_seconds(gateway.pid),
            sum(cpu_seconds(pid) for pid in backends))  # fmt: skip


def report(strategies, rows):
    load = os.getloadavg()
    print(
        f"\n{strategies} runs of 3 codes each, warm cache, offline model, wait 0; "
        f"{os.cpu_count()} CPUs, load average now {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    print("workers  runs/min  speed-up  seconds  failed  partial  id/pacing errors  waits  "
          "db sessions  load at start  CPU ms per run: workers  gateway  postgres")  # fmt: skip
    base = rows[0][1]
    for (count, per_minute, seconds, failed, partial, errors, paced, opened, load, worker_ms,
         gateway_ms, postgres_ms) in rows:  # fmt: skip
        print(
            f"{count:>7}  {per_minute:>8.1f}  {per_minute / base:>7.2f}x  {seconds:>7.1f}  "
            f"{failed:>6}  {partial:>7}  {errors:>16}  {paced:>5}  {opened:>11}  "
            f"{load:>13.2f}  {worker_ms:>23.0f}  {gateway_ms:>7.0f}  {postgres_ms:>8.0f}"
        )


def beat_lag(count, codes, workflow, logs, env, strategy_create, PeriodicTask, queues):
    # The site's modules once main() has set Django up (this script picks its database first).
    from strategies.models import Strategy

    Strategy.objects.filter(name__startswith="bench ").update(active=False)
    PeriodicTask.objects.filter(name__startswith="strategy ").update(enabled=False)
    t0 = time.perf_counter()
    for i in range(count):
        strategy_create(
            name=f"beat {i}", type="two_indicator", workflow=workflow,
            codes=[codes[(3 * i + k) % len(codes)] for k in range(3)],
            schedule_crontab="* * * * *",
        )  # fmt: skip
    print(f"\nbeat: {count} strategies scheduled every minute, made in "
          f"{time.perf_counter() - t0:.1f}s")  # fmt: skip
    log = logs / "beat.log"
    # LOG_LEVEL=INFO: the site's settings keep celery.beat at WARNING otherwise, and the lag is
    # read from its "Sending due task" lines.
    beat = start([sys.executable, "-m", "celery", "-A", "tradingsite", "beat", "--loglevel=INFO",
                  "--schedule", str(logs / "celerybeat-schedule")], log,
                 {**env, "LOG_LEVEL": "INFO"})  # fmt: skip
    try:
        # Two whole ticks after the one beat starts in.
        now = datetime.now(UTC)
        end = time.time() + (60 - now.second) + 2 * 60 + 15
        while time.time() < end:
            time.sleep(1)
    finally:
        stop([beat])
        queues.flushdb()
    sent = re.compile(r"\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}): INFO/MainProcess\] "
                      r"Scheduler: Sending due task strategy ")  # fmt: skip
    ticks = {}
    for match in sent.finditer(log.read_text(errors="replace")):
        moment = datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S,%f")
        tick = moment.replace(second=0, microsecond=0)
        ticks.setdefault(tick, []).append((moment - tick).total_seconds())
    print("tick (beat's local time)  sent   first lag  last lag")
    for tick, lags in sorted(ticks.items()):
        print(f"{tick:%H:%M}                   {len(lags):>5}   {min(lags):>8.2f}s  "
              f"{max(lags):>7.2f}s")  # fmt: skip


if __name__ == "__main__":
    main()
