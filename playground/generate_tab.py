"""Generate tab: streaming text, the next-token candidates chart, the book's sampling lab."""
from __future__ import annotations

import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Iterator

import gradio as gr
import torch

from gpt_core import bf16_matvec
from gpt_core.generate import next_token_distribution, stream_generate
from gpt_core.precision import Precision, precision_for
from gpt_core.plots import candidates_figure, message_figure, sampling_lab_figure
from gpt_core.render import GENERATION_KEY, generation_html, message_html
from gpt_core.sampling import STAGES, TOY_INVERSE_VOCAB, temperature_lab

from . import inspector
from .common import LIMITS, clear_on, explain_failures, guard, stop_button
from .explain import INFO
from .fields import form_number
from .formatting import counted
from .i18n import tr, translate_message
from .inspector import new_trace
from .notices import message_area
from .models import copies_held, resolve
from .options import DEFAULT_GENERATION_PRECISION, GENERATION_PRECISION_CHOICES, generation_precision, precision_sentence
from .prompts import Prompt, prepare_prompt
from .session import Workspace

# Browsers redraw text ~20 times a second at most; more frequent updates only cost bandwidth.
STREAM_INTERVAL_S = 0.05
MAX_PROMPT_CHARS = 5_000
OUTPUT_KEY = "generated"  # in ws.ui: the last generation (prompt as seen, continuation, what it did), redrawn on a language switch


def sampling_options(temperature, top_k, top_p, seed) -> dict:
    """Slider values -> generate() options: top-k 0 and top-p 1 mean "off", no seed = random."""
    t = form_number(temperature, "Temperature", 0.0, 5.0)
    k = form_number(top_k, "Top-k", 0, 100_000, whole=True, empty=0)
    p = form_number(top_p, "Top-p", 0.0, 1.0, empty=1.0)
    if p == 0:
        raise ValueError("Top-p must be above 0 (1 keeps every token).")
    s = form_number(seed, "Seed", 0, 2**31 - 1, whole=True, empty=None)
    return dict(temperature=t, top_k=k or None, top_p=p if p < 1 else None, seed=s)


def _prompt(ws: Workspace, tok, prompt, context_length: int) -> Prompt:
    return prepare_prompt(tok, prompt, context_length, ws.text, max_chars=MAX_PROMPT_CHARS)


@dataclass(frozen=True)
class Generated:
    """What a finished generation did, for the line under its text."""
    tokens: int
    seconds: float  # from the call to the last token: the copies of the weights made first included
    precision: Precision  # the arithmetic it ran in, and why
    without_kernel: str | None = None  # bf16_matvec's sentence when Fast ran on a CPU without its kernel


def _kernel_missing(precision: Precision, device: torch.device) -> str | None:
    """Fast on a CPU multiplies one row at a time with bf16_matvec's kernel; where that cannot
    run (it answers None), torch's product does, no faster than float32: its sentence says why."""
    if precision.name != "bfloat16" or device.type != "cpu":
        return None
    return None if bf16_matvec.available() else bf16_matvec.status()


def _continuations(ws: Workspace, model_choice, prompt, max_new_tokens, temperature, top_k, top_p, seed,
                   stop_at_eot, precision):
    """(the prompt as the model sees it, the continuation so far, None), a few times a second,
    then the whole continuation with what the generation did (Generated)."""
    # The values first: the API's reach here unchecked by any slider or radio.
    n = form_number(max_new_tokens, "Max new tokens", 1, ws.limits.max_new_tokens, whole=True)
    options = sampling_options(temperature, top_k, top_p, seed)
    requested = generation_precision(precision)
    model, tok, cfg = resolve(ws, model_choice)
    seen = _prompt(ws, tok, prompt, cfg.context_length)
    device = next(model.parameters()).device
    arithmetic = precision_for(requested, device)
    eos = tok.eot_id if stop_at_eot else None
    text = ""
    # The copies of the weights it decodes with are reserved first: a refusal changes nothing.
    with copies_held(ws, model_choice, model, arithmetic.dtype):
        yield seen, text, None
        start = last = time.monotonic()
        trace = new_trace(ws, tok, prompt, options)  # for the inspector, from generation's own logits
        for piece in stream_generate(model, tok, seen.ids, n, eos_id=eos, on_step=trace.record, precision=requested,
                                     **options):
            text += piece
            if time.monotonic() - last >= STREAM_INTERVAL_S:
                last = time.monotonic()
                yield seen, text, None
        done = Generated(len(trace.tokens), time.monotonic() - start, arithmetic, _kernel_missing(arithmetic, device))
    yield seen, text, done


