"""The live feed's stream token (docs/api-posture.md)."""
from __future__ import annotations

from pydantic import BaseModel, Field


class StreamToken(BaseModel):
    token: str = Field(description="Opens GET /api/v1/stream?token=… (nothing else)")
    expires_in: int = Field(description="Seconds to connect with it")
    url: str = Field(description="The stream URL with the token, relative to the server")
