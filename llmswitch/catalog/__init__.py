"""Model catalog: lab, origin, open weights, context, modalities and per-provider prices."""

from llmswitch.catalog.catalog import Catalog, ModelInfo, Offer, ProviderPrice, default_catalog
from llmswitch.catalog.keys import catalog_key

__all__ = ["Catalog", "ModelInfo", "Offer", "ProviderPrice", "catalog_key", "default_catalog"]
