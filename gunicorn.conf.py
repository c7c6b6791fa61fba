"""gunicorn's settings for the site: `gunicorn` run in this folder reads them (the Procfile's
web line). Workers: WEB_CONCURRENCY (gunicorn's own variable), 3 by default; the address:
--bind, or PORT (gunicorn binds 0.0.0.0:$PORT when it is set).

Each worker leases its IB client id as it boots (tradingsite/broker/leases.py): a malformed or
exhausted IBKR_CLIENT_ID_RANGE, or Redis down, stops gunicorn at start with that message
("Worker failed to boot") before anything connects. It then connects to IB once, so that the
first request does not wait for it (a gateway that is down is only logged: the connection is
made at the first request that needs it). A worker that exits gives its id back.
"""

wsgi_app = "tradingsite.wsgi:application"
workers = 3
timeout = 60
graceful_timeout = 20
accesslog = "-"
# gunicorn's default line, and the worker's pid
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" pid=%(p)s'


def post_worker_init(worker):
    # Imported in the hooks: gunicorn reads this file before the application (and Django's
    # settings) is loaded, and the broker needs them.
    from tradingsite.broker import BrokerUnavailable, client_role, get_broker  # (see above)
    from tradingsite.broker.leases import ClientIdUnavailable, lease_client_id  # (see above)

    client_role("web")
    try:
        client_id = lease_client_id()
    except ClientIdUnavailable as exc:
        worker.log.error("Refusing to start: %s", exc)
        raise
    try:
        get_broker()
    except BrokerUnavailable as exc:
        worker.log.warning("IB client id %s: %s (connecting at the first request)", client_id, exc)
    else:
        worker.log.info("connected to IB as client id %s", client_id)


def worker_exit(server, worker):
    from tradingsite.broker import reset_broker  # in the hook: Django is set up by now

    reset_broker()
