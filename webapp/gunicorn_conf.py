"""gunicorn's settings (`gunicorn -c python:webapp.gunicorn_conf`): its threads from the site's WEB_THREADS (the
caps on waiting requests derive from the same number: set it, not --threads), and its error and access lines through the site's logging (plain, or JSON with LOG_FORMAT=json), each access line with the
request id it answered."""

from webapp import logs
from webapp import settings as site

threads = site.WEB_THREADS
# Idle keep-alive connections are closed after this many seconds; a proxy in front must drop its own idle ones
# sooner (docker/nginx/: 1 s), or it may reuse one as gunicorn closes it and meet a reset.
keepalive = 2
logconfig_dict = logs.config(site.LOG_FORMAT, site.env("LOG_LEVEL", "INFO"))
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms request_id=%({x-request-id}o)s'


def when_ready(server):
    if server.cfg.threads != site.WEB_THREADS:
        server.log.warning(
            "--threads %s differs from WEB_THREADS=%s, from which the caps on waiting requests derive",
            server.cfg.threads,
            site.WEB_THREADS,
        )
