"""Hypothesis strategies and an OpenAPI document for fuzzing the FHIR API (pure: no I/O)."""
