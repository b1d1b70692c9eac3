"""phm-fhir: a FHIR R4 server for population health management."""

__version__ = "0.1.0"
