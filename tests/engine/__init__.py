"""The engine's service tests: scheduler, execution and operator controls, run against every store."""