def generate_text(ws: Workspace, model_choice: str | None, prompt: str, max_new_tokens: float, temperature: float,
                  top_k: float, top_p: float, seed: float | None, stop_at_eot: bool,
                  precision: str = DEFAULT_GENERATION_PRECISION) -> Iterator[str]:
    """Stream the prompt's continuation (the whole prompt + the new text, updated as tokens
    arrive; a prompt the model cannot read is replaced by its text's first characters).
    `precision`: float32 (Exact, the default), bfloat16 (Fast) or auto, as the tab's radio sends it."""
    for seen, text, _ in _continuations(ws, model_choice, prompt, max_new_tokens, temperature, top_k, top_p, seed,
                                        stop_at_eot, precision):
        yield seen.cut + seen.text + text


def generate_view(ws: Workspace, model_choice, prompt, max_new_tokens, temperature, top_k, top_p,
                  seed, stop_at_eot, precision=DEFAULT_GENERATION_PRECISION):
    """The page's view of generate_text: the prompt and the continuation apart, what was done
    to the prompt (cut to the context, replaced) said above them, and once it ends, what the
    generation did (tokens, speed, precision) in a line under them."""
    for seen, text, done in _continuations(ws, model_choice, prompt, max_new_tokens, temperature, top_k, top_p,
                                           seed, stop_at_eot, precision):
        ws.ui[OUTPUT_KEY] = (seen, text, done)
        yield output_html(seen, text), status_line(done)


def output_in_language(ws: Workspace) -> tuple[str, str]:
    """The last generation's view and line in the session's language (after a language switch)."""
    seen, text, done = ws.ui.get(OUTPUT_KEY, (None, "", None))
    return output_html(seen, text), status_line(done)


def status_line(done: Generated | None) -> str:
    """What a finished generation did, in a line (Markdown): its tokens and their speed, its
    precision and why, and when Fast ran without its kernel, that too. Empty while it runs."""
    if done is None:
        return ""
    rate = done.tokens / done.seconds if done.seconds > 0 else 0.0
    line = tr("Generated {tokens} in {seconds} ({rate}).", tokens=counted(done.tokens, "token"),
              seconds=tr("{n} s", n=f"{done.seconds:.2f}"), rate=tr("{rate} tokens/s", rate=f"{rate:,.0f}"))
    line += " " + precision_sentence(done.precision)
    if done.without_kernel:
        why = translate_message(done.without_kernel)
        line += " " + tr("{why}: Fast may be no faster than Exact here.", why=why[:1].upper() + why[1:])
    return line


def output_html(seen: Prompt | None, continuation: str = "") -> str:
    if seen is None:
        return ("<div class='gen-text' style='color:#6b7280;padding:10px 0'>"
                + tr("The prompt and the model's continuation appear here, told apart.") + "</div>")
    notes = "".join(message_html(n, kind="info") for n in seen.notes)
    key = {part: tr(words) for part, words in GENERATION_KEY.items()}
    return notes + generation_html(seen.text, continuation, cut=seen.cut, key=key)


def candidates(ws: Workspace, model_choice, prompt, temperature, top_k, top_p, seed=None):
    """The next-token chart for the prompt under the current sliders."""
    model, tok, cfg = resolve(ws, model_choice)
    options = sampling_options(temperature, top_k, top_p, seed)
    ids = _prompt(ws, tok, prompt, cfg.context_length).ids
    idx = torch.tensor([ids], dtype=torch.long, device=next(model.parameters()).device)
    dist = next_token_distribution(model, idx, temperature=options["temperature"], top_k=options["top_k"],
                                   top_p=options["top_p"], top_n=12, tokenizer=tok)
    labels = [c.label for c in dist.candidates]
    stages = {name: [c.probs[name] for c in dist.candidates] for name in STAGES}
    if options["top_k"] is None:
        stages.pop("top_k")
    if options["top_p"] is None:
        stages.pop("top_p")
    settings = tr("temperature {t}, top-k {top_k}, top-p {top_p}; {kept} tokens can be drawn",
                  t=f"{options['temperature']:g}" + ("" if options["temperature"] else tr(" = greedy")),
                  top_k=options["top_k"] or tr("off"), top_p=options["top_p"] or tr("off"),
                  kept=f"{dist.kept.get('top_p', dist.kept.get('temperature', 0)):,}")
    return candidates_figure(labels, stages, settings=settings)


