"""BabyGPT mode: the notebook's split, random windows, loss estimate, bigram baseline, and
its schedule through our trainer (events, stop, resume)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F

from conftest import ASSETS
from gpt_core.bigram import BigramConfig, BigramLanguageModel
from gpt_core.checkpoint import load_model, read_checkpoint
from gpt_core.config import PRESETS, GPTConfig, TrainConfig, babygpt_train_config, bigram_train_config
from gpt_core.corpus import decode_text
from gpt_core.generate import generate
from gpt_core.model import GPTModel, build_model, config_from_dict
from gpt_core.prepare import make_optimizer, prepare_training
from gpt_core.schedule import (RandomBatchesSource, RandomWindows, RandomWindowSchedule, make_random_window_schedule,
                               split_token_ids)
from gpt_core.tokenizers import CharTokenizer
from gpt_core.train import Trainer, TrainState, estimate_loss


@pytest.fixture(scope="module")
def lunyu() -> tuple[CharTokenizer, torch.Tensor]:
    text = (ASSETS / "lunyu.txt").read_text(encoding="utf-8")
    tok = CharTokenizer.from_text(text)
    return tok, torch.tensor(tok.encode(text), dtype=torch.long)


# --- the notebook's reference code ------------------------------------------------------------
def notebook_split(data: torch.Tensor, ratio: float) -> tuple[torch.Tensor, torch.Tensor]:
    n = int(ratio * len(data))
    return data[:n], data[n:]


def notebook_get_batch(data: torch.Tensor, batch_size: int, block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    ix = torch.randint(len(data) - block_size, (batch_size,))
    x = torch.stack([data[i:i + block_size] for i in ix])
    y = torch.stack([data[i + 1:i + block_size + 1] for i in ix])
    return x, y


# --- split and windows ------------------------------------------------------------------------
def test_split_is_80_20_of_the_token_ids(lunyu):
    _, ids = lunyu
    train, val = split_token_ids(ids)
    ref_train, ref_val = notebook_split(ids, 0.8)
    assert torch.equal(train, ref_train) and torch.equal(val, ref_val)
    assert train.numel() == int(0.8 * ids.numel()) and train.numel() + val.numel() == ids.numel()
    assert torch.equal(torch.cat([train, val]), ids)


@pytest.mark.parametrize("ratio", [0, 1, 1.5, -0.1, True, "0.8"])
def test_split_rejects_bad_ratio(ratio):
    with pytest.raises(ValueError, match="train_ratio"):
        split_token_ids(torch.arange(10), ratio)


def test_random_windows_are_the_notebooks_get_batch(lunyu):
    _, ids = lunyu
    train, _ = split_token_ids(ids)
    windows = RandomWindows(train, batch_size=16, context_length=64, generator=torch.Generator().manual_seed(7))
    torch.manual_seed(7)
    for _ in range(5):
        x_ref, y_ref = notebook_get_batch(train, 16, 64)
        x, y = windows.draw()
        assert torch.equal(x, x_ref) and torch.equal(y, y_ref)
    # Targets are the inputs shifted by one.
    assert torch.equal(y[:, :-1], x[:, 1:])


def test_random_windows_reproducible_and_cover_every_start():
    ids = torch.arange(300)
    context = 8

    def draws(seed: int, n: int) -> list[torch.Tensor]:
        w = RandomWindows(ids, batch_size=16, context_length=context, generator=torch.Generator().manual_seed(seed))
        return [w.draw() for _ in range(n)]

    a, b, c = draws(1, 200), draws(1, 200), draws(2, 200)
    assert all(torch.equal(xa, xb) and torch.equal(ya, yb) for (xa, ya), (xb, yb) in zip(a, b))
    assert not all(torch.equal(xa, xc) for (xa, _), (xc, _) in zip(a, c))
    starts = torch.cat([x[:, 0] for x, _ in a])  # ids == positions, so a window's first id is its start
    counts = torch.bincount(starts, minlength=ids.numel())
    num_starts = ids.numel() - context  # 0 .. len - context - 1: the last window ends at the last id
    assert (counts[:num_starts] > 0).all(), "some start position was never drawn"
    assert (counts[num_starts:] == 0).all(), "a window ran past the end of the ids"
    for x, y in a:
        assert torch.equal(y, x + 1)  # ids == positions: targets are the next positions


def test_random_windows_reject_a_too_short_split():
    with pytest.raises(ValueError, match="validation part has 8 tokens; a window needs 8 \\+ 1"):
        RandomWindows(torch.arange(8), batch_size=2, context_length=8, generator=torch.Generator(),
                      split="validation")
    with pytest.raises(ValueError, match="batch_size"):
        RandomWindows(torch.arange(80), batch_size=0, context_length=8, generator=torch.Generator())


def test_schedule_batches_from_any_start_are_those_of_a_straight_run():
    train, val = split_token_ids(torch.arange(500))
    sched = RandomWindowSchedule(train, val, batch_size=4, context_length=8, iterations=20, eval_iters=2, seed=3)
    straight = list(sched.iter_epoch(0))
    assert len(straight) == sched.batches_per_epoch() == 20
    for start in (7, 19, 3, 0, 20):  # forwards, backwards (a retry), the very end
        tail = list(sched.iter_epoch(0, start))
        assert len(tail) == 20 - start
        assert all(torch.equal(a[0], b[0]) for a, b in zip(tail, straight[start:]))
    # Evaluating draws from its own generator: it does not move the training windows.
    it = sched.iter_epoch(0)
    first = next(it)
    for src in sched.eval_sources():
        assert len(list(src)) == 2
    assert torch.equal(first[0], straight[0][0]) and torch.equal(next(it)[0], straight[1][0])
    with pytest.raises(ValueError, match="single pass"):
        sched.iter_epoch(1)
    with pytest.raises(ValueError, match="start must be"):
        sched.iter_epoch(0, 21)


def test_schedule_state_rejects_another_run_and_stays_unchanged():
    train, val = split_token_ids(torch.arange(500))
    sched = RandomWindowSchedule(train, val, batch_size=4, context_length=8, iterations=5, eval_iters=2, seed=3)
    other = RandomWindowSchedule(train, val, batch_size=4, context_length=8, iterations=5, eval_iters=2, seed=4)
    before = sched.state_dict()
    with pytest.raises(ValueError, match="seed 4"):
        sched.load_state_dict(other.state_dict())
    with pytest.raises(ValueError, match="used epochs"):
        sched.load_state_dict({"epoch_start": None, "now": None})
    with pytest.raises(ValueError, match="damaged"):
        sched.load_state_dict(dict(other.state_dict(), seed=3, drawn=-1))
    after = sched.state_dict()
    assert torch.equal(before["train_generator"], after["train_generator"]) and before["drawn"] == after["drawn"]


def test_a_run_without_seed_draws_one_and_resumes_with_it():
    train, val = split_token_ids(torch.arange(500))
    make = lambda: RandomWindowSchedule(train, val, batch_size=4, context_length=8, iterations=6,  # noqa: E731
                                        eval_iters=1, seed=None)
    first = make()
    it = first.iter_epoch(0)
    head = [next(it) for _ in range(2)]
    state = first.state_dict()
    tail = list(it)
    resumed = make()
    assert resumed.seed != first.seed  # another draw ...
    resumed.load_state_dict(state)  # ... until the run's state says which
    assert resumed.seed == first.seed
    assert all(torch.equal(a[0], b[0]) for a, b in zip(resumed.iter_epoch(0, 2), tail))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(resumed.iter_epoch(0, 0), head))


def test_estimate_loss_is_the_notebooks_and_restores_the_mode(lunyu):
    tok, ids = lunyu
    torch.manual_seed(0)
    model = GPTModel(GPTConfig(vocab_size=tok.n_vocab, context_length=16, emb_dim=32, n_heads=2, n_layers=1,
                               drop_rate=0.5))
    config = TrainConfig(batch_size=4, eval_iter=3, train_ratio=0.8, max_steps=1, seed=5)
    sched = make_random_window_schedule(ids, context_length=16, config=config)
    modes = []
    model.register_forward_hook(lambda m, i, o: modes.append(m.training))
    for mode in (True, False):
        model.train(mode)
        eval_state = sched.eval_generator.get_state()
        got = estimate_loss(model, sched)
        assert model.training is mode
        # The notebook's estimate_loss: eval mode, mean over eval_iters batches of each split.
        g = torch.Generator().set_state(eval_state)
        train, val = split_token_ids(ids, 0.8)
        model.eval()
        expected = {}
        with torch.no_grad():
            for name, data in (("train", train), ("val", val)):
                w = RandomWindows(data, batch_size=4, context_length=16, generator=g)
                expected[name] = sum(F.cross_entropy(model(x).flatten(0, 1), y.flatten()).item()
                                     for x, y in (w.draw() for _ in range(3))) / 3
        assert got["train"] == pytest.approx(expected["train"], rel=1e-5)
        assert got["val"] == pytest.approx(expected["val"], rel=1e-5)
    assert not any(modes)  # every forward of the estimate ran in eval mode


# --- the bigram -------------------------------------------------------------------------------
def test_bigram_rows_are_the_logits_and_it_samples_like_the_notebook():
    torch.manual_seed(0)
    model = BigramLanguageModel(BigramConfig(vocab_size=11, context_length=8))
    idx = torch.randint(0, 11, (3, 5))
    logits = model(idx)
    assert logits.shape == (3, 5, 11)
    assert torch.equal(logits, model.token_embedding_table.weight[idx])
    # The notebook's generate: softmax of the last position's logits, one multinomial draw.
    g = torch.Generator().manual_seed(9)
    ref = idx.clone()
    with torch.no_grad():
        for _ in range(12):
            probs = F.softmax(model(ref)[:, -1, :], dim=-1)
            ref = torch.cat([ref, torch.multinomial(probs, 1, generator=g)], dim=1)
    out = generate(model, idx, 12, temperature=1.0, seed=9, context_size=5)
    assert torch.equal(out, ref)


def test_bigram_config_round_trip_and_bad_values():
    cfg = BigramConfig(vocab_size=50, context_length=32)
    assert config_from_dict(cfg.to_dict()) == cfg
    assert isinstance(build_model(cfg), BigramLanguageModel)
    gpt = GPTConfig(vocab_size=50, context_length=16, emb_dim=16, n_heads=2, n_layers=1)
    assert config_from_dict(gpt.to_dict()) == gpt and isinstance(build_model(gpt), GPTModel)
    assert build_model(cfg).num_parameters() == cfg.num_parameters() == 2500
    with pytest.raises(ValueError, match="vocab_size"):
        BigramConfig(vocab_size=0)
    with pytest.raises(ValueError, match="unknown bigram config"):
        config_from_dict({"model_type": "bigram", "vocab_size": 5, "emb_dim": 3})


def test_bigram_loss_falls_below_uniform_on_lunyu(lunyu):
    tok, ids = lunyu
    uniform = math.log(tok.n_vocab)
    # The notebook's lr 1e-2; a small batch keeps it fast (the notebook's 128 x 64 gets there too).
    config = TrainConfig(batch_size=8, learning_rate=1e-2, weight_decay=0.01, eval_freq=75, eval_iter=5,
                         train_ratio=0.8, max_steps=151, num_epochs=1, sample_tokens=0, seed=123, device="cpu")
    sched = make_random_window_schedule(ids, context_length=32, config=config)
    torch.manual_seed(123)
    model = BigramLanguageModel(BigramConfig(vocab_size=tok.n_vocab, context_length=32))
    optimizer = make_optimizer(model, config)
    evals = [e for e in Trainer(model, optimizer, sched, config=config, device="cpu").run() if e.kind == "eval"]
    assert evals[0].train_loss > uniform  # N(0, 1) rows start worse than uniform
    assert evals[-1].train_loss < uniform and evals[-1].val_loss < uniform


# --- through the trainer: events, stop, resume ----------------------------------------------------
def _tiny_run(ids, tok, tmp_path=None, *, state=None, rng=None, schedule_state=None, model_state=None,
              optimizer_state=None):
    config = TrainConfig(batch_size=4, learning_rate=1e-3, eval_freq=3, eval_iter=2, train_ratio=0.8,
                         max_steps=10, num_epochs=1, sample_tokens=4, start_context="子曰", seed=11, device="cpu")
    sched = make_random_window_schedule(ids, context_length=16, config=config)
    torch.manual_seed(config.seed)
    model = GPTModel(GPTConfig(vocab_size=tok.n_vocab, context_length=16, emb_dim=32, n_heads=2, n_layers=2,
                               drop_rate=0.1))
    optimizer = make_optimizer(model, config)
    if model_state is not None:
        model.load_state_dict(model_state)
        optimizer.load_state_dict(optimizer_state)
        sched.load_state_dict(schedule_state)
    return Trainer(model, optimizer, sched, config=config, device="cpu",
                   tokenizer=tok, checkpoint_dir=tmp_path,
                   state=state, rng_state=rng)


def test_schedule_through_the_trainer_stops_and_resumes_exactly(lunyu, tmp_path):
    tok, ids = lunyu
    straight = list(_tiny_run(ids, tok).run())
    kinds = [e.kind for e in straight]
    assert kinds[-1] == "done" and "sample" in kinds
    evals = [e for e in straight if e.kind == "eval"]
    assert [e.step for e in evals] == [0, 3, 6, 9]
    assert all(math.isfinite(e.train_loss) and math.isfinite(e.val_loss) for e in evals)
    steps = [e.loss for e in straight if e.kind == "step"]

    # Stop after step 4, write the checkpoint, rebuild everything from it and finish.
    trainer = _tiny_run(ids, tok, tmp_path)
    first = []
    for e in trainer.run():
        first.append(e)
        if e.kind == "step" and e.step == 4:
            trainer.request_stop()
    assert [e.kind for e in first][-2:] == ["stopped", "checkpoint"]
    ckpt = torch.load(first[-1].path, weights_only=True)
    resumed = _tiny_run(ids, tok, state=TrainState.from_dict(ckpt["trainer_state"]), rng=ckpt["rng"],
                        schedule_state=ckpt["schedule_state"], model_state=ckpt["model_state_dict"],
                        optimizer_state=ckpt["optimizer_state_dict"])
    second = list(resumed.run())
    assert second[-1].kind == "done"
    both = [e for e in first + second if e.kind in ("step", "eval")]
    assert [e.loss for e in both if e.kind == "step"] == steps
    assert [(e.train_loss, e.val_loss) for e in both if e.kind == "eval"] == \
        [(e.train_loss, e.val_loss) for e in evals]
    assert second[-1].val_losses == straight[-1].val_losses


# --- the notebook's pictures: softmax with temperature and label smoothing, on five logits ------
# Made-up logits for five tokens: the picture needs a vector, not a model.
PICTURE_LOGITS: tuple[float, ...] = (1.0, 2.0, 0.5, 3.0, -1.0)


@dataclass(frozen=True)
class TemperaturePicture:
    logits: list[float]
    scale: float  # the logits multiplied by this: temperature = 1 / scale
    probs: list[float]  # softmax(logits)
    scaled_probs: list[float]  # softmax(logits * scale)

    @property
    def temperature(self) -> float:
        return 1.0 / self.scale


def temperature_picture(logits: torch.Tensor | list[float] | None = None, *, scale: float = 0.5) -> TemperaturePicture:
    """The notebook's picture: softmax of a vector beside softmax of the vector scaled.

    Scaling logits by `scale` is sampling at temperature 1/scale: below 1 the distribution
    flattens (more surprising tokens), above 1 it sharpens towards the argmax."""
    values = torch.tensor(PICTURE_LOGITS if logits is None else logits, dtype=torch.float32)
    if values.dim() != 1 or values.numel() < 2:
        raise ValueError("the picture needs a 1-D vector of at least two logits")
    if not torch.isfinite(values).all():
        raise ValueError("the logits must be finite numbers")
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale) or scale <= 0:
        raise ValueError(f"scale must be a positive number, got {scale!r}")
    return TemperaturePicture(values.tolist(), float(scale), torch.softmax(values, dim=0).tolist(),
                              torch.softmax(values * scale, dim=0).tolist())


def smoothed_targets(num_classes: int, target: int, epsilon: float, *, spread: str = "others") -> torch.Tensor:
    """The target distribution label smoothing trains towards.

    spread="others" (the notebook): 1 - epsilon on the true class, epsilon shared by the
    other `num_classes - 1`. spread="all" (PyTorch's `F.cross_entropy(label_smoothing=eps)`,
    which the trainer uses): epsilon shared by all classes, the true one included, so the
    true class gets 1 - epsilon + epsilon / num_classes. The two agree when PyTorch's epsilon
    is the notebook's times num_classes / (num_classes - 1).
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be a whole number of at least 2, got {num_classes!r}")
    if isinstance(target, bool) or not isinstance(target, int) or not 0 <= target < num_classes:
        raise ValueError(f"target must be a class index from 0 to {num_classes - 1}, got {target!r}")
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not 0.0 <= epsilon < 1.0:
        raise ValueError(f"epsilon must be a number in [0, 1), got {epsilon!r}")
    if spread == "others":
        q = torch.full((num_classes,), epsilon / (num_classes - 1))
        q[target] = 1.0 - epsilon
    elif spread == "all":
        q = torch.full((num_classes,), epsilon / num_classes)
        q[target] += 1.0 - epsilon
    else:
        raise ValueError(f"spread must be 'others' (the notebook) or 'all' (PyTorch), got {spread!r}")
    return q


