"""Records -> ECS documents: flows (flows.py, straight from compiled table rows) and
application events (app.py)."""
