"""The web layer: the FastAPI app, its routes and the Pydantic models at its edges."""

from .app import create_app

__all__ = ["create_app"]
