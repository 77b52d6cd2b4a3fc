"""GPT pretraining playground: bring a text, watch a GPT learn it, sample it, load GPT-2.

Run `python app.py` and open http://127.0.0.1:7860. This file only lays out the page and wires
events; the handlers live in `playground/` and the machine learning in `gpt_core/`.
"""
import os
import signal

# Several users' training and generation share the cores. OpenMP threads that spin while they
# wait make that sharing ~10x slower (measured on 2 cores); sleeping waiters do not. Set before
# torch is imported; an explicit OMP_WAIT_POLICY in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from gpt_core.heap import share_one_heap  # noqa: E402

# Before the server starts its worker threads: they train from the main heap, whose freed pages
# a run keeps for its next step (gpt_core/heap.py), instead of heaps of their own.
share_one_heap()

import gradio as gr  # noqa: E402
from starlette.middleware import Middleware  # noqa: E402

from gpt_core.corpus import DEFAULT_CORPUS, SAMPLE_CORPORA  # noqa: E402
from gpt_core.plots import loss_figure  # noqa: E402
from playground import (attention_tab, compare, data_tab, evaluate_tab, explain, generate_tab, gpt2_tab,  # noqa: E402
                        inspector, page, replay, share, train_tab)
from playground.common import (LIMITS, REGISTRY, SETTINGS, bind, bind_form, bind_progress, clear_on, guard,  # noqa: E402
                               explain_failures, release_session)
from playground.files import EXPORTS, LINKS, remove_leftovers  # noqa: E402
from playground.chart_zoom import KEEP_ZOOM_HEAD  # noqa: E402
from playground.http_limits import BodyLimit  # noqa: E402
from playground.link_language import LinkLanguage  # noqa: E402
from playground.i18n import (BROWSER_LANGUAGE_JS, CHANGE_LOCALE_JS, I18N, LANGUAGES,  # noqa: E402
                             localize_layout, relabel, set_language)
from playground.memory import return_freed_memory_promptly  # noqa: E402
from playground.notices import message_area  # noqa: E402
from playground.options import (DEFAULT_PRESET_LABEL, FORM_FIELDS, MODEL_FIELDS, PRESET_CHOICES,  # noqa: E402
                                PRECISION_CHOICES, START_FROM, preset_fields)
from playground.preset_fit import FITTED_FIELDS  # noqa: E402

CSS = """
.gradio-container {max-width: 1400px !important}
#progress-box {min-height: 64px}
#gpt2-status {min-height: 90px}
.token-view {max-height: 360px; overflow-y: auto; padding: 6px; border: 1px solid #e5e7eb; border-radius: 6px}
#eval-a .token-view, #eval-b .token-view {max-height: 480px}
#download-ckpt .download-link, #compare-links .download-link {display: flex; align-items: center; justify-content: center; height: 100%;
  box-sizing: border-box;
  padding: var(--size-1) var(--size-2); border: 1px solid var(--button-secondary-border-color);
  border-radius: var(--button-small-radius); background: var(--button-secondary-background-fill);
  color: var(--button-secondary-text-color); font-size: var(--button-small-text-size);
  font-weight: var(--button-small-text-weight); text-decoration: none}
#download-ckpt span.download-link {opacity: 0.5; cursor: not-allowed}
#download-ckpt {flex: 1 1 0 !important; margin: 0 !important}
#download-ckpt .html-container {padding: 0 !important; height: 100%}
#download-ckpt .html-container > div {height: 100%}
""" + page.CSS + share.CSS + compare.CSS
# The checkpoint's link (our route, for this session only), or a disabled button without one.
DOWNLOAD_TEMPLATE = ("${value ? `<a class='download-link' href='${value}' download>Download checkpoint</a>`"
                     " : `<span class='download-link' aria-disabled='true'>Download checkpoint</span>`}")