@dataclass(frozen=True)
class LabelSmoothingExample:
    epsilon: float
    target: int
    probs: list[float]  # softmax of the logits: what the model predicts
    targets_notebook: list[float]  # 1 - eps on the true class, eps over the others
    targets_pytorch: list[float]  # eps over all classes (F.cross_entropy's label_smoothing)
    loss_plain: float  # -log p[target]
    loss_notebook: float  # cross-entropy against targets_notebook
    loss_pytorch: float  # F.cross_entropy(logits, target, label_smoothing=eps): what the trainer uses


def label_smoothing_example(logits: torch.Tensor | list[float] | None = None, target: int = 3, *,
                            epsilon: float = 0.1) -> LabelSmoothingExample:
    """Label smoothing on one prediction, both ways, with the loss each gives."""
    values = torch.tensor(PICTURE_LOGITS if logits is None else logits, dtype=torch.float32)
    if values.dim() != 1 or values.numel() < 2 or not torch.isfinite(values).all():
        raise ValueError("logits must be a 1-D vector of at least two finite numbers")
    k = values.numel()
    q_nb = smoothed_targets(k, target, epsilon, spread="others")
    q_pt = smoothed_targets(k, target, epsilon, spread="all")
    log_p = torch.log_softmax(values, dim=0)
    loss_pt = torch.nn.functional.cross_entropy(values[None], torch.tensor([target]), label_smoothing=float(epsilon))
    return LabelSmoothingExample(
        epsilon=float(epsilon), target=target, probs=log_p.exp().tolist(), targets_notebook=q_nb.tolist(),
        targets_pytorch=q_pt.tolist(), loss_plain=float(-log_p[target]),
        loss_notebook=float(-(q_nb * log_p).sum()), loss_pytorch=float(loss_pt))


