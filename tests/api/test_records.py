"""The stored record of a result: records from before a field existed load, a newer server's extra fields are ignored."""

from __future__ import annotations

import json

from stlens.record import ResultRecord

OLD_RECORD = {
    "request": {"model": "synth-conv-fusion", "layer": "fusion.conv", "unit": 3, "settings": {"steps": 4}},
    "result": {"objective": 1.5, "steps": 4, "streams": ["appearance"], "media": ["appearance.gif"]},
}


def test_a_record_made_before_runs_were_timed_still_loads():
    record = ResultRecord.model_validate_json(json.dumps(OLD_RECORD))
    assert record.result.seconds is None and record.result.seconds_per_step is None
    assert record.request.settings.steps == 4 and record.request.unit == 3


def test_fields_of_a_newer_server_are_ignored_and_a_record_round_trips():
    newer = {**OLD_RECORD, "result": {**OLD_RECORD["result"], "seconds": 2.0, "verdict": "new"}, "extra": 1}
    record = ResultRecord.model_validate(newer)
    assert record.result.seconds_per_step == 0.5
    assert ResultRecord.model_validate_json(record.model_dump_json()) == record
