"""Staff-only table views (sqladmin) at /admin."""