def test_temperature_picture_scales_the_logits():
    pic = temperature_picture([1.0, 2.0, 3.0], scale=0.25)
    torch.testing.assert_close(torch.tensor(pic.scaled_probs), torch.softmax(torch.tensor([0.25, 0.5, 0.75]), 0))
    torch.testing.assert_close(torch.tensor(pic.probs), torch.softmax(torch.tensor([1.0, 2.0, 3.0]), 0))
    assert pic.temperature == 4.0 and max(pic.scaled_probs) < max(pic.probs)  # scaled down: flatter
    assert max(temperature_picture(scale=3.0).scaled_probs) > max(temperature_picture().probs)
    for bad in (0, -1.0, float("nan"), True):
        with pytest.raises(ValueError, match="scale"):
            temperature_picture(scale=bad)
    with pytest.raises(ValueError, match="logits"):
        temperature_picture([1.0, float("inf")])


def test_label_smoothing_both_ways():
    q = smoothed_targets(5, 2, 0.1)
    torch.testing.assert_close(q, torch.tensor([0.025, 0.025, 0.9, 0.025, 0.025]))
    q_all = smoothed_targets(5, 2, 0.1, spread="all")
    torch.testing.assert_close(q_all, torch.tensor([0.02, 0.02, 0.92, 0.02, 0.02]))
    ex = label_smoothing_example([1.0, 2.0, 0.5, 3.0, -1.0], target=3, epsilon=0.1)
    logits = torch.tensor([[1.0, 2.0, 0.5, 3.0, -1.0]])
    assert ex.loss_pytorch == pytest.approx(F.cross_entropy(logits, torch.tensor([3]), label_smoothing=0.1).item())
    assert ex.loss_plain == pytest.approx(F.cross_entropy(logits, torch.tensor([3])).item())
    # PyTorch's eps over all K classes is the notebook's eps * K / (K - 1) over the others.
    same = F.cross_entropy(logits, torch.tensor([3]), label_smoothing=0.1 * 5 / 4).item()
    assert ex.loss_notebook == pytest.approx(same, rel=1e-5)
    assert sum(ex.targets_notebook) == pytest.approx(1.0) and sum(ex.targets_pytorch) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="spread"):
        smoothed_targets(5, 2, 0.1, spread="some")
    with pytest.raises(ValueError, match="target"):
        smoothed_targets(5, 5, 0.1)
    with pytest.raises(ValueError, match="epsilon"):
        smoothed_targets(5, 1, 1.0)


