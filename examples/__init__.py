"""Example handlers for the quick start: ``OSTINATO_HANDLER_MODULES=examples.hello``."""
