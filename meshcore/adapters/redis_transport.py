"""kombu's Redis transport, made to survive a broker that goes away under a busy worker.

With kombu 5.7.0 a worker that holds unacknowledged messages (an ETA'd deadline, a prefetched
step) dies when Redis stops: after the connection error Celery collects the connection, which
releases the transport, and then closes it again; the second close tries to hand the
messages back to Redis through a transport that no longer has its connection details, and
the AttributeError it raises is not a connection error, so the worker exits ("Unrecoverable
error: 'NoneType' object has no attribute 'hostname'"). Nothing can be handed back without a
connection anyway: the messages stay in Redis's unacked set (restored after the visibility
timeout, if Redis kept them), and the sweeper re-drives their tasks from the record.
"""

from __future__ import annotations

import structlog
from kombu.transport import redis as kombu_redis

log = structlog.get_logger(__name__)

# The dotted paths Celery's `broker_transport` takes (see meshworkers.app).
TCP_TRANSPORT = "meshcore.adapters.redis_transport:Transport"
SOCKET_TRANSPORT = "meshcore.adapters.redis_transport:SocketTransport"


class QoS(kombu_redis.QoS):
    def restore_unacked(self, client: object = None) -> None:
        if client is None and getattr(self.channel.connection, "client", None) is None:
            log.warning("broker.unacked_not_restored", messages=len(self._delivered))
            self._delivered.clear()
            return
        super().restore_unacked(client)


class Channel(kombu_redis.Channel):
    QoS = QoS


class Transport(kombu_redis.Transport):
    """The Redis transport for a redis:// URL."""

    Channel = Channel


class SocketTransport(Transport):
    """The same for a unix socket: kombu then reads the raw `socket:///path` itself."""

    can_parse_url = True
