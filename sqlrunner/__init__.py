"""sqlrunner: run SQL Runner playbooks on PostgreSQL and Redshift, resumably."""

__version__ = "0.1.0"
