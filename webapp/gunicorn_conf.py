"""gunicorn's settings (`gunicorn -c python:webapp.gunicorn_conf`): its error and access lines go through the
site's logging (plain, or JSON with LOG_FORMAT=json), each access line with the request id it answered."""

import os

from webapp import logs

logconfig_dict = logs.config(os.environ.get("LOG_FORMAT", "plain"), os.environ.get("LOG_LEVEL", "INFO"))
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms request_id=%({x-request-id}o)s'
