"""Response and request models, one family per resource."""
