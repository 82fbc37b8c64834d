"""HTTP API (FastAPI): analysts' console, command-centre screen and reports read through here.

`create_app(store)` builds the application; nothing is configured or connected at import time.
"""
from api.app import create_app

__all__ = ["create_app"]