def candidates_or_note(ws: Workspace, model_choice, prompt, temperature, top_k, top_p):
    """The candidates chart, or an empty chart saying why there is none (no model yet, an
    empty prompt): shown without a pop-up when the tab opens or after generating."""
    try:
        return candidates(ws, model_choice, prompt, temperature, top_k, top_p)
    except ValueError as e:
        return message_figure(str(e), title="Next-token candidates")


def sampling_lab(temperature, draws, seed):
    """The book's toy vocabulary: probabilities at a temperature and counts of `draws` samples."""
    t = form_number(temperature, "Temperature", 0.01, 10.0)
    n = form_number(draws, "Draws", 1, 10_000, whole=True)
    s = form_number(seed, "Seed", 0, 2**31 - 1, whole=True, empty=None)
    reference, run = temperature_lab([1.0, t], num_samples=n, seed=s)
    words = [TOY_INVERSE_VOCAB[i] for i in range(len(run.probs))]
    return sampling_lab_figure(words, run.probs, run.counts, temperature=t, draws=n,
                               reference=reference.probs if t != 1.0 else None)


def layout() -> SimpleNamespace:
    """The tab, made where it is called (inside the page's gr.Tabs)."""
    with gr.Tab("3 · Generate", id="generate") as tab:
        with gr.Row():
            with gr.Column(scale=1, min_width=320):
                # Choices are filled per session when the tab opens; an API client never opens it, so
                # any value passes here and models.resolve() checks it on the server.
                model = gr.Dropdown([], label="Model", allow_custom_value=True)
                prompt = gr.Textbox("Every effort moves you", label="Prompt", lines=3)
                max_new = gr.Slider(1, LIMITS.max_new_tokens, value=50, step=1, label="Max new tokens",
                                    info=INFO["max_new"], elem_id="max-new")
                temperature = gr.Slider(0, 2, value=1.0, step=0.05, label="Temperature (0 = greedy)",
                                        info=INFO["temperature"], elem_id="temperature")
                top_k = gr.Slider(0, 200, value=25, step=1, label="Top-k (0 = off)", info=INFO["top_k"],
                                  elem_id="top-k")
                top_p = gr.Slider(0.05, 1, value=1.0, step=0.05, label="Top-p (1 = off)", info=INFO["top_p"],
                                  elem_id="top-p")
                with gr.Row():
                    seed = gr.Number(123, label="Seed (empty = random)", precision=0)
                    stop_eot = gr.Checkbox(True, label="Stop at end-of-text")
                precision = gr.Radio(list(GENERATION_PRECISION_CHOICES.items()), value=DEFAULT_GENERATION_PRECISION,
                                     label="Precision", info=INFO["generate_precision"], elem_id="generate-precision")
                with gr.Row():
                    button = gr.Button("Generate", variant="primary", elem_id="generate-btn")
                    # Live only while a generation runs, as Train's Stop: greyed out, it is never
                    # pressed for nothing.
                    stop = gr.Button("Stop", variant="secondary", interactive=False, elem_id="generate-stop")
                message = message_area("generate-message")
            with gr.Column(scale=2):
                gr.Markdown("**Output**")
                output = gr.HTML(output_html(None), elem_id="generate-output")
                status = gr.Markdown(elem_id="generate-status")  # what the last generation did
                cand_btn = gr.Button("Show next-token candidates for the prompt", size="sm")
                cand_chart = gr.Plot(label="Next-token candidates", show_label=False, elem_id="candidates-chart")
                inspector_ui = inspector.layout()
        with gr.Accordion("Sampling lab: the book's 9-word example", open=True):
            gr.Markdown("After *every effort moves you* the book's toy model gives these nine words "
                        "logits. Move the temperature and see how the probabilities and the counts "
                        "of 1,000 draws change.")
            with gr.Row():
                lab_temp = gr.Slider(0.05, 5, value=1.0, step=0.05, label="Temperature", scale=2,
                                     elem_id="lab-temperature")
                lab_draws = gr.Number(1000, label="Draws", precision=0, scale=1)
                lab_seed = gr.Number(123, label="Seed", precision=0, scale=1)
            lab_chart = gr.Plot(label="Sampling lab", show_label=False, elem_id="lab-chart")
    return SimpleNamespace(tab=tab, model=model, prompt=prompt, max_new=max_new, temperature=temperature,
                           top_k=top_k, top_p=top_p, seed=seed, stop_eot=stop_eot, precision=precision, button=button,
                           stop=stop, message=message, output=output, status=status, cand_btn=cand_btn,
                           cand_chart=cand_chart,
                           inspector=inspector_ui, lab_temp=lab_temp, lab_draws=lab_draws, lab_seed=lab_seed,
                           lab_chart=lab_chart)