def test_eval_source_is_sized_and_fresh():
    w = RandomWindows(torch.arange(100), batch_size=2, context_length=4, generator=torch.Generator().manual_seed(0))
    src = RandomBatchesSource(w, 3)
    a, b = list(src), list(src)
    assert len(src) == 3 and len(a) == 3
    assert not torch.equal(a[0][0], b[0][0])  # each estimate draws new batches, as the notebook


# --- the preset and the bigram through prepare_training and checkpoints ---------------------------
def test_babygpt_preset_is_the_notebooks():
    preset = PRESETS["babygpt"]
    cfg = preset.config
    assert preset.tokenizer == "char"
    assert (cfg.n_layers, cfg.n_heads, cfg.emb_dim, cfg.context_length, cfg.drop_rate) == (4, 4, 64, 64, 0.0)
    train = babygpt_train_config()
    assert (train.batching, train.max_steps, train.batch_size, train.learning_rate, train.eval_freq,
            train.eval_iter, train.train_ratio) == ("random_windows", 3000, 128, 1e-3, 100, 200, 0.8)
    assert bigram_train_config().learning_rate == 1e-2
    with pytest.raises(ValueError, match="batching"):
        TrainConfig(batching="shuffled")
    with pytest.raises(ValueError, match="set max_steps"):
        TrainConfig(batching="random_windows")


