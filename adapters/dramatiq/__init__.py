"""Dramatiq as the transport between schedulers and workers.

The broker is chosen from a URL (:func:`make_broker`): empty means the
in-process ``StubBroker`` (workers are threads of ``ostinato serve``),
``redis://`` and ``amqp://`` mean Redis and RabbitMQ with separate
``ostinato worker`` processes. Actors are created for a given broker by
:func:`create_actors` rather than at import, so importing this package
never builds a global broker.
"""

from adapters.dramatiq.actors import RunActors, create_actors
from adapters.dramatiq.brokers import make_broker
from adapters.dramatiq.dispatcher import DramatiqDispatcher
from adapters.dramatiq.transport import DramatiqTransport

__all__ = ["DramatiqDispatcher", "DramatiqTransport", "RunActors", "create_actors", "make_broker"]
