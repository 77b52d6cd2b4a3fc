"""What every tab shares: the session registry, server settings, and the glue that turns a
workspace function into a Gradio handler whose errors read as sentences.

Handlers in this package take the session's `Workspace` as their first argument and plain
values after it, so tests call them directly; `bind` adapts them for Gradio.
"""
import functools
import inspect
import logging
import math
import os
import re
import sys
import tempfile
import typing
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import plotly.graph_objects as go

from gpt_core.corpus import CorpusError
from gpt_core.units import MB

from .admission import admit_within_budget
from .limits import Limits, env_number
from .memory import MemoryBudgetError, budget_from_env
from . import notices
from .server import SharedModels, WorkspaceRegistry
from .session import Workspace, WorkspaceError
from .train_queue import TrainQueue
from .i18n import localize_figure, speaking, translate_message

log = logging.getLogger("playground")


@dataclass(frozen=True)
class ServerSettings:
    """Queue and upload limits, derived from the machine and overridable by environment."""
    cores: int
    train_concurrency: int
    generate_concurrency: int
    queue_size: int
    max_upload_mb: int
    on_spaces: bool
    # One run may plan this many optimizer steps, and keeps its slot this long while others
    # wait (then it pauses, resumable, and queues again): one student cannot hold a class up.
    max_run_steps: int = 20_000
    max_run_seconds_while_others_wait: int = 600
    # A request's body (JSON) past this is refused with 413 before it is parsed.
    max_request_mb: int = 32
    # How long a checkpoint's download link stays valid.
    download_link_s: int = 3600
    # The fast presets fit their epochs or iterations to this many seconds of this machine
    # (playground/preset_fit.py); tests make it short.
    time_budget_s: int = 60

    @classmethod
    def from_env(cls) -> "ServerSettings":
        cores = os.cpu_count() or 1
        on_spaces = bool(os.environ.get("SPACE_ID"))
        return cls(
            cores=cores,
            # Training takes all of its threads; two runs per core pair keeps each usable.
            train_concurrency=env_number("PLAYGROUND_TRAIN_CONCURRENCY", max(1, cores // 2)),
            generate_concurrency=env_number("PLAYGROUND_GENERATE_CONCURRENCY", max(2, cores)),
            # Opening the page queues 3 events; 40 students opening it at once filled a queue
            # of 100 and got "Queue is full" (benchmarks/load_classroom.py). Waiting events
            # cost almost nothing: room for ~80 students opening, training and generating.
            queue_size=env_number("PLAYGROUND_QUEUE_SIZE", 500),
            # A GPT-2 124M checkpoint is ~500 MB and the book's model.pth ~650 MB.
            max_upload_mb=env_number("PLAYGROUND_MAX_UPLOAD_MB", 200 if on_spaces else 1024),
            on_spaces=on_spaces,
            # The presets plan at most 5,890 steps on the bundled texts, BabyGPT 3,000 iterations.
            max_run_steps=env_number("PLAYGROUND_MAX_RUN_STEPS", 20_000),
            max_run_seconds_while_others_wait=env_number("PLAYGROUND_MAX_RUN_SECONDS_WHILE_OTHERS_WAIT", 600),
            # The largest legitimate body is a pasted corpus of `max_corpus_chars` characters,
            # each at most 6 bytes of JSON (a \uXXXX escape): 32 MB for the default 5,000,000.
            max_request_mb=env_number("PLAYGROUND_MAX_REQUEST_MB",
                                    math.ceil(6 * Limits.from_env().max_corpus_chars / MB) + 3),
            download_link_s=env_number("PLAYGROUND_DOWNLOAD_LINK_S", 3600),
            time_budget_s=env_number("PLAYGROUND_TIME_BUDGET_S", 60),
        )


SETTINGS = ServerSettings.from_env()
# A session training the book's 124M holds ~2.7 GB (weights, AdamW state, a step's activations;
# measured), so five of them would take a free Space's 16 GB from everyone. There a session
# trains up to 20M parameters (the demo preset is 13M, ~0.2-0.4 GB) unless the variable says
# otherwise; on your own machine the default (200M) stands.
LIMITS = Limits.from_env({"PLAYGROUND_MAX_TRAIN_PARAMETERS": "20000000", **os.environ}
                         if SETTINGS.on_spaces else None)
# One memory budget for everything large the server holds (playground/memory.py).
BUDGET = budget_from_env()
REGISTRY = WorkspaceRegistry(LIMITS, budget=BUDGET)
# GPT-2 weights loaded in this process, shared read-only by every session.
SHARED = SharedModels(max_models=env_number("PLAYGROUND_MAX_SHARED_MODELS", 2), budget=BUDGET)
# Trainings of all sessions wait their turn here (not in Gradio's queue, whose place the page
# cannot show), `train_concurrency` at a time; the head starts once its memory fits the budget.
TRAIN_QUEUE = TrainQueue(SETTINGS.train_concurrency, share_s=SETTINGS.max_run_seconds_while_others_wait,
                         admit=admit_within_budget)

# Exceptions whose message is already a sentence for the user.
USER_ERRORS = (CorpusError, WorkspaceError, MemoryBudgetError, ValueError, FileNotFoundError, PermissionError,
               ConnectionError, TimeoutError)


def _server_dirs() -> list[str]:
    from gradio.utils import get_upload_folder

    dirs = {tempfile.gettempdir(), get_upload_folder(), str(REGISTRY.files_root),
            str(Path(__file__).resolve().parent.parent), sys.prefix}
    dirs |= {os.path.realpath(d) for d in dirs}
    return sorted((d.rstrip("/") for d in dirs if len(d.rstrip("/")) > 1), key=len, reverse=True)


def without_server_paths(text: str) -> str:
    """`text` with every path under the server's temp, upload, session-files and install
    folders cut to its base name: `/tmp/gradio/3f.../notes.txt` reads `notes.txt`."""
    roots = "|".join(re.escape(d) for d in _server_dirs())
    pattern = rf"(?:{roots})(?![^/\s'\"`:,;)\]])(?:/[^/\s'\"`:,;)\]]*)*"
    return re.sub(pattern, lambda m: os.path.basename(m.group(0).rstrip("/")), text)


# "[Errno -2] Name or service not known": the operating system's number means nothing to a
# reader; the words after it stay.
_ERRNO = re.compile(r"\[Errno -?\d+\]\s*")
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://([^/\s'\"`)]+)[^\s'\"`)]*", re.IGNORECASE)


def without_urls_and_errnos(text: str) -> str:
    """`text` with each web address cut to its host and errno markers dropped."""
    return _ERRNO.sub("", _URL.sub(lambda m: m.group(1), text))


def friendly_message(exc: BaseException) -> str:
    """A readable sentence for any exception, in the language of the session being served:
    never a traceback, a server folder, a web address or an errno (the server log keeps the
    full text)."""
    text = translate_message(_message(exc))
    clean = without_urls_and_errnos(without_server_paths(text))
    if clean != text:
        log.info("message shown without server paths, addresses or errnos: %s", text)
    return clean


def _message(exc: BaseException) -> str:
    if isinstance(exc, gr.Error):
        return exc.message
    if isinstance(exc, MemoryError) or "out of memory" in str(exc).lower():
        return ("The server ran out of memory for this. Choose a smaller model, batch size or "
                "context length.")
    if isinstance(exc, USER_ERRORS):
        text = str(exc).strip() or type(exc).__name__
        # A sentence starts with a capital, unless it starts with a name (model.pth stays so).
        return text[0].upper() + text[1:] if text.split(" ", 1)[0].isalpha() else text
    return (f"Something went wrong ({type(exc).__name__}: {str(exc)[:200]}). "
            "Your work in this session is unchanged; try again or reload the page.")


def to_gr_error(exc: BaseException) -> gr.Error:
    if isinstance(exc, gr.Error):
        exc.message = friendly_message(exc)
        return exc
    if not isinstance(exc, USER_ERRORS):
        log.exception("unexpected error in a handler", exc_info=exc)
    return gr.Error(friendly_message(exc), print_exception=False)


def _failed(exc: BaseException, ws: Workspace | None, fn) -> gr.Error:
    """The error `fn` raised, for Gradio; kept for the tab's message area when one shows it,
    and then without a toast (API clients get the message either way)."""
    error = to_gr_error(exc)
    if ws is not None and notices.remember(ws, notices.handler_key(fn), error.message):
        error.visible = False
    return error


def session(request: gr.Request | None) -> Workspace:
    """The workspace of the browser session (or API client) that sent `request`."""
    session_id = getattr(request, "session_hash", None) if request is not None else None
    client = getattr(getattr(request, "client", None), "host", None)
    return REGISTRY.get(session_id or "", client=client)


def _api_signature(fn, names, *, progress: bool = False) -> inspect.Signature:
    """(request, <fn's parameters after ws>[, progress]): Gradio reads the request and progress
    slots from it and names the API's parameters after the rest (not param_0, param_1...)."""
    P = inspect.Parameter
    params = [P("request", P.POSITIONAL_OR_KEYWORD, annotation=gr.Request)]
    if names is not None:
        params += [P(n, P.POSITIONAL_OR_KEYWORD) for n in names]
    else:
        skip = 2 if progress else 1  # ws (and progress) are supplied here, not by the caller
        for p in list(inspect.signature(fn).parameters.values())[skip:]:
            if p.kind in (P.VAR_POSITIONAL, P.VAR_KEYWORD):
                raise TypeError(f"{fn.__name__} takes *args: give bind() the parameter names")
            params.append(p.replace(kind=P.POSITIONAL_OR_KEYWORD, annotation=P.empty))
    if progress:
        params.append(P("progress", P.POSITIONAL_OR_KEYWORD, default=gr.Progress()))
    return inspect.Signature(params)


def _finish(handler, fn, signature):
    handler.__name__ = fn.__name__
    handler.__doc__ = fn.__doc__
    try:  # declared types tell gr.api what the endpoint takes and returns
        hints = typing.get_type_hints(fn)
    except (NameError, TypeError):
        hints = {}
    returns = hints.get("return")
    handler.__annotations__ = {**{n: t for n, t in hints.items() if n in signature.parameters},
                               "request": gr.Request}
    if returns is not None:
        handler.__annotations__["return"] = returns
        signature = signature.replace(return_annotation=returns)
    handler.__signature__ = signature
    return handler


def bind(fn, names=None):
    """Adapt `fn(ws, *values)` into a Gradio handler `(request, *values)`.

    Generator functions stay generators (Gradio streams them). Exceptions become `gr.Error`
    with a sentence; unexpected ones are logged on the server with their traceback. `names`
    names the values for the API when `fn` takes them as *args.
    """
    if inspect.isgeneratorfunction(fn):
        def handler(request, *values):
            ws = None
            try:
                with session(request).using() as ws:
                    yield from _speaking_each_step(ws, fn(ws, *values))
            except GeneratorExit:
                raise
            except Exception as exc:
                raise _failed(exc, ws, fn) from None
    else:
        def handler(request, *values):
            ws = None
            try:
                with session(request).using() as ws, speaking(ws.lang):
                    try:
                        return localized(fn(ws, *values))
                    except Exception as exc:
                        raise to_gr_error(exc) from None  # worded in the session's language
            except Exception as exc:
                raise _failed(exc, ws, fn) from None
    return _finish(handler, fn, _api_signature(fn, names))


def _speaking_each_step(ws: Workspace, steps):
    """Run the generator `steps` in the session's language. Gradio resumes a generator on
    any worker thread, each with its own context, so the language is set for every step (and
    for the error a step raises, which is worded inside it)."""
    try:
        while True:
            with speaking(ws.lang):
                try:
                    item = localized(next(steps))
                except StopIteration:
                    return
                except Exception as exc:
                    raise to_gr_error(exc) from None
            yield item
    finally:  # a cancelled run (Stop, a closed tab) ends the trainer's generator now
        with speaking(ws.lang):
            steps.close()


def localized(result):
    """A handler's result with gpt_core's figures worded in the current language."""
    if isinstance(result, tuple):
        return tuple(localized(item) for item in result)
    if isinstance(result, list):
        return [localized(item) for item in result]
    if isinstance(result, dict) and isinstance(result.get("value"), go.Figure):  # a gr.update
        return {**result, "value": localize_figure(result["value"])}
    if isinstance(result, go.Figure):
        return localize_figure(result)
    return result


def bind_form(fn, fields, extra=()):
    """Like `bind` for `fn(ws, form, *extra)`: the first `len(fields)` values arrive as the
    dict `form` by field name; the API names its parameters `fields` then `extra`."""
    n = len(fields)
    if inspect.isgeneratorfunction(fn):
        def by_name(ws, *values):
            yield from fn(ws, dict(zip(fields, values[:n])), *values[n:])
    else:
        def by_name(ws, *values):
            return fn(ws, dict(zip(fields, values[:n])), *values[n:])
    return bind(functools.wraps(fn)(by_name), [*fields, *extra])


def bind_progress(fn):
    """Like `bind` for `fn(ws, progress, *values)`: `progress(fraction or (done, total) or None,
    desc=...)` reports to the browser's progress bar."""
    def handler(request, *values):
        *values, progress = values
        ws = None
        try:
            with session(request).using() as ws, speaking(ws.lang):
                try:
                    return localized(fn(ws, progress, *values))
                except Exception as exc:
                    raise to_gr_error(exc) from None  # worded in the session's language
        except Exception as exc:
            raise _failed(exc, ws, fn) from None
    return _finish(handler, fn, _api_signature(fn, None, progress=True))


def guard(fn):
    """A handler that needs no session's state: its errors turned into readable messages, in
    the language of the session that asked if it has one (none is made for it)."""
    def handler(request, *values):
        session_id = getattr(request, "session_hash", None) or ""
        lang = REGISTRY.get(session_id).lang if session_id in REGISTRY else None
        try:
            with speaking(lang):
                return localized(fn(*values))
        except Exception as exc:
            with speaking(lang):
                raise to_gr_error(exc) from None
    P = inspect.Parameter
    request = P("request", P.POSITIONAL_OR_KEYWORD, annotation=gr.Request)
    params = list(inspect.signature(fn).parameters.values())
    handler.__name__ = fn.__name__
    handler.__doc__ = fn.__doc__
    handler.__annotations__ = {"request": gr.Request}
    handler.__signature__ = inspect.Signature([request, *params])
    return handler


def release_session(request: gr.Request) -> None:
    """The browser tab closed: stop its run and free its memory."""
    session_id = getattr(request, "session_hash", None)
    if session_id:
        REGISTRY.release(session_id)


def stop_button(*, live: bool):
    """A Stop button's update: live and red only while there is something to stop, greyed out
    otherwise (the Train and Generate tabs alike)."""
    return gr.update(interactive=live, variant="stop" if live else "secondary")


def explain_failures(area, *events, then=None, reset=()):
    """When one of `events` ((event, fn) pairs: fn is what the event runs) fails, draw its
    sentence in the tab's message `area`, with `then(ws)` after it (what stays as it was), and
    empty the components `reset` (an upload that was refused)."""
    for event, fn in events:
        notices.SHOWN_IN_PAGE.add(notices.handler_key(fn))
        event.failure(bind(_show_failure(fn, then, len(reset))), None, [area, *reset], api_name=False,
                      queue=False, show_progress="hidden")


def _show_failure(fn, then, resets: int):
    key = notices.handler_key(fn)

    def show(ws):
        message = notices.take(ws, key)
        if message is None:  # cancelled, or refused by Gradio before our code ran
            shown = (gr.update(),) * (1 + resets)
        else:
            shown = (notices.error_markdown(message, then=then(ws) if then else ""), *(None,) * resets)
        return shown if resets else shown[0]  # Gradio takes one output's value bare

    show.__name__ = show.__qualname__ = f"show_failure_of_{fn.__name__}"
    return show


def clear_on(area, *triggers) -> None:
    """Empty the message `area` in the browser when any of `triggers` fires (the input it was
    about changed, or a new try began)."""
    gr.on(list(triggers), None, None, area, js=notices.CLEAR_JS, api_name=False, queue=False,
          show_progress="hidden")