@pytest.mark.parametrize("encoding", ["gbk", "utf-8"])
def test_babygpt_preset_trains_on_an_uploaded_chinese_text(encoding):
    text = (ASSETS / "lunyu.txt").read_text(encoding="utf-8")
    decoded = decode_text(text.encode(encoding)).text
    assert decoded == text
    tok = CharTokenizer.from_text(decoded)
    config = babygpt_train_config(max_steps=2, batch_size=4, eval_freq=1, eval_iter=1, sample_tokens=3, device="cpu")
    trainer = prepare_training(decoded, tokenizer=tok, config=config,
                               model_config=PRESETS["babygpt"].config.replace(vocab_size=tok.n_vocab))
    assert isinstance(trainer.schedule, RandomWindowSchedule)
    assert trainer.schedule.train_windows.ids.numel() == int(0.8 * len(tok.encode(decoded)))
    events = list(trainer.run())
    assert [e.kind for e in events if e.kind == "eval"] == ["eval", "eval"] and events[-1].kind == "done"
    assert next(e for e in events if e.kind == "sample").text.startswith("子曰：")


def test_a_too_short_text_for_random_windows_gets_a_clear_message():
    tok = CharTokenizer.from_text("子曰学而时习之" * 20)
    config = babygpt_train_config(max_steps=2, batch_size=4, device="cpu")
    with pytest.raises(ValueError, match="validation part has 28 tokens; a window needs 64 \\+ 1"):
        prepare_training("子曰学而时习之" * 20, tokenizer=tok, config=config,
                         model_config=PRESETS["babygpt"].config.replace(vocab_size=tok.n_vocab))


