"""The API client: bearer token, JSON in and out, one exception per kind of failure."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import httpx

DEFAULT_URL = "http://127.0.0.1:8000"
TIMEOUT_S = 30.0


class ApiError(Exception):
    """Raised when the API refuses a request; carries its status, code, message and field details."""

    def __init__(self, status: int, code: str, message: str, details: list[dict[str, str]] | None = None) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.details = list(details or [])
        super().__init__(f"{code}: {message}")

    @classmethod
    def from_response(cls, response: httpx.Response) -> ApiError:
        try:
            error = response.json()["error"]
            return cls(response.status_code, str(error["code"]), str(error["message"]), list(error.get("details") or []))
        except (ValueError, KeyError, TypeError):
            return cls(response.status_code, "http_error", f"HTTP {response.status_code} from {response.url}")


class Unreachable(Exception):
    """Raised when no Ostinato server answers at the URL."""


class ApiClient:
    """Calls ``base_url``'s ``/v1`` routes with a bearer ``token``."""

    def __init__(self, base_url: str = DEFAULT_URL, token: str | None = None, *, transport: httpx.BaseTransport | None = None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self._base_url, headers=headers, timeout=TIMEOUT_S, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, *, json: Any = None, params: Mapping[str, Any] | None = None) -> Any:
        """The decoded JSON answer of ``method path``; raises :class:`ApiError` or :class:`Unreachable`."""
        query = {key: value for key, value in (params or {}).items() if value is not None}
        try:
            response = self._http.request(method, path, json=json, params=query)
        except httpx.TransportError as exc:
            raise Unreachable(f"no Ostinato server answers at {self._base_url} ({type(exc).__name__}: {exc})") from None
        if response.status_code >= 400:
            raise ApiError.from_response(response)
        return response.json() if response.content else None

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, json: Any = None) -> Any:
        return self.request("POST", path, json=json)

    def patch(self, path: str, json: Any) -> Any:
        return self.request("PATCH", path, json=json)

    def put(self, path: str, json: Any) -> Any:
        return self.request("PUT", path, json=json)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def pages(self, path: str, *, limit: int | None = None, **params: Any) -> Iterator[dict[str, Any]]:
        """Every item of a list route, following ``next_cursor``; at most ``limit`` items when given."""
        cursor = None
        count = 0
        while True:
            page = self.get(path, cursor=cursor, **params)
            for item in page["items"]:
                if limit is not None and count >= limit:
                    return
                count += 1
                yield item
            cursor = page["next_cursor"]
            if cursor is None:
                return

    def job(self, ref: str) -> dict[str, Any]:
        """A job by id or by slug."""
        try:
            return self.get(f"/v1/jobs/{ref}")
        except ApiError as exc:
            if exc.status != 404:
                raise
        for status in (None, "paused", "archived"):
            for job in self.pages("/v1/jobs", search=ref, status=status, limit=500):
                if job["slug"] == ref:
                    return job
        raise ApiError(404, "not_found", f"job {ref} not found (neither an id nor a slug)")
