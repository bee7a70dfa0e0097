"""Share links carry their request: another server, that never saw the id, recomputes the same id."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

from stlens.api.sharelink import request_from_query, share_query
from stlens.engine.settings import VisualizationSettings

from .requests import request


def test_query_holds_only_changed_settings_and_reads_back_the_same_request():
    body = request(unit=4, steps=9, lr=0.07, param="pixel", weights={"norm": 1e-05, "tv_time": {"motion": 100}})
    entries = share_query(body)
    assert entries == [
        ("model", body["model"]),
        ("layer", "fusion.conv"),
        ("unit", "4"),
        ("steps", "9"),
        ("lr", "0.07"),
        ("weights.norm", "1e-05"),
        ("weights.tv_time.motion", "100"),
        ("param", "pixel"),
    ]
    carried = request_from_query(dict(entries + [("coding", "arrows"), ("pins", "0123")]))  # view keys ignored
    assert carried is not None
    assert carried.settings == VisualizationSettings.model_validate(body["settings"])
    assert (carried.model, carried.layer, carried.unit) == (body["model"], "fusion.conv", 4)
    assert request_from_query({"model": "m", "layer": "l"}) is None  # a plain link carries nothing


def test_share_link_recomputes_the_same_id_on_a_fresh_server(make_server, tmp_path):
    first = make_server(tmp_path / "first")
    created = first.http.post("/api/visualizations", json=request(unit=6, seed=3)).json()
    vid, share_url = created["id"], created["share_url"]
    done = first.wait_done(vid)
    assert done["share_path"] == share_url.removeprefix(first.base_url)
    link = urlsplit(share_url)
    assert link.path == f"/v/{vid}" and dict(parse_qsl(link.query))["seed"] == "3"

    fresh = make_server(tmp_path / "second")  # another machine: its own, empty cache
    assert fresh.http.get(f"/v/{vid}").status_code == 404  # a plain link to an unknown id
    page = fresh.http.get(f"{link.path}?{link.query}&coding=arrows")
    assert page.status_code == 200 and page.text == fresh.http.get("/").text
    again = fresh.wait_done(vid)  # the page's first call: the stored request is computed
    assert again["status"] == "done" and again["request"] == done["request"]
    assert again["share_path"] == done["share_path"]
    assert fresh.http.get(f"/v/{vid}").status_code == 200  # now known here


def test_share_link_whose_request_has_another_id_says_the_weights_differ(server):
    created = server.http.post("/api/visualizations", json=request(unit=2)).json()
    query = urlsplit(created["share_url"]).query
    other = "0123456789abcdef0123"
    page = server.http.get(f"/v/{other}?{query}")
    assert page.status_code == 409
    assert "other weights" in page.text and created["id"] in page.text
    assert server.http.get(f"/api/visualizations/{other}").status_code == 404  # nothing stored, nothing run


def test_share_link_with_a_bad_request_is_refused_clearly(server):
    other = "0123456789abcdef0123"
    for bad_path in ("/v/", "/v/%3Cscript%3Ex%3C%2Fscript%3E", "/v/abc/def"):  # the styled page, not bare JSON
        page = server.http.get(bad_path)
        assert page.status_code == 404 and "not a visualisation link" in page.text and "<script>" not in page.text
    bad_unit = server.http.get(f"/v/{other}?model=synth-conv-fusion&layer=fusion.conv&unit=x")
    assert bad_unit.status_code == 422 and "not valid: unit: must be a whole number" in bad_unit.text
    assert "errors.pydantic.dev" not in bad_unit.text  # said for people, without Pydantic's own text
    bad_layer = server.http.get(f"/v/{other}?model=synth-conv-fusion&layer=nope&unit=0")
    assert bad_layer.status_code == 404 and "no layer" in bad_layer.text
    bad_setting = server.http.get(f"/v/{other}?model=synth-conv-fusion&layer=fusion.conv&unit=0&steps=100000")
    assert bad_setting.status_code == 422