def test_bigram_checkpoint_resumes_exactly_through_prepare_training(lunyu, tmp_path):
    tok, ids = lunyu
    text = tok.decode(ids.tolist())
    config = bigram_train_config(max_steps=6, batch_size=4, eval_freq=2, eval_iter=2, sample_tokens=3,
                                 seed=5, device="cpu")
    model_config = BigramConfig(vocab_size=tok.n_vocab, context_length=16)
    straight = list(prepare_training(text, tokenizer=tok, model_config=model_config, config=config).run())
    trainer = prepare_training(text, tokenizer=tok, model_config=model_config, config=config,
                               checkpoint_dir=tmp_path)
    first = []
    for e in trainer.run():
        first.append(e)
        if e.kind == "step" and e.step == 2:
            trainer.request_stop()
    path = first[-1].path
    model, ckpt = load_model(path)
    assert isinstance(model, BigramLanguageModel) and ckpt.model_config == model_config
    assert torch.equal(model.token_embedding_table.weight, trainer.model.token_embedding_table.weight)
    resumed = prepare_training(text, config=config, resume=path)
    second = list(resumed.run())
    losses = lambda evs: [e.loss for e in evs if e.kind == "step"]  # noqa: E731
    assert losses(first) + losses(second) == losses(straight)
    assert second[-1].val_losses == straight[-1].val_losses
    with pytest.raises(ValueError, match="same seed"):
        prepare_training(text, config=config.replace(seed=6), resume=path)


