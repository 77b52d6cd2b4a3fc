"""What every tab shares: the session registry, server settings, and the glue that turns a
workspace function into a Gradio handler whose errors read as sentences.

Handlers in this package take the session's `Workspace` as their first argument and plain
values after it, so tests call them directly; `bind` adapts them for Gradio.
"""
import inspect
import logging
import os
import typing
from dataclasses import dataclass

import gradio as gr

from gpt_core.corpus import CorpusError
from .limits import Limits
from .server import SharedModels, WorkspaceRegistry
from .session import Workspace, WorkspaceError

log = logging.getLogger("playground")


def _env_int(name: str, default: int, *, minimum: int = 1) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return value


@dataclass(frozen=True)
class ServerSettings:
    """Queue and upload limits, derived from the machine and overridable by environment."""
    cores: int
    train_concurrency: int
    generate_concurrency: int
    queue_size: int
    max_upload_mb: int
    on_spaces: bool

    @classmethod
    def from_env(cls) -> "ServerSettings":
        cores = os.cpu_count() or 1
        on_spaces = bool(os.environ.get("SPACE_ID"))
        return cls(
            cores=cores,
            # Training takes all of its threads; two runs per core pair keeps each usable.
            train_concurrency=_env_int("PLAYGROUND_TRAIN_CONCURRENCY", max(1, cores // 2)),
            generate_concurrency=_env_int("PLAYGROUND_GENERATE_CONCURRENCY", max(2, cores)),
            # Opening the page queues 3 events; 40 students opening it at once filled a queue
            # of 100 and got "Queue is full" (benchmarks/load_classroom.py). Waiting events
            # cost almost nothing: room for ~80 students opening, training and generating.
            queue_size=_env_int("PLAYGROUND_QUEUE_SIZE", 500),
            # A GPT-2 124M checkpoint is ~500 MB and the book's model.pth ~650 MB.
            max_upload_mb=_env_int("PLAYGROUND_MAX_UPLOAD_MB", 200 if on_spaces else 1024),
            on_spaces=on_spaces,
        )


SETTINGS = ServerSettings.from_env()
# A session training the book's 124M holds ~2.7 GB (weights, AdamW state, a step's activations;
# measured), so five of them would take a free Space's 16 GB from everyone. There a session
# trains up to 20M parameters (the demo preset is 13M, ~0.2-0.4 GB) unless the variable says
# otherwise; on your own machine the default (200M) stands.
LIMITS = Limits.from_env({"PLAYGROUND_MAX_TRAIN_PARAMETERS": "20000000", **os.environ}
                         if SETTINGS.on_spaces else None)
REGISTRY = WorkspaceRegistry(LIMITS)
# GPT-2 weights loaded in this process, shared read-only by every session.
SHARED = SharedModels(max_models=_env_int("PLAYGROUND_MAX_SHARED_MODELS", 2))

# Exceptions whose message is already a sentence for the user.
USER_ERRORS = (CorpusError, WorkspaceError, ValueError, FileNotFoundError, PermissionError,
               ConnectionError, TimeoutError)


def friendly_message(exc: BaseException) -> str:
    """A readable sentence for any exception (never a traceback)."""
    if isinstance(exc, gr.Error):
        return exc.message
    if isinstance(exc, MemoryError) or "out of memory" in str(exc).lower():
        return ("The server ran out of memory for this. Choose a smaller model, batch size or "
                "context length.")
    if isinstance(exc, USER_ERRORS):
        text = str(exc).strip() or type(exc).__name__
        return text[0].upper() + text[1:]
    return (f"Something went wrong ({type(exc).__name__}: {str(exc)[:200]}). "
            "Your work in this session is unchanged; try again or reload the page.")


def to_gr_error(exc: BaseException) -> gr.Error:
    if isinstance(exc, gr.Error):
        return exc
    if not isinstance(exc, USER_ERRORS):
        log.exception("unexpected error in a handler", exc_info=exc)
    return gr.Error(friendly_message(exc), print_exception=False)


def session(request: gr.Request | None) -> Workspace:
    """The workspace of the browser session (or API client) that sent `request`."""
    session_id = getattr(request, "session_hash", None) if request is not None else None
    return REGISTRY.get(session_id or "")


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
    handler.__annotations__ = {"request": gr.Request}
    try:  # a declared return type tells gr.api what the endpoint returns
        returns = typing.get_type_hints(fn).get("return")
    except (NameError, TypeError):
        returns = None
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
            try:
                ws = session(request)
                yield from fn(ws, *values)
            except GeneratorExit:
                raise
            except Exception as exc:
                raise to_gr_error(exc) from None
    else:
        def handler(request, *values):
            try:
                return fn(session(request), *values)
            except Exception as exc:
                raise to_gr_error(exc) from None
    return _finish(handler, fn, _api_signature(fn, names))


def bind_progress(fn):
    """Like `bind` for `fn(ws, progress, *values)`: `progress(fraction or (done, total) or None,
    desc=...)` reports to the browser's progress bar."""
    def handler(request, *values):
        *values, progress = values
        try:
            return fn(session(request), progress, *values)
        except Exception as exc:
            raise to_gr_error(exc) from None
    return _finish(handler, fn, _api_signature(fn, None, progress=True))


def return_freed_memory_promptly(threshold_bytes: int = 4 << 20) -> bool:
    """Have glibc's malloc serve blocks of `threshold_bytes` and more with their own mmap.

    A session's weights and AdamW state are tensors of a few MB to a few hundred MB. glibc
    raises its mmap threshold (up to 32 MB) after the first such block is freed, and the
    next ones then come from per-thread heaps that are rarely given back: with 4 students
    the server kept ~590 MB after they left. With a fixed 4 MB threshold it kept ~70 MB
    (benchmarks/load_classroom.py). Smaller blocks (a step's activations) are unaffected.
    Returns False where it does not apply (not glibc) or MALLOC_MMAP_THRESHOLD_ is set.
    """
    if os.environ.get("MALLOC_MMAP_THRESHOLD_"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(-3, int(threshold_bytes)))  # -3: M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        return False


def guard(fn):
    """A handler that needs no session: only its errors turned into readable messages."""
    def handler(*values):
        try:
            return fn(*values)
        except Exception as exc:
            raise to_gr_error(exc) from None
    handler.__name__ = fn.__name__
    handler.__doc__ = fn.__doc__
    handler.__signature__ = inspect.signature(fn)
    return handler


def release_session(request: gr.Request) -> None:
    """The browser tab closed: stop its run and free its memory."""
    session_id = getattr(request, "session_hash", None)
    if session_id:
        REGISTRY.release(session_id)
