"""Measure evaluation: FHIR Measures compiled to SQL over the search-index tables."""