def build_app() -> gr.Blocks:
    model0, train0, tokenizer0 = preset_fields(DEFAULT_PRESET_LABEL)  # the form starts as the default preset
    tokenizer0 = data_tab.TOKENIZER_LABELS[tokenizer0]
    with gr.Blocks(title="Watch a GPT learn", delete_cache=(1800, 3600)) as demo:
        with gr.Row(equal_height=True, elem_id="intro-row"):
            gr.Markdown(page.INTRO)
            language = gr.Radio([(name, code) for code, name in LANGUAGES.items()], value="en",
                                label="Language", elem_id="language", scale=0, min_width=170)
        share_ui = share.layout()  # presenter mode, and a link to these settings (playground/share.py)
        with gr.Tabs(overflow_behavior="wrap"):  # on a phone every tab shows, on two rows
            # --- Data ---------------------------------------------------------------------
            with gr.Tab("1 · Data", id="data") as data_tab_ui:
                with gr.Row():
                    with gr.Column(scale=1):
                        sample = gr.Dropdown(list(SAMPLE_CORPORA), value=DEFAULT_CORPUS, label="Sample text")
                        upload = gr.File(label="...or upload a .txt (any common encoding)", elem_id="text-upload",
                                         file_types=[".txt", ".md", ".csv", ".text"], type="filepath",
                                         height=150)
                        pasted = gr.Textbox(label="...or paste a text", lines=4, max_lines=8,
                                            placeholder="Paste at least a few paragraphs here")
                        paste_btn = gr.Button("Use the pasted text")
                        data_message = message_area("data-message")
                        data_tokenizer = gr.Radio(list(data_tab.TOKENIZERS), value=tokenizer0,
                                                  label="Tokenizer to show (the Train tab uses the same)")
                    with gr.Column(scale=2):
                        summary = gr.Markdown(elem_id="data-summary")
                        explain.numbers_note(explain.DATA_NUMBERS, "data-numbers")
                        data_warnings = gr.HTML(elem_id="data-warnings")
                        gr.Markdown("**The first tokens, as the model sees them** (hover a token for its id)")
                        token_view = gr.HTML()
                        preview = gr.Textbox(label="The text", lines=8, max_lines=8, interactive=False)

            # --- Train --------------------------------------------------------------------
            with gr.Tab("2 · Train", id="train") as train_tab_ui:
                with gr.Row():
                    with gr.Column(scale=1, min_width=340):
                        preset = gr.Dropdown(list(PRESET_CHOICES), value=DEFAULT_PRESET_LABEL, label="Preset")
                        tokenizer = gr.Radio(list(data_tab.TOKENIZERS), value=tokenizer0, label="Tokenizer")
                        start_from = gr.Radio(list(START_FROM), value=START_FROM[0], label="Start from")
                        precision = gr.Radio(list(PRECISION_CHOICES), value=train0["precision"], label="Precision")
                        with gr.Accordion("Model (the book's GPT_CONFIG fields)", open=False):
                            with gr.Row():
                                context_length = gr.Number(model0["context_length"], label="context_length", precision=0)
                                emb_dim = gr.Number(model0["emb_dim"], label="emb_dim", precision=0)
                            with gr.Row():
                                n_heads = gr.Number(model0["n_heads"], label="n_heads", precision=0)
                                n_layers = gr.Number(model0["n_layers"], label="n_layers", precision=0)
                            with gr.Row():
                                drop_rate = gr.Number(model0["drop_rate"], label="drop_rate")
                                qkv_bias = gr.Checkbox(model0["qkv_bias"], label="qkv_bias")
                        with gr.Accordion("Training options", open=False):
                            with gr.Row():
                                num_epochs = gr.Number(train0["num_epochs"], label="Epochs", precision=0)
                                batch_size = gr.Number(train0["batch_size"], label="Batch size", precision=0)
                            # The BabyGPT notebook's way: N iterations over random windows, 80/20 split.
                            iterations = gr.Number(train0["iterations"], label="Iterations over random windows (0 = epochs over "
                                                   "sliding windows, the book's way)", precision=0)
                            with gr.Row():
                                learning_rate = gr.Number(train0["learning_rate"], label="Learning rate")
                                weight_decay = gr.Number(train0["weight_decay"], label="Weight decay")
                            with gr.Row():
                                stride = gr.Number(train0["stride"], label="Stride (0 = context length)", precision=0)
                                warmup_steps = gr.Number(train0["warmup_steps"], label="Warmup steps", precision=0)
                            with gr.Row():
                                cosine = gr.Checkbox(train0["cosine"], label="Cosine decay")
                                grad_clip = gr.Number(train0["grad_clip"], label="Gradient clipping (0 = off)")
                            with gr.Row():
                                label_smoothing = gr.Number(train0["label_smoothing"], label="Label smoothing")
                                seed = gr.Number(train0["seed"], label="Seed", precision=0)
                            with gr.Row():
                                eval_freq = gr.Number(train0["eval_freq"], label="Evaluate every (steps)", precision=0)
                                eval_iter = gr.Number(train0["eval_iter"], label="Evaluation batches", precision=0)
                            start_context = gr.Textbox(train0["start_context"], label="Start context (sampled after each epoch)")
                        estimate = gr.Markdown(elem_id="train-estimate")
                        measure_btn = gr.Button("Measure speed on this machine", size="sm")
                        with gr.Row():
                            train_btn = gr.Button("Train", variant="primary", elem_id="train-btn")
                            # Live (and red) only while something can be stopped: train_view._buttons.
                            stop_btn = gr.Button("Stop", variant="secondary", interactive=False, elem_id="stop-btn")
                            resume_btn = gr.Button("Resume", elem_id="resume-btn")
                        train_message = message_area("train-message")
                        with gr.Accordion("Checkpoint", open=False):
                            with gr.Row():
                                save_ckpt = gr.Button("Save checkpoint", size="sm")
                                download_ckpt = gr.HTML("", html_template=DOWNLOAD_TEMPLATE, js_on_load=None,
                                                        apply_default_css=False, elem_id="download-ckpt")
                            upload_ckpt = gr.File(label="Upload a checkpoint (.pt / .pth: ours or the book's model.pth)",
                                                  file_types=[".pt", ".pth"], type="filepath", height=150)
                            ckpt_status = gr.Markdown()
                    with gr.Column(scale=2):
                        status = gr.Markdown("Ready. Press **Train**.", elem_id="train-status")
                        progress = gr.HTML(train_tab.progress_html(None), elem_id="progress-box")
                        chart = gr.Plot(loss_figure(), label="Loss", show_label=False, elem_id="loss-chart")
                        replay_ui = replay.layout()  # the run replayed under its curve
                        metrics = gr.Markdown(elem_id="train-metrics")
                        explain.numbers_note(explain.NUMBERS, "train-numbers")
                        samples = gr.Textbox(label="Samples after each epoch (random windows: at each evaluation), "
                                                   "newest first (greedy, from the start context)",
                                             lines=8, max_lines=14, interactive=False, elem_id="sample-log",
                                             autoscroll=False)
                        compare_ui = compare.layout()  # the session's runs on one chart, exported

            generate_ui = generate_tab.layout()  # --- 3 · Generate
            gpt2_ui = gpt2_tab.layout()  # --- 4 · GPT-2
            evaluate_ui = evaluate_tab.layout()  # --- 5 · Evaluate
            attention_ui = attention_tab.layout()  # --- 6 · Attention

        # === events =======================================================================
        data_inputs = [data_tokenizer, context_length, batch_size, stride, iterations]
        data_outputs = [summary, data_warnings, token_view, preview]
        # The Train form by name (options.FORM_FIELDS): handlers receive it as a dict.
        form = dict(tokenizer=tokenizer, preset=preset, context_length=context_length, emb_dim=emb_dim,
                    n_heads=n_heads, n_layers=n_layers, drop_rate=drop_rate, qkv_bias=qkv_bias,
                    num_epochs=num_epochs, batch_size=batch_size, learning_rate=learning_rate,
                    weight_decay=weight_decay, eval_freq=eval_freq, eval_iter=eval_iter,
                    warmup_steps=warmup_steps, cosine=cosine, grad_clip=grad_clip,
                    label_smoothing=label_smoothing, seed=seed, start_context=start_context, stride=stride,
                    iterations=iterations, precision=precision)
        for name, field in form.items():  # what each field means, under it (playground/explain.py)
            field.info = explain.INFO.get(name, field.info)
        spec_inputs = [form[k] for k in FORM_FIELDS]
        estimate_inputs = [*spec_inputs, start_from]
        preset_fills = [form[k] for k in train_tab.PRESET_FILLS]
        # What fitting a preset to the text sets (playground/preset_fit.py), then the estimate.
        fit_outputs = [form[k] for k in FITTED_FIELDS] + [estimate]

        def re_estimate(trigger, **kw):
            return trigger(bind_form(train_tab.estimate, FORM_FIELDS, ["start_from"]), estimate_inputs, estimate,
                           api_name=False, **kw)

        def refit(trigger):
            return trigger(bind_form(train_tab.fit, FORM_FIELDS, ["start_from"]), estimate_inputs, fit_outputs,
                           api_name=False)
        model_fields = [form[k] for k in MODEL_FIELDS]  # editing one turns the preset into "Custom"

        # A new text changes the batches per epoch, the fitted preset and the time estimate.
        data_events = (
            (sample.input(bind(data_tab.choose_sample), [sample, *data_inputs], data_outputs, api_name="choose_sample"),
             data_tab.choose_sample),
            (upload.upload(bind(data_tab.upload_text), [upload, *data_inputs], data_outputs, api_name="upload_text"),
             data_tab.upload_text),
            (paste_btn.click(bind(data_tab.use_pasted), [pasted, *data_inputs], data_outputs, api_name="use_text"),
             data_tab.use_pasted),
        )
        for event, _ in data_events:
            refit(event.success)
        # A refused text leaves the active one: the message says which (and the upload box empties).
        explain_failures(data_message, *data_events, then=data_tab.still_active, reset=[upload])
        # The two tokenizer radios mirror each other (.input: only what the user did).
        for radio, mirror in ((data_tokenizer, tokenizer), (tokenizer, data_tokenizer)):
            refit(radio.input(lambda v: v, radio, mirror, api_name=False).then(
                bind(data_tab.view), data_inputs, data_outputs, api_name=False).then)

        refit(preset.input(bind(train_tab.choose_preset), preset, [*preset_fills, tokenizer, data_tokenizer],
                           api_name=False).then).then(bind(data_tab.view), data_inputs, data_outputs, api_name=False)
        for field in model_fields:
            field.input(train_tab.mark_custom, preset, preset, api_name=False)
        for name in train_tab.PRESET_FILLS:
            # Each keystroke noted (outside the queue: it is a dict write), so that a fitting
            # under way leaves what the user is typing as typed (train_estimate.fit).
            form[name].input(bind(lambda ws, value, name=name: train_tab.note_typed(ws, name, value), ["value"]),
                             form[name], None, api_name=False, queue=False, show_progress="hidden")
        for field in preset_fills:
            # Numbers re-estimate when the user leaves the field, not at every keystroke.
            re_estimate(field.input if isinstance(field, (gr.Checkbox, gr.Radio)) else field.blur,
                        trigger_mode="always_last")
        re_estimate(start_from.input)
        measure_event = measure_btn.click(bind_form(train_tab.measure, FORM_FIELDS, ["start_from"]), estimate_inputs,
                                          estimate, api_name="measure", concurrency_id="train",
                                          concurrency_limit=SETTINGS.train_concurrency)

        # The replay's slider and frame follow every view of the run (playground/replay.py).
        run_outputs = [status, progress, chart, metrics, samples, download_ckpt, train_btn, resume_btn, stop_btn,
                       *replay_ui.outputs]
        # Trainings wait in the app's own queue (playground/train_queue.py), which shows each
        # student their place; Gradio only needs room for one waiting handler per session.
        train_event = train_btn.click(
            bind_form(replay.with_replay(train_tab.train, follow=True), FORM_FIELDS, ["start_from"]),
            [*spec_inputs, start_from], run_outputs,
            api_name="train",
            concurrency_id="train-queue", concurrency_limit=LIMITS.max_sessions,
            show_progress="minimal", show_progress_on=[status])
        resume_event = resume_btn.click(
            bind(replay.with_replay(train_tab.resume, follow=True)), None, run_outputs, api_name="resume",
            concurrency_id="train-queue", concurrency_limit=LIMITS.max_sessions,
            show_progress="minimal", show_progress_on=[status])
        # Stop: the flag at once (the trainer ends after its current step), the queued or
        # running event cancelled, then the final view once the run has ended.
        stop_event = stop_btn.click(bind(train_tab.request_stop), None, status, api_name=False, queue=False,
                                    cancels=[train_event, resume_event]).then(
            # A generator (it says "Stopping..." until a long step ends), so queued, in a group of its own.
            bind(replay.with_replay(train_tab.after_stop)), None, run_outputs, api_name=False,
            concurrency_id="stopping", concurrency_limit=None, show_progress="hidden")
        gr.api(bind(train_tab.stop), api_name="stop")
        compare.wire(compare_ui, (train_event, resume_event, stop_event), bind)
        # A shared link fills these (share.restore, on load); Copy link reads the form and the start.
        restored = dict(form, link_note=share_ui.note, data_tokenizer=data_tokenizer, start_from=start_from,
                        sample=sample, presenter=share_ui.presenter)
        share.wire(share_ui, [*spec_inputs, start_from], bind_form(share.copy_link, FORM_FIELDS, ["start_from", "present"]))
        ckpt_event = upload_ckpt.upload(bind(replay.with_replay(train_tab.upload_checkpoint, follow=True)), upload_ckpt,
                                        [ckpt_status, *run_outputs], api_name="upload_checkpoint")
        replay.wire(replay_ui, chart, bind(train_tab.loss_chart), bind)
        save_event = save_ckpt.click(bind(train_tab.prepare_download), None, [download_ckpt, ckpt_status],
                                     api_name="save_checkpoint")
        explain_failures(train_message, (train_event, train_tab.train), (resume_event, train_tab.resume),
                         (measure_event, train_tab.measure), (save_event, train_tab.prepare_download))
        explain_failures(train_message, (ckpt_event, train_tab.upload_checkpoint), then=train_tab.model_unchanged,
                         reset=[upload_ckpt])

        # The model lists of three tabs are refreshed when one opens; Generate then draws its candidates.
        pickers = [generate_ui.model, evaluate_ui.model_a, evaluate_ui.model_b]
        evaluate_ui.tab.select(bind(train_tab.model_dropdowns), pickers, pickers, api_name=False)
        generate_ui.tab.select(bind(train_tab.model_dropdowns), pickers, pickers, api_name=False).then(
            bind(generate_tab.candidates_or_note), generate_tab.candidate_inputs(generate_ui), generate_ui.cand_chart,
            api_name=False, show_progress="hidden")
        # Everything that runs a model (generation, scoring, attention) shares one group.
        running_a_model = dict(concurrency_id="generate", concurrency_limit=SETTINGS.generate_concurrency)
        generate_tab.wire(generate_ui, bind, **running_a_model)
        gpt2_tab.wire(gpt2_ui, bind_progress)

        # A message stays until its tab's input changes or a new try begins; a new text or
        # preset starts the Train tab (and Evaluate's validation text) afresh too.
        new_text = [sample.input, upload.upload, paste_btn.click]
        clear_on(data_message, *new_text, pasted.input, data_tokenizer.input, tokenizer.input)
        clear_on(train_message, *new_text, preset.input, start_from.input, tokenizer.input, data_tokenizer.input,
                 *(f.input for f in preset_fills), train_btn.click, resume_btn.click, stop_btn.click,
                 measure_btn.click, save_ckpt.click, upload_ckpt.upload)
        evaluate_tab.wire(evaluate_ui, bind, new_text=new_text, **running_a_model)
        attention_tab.wire(attention_ui, bind, **running_a_model)

        # The page's language: the browser's (or a ?lang= link's) on load, the switch after.
        # The browser translates the layout itself; the handlers' words are redrawn.
        # On load the preset is fitted to the text (a link's own values stay: train_tab.fit); on a
        # language switch the estimate is only redrawn.
        fitting = (bind_form(train_tab.fit, FORM_FIELDS, ["start_from"]), estimate_inputs, fit_outputs)
        # Tabs not yet opened and upload boxes keep the words of the language they were first drawn in
        # (Gradio translates them once): they are redrawn in the page's language on load and on a switch.
        relabelled = [data_tab_ui, train_tab_ui, generate_ui.tab, gpt2_ui.tab, evaluate_ui.tab, attention_ui.tab,
                      upload, upload_ckpt, gpt2_ui.files]
        redraw = [(bind(relabel([c.label for c in relabelled])), None, relabelled),
                  (guard(generate_tab.sampling_lab), [generate_ui.lab_temp, generate_ui.lab_draws, generate_ui.lab_seed],
                   generate_ui.lab_chart),
                  (bind(data_tab.view), data_inputs, data_outputs),
                  (bind_form(train_tab.estimate, FORM_FIELDS, ["start_from"]), estimate_inputs, estimate),
                  (bind(replay.redraw), None, replay_ui.outputs),
                  (bind(train_tab.redraw), None, [progress, chart, metrics, train_btn]),
                  (bind(gpt2_tab.import_help), None, gpt2_ui.help), (bind(gpt2_tab.sizes_table), None, gpt2_ui.sizes),
                  (bind(compare.view), None, compare_ui.outputs)]

        # A switch also redraws what the session has shown since (a load has nothing of it yet).
        inspected, uploads = generate_ui.inspector, [upload, upload_ckpt, gpt2_ui.files]
        switched = [(bind(share.link_note), None, share_ui.note), (bind(train_tab.model_dropdowns), pickers, pickers),
                    (bind(attention_tab.model_choice), [attention_ui.model, attention_ui.head],
                     [attention_ui.model, attention_ui.head]),
                    (bind(attention_tab.in_language), None, [attention_ui.fresh, attention_ui.trained, attention_ui.note]),
                    (bind(generate_tab.output_in_language), None, [generate_ui.output, generate_ui.status]),
                    (bind(generate_tab.candidates_or_note), generate_tab.candidate_inputs(generate_ui),
                     generate_ui.cand_chart),
                    (bind(inspector.after_generation), None, [inspected.tokens, inspected.summary, inspected.chart]),
                    (bind(evaluate_tab.scores_view), None, evaluate_tab.score_outputs(evaluate_ui)),
                    # Gradio words an upload box once, when it is drawn: drawn again, it speaks the new language.
                    (lambda: tuple(gr.update(visible=False) for _ in uploads), None, uploads),
                    (lambda: tuple(gr.update(visible=True) for _ in uploads), None, uploads)]

        def redrawn(event, *, fit: bool = False, switch: bool = False):
            for fn, inputs, outputs in (fitting if fit and step[2] is estimate else step
                                        for step in redraw + (switched if switch else [])):
                event = event.then(fn, inputs, outputs, api_name=False, show_progress="hidden")
            return event
        # On load a shared link's settings come first: the views are then drawn of them.
        redrawn(share.restoring(demo.load(bind(set_language), language, language, js=BROWSER_LANGUAGE_JS,
                                          api_name=False), share_ui, [restored[k] for k in share.RESTORED], bind),
                fit=True)
        redrawn(language.input(bind(set_language), language, language, js=CHANGE_LOCALE_JS, api_name=False),
                switch=True)

        demo.unload(release_session)
        localize_layout(demo)
    demo.queue(max_size=SETTINGS.queue_size, default_concurrency_limit=SETTINGS.generate_concurrency)
    return demo


