"""Driven adapters: one sub-package per technology, each implementing domain ports."""
