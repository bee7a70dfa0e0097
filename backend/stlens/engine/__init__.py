"""The visualisation engine: spatiotemporal activation maximisation (see docs/engine.md)."""

from .render import Cancelled, Progress, Visualization, visualize
from .settings import VisualizationSettings

__all__ = ["Cancelled", "Progress", "Visualization", "VisualizationSettings", "visualize"]
