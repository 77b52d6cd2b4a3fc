"""What the training replay costs: one timeline frame (a greedy sample of the start context,
its first step's logits as the candidates) against one evaluation and one training step of
the same run, on a preset's model and The Verdict.

The run is trained first with the timeline on and off: the losses must be identical (the
frame draws no random number), else nothing is timed. Then, on the trained model, frames,
evaluations and steps are timed in turn (interleaved, so a busy shared CPU slows all alike)
and the medians printed with their ratios.

    python benchmarks/bench_timeline.py                      # demo preset, 1 epoch, 5 rounds
    python benchmarks/bench_timeline.py --preset book-124M --steps 4 --rounds 3
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

# As app.py: OpenMP threads that sleep while they wait, so a shared CPU slows every part alike.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gpt_core.config import PRESETS  # noqa: E402
from gpt_core.corpus import ASSETS_DIR  # noqa: E402
from gpt_core.evaluation import evaluate_model  # noqa: E402
from gpt_core.prepare import prepare_training  # noqa: E402
from gpt_core.timeline import capture_frame  # noqa: E402
from gpt_core.tokenizers import get_tokenizer  # noqa: E402


def trainer_for(preset, text, tok, *, timeline: bool, steps: int):
    config = preset.train_config(num_epochs=1, max_steps=steps, timeline=timeline)
    model_config = preset.config.replace(vocab_size=tok.n_vocab)
    return prepare_training(text, tokenizer=tok, model_config=model_config, config=config)


def seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="demo", choices=[p for p in PRESETS if not p.startswith("gpt2-")])
    parser.add_argument("--steps", type=int, default=9, help="training steps before timing (default 9)")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    preset = PRESETS[args.preset]
    text = (ASSETS_DIR / "the-verdict.txt").read_text(encoding="utf-8")
    tok = get_tokenizer(preset.tokenizer, text)

    runs = {}
    for timeline in (False, True):
        trainer = trainer_for(preset, text, tok, timeline=timeline, steps=args.steps)
        list(trainer.run())
        runs[timeline] = trainer
    plain, traced = runs[False], runs[True]
    if plain.state.step_losses != traced.state.step_losses or plain.state.val_losses != traced.state.val_losses:
        print("the timeline changed the run's losses: nothing timed")
        return 1
    print(f"{args.preset}: {len(traced.state.timeline)} frames in {args.steps} steps, losses identical with and "
          f"without the timeline")

    cfg, st = traced.config, traced.state
    train_src, val_src = traced.schedule.eval_sources()
    step_trainer = trainer_for(preset, text, tok, timeline=False, steps=args.steps + args.rounds)
    step_events = (e for e in step_trainer.run() if e.kind == "step")
    frame_s, eval_s, step_s = [], [], []
    for _ in range(args.rounds):
        frame_s.append(seconds(lambda: capture_frame(
            traced.model, tok, cfg.start_context, step=st.step, epoch=1, tokens_seen=st.tokens_seen,
            train_loss=0.0, val_loss=0.0, max_new_tokens=cfg.sample_tokens)))
        eval_s.append(seconds(lambda: evaluate_model(traced.model, train_src, val_src, traced.device, cfg.eval_iter)))
        step_s.append(seconds(lambda: next(step_events)))
    frame, evaluation, step = (statistics.median(x) for x in (frame_s, eval_s, step_s))
    print(f"torch threads {torch.get_num_threads()}, median of {args.rounds}:")
    print(f"  one frame ({cfg.sample_tokens} greedy tokens)  {frame * 1000:8.1f} ms")
    print(f"  one evaluation ({cfg.eval_iter} + {cfg.eval_iter} batches)  {evaluation * 1000:8.1f} ms   "
          f"frame / evaluation = {frame / evaluation:.2f}")
    print(f"  one training step              {step * 1000:8.1f} ms   frame / step = {frame / step:.2f}")
    print(f"  every {cfg.eval_freq} steps a frame adds {frame / (cfg.eval_freq * step):.1%} to the run's time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
