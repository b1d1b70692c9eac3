"""The FHIR R4 wire model: definitions, validation, references, search-parameter registry.

No database and no HTTP here.
"""