def candidate_inputs(ui: SimpleNamespace) -> list:
    return [ui.model, ui.prompt, ui.temperature, ui.top_k, ui.top_p]


def _stop_live():
    return stop_button(live=True)


def _stop_idle():
    return stop_button(live=False)


def wire(ui: SimpleNamespace, bind, *, concurrency_id: str, concurrency_limit: int) -> None:
    """Generate (streamed), Stop, the candidates chart (redrawn as the sampling sliders move),
    the inspector, and the sampling lab; what runs a model, in the page's group for that.
    Opening the tab is the page's to wire: the model lists of three tabs first."""
    group = dict(concurrency_id=concurrency_id, concurrency_limit=concurrency_limit)
    cand_inputs = candidate_inputs(ui)
    inputs = [ui.model, ui.prompt, ui.max_new, ui.temperature, ui.top_k, ui.top_p, ui.seed, ui.stop_eot, ui.precision]
    # The page shows the prompt and the continuation apart, then what the generation did; the API returns the text.
    # Stop turns live before the generation starts (unqueued, then the generation chained to
    # it), and greys out again when it ends, fails or is stopped.
    live = ui.button.click(_stop_live, None, ui.stop, queue=False, api_name=False, show_progress="hidden")
    event = live.then(bind(generate_view), inputs, [ui.output, ui.status], api_name=False,
                      show_progress="minimal", show_progress_on=[ui.output], **group)
    event.then(_stop_idle, None, ui.stop, queue=False, api_name=False, show_progress="hidden")
    gr.api(bind(generate_text), api_name="generate", **group)
    event.then(bind(candidates_or_note), cand_inputs, ui.cand_chart, api_name=False, show_progress="hidden")
    inspector.wire(ui.inspector, event, bind)
    ui.stop.click(_stop_idle, None, ui.stop, cancels=[event], queue=False, api_name=False, show_progress="hidden")
    cand_event = ui.cand_btn.click(bind(candidates), cand_inputs, ui.cand_chart, api_name="candidates", **group)
    explain_failures(ui.message, (event, generate_view), (cand_event, candidates))
    # .input: dragging a slider or typing its value, not programmatic updates.
    for slider in (ui.temperature, ui.top_k, ui.top_p):
        slider.input(bind(candidates_or_note), cand_inputs, ui.cand_chart, api_name=False,
                     concurrency_id=concurrency_id, trigger_mode="always_last", show_progress="hidden")
    lab_inputs = [ui.lab_temp, ui.lab_draws, ui.lab_seed]
    # Drawn on load by the page, once the session's language is known (app.py's redraw).
    ui.lab_temp.input(guard(sampling_lab), lab_inputs, ui.lab_chart, api_name="sampling_lab",
                      trigger_mode="always_last", show_progress="hidden")
    for box in (ui.lab_draws, ui.lab_seed):
        box.submit(guard(sampling_lab), lab_inputs, ui.lab_chart, api_name=False)
    clear_on(ui.message, ui.model.input, ui.prompt.input, ui.max_new.input, ui.temperature.input,
             ui.top_k.input, ui.top_p.input, ui.seed.input, ui.precision.input, ui.button.click, ui.cand_btn.click)
