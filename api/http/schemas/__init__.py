"""Request and response types of the HTTP API (msgspec Structs), one module per resource.

Requests decode strictly (no string-to-number or number-to-time coercion) and
reject unknown fields; they carry only shapes and coarse bounds, while the
domain parses values and names the field of every problem. Responses are
built from entities by each type's ``of`` constructor; every timestamp is
UTC with ``Z`` and every duration is seconds in a field ending in ``_s``.
"""
