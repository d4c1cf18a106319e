"""Use cases over the domain's ports, each inside one unit of work.

Services import the domain only; the composition root (``api.bootstrap``)
hands them a unit-of-work factory and a clock::

    from adapters.memory import MemoryStore
    from domain.clock import SystemClock
    from services import JobsService

    jobs = JobsService(uow=MemoryStore().unit_of_work, clock=SystemClock())
    job = await jobs.create("default", {"slug": "billing", "name": "Billing"})
"""

from services.endpoints import EndpointsService
from services.jobs import JobsService
from services.runs import RunsService

__all__ = ["EndpointsService", "JobsService", "RunsService"]
