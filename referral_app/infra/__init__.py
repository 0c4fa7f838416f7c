"""Plumbing: the database engine, logging, live updates, client addresses, cookies,
health checks and background tasks. The rules live in ``referral_app.domain``."""