def launch_options() -> dict:
    """launch() arguments that make the server safe to share (also for tests that launch
    build_app() in their own process): upload and body caps, checkpoints served only
    through their session's links, the session folders never through Gradio's file route."""
    blocked = [p for p in os.environ.get("GRADIO_BLOCKED_PATHS", "").split(",") if p.strip()]
    return dict(max_file_size=f"{SETTINGS.max_upload_mb}mb", i18n=I18N,
                blocked_paths=[*blocked, str(REGISTRY.files_root.resolve())],
                app_kwargs={"middleware": [Middleware(BodyLimit, max_bytes=SETTINGS.max_request_mb * 2**20),
                                           Middleware(LinkLanguage)],
                            "routes": [LINKS.route(), EXPORTS.route()]})


def _stop_on_sigterm(signum, frame):
    raise KeyboardInterrupt  # launch() then closes the server and returns, as on Ctrl-C


def main() -> None:
    return_freed_memory_promptly()  # before any model exists: closed sessions give memory back
    remove_leftovers(REGISTRY.files_root)  # what a crash or the last run left
    demo = build_app()
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        # GRADIO_SERVER_NAME / GRADIO_SERVER_PORT are read by launch() itself; on Hugging Face
        # Spaces (SPACE_ID set) the platform sets them to 0.0.0.0:7860.
        demo.launch(
            server_name=os.environ.get("GRADIO_SERVER_NAME", "0.0.0.0" if SETTINGS.on_spaces else "127.0.0.1"),
            css=CSS, js=page.JS, head=KEEP_ZOOM_HEAD, theme=page.theme(), show_error=True,
            # Each training waiting its turn holds a worker thread: one per session, plus Gradio's 40.
            max_threads=40 + LIMITS.max_sessions,
            **launch_options(),
        )
    finally:
        remove_leftovers(REGISTRY.files_root)


if __name__ == "__main__":
    main()
