"""Catalog service: venues, events and seat maps (public reads)."""

SERVICE_NAME = "groundwork.catalog.v1.CatalogService"
MIGRATIONS = __path__[0] + "/migrations"
