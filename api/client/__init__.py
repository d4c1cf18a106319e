"""A small client of Ostinato's HTTP API, for the ``ostinato jobs|endpoints|runs`` commands.

It speaks the API's vocabulary (plain JSON) and turns the API's error shape
into :class:`ApiError`; it knows nothing of the domain, so it works against
any Ostinato server of the same API version.
"""

from api.client.session import ApiClient, ApiError, Unreachable

__all__ = ["ApiClient", "ApiError", "Unreachable"]
