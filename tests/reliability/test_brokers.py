"""The private brokers of tests/reliability/brokers.py: each starts on a free port, carries a message, survives a
restart as a broker of its kind does (RabbitMQ keeps a persistent message on a durable queue; Redis without
persistence forgets it), and leaves no process behind — and the machine's own brokers are never the ones used."""

from __future__ import annotations

import psutil
import pytest
from kombu import Connection, Exchange, Queue

from tests.reliability.brokers import PrivateRabbitMQ, PrivateRedis

pytestmark = [pytest.mark.xdist_group("broker-restart")]


def _publish(url: str, queue: Queue, body: dict) -> None:
    with Connection(url) as conn, conn.Producer() as producer:
        producer.publish(body, exchange=queue.exchange, routing_key=queue.routing_key, declare=[queue],
                         delivery_mode=2, serializer="json")


def _drain(url: str, queue: Queue) -> list[dict]:
    got: list[dict] = []
    with Connection(url) as conn:
        simple = conn.SimpleQueue(queue)
        while True:
            try:
                message = simple.get(timeout=1)
            except simple.Empty:
                break
            got.append(message.payload)
            message.ack()
        simple.close()
    return got


@pytest.mark.parametrize("kind", ["redis", "rabbitmq"])
def test_private_broker_carries_restarts_and_stops_clean(kind, tmp_path):
    broker_class = PrivateRedis if kind == "redis" else PrivateRabbitMQ
    queue = Queue("private-probe", Exchange("private-probe", type="direct", durable=True),
                  routing_key="private-probe", durable=True)
    broker = broker_class(tmp_path / kind)
    assert broker.port not in (6379, 5672)
    with broker:
        url = broker.url()
        assert f":{broker.port}/" in url
        _publish(url, queue, {"n": 1})
        assert _drain(url, queue) == [{"n": 1}]

        _publish(url, queue, {"n": 2})
        broker.restart()
        survived = _drain(url, queue)
        # RabbitMQ keeps a persistent message on a durable queue across a restart; Redis without RDB/AOF forgets.
        assert survived == ([{"n": 2}] if kind == "rabbitmq" else []), f"{kind} after a restart held {survived}"
        pids = broker.pids()
        assert pids, "the broker runs as processes of its own"
        print(f"private {kind}: start {broker.started_in[0]:.1f}s, restart {broker.started_in[1]:.1f}s; "
              f"after restart held {len(survived)} message(s)")
    left = [pid for pid in pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
    assert not left, f"processes of the private {kind} left after stop: {left}"
