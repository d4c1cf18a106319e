"""Ostinato's pure core: entities, value objects, policies and ports.

Nothing here does I/O or imports a driver, a web framework or a broker; the
adapters implement the ports declared in :mod:`domain.ports`.
"""
