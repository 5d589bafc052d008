"""Text that is not ours reaches every page as plain text (issue 25): a run whose every free string field (status.json,
config.json, eval.json) and a link whose every parameter holds Markdown images, links and HTML draw no image and no
link on any page. Each page's elements are walked field by field; a field Streamlit renders as Markdown must not
hold the planted host behind an unescaped "://" (what an image, a link or a GFM autolink needs)."""
from __future__ import annotations

import json
import re
import shutil
from urllib.parse import urlsplit

import pytest
import streamlit as st
from google.protobuf.json_format import MessageToDict
from streamlit.testing.v1 import AppTest

from conftest import REPO

HOST = "evil.example"
PAYLOAD = (f"x ![pixel](http://{HOST}/x.png) [Teacher login here](http://{HOST}/phish) <img src=http://{HOST}/i.png> "
           f"<a href='http://{HOST}/a'>a</a> http://{HOST}/bare")
PAGES = ["pages/train.py", "pages/monitor.py", "pages/compare.py", "pages/latent.py", "pages/restore.py",
         "pages/learn.py", "pages/playground.py"]
# Fields Streamlit draws as plain text (or that are data, not text): a planted URL there is shown, never followed.
PLAIN_FIELDS = {("text", "body"), ("code", "codeText"), ("json", "body"), ("arrowDataFrame", "data"),
                ("selectbox", "options"), ("selectbox", "rawValue"), ("textInput", "value"), ("textInput", "default"),
                ("textInput", "rawValue"), ("imgs", "url"), ("pageLink", "page"), ("pageLink", "queryString"),
                ("plotlyChart", "spec"), ("downloadButton", "url"), ("multiselect", "options"),
                ("imgs", "caption")}  # st.image captions are plain text


def hostile_run(store, run_dir, status: str | None = None) -> None:
    """Every free string a run folder holds, rewritten to the payload (fields the config checks stay valid); the
    status itself too unless `status` is given (a known status keeps the run readable, so every view of it draws)."""
    config = json.loads((run_dir / "config.json").read_text())
    (run_dir / "config.json").write_text(json.dumps({**config, "preset": PAYLOAD, "data_root": PAYLOAD}))
    recorded = json.loads((run_dir / "status.json").read_text())
    strings = {k: PAYLOAD for k, v in recorded.items() if isinstance(v, str) and k not in ("run_id",)}
    (run_dir / "status.json").write_text(json.dumps({**recorded, **strings, "status": status or "finished " + PAYLOAD,
                                                     "message": PAYLOAD, "device": PAYLOAD, "precision": PAYLOAD}))
    (run_dir / "eval.json").write_text(json.dumps({"modes_text": PAYLOAD, "fid": 1.0}))


def markdown_fields(node, path=""):
    """(element type, field, text) for every string a page's element carries."""
    proto = getattr(node, "proto", None)
    kind = getattr(node, "type", "?")
    if proto is not None:
        for field, value in MessageToDict(proto).items():
            yield from _strings(kind, field, value)
    for child in getattr(node, "children", {}).values():
        yield from markdown_fields(child)


def _strings(kind, field, value):
    if isinstance(value, str):
        yield kind, field, value
    elif isinstance(value, list):
        for v in value:
            yield from _strings(kind, field, v)
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(kind if k not in ("markdown", "body") else kind, f"{field}.{k}" if field else k, v)


def active(at: AppTest) -> list[str]:
    found = []
    for root in (at._tree,):
        for kind, field, text in markdown_fields(root):
            leaf = field.split(".")[-1]
            if (kind, leaf) in PLAIN_FIELDS or (kind, field.split(".")[0]) in PLAIN_FIELDS:
                continue
            seen = re.sub(r"\\(.)", r"\1", text)  # the text GFM's autolinking sees, once escapes are read
            active = re.sub(r"\\.", "", text).lower()  # what Markdown still reads as syntax (escaped marks removed)
            if f"://{HOST}" in seen or (HOST in active and ("<img" in active or "<a " in active)):
                found.append(f"{kind}.{field}: {text[:160]}")
    return found


@pytest.fixture
def hostile(store, tiny_config, monkeypatch):
    run_id = store.start(tiny_config(dataset="ring-8", steps=4, sample_every=2, checkpoint_every=2))
    assert store.wait(run_id, 120) == "finished"
    run_dir = store.run_dir(run_id)
    twin = store.root / "20990101-000000-twin"  # a second run for Compare
    shutil.copytree(run_dir, twin)
    hostile_run(store, run_dir)
    hostile_run(store, twin, status="finished")
    monkeypatch.setenv("GAN_STUDIO_RUNS", str(store.root))
    st.cache_resource.clear()
    yield run_id, twin.name
    from ui.state import get_store
    get_store().shutdown(timeout=60)
    st.cache_resource.clear()


def open_page(page: str, query: dict) -> AppTest:
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120)
    at.run()
    if page != "pages/train.py":
        at.switch_page(page)
    at.query_params.update(query)
    at.run()
    return at


LINK_PARAMS = {"step": f"![x](http://{HOST}/s.png)", f"[Log in](http://{HOST}/p)": "1", "preset": PAYLOAD,
               "lr_d": PAYLOAD, "config": PAYLOAD}


@pytest.mark.parametrize("page", PAGES)
def test_no_page_renders_planted_markdown(page, hostile):
    run_id, twin = hostile
    queries = [{"run": run_id}, {"run": twin}, {"run": run_id, **LINK_PARAMS}, {"runs": f"{run_id},{twin}"},
               {"run": run_id, "present": "1"}, {"run": twin, "present": "1"}, {"runs": f"{twin},{run_id}", "present": "1"}]
    problems = []
    for query in queries:
        at = open_page(page, query)
        problems += [f"{query}: {p}" for p in active(at)]
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------------- the presenter view in Chromium
def test_monitor_and_the_presenter_view_in_chromium_draw_no_planted_image_or_link(store, tiny_config, tmp_path):
    from browser import browser_missing, chromium, streamlit_server
    missing = browser_missing()
    if missing:
        pytest.skip(f"browser test skipped: {missing}")
    run_id = store.start(tiny_config(dataset="ring-8", steps=4, sample_every=2, checkpoint_every=2))
    assert store.wait(run_id, 120) == "finished"
    twin = store.root / "20990101-000000-twin"
    shutil.copytree(store.run_dir(run_id), twin)
    hostile_run(store, store.run_dir(run_id))
    hostile_run(store, twin, status="failed")  # readable: its message, device and eval are drawn
    step_link = f"%21%5Bx%5D%28http%3A%2F%2F{HOST}%2Fs.png%29"
    visits = [(f"run={twin.name}", HOST), (f"run={twin.name}&step={step_link}", f"{HOST}/s.png"),
              (f"run={run_id}&present=1", "Leave presenter view"), (f"run={twin.name}&present=1", "Leave presenter view")]
    requested = []
    with streamlit_server(store.root, tmp_path / "streamlit.log") as (url, _), chromium() as browser:
        page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        page.set_default_timeout(120_000)
        page.on("request", lambda r: requested.append(r.url))
        for query, shown in visits:
            page.goto(f"{url}/monitor?{query}")
            page.wait_for_function("t => document.body.innerText.includes(t)", arg=shown)  # drawn (as text)
            images = page.eval_on_selector_all("img", "els => els.map(e => e.src)")
            links = page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
            assert not [s for s in images if HOST in s], (query, images)
            assert not [h for h in links if HOST in h], (query, links)
    assert not [r for r in requested if urlsplit(r).hostname == HOST], requested
