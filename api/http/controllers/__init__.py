"""Thin controllers, one module per resource: parse the request, call a service, shape the answer."""
