"""Connections notice a cut: every TCP connection to PostgreSQL, to Redis (broker and cache) and to S3 carries
keepalive probing and a user timeout, read back from the kernel's own socket options, so a query on a dead
link fails in seconds. tests/hosts/test_hosts.py cuts a real link and watches a worker notice it."""

import os
import socket

import pytest
from django.conf import settings

pytestmark = pytest.mark.skipif(not hasattr(socket, "TCP_USER_TIMEOUT"), reason="TCP_USER_TIMEOUT is Linux's")


def tcp_options(fd: int) -> dict:
    """The keepalive and user-timeout options the kernel holds for the socket ``fd``."""
    with socket.socket(fileno=os.dup(fd)) as s:
        return {
            "keepalive": s.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
            "idle": s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
            "interval": s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
            "count": s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
            "user_timeout_ms": s.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT),
        }


def expected() -> dict:
    return {
        "keepalive": 1,
        "idle": settings.NET_KEEPALIVE_IDLE,
        "interval": settings.NET_KEEPALIVE_INTERVAL,
        "count": settings.NET_KEEPALIVE_COUNT,
        "user_timeout_ms": int(settings.NET_DEAD_AFTER * 1000),
    }


def test_it_has_defaults_that_notice_a_dead_link_in_seconds():
    assert settings.NET_DEAD_AFTER <= 15
    assert settings.NET_KEEPALIVE_IDLE + settings.NET_KEEPALIVE_INTERVAL * settings.NET_KEEPALIVE_COUNT <= 30
    assert settings.NET_CONNECT_TIMEOUT <= 10


@pytest.mark.django_db
def test_it_opens_postgresql_connections_with_keepalives_and_a_user_timeout():
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the options are libpq's; this run uses SQLite")
    connection.ensure_connection()
    params = connection.connection.info.get_parameters()
    assert params["keepalives"] == "1" and params["connect_timeout"] == str(
        round(settings.NET_CONNECT_TIMEOUT)
    )
    assert tcp_options(connection.connection.pgconn.socket) == expected()


def test_it_opens_broker_connections_with_keepalives_and_a_user_timeout():
    from webapp.celery import app

    with app.connection_for_write() as conn:
        client = conn.default_channel.client
        assert client.ping()
        redis_connection = client.connection_pool.get_connection()
        try:
            redis_connection.connect()
            assert tcp_options(redis_connection._sock.fileno()) == expected()
        finally:
            client.connection_pool.release(redis_connection)
    assert settings.CELERY_BROKER_TRANSPORT_OPTIONS["socket_timeout"] <= 15


def test_it_opens_cache_connections_with_keepalives_and_a_user_timeout():
    from django.core.cache import cache

    cache.set("connection-options-probe", 1, 5)
    pool = cache._cache.get_client(write=True).connection_pool
    redis_connection = pool.get_connection()
    try:
        redis_connection.connect()
        assert tcp_options(redis_connection._sock.fileno()) == expected()
    finally:
        pool.release(redis_connection)


def test_it_gives_s3_requests_short_timeouts_and_keepalive():
    from storages.backends.s3 import S3Storage

    from webapp.settings import s3_storage

    storage = S3Storage(**s3_storage("a-bucket", "http://127.0.0.1:9", "key", "secret")["OPTIONS"])
    config = storage.connection.meta.client.meta.config
    assert config.connect_timeout == settings.NET_CONNECT_TIMEOUT and config.read_timeout <= 30
    assert config.tcp_keepalive and config.retries["total_max_attempts"] == 3


def test_a_broker_command_after_the_connection_broke_reconnects_instead_of_failing():
    """The ack of a finished job, when a cut killed the connection meanwhile: without a retry kombu's ack fails
    ("Couldn't ack") and a worker with one prefetch slot never consumes again."""
    import time
    from types import SimpleNamespace

    import redis

    from webapp.celery import app, retry_broker_commands

    worker_conf = SimpleNamespace(broker_transport_options=dict(settings.CELERY_BROKER_TRANSPORT_OPTIONS))
    retry_broker_commands(conf=worker_conf)  # what a worker process does as it starts
    with app.connection_for_write(transport_options=worker_conf.broker_transport_options) as conn:
        assert conn.default_channel.async_pool.connection_kwargs.get("retry") is None  # the event loop's own
        pool = conn.default_channel.pool  # the connections acks and publishes use
        held = pool.get_connection()
        try:
            held.send_command("CLIENT", "ID")
            redis.Redis.from_url(settings.CELERY_BROKER_URL).client_kill_filter(_id=held.read_response())
            time.sleep(0.1)
            held.next_health_check = 0  # idle past health_check_interval, as during a cut
            held.send_command("PING")
            assert held.read_response() == b"PONG"
        finally:
            pool.release(held)


def test_a_web_process_fails_fast_instead_of_retrying_broker_commands():
    from webapp.celery import app

    with app.connection_for_write() as conn:
        assert conn.default_channel.pool.connection_kwargs.get("retry") is None
