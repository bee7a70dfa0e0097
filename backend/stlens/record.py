"""The record of a finished visualisation, as the cache stores it: the request and its result.

Jobs and workers write it, the cache keeps it (JSON, beside the arrays and media), the API and
the atlas read it. A field added later takes a default, so that records stored before it
existed still load; fields this version does not know (a newer server's) are ignored.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict

from .analysis.faithfulness import Faithfulness
from .media.outputs import media_names
from .models.spec import Stream
from .request import VisualizationRequest


class Result(BaseModel):
    """What a run produced besides its arrays: the objective, the media names, and how long the
    optimisation took where it ran (the pace from which later estimates are made)."""

    model_config = ConfigDict(extra="ignore")

    objective: float | None
    steps: int
    streams: list[Stream]
    media: list[str]
    seconds: float | None = None  # absent in records made before runs were timed
    warnings: list[str] = []  # why the result may show nothing (stlens.result_checks); none in older records
    faithfulness: Faithfulness | None = None  # how far to trust the picture (absent in older records)

    @classmethod
    def of_run(
        cls,
        objective: float,
        steps: int,
        streams: Sequence[str],
        seconds: float,
        warnings: Sequence[str] = (),
        faithfulness: Faithfulness | None = None,
    ) -> Result:
        """The result of a run that optimised ``streams`` for ``seconds`` (checked: stream names only)."""
        fields = {"objective": objective, "steps": steps, "streams": list(streams), "seconds": round(seconds, 3)}
        extra = {"warnings": list(warnings), "faithfulness": faithfulness}
        return cls.model_validate({**fields, "media": media_names(streams), **extra})

    @property
    def seconds_per_step(self) -> float | None:
        return self.seconds / self.steps if self.seconds and self.steps else None


class ResultRecord(BaseModel):
    """A stored visualisation: the request (every default filled in) and its result."""

    model_config = ConfigDict(extra="ignore")

    request: VisualizationRequest
    result: Result