# --- the Train tab: preset, iterations, the bigram beside BabyGPT -----------------------------------
def _ui_form(preset: str, **overrides) -> dict:
    from playground.options import DEFAULT_PRECISION_LABEL, PRESET_LABELS
    values = dict(precision=DEFAULT_PRECISION_LABEL, tokenizer="Characters", preset=PRESET_LABELS[preset], context_length=16, emb_dim=32, n_heads=2, n_layers=1, drop_rate=0.0, qkv_bias=False,
                  num_epochs=1, batch_size=4, learning_rate=1e-2, weight_decay=0.01, eval_freq=5, eval_iter=2,
                  warmup_steps=0, cosine=False, grad_clip=0, label_smoothing=0, seed=123, start_context="子曰",
                  stride=0, iterations=3)
    values.update(overrides)
    return values


def test_train_tab_babygpt_preset_and_bigram_side_by_side():
    from playground.session import Workspace
    from playground import train_tab
    from playground.options import PRESET_LABELS, START_FROM, build_spec, preset_fields

    model, train, tok = preset_fields(PRESET_LABELS["babygpt"])
    assert tok == "char" and train["iterations"] == 3000 and model["n_layers"] == 4
    spec = build_spec(tokenizer="char", vocab_size=100, preset_label=PRESET_LABELS["babygpt"], **model, **train)
    assert (spec.train.batching, spec.train.max_steps, spec.train.train_ratio) == ("random_windows", 3000, 0.8)
    spec = build_spec(tokenizer="char", vocab_size=100, preset_label=PRESET_LABELS["bigram"], **model,
                      **dict(train, iterations=0))
    assert spec.model == BigramConfig(vocab_size=100, context_length=64) and spec.train.batching == "epochs"
    with pytest.raises(ValueError, match="Iterations"):
        build_spec(tokenizer="char", vocab_size=100, preset_label=PRESET_LABELS["babygpt"], **model,
                   **dict(train, iterations=-5))

    ws = Workspace()
    try:
        ws.set_text((ASSETS / "lunyu.txt").read_text(encoding="utf-8")[:6000], name="论语")
        estimate = train_tab.estimate(ws, _ui_form("bigram"))
        assert "3 iterations, each over 4 windows at random starts" in estimate
        assert "about 0.0 times over" in estimate and "⚠️" not in estimate
        # The notebook's 3,000 iterations of 128 x 64 would read 4,800 characters ~5,000 times.
        estimate = train_tab.estimate(ws, _ui_form("bigram", iterations=3000, batch_size=128, context_length=64))
        assert "⚠️ The iterations read the training part about **5,120 times over**" in estimate
        for preset in ("bigram", "babygpt"):
            outputs = list(train_tab.train(ws, _ui_form(preset), START_FROM[0]))
            assert ws.own.trainer.state.step + 1 == 3
        assert isinstance(ws.own.trainer.schedule, RandomWindowSchedule)
        metrics = outputs[-1][3]
        assert "bigram model **" in metrics and "babygpt model **" in metrics
        assert ws.save_checkpoint().rsplit("/", 1)[-1].startswith("gpt-1x32")
    finally:
        ws.close()


def test_cli_babygpt_preset_trains_by_random_windows(tmp_path, capsys):
    from gpt_core.__main__ import main
    text = tmp_path / "lunyu_gbk.txt"
    text.write_bytes((ASSETS / "lunyu.txt").read_text(encoding="utf-8").encode("gbk"))
    code = main(["train", "--text", str(text), "--preset", "babygpt", "--max-steps", "2", "--batch-size", "2",
                 "--eval-iter", "1", "--eval-freq", "1", "--sample-tokens", "2", "--device", "cpu",
                 "--out", str(tmp_path / "run")])
    assert code == 0
    ckpt = read_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert ckpt.train_config.batching == "random_windows" and ckpt.train_config.train_ratio == 0.8
    assert ckpt.schedule_state["type"] == "random_windows" and ckpt.trainer_state["step"] == 1
    assert main(["train", "--text", str(text), "--batching", "sideways"]) == 2
    assert "--batching: batching must be" in capsys.readouterr().err
