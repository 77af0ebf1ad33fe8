"""Pydantic request and response schemas of /api/v1, one module per area."""
