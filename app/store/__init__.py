"""Persistence: tables, versioning, indexing, search compiled to SQL, transactions."""
