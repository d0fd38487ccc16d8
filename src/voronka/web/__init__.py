"""The web layer: a FastAPI app over the library (``create_app(settings)``), built explicitly."""

from voronka.web.app import create_app

__all__ = ["create_app"]
