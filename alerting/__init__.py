"""The alerting policy layer: what happens to every alert between whoever raised it and
the store (asset context and risk, allowlists, suppression rules, incident correlation)."""
