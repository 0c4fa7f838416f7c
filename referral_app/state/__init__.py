"""Reflex states: thin adapters from UI events to the domain layer."""
