"""kombu's Redis transport; in worker processes, each command is retried over a fresh connection when the old
one broke.

A worker's connection to Redis can die under it during a network cut (keepalive or TCP_USER_TIMEOUT ends
it, as webapp/settings.py asks). Without a retry, the first command after the link returns fails: when that
command is the acknowledgement of the finished job, Celery logs "Couldn't ack" and the message stays counted
against the prefetch limit, so a worker with one slot never consumes again (seen in tests/hosts: a cut
of about 10 s left a worker idle until its next restart). With the retry, redis-py reconnects and sends
the command again. Web processes keep failing fast instead: a publish that fails is the sweeper's to redo,
and a request must not wait for retries. Selected by CELERY_BROKER_TRANSPORT; URLs stay redis://.
"""

from kombu.transport import redis as kombu_redis
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError, TimeoutError
from redis.retry import Retry

RETRIES = 3  # after the first attempt; backoff 0.25, 0.5, 1 s


class Channel(kombu_redis.Channel):
    #: The transport option ``retry_commands``, set by webapp/celery.py in worker processes.
    retry_commands = False
    from_transport_options = (*kombu_redis.Channel.from_transport_options, "retry_commands")

    def _connparams(self, asynchronous=False):
        params = super()._connparams(asynchronous)
        # Not the event loop's connections (BRPOP): kombu watches their sockets, and a reconnection behind its
        # back would leave it polling the old one; it notices their failures and reconnects by itself.
        if self.retry_commands and not asynchronous:
            # In the pool's connection arguments, where kombu looks to tell whether a batch publish may be retried.
            params.setdefault("retry", Retry(ExponentialBackoff(cap=1, base=0.25), RETRIES))
            params.setdefault("retry_on_error", [ConnectionError, TimeoutError])
        return params


class Transport(kombu_redis.Transport):
    Channel = Channel
