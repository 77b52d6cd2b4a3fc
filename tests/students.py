"""gradio_client as a student's browser tab, for the tests and load benchmarks that drive a
launched app: a client with its own session and heartbeat, endpoint arguments given by field
label (so callers follow the app when fields move), the page's load events as a browser runs
them, and what the outputs say (chart traces, the place in the training queue, a table's
number). Test support; benchmarks/ imports it too (see app_server.py).
"""
from __future__ import annotations

import json
import re
import time
from typing import Any


def connect(url: str):
    """A gradio_client Client as a student's tab: its own session and heartbeat. Timeouts
    are generous because a loaded 2-core server answers slowly, which is measured, not lost."""
    from gradio_client import Client

    return Client(url, verbose=False, download_files=False, httpx_kwargs={"timeout": 300})


def english(value: Any) -> Any:
    """A label or value as the app wrote it: the page's words travel as gr.I18n keys
    ({"key": "Epochs", "_type": "translation_metadata"} in the API's description, "__type__"
    in the page's config), their key being the English."""
    if isinstance(value, dict) and "translation_metadata" in (value.get("_type"), value.get("__type__")):
        return value.get("key")
    return value


class Api:
    """Build an endpoint's argument list from the app's own API description: values are
    given by (the start of) a field's label, the rest take the app's defaults. So the script
    follows the app when fields move."""

    def __init__(self, info: dict[str, Any]):
        self.endpoints = info["named_endpoints"]

    @classmethod
    def of(cls, client) -> "Api":
        return cls(client.view_api(print_info=False, return_format="dict"))

    def args_by_label(self, endpoint: str, values: dict[str, Any]) -> list[Any]:
        params = self.endpoints[endpoint]["parameters"]
        out, used = [], set()
        for p in params:
            label = english(p.get("label")) or ""
            key = next((k for k in values if label == k or label.startswith(k)), None)
            if key is not None:
                out.append(values[key])
                used.add(key)
            elif p.get("parameter_has_default"):
                out.append(english(p.get("parameter_default")))
            else:
                raise KeyError(f"{endpoint}: no value for the field {label!r}")
        unused = set(values) - used
        if unused:
            raise KeyError(f"{endpoint} has no field labelled {sorted(unused)}")
        return out


class Page:
    """What a browser does when it opens the page: run the app's load events (the data view,
    the estimate, the sampling lab) in its session, through the queue like every event."""

    def __init__(self, url: str):
        import httpx

        config = httpx.get(url + "config", timeout=60).json()
        self.prefix = config.get("api_prefix", "/gradio_api").strip("/")
        components = {c["id"]: c for c in config["components"]}
        self.loads = [(d["id"], [english(components[i].get("props", {}).get("value")) for i in d["inputs"]])
                      for d in config["dependencies"] if any(t[1] == "load" for t in d["targets"])]

    def open(self, url: str, session_hash: str) -> tuple[float, list[str]]:
        """Seconds until every load event finished, and what went wrong."""
        import httpx

        t0, errors, pending = time.perf_counter(), [], set()
        with httpx.Client(timeout=300) as http:
            for fn_index, data in self.loads:
                r = http.post(f"{url}{self.prefix}/queue/join",
                              json={"data": data, "fn_index": fn_index, "session_hash": session_hash,
                                    "event_data": None, "trigger_id": 0})
                if r.status_code != 200:
                    errors.append(f"page load event {fn_index}: HTTP {r.status_code} {r.text[:120]}")
                else:
                    pending.add(r.json()["event_id"])
            if pending:
                with http.stream("GET", f"{url}{self.prefix}/queue/data", params={"session_hash": session_hash}) as st:
                    for line in st.iter_lines():
                        if not line.startswith("data:"):
                            continue
                        msg = json.loads(line[5:])
                        if msg.get("msg") == "process_completed" and msg.get("event_id") in pending:
                            pending.discard(msg["event_id"])
                            if not msg.get("success"):
                                errors.append(f"page load event failed: {str(msg.get('output'))[:200]}")
                        elif msg.get("msg") == "queue_full":
                            errors.append("page load event refused: the queue is full")
                            pending.discard(msg.get("event_id"))
                        if not pending or msg.get("msg") == "close_stream":
                            break
            if pending:
                errors.append(f"{len(pending)} page load event(s) never finished")
        return time.perf_counter() - t0, errors


def plot_traces(plot_value: Any) -> dict[str, tuple[list, list]]:
    """name -> (x, y) of a gr.Plot output (a Plotly figure as JSON)."""
    fig = json.loads(plot_value["plot"]) if isinstance(plot_value, dict) else plot_value
    return {t.get("name"): (list(t.get("x") or []), list(t.get("y") or [])) for t in fig.get("data", [])
            if t.get("name")}


def queue_place(status: str) -> int | None:
    """How many trainings are ahead, from the Train tab's status while it waits in the app's
    training queue ("Waiting: **2** trainings ahead of you ..."); None once it trains."""
    m = re.match(r"Waiting: \*\*(\d+)\*\* trainings? ahead of you", status or "")
    return int(m.group(1)) if m else None


def markdown_number(text: str, label: str) -> float:
    m = re.search(re.escape(label) + r"[^|]*\|\s*\**([-0-9.,e+inf]+)", text)
    if not m:
        raise ValueError(f"no {label!r} in {text[:300]!r}")
    return float(m.group(1).replace(",", ""))


def still_serving(client) -> None:
    """The server still answers this client: the sampling lab draws its chart."""
    fig = client.predict(1.0, 100, 1, api_name="/sampling_lab")
    assert json.loads(fig["plot"])["data"], "the server stopped answering"
