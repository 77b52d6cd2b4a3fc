"""Plotly figures for the playground: the book's loss figure, runs compared, next-token
candidates, the sampling lab. Pure functions of plain numbers, so the app, a notebook and
tests draw the same.

Plotly is imported inside each function: importing this module costs nothing.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:  # pragma: no cover
    import plotly.graph_objects as go

TRAIN_COLOR = "#1f77b4"  # matplotlib's C0 and C1: the book's figure colours
VAL_COLOR = "#ff7f0e"
STEP_COLOR = "rgba(31,119,180,0.25)"
# Enough points to look smooth; the figure is sent to the browser several times a second.
MAX_POINTS_PER_TRACE = 400


def _layout(fig: "go.Figure", *, title: str, height: int) -> None:
    fig.update_layout(
        title=dict(text=title, x=0.01, xanchor="left", font=dict(size=15)),
        height=height, margin=dict(l=60, r=20, t=80, b=90), template="plotly_white",
        # Below the plot: above it, the legend would cover the second (epochs) axis.
        legend=dict(orientation="h", yanchor="top", y=-0.18, xanchor="center", x=0.5),
        font=dict(size=12),
    )


def wrapped(text: str, width: int = 34) -> str:
    """`text` broken into lines of about `width` characters (Plotly's <br>): an annotation does
    not wrap by itself, and on a phone a long one runs out of the chart. Chinese or Japanese
    text has no spaces to break at: it breaks between any two characters, each counting two
    columns, never before a closing punctuation mark."""
    import textwrap
    import unicodedata

    def columns(ch: str) -> int:
        return 2 if unicodedata.east_asian_width(ch) in "WF" else 1

    if all(columns(ch) == 1 for ch in text):
        return "<br>".join(textwrap.wrap(text, width)) or text
    lines, line = [], ""
    for ch in text:
        if line and sum(map(columns, line)) + columns(ch) > width and ch not in "，。：；、）」！？,.:;)":
            lines.append(line.strip())
            line = ""
        line += ch
    return "<br>".join([*lines, line.strip()])


def decimate(xs: Sequence[float], ys: Sequence[float], max_points: int = MAX_POINTS_PER_TRACE
             ) -> tuple[list[float], list[float]]:
    """Every k-th point (always keeping the last) so a trace stays under `max_points`."""
    n = len(xs)
    if n <= max_points:
        return list(xs), list(ys)
    k = math.ceil(n / max_points)
    idx = list(range(0, n, k))
    if idx[-1] != n - 1:
        idx.append(n - 1)
    return [xs[i] for i in idx], [ys[i] for i in idx]


def _nan_to_none(values: Sequence[float]) -> list[float | None]:
    # Plotly leaves a gap for None; NaN (an empty validation loader) would break the JSON.
    return [None if v is None or not math.isfinite(v) else float(v) for v in values]


def loss_figure(tokens_seen: Sequence[int] = (), train_losses: Sequence[float] = (),
                val_losses: Sequence[float] = (), *, num_epochs: int | None = None,
                tokens_per_epoch: int | None = None, step_tokens: Sequence[int] = (),
                step_losses: Sequence[float] = (), hint: str | None = None,
                title: str = "Training and validation loss", height: int = 420,
                uirevision: str | None = None) -> "go.Figure":
    """The book's figure: train and validation loss against tokens seen, epochs on a second
    x-axis on top. Given the planned `num_epochs` and `tokens_per_epoch` the axes are fixed in
    advance, so the curves draw themselves into the frame as training runs; without them (a run
    of random windows has no epochs) the axes follow the data and there is no epochs axis.

    `step_tokens`/`step_losses` add the raw per-batch training loss as a faint line.
    `uirevision` (Plotly's): while it stays the same, a redrawn figure keeps the user's zoom.
    """
    import plotly.graph_objects as go

    fig = go.Figure()
    if step_tokens:
        sx, sy = decimate(list(step_tokens), _nan_to_none(step_losses))
        fig.add_trace(go.Scatter(x=sx, y=sy, mode="lines", name="Batch loss",
                                 line=dict(color=STEP_COLOR, width=1), hoverinfo="skip"))
    tx, ty = decimate(list(tokens_seen), _nan_to_none(train_losses))
    vx, vy = decimate(list(tokens_seen), _nan_to_none(val_losses))
    mode = "lines+markers" if len(tx) < 60 else "lines"
    fig.add_trace(go.Scatter(x=tx, y=ty, mode=mode, name="Training loss",
                             line=dict(color=TRAIN_COLOR, width=2), marker=dict(size=5)))
    fig.add_trace(go.Scatter(x=vx, y=vy, mode=mode, name="Validation loss",
                             line=dict(color=VAL_COLOR, width=2, dash="dot"), marker=dict(size=5)))

    x_max = None
    if num_epochs and tokens_per_epoch:
        x_max = num_epochs * tokens_per_epoch
    elif tokens_seen or step_tokens:
        x_max = max([*tokens_seen, *step_tokens])
    _layout(fig, title=title, height=height)
    fig.update_layout(xaxis=dict(title="Tokens seen", rangemode="tozero"),
                      yaxis=dict(title="Loss", rangemode="tozero"), hovermode="x unified",
                      uirevision=uirevision)
    if x_max:
        fig.update_xaxes(range=[0, x_max * 1.02])

    # The book's second axis (its `ax2.plot(epochs_seen, train_losses, alpha=0)` trick):
    # tick labels are epochs placed at the token counts where each epoch ends, on an axis
    # that matches the first, so they stay aligned when the user zooms.
    if num_epochs and tokens_per_epoch:
        step = max(1, math.ceil(num_epochs / 12))
        ticks = list(range(0, num_epochs + 1, step))
        fig.add_trace(go.Scatter(x=[0, num_epochs * tokens_per_epoch], y=[None, None], xaxis="x2",
                                 showlegend=False, hoverinfo="skip", mode="lines",
                                 line=dict(width=0)))
        fig.update_layout(xaxis2=dict(
            title=dict(text="Epochs", standoff=4), overlaying="x", side="top", matches="x",
            tickmode="array", tickvals=[e * tokens_per_epoch for e in ticks],
            ticktext=[str(e) for e in ticks], showgrid=False,
        ))
    if hint:
        fig.add_annotation(text=hint, xref="paper", yref="paper", x=0.99, y=0.98, showarrow=False,
                           xanchor="right", yanchor="top", font=dict(color="#b45309", size=12),
                           bgcolor="rgba(255,247,237,0.9)", bordercolor="#f59e0b", borderwidth=1)
    if not tokens_seen and not step_tokens:
        fig.add_annotation(text=wrapped("Press Train: the curves draw here as the model learns."),
                           xref="paper", yref="paper", x=0.5, y=0.5, showarrow=False,
                           font=dict(color="#6b7280", size=14))
    return fig


# One colour a run (matplotlib's first eight), its training loss solid, its validation dotted.
RUN_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


def runs_figure(runs: Sequence[tuple[str, Sequence[int], Sequence[float], Sequence[float]]], *,
                title: str = "Runs compared", subtitle: str = "solid: training loss, dotted: validation loss",
                height: int | None = None) -> "go.Figure":
    """Several runs on one chart: for each `(label, tokens_seen, train_losses, val_losses)` its
    training and validation loss against tokens seen, in one colour, one legend entry (the
    label) toggling both. The legend lists the labels under the chart, one a line (labels are
    long, a phone is narrow), and the default height leaves room for them."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for i, (label, tokens, train, val) in enumerate(runs):
        color = RUN_COLORS[i % len(RUN_COLORS)]
        tx, ty = decimate(list(tokens), _nan_to_none(train))
        vx, vy = decimate(list(tokens), _nan_to_none(val))
        mode = "lines+markers" if len(tx) < 60 else "lines"
        fig.add_trace(go.Scatter(x=tx, y=ty, mode=mode, name=label, legendgroup=str(i),
                                 line=dict(color=color, width=2), marker=dict(size=5),
                                 hovertemplate="%{y:.3f}<extra>" + label + "</extra>"))
        fig.add_trace(go.Scatter(x=vx, y=vy, mode=mode, name=label, legendgroup=str(i), showlegend=False,
                                 line=dict(color=color, width=2, dash="dot"), marker=dict(size=5, symbol="circle-open"),
                                 hovertemplate="%{y:.3f}<extra>" + label + "</extra>"))
    _layout(fig, title=title, height=height or 420 + 24 * len(runs))
    fig.update_layout(title=dict(subtitle=dict(text=subtitle, font=dict(size=12))),
                      xaxis=dict(title="Tokens seen", rangemode="tozero"),
                      yaxis=dict(title="Loss", rangemode="tozero"),
                      legend=dict(orientation="v", yanchor="top", y=-0.2, xanchor="left", x=0))
    return fig


STAGE_STYLE = {  # stage name -> (legend, colour); the stages of gpt_core.sampling.filter_stages
    "softmax": ("Model (softmax)", "#cbd5e1"),
    "top_k": ("After top-k", "#94a3b8"),
    "temperature": ("After temperature", "#60a5fa"),
    "top_p": ("After top-p: sampled from", TRAIN_COLOR),
}


def candidates_figure(tokens: Sequence[str], stages: "dict[str, Sequence[float]]", *,
                      settings: str = "", height: int = 440, title: str = "Next-token candidates",
                      highlight: int | None = None) -> "go.Figure":
    """Next-token candidates: the model's softmax and the distribution after each filter
    (top-k, temperature, top-p), the last being what the next token is drawn from.
    `highlight`: the index of a token to mark (the one that was drawn), its label in bold."""
    import plotly.graph_objects as go

    labels = _unique_labels(tokens)
    if highlight is not None:
        labels[highlight] = f"<b>▶ {labels[highlight]}</b>"
    fig = go.Figure()
    for name, probs in stages.items():
        legend, color = STAGE_STYLE.get(name, (name, None))
        # Horizontal bars read best with long tokens; the most likely candidate on top.
        fig.add_trace(go.Bar(y=labels, x=list(probs), orientation="h", name=legend,
                             marker_color=color, hovertemplate="%{y}: %{x:.3f}<extra>" + legend + "</extra>"))
    # The settings on lines of their own: beside the title they ran off a phone's screen.
    lines = wrapped(f"({settings})", 48).split("<br>") if settings else []
    title = "<br>".join([title, *(f"<span style='font-size:12px'>{x}</span>" for x in lines)])
    _layout(fig, title=title, height=height)
    fig.update_layout(margin=dict(t=64 + 16 * len(lines)))
    # Room for the largest bar; never so zoomed that a flat distribution looks peaked.
    top = max((max(p) for p in stages.values() if len(p)), default=1.0)
    fig.update_layout(barmode="group", xaxis=dict(title="Probability", range=[0, min(1.0, max(0.1, 1.1 * top))]),
                      yaxis=dict(autorange="reversed", type="category"), bargap=0.2,
                      legend=dict(y=-0.15))
    return fig


def sampling_lab_figure(words: Sequence[str], probabilities: Sequence[float],
                        counts: Sequence[int], *, temperature: float, draws: int,
                        reference: Sequence[float] | None = None, height: int = 560) -> "go.Figure":
    """The book's 9-word toy example: softmax of the logits at a temperature, and how often
    each word came up in `draws` samples (drawn with `torch.multinomial`).

    The two charts are stacked, each the full width: side by side on a phone their titles ran
    into each other and the axis had room for five of the nine words."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=2, cols=1, vertical_spacing=0.2, subplot_titles=(
        f"Probabilities at temperature {temperature:g}", f"Counts in {draws:,} draws"))
    if reference is not None:
        fig.add_trace(go.Bar(x=list(words), y=list(reference), name="Temperature 1",
                             marker_color="#cbd5e1"), row=1, col=1)
    fig.add_trace(go.Bar(x=list(words), y=list(probabilities), name=f"Temperature {temperature:g}",
                         marker_color=TRAIN_COLOR), row=1, col=1)
    fig.add_trace(go.Bar(x=list(words), y=list(counts), name="Draws", marker_color=VAL_COLOR,
                         text=[str(c) for c in counts], textposition="outside", showlegend=False),
                  row=2, col=1)
    _layout(fig, title="Sampling lab", height=height)
    fig.update_layout(barmode="group", margin=dict(l=50, r=16, t=80, b=40),
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="right", x=1))
    # Every word under each bar (tilted by Plotly when the chart is narrow), never skipped.
    fig.update_xaxes(tickmode="array", tickvals=list(words), automargin=True)
    fig.update_yaxes(range=[0, 1.05], row=1, col=1)
    fig.update_yaxes(range=[0, max(list(counts) + [1]) * 1.18], row=2, col=1)
    return fig


def mark_evaluation(fig: "go.Figure", x: float, ys: Sequence[float | None], *, label: str,
                    name: str = "Replay") -> "go.Figure":
    """Mark one evaluation on the loss figure: a dashed vertical line at `x` (tokens seen),
    ringed points at its losses `ys`, and `label` above the line. Returns `fig`."""
    import plotly.graph_objects as go

    points = [y for y in _nan_to_none(ys) if y is not None]
    fig.add_trace(go.Scatter(x=[x] * len(points), y=points, mode="markers", name=name, showlegend=False,
                             marker=dict(size=13, color="rgba(0,0,0,0)", line=dict(color="#111827", width=2.5)),
                             hoverinfo="skip"))
    fig.add_vline(x=x, line=dict(color="#111827", width=1, dash="dash"))
    # At the foot of the line, inside the plot: losses rarely reach 0, and the top holds the epochs axis.
    x_range = fig.layout.xaxis.range
    right = bool(x_range) and x > x_range[0] + 0.7 * (x_range[1] - x_range[0])  # late in the run: label left of it
    fig.add_annotation(x=x, y=0, yref="paper", text=label, showarrow=False, yanchor="bottom",
                       xanchor="right" if right else "left", xshift=-3 if right else 3,
                       font=dict(size=11, color="#111827"), bgcolor="rgba(255,255,255,0.85)")
    return fig


MASK_COLOR = "#d1d5db"  # the causal mask's cells: grey, unlike any weight's colour


def attention_figure(tokens: Sequence[str], weights: "Sequence[Sequence[float]]", *, title: str,
                     masked_text: str = "masked: a token never sees the tokens after it",
                     x_title: str = "attends to (key)", y_title: str = "token (query)",
                     height: int = 460) -> "go.Figure":
    """One attention map as a heatmap: row i (a query token, top to bottom) gives the weight
    it puts on each key token j (left to right). Cells after the diagonal are the causal mask,
    drawn in grey apart from the weights' colour scale (0 white, 1 dark blue)."""
    import plotly.graph_objects as go

    n = len(tokens)
    if len(weights) != n or any(len(row) != n for row in weights):
        raise ValueError(f"weights must be {n} x {n} for {n} tokens")
    labels = [visible_token(t) for t in tokens]
    # Numbered positions on the axes (tokens repeat), their text as tick labels.
    positions = list(range(n))
    allowed = [[float(weights[i][j]) if j <= i else None for j in range(n)] for i in range(n)]
    future = [[1.0 if j > i else None for j in range(n)] for i in range(n)]
    fig = go.Figure()
    fig.add_trace(go.Heatmap(
        z=allowed, x=positions, y=positions, zmin=0.0, zmax=1.0, colorscale="Blues", name="attention",
        colorbar=dict(title=dict(text="weight", side="right"), thickness=12, len=0.8),
        customdata=[[[labels[i], labels[j]] for j in range(n)] for i in range(n)],
        hovertemplate="%{customdata[0]} → %{customdata[1]}: %{z:.3f}<extra></extra>", xgap=1, ygap=1,
        # Few tokens: the weights written in their cells too, readable on a projector.
        texttemplate="%{z:.2f}" if n <= 12 else None, textfont=dict(size=11)))
    fig.add_trace(go.Heatmap(
        z=future, x=positions, y=positions, colorscale=[[0, MASK_COLOR], [1, MASK_COLOR]], showscale=False,
        name="masked", hovertemplate=masked_text + "<extra></extra>", xgap=1, ygap=1))
    _layout(fig, title=title, height=height)
    tick = dict(tickmode="array", tickvals=positions, ticktext=labels, tickfont=dict(size=10 if n <= 24 else 8))
    fig.update_layout(xaxis=dict(title=x_title, side="bottom", constrain="domain", showgrid=False, **tick),
                      yaxis=dict(title=y_title, autorange="reversed", scaleanchor="x", showgrid=False, **tick),
                      margin=dict(l=80, r=10, t=60, b=80))
    return fig


def message_figure(text: str, *, title: str = "", height: int = 300) -> "go.Figure":
    """An empty chart that says why it is empty (no model yet, ...)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.add_annotation(text=wrapped(text), xref="paper", yref="paper", x=0.5, y=0.5, showarrow=False,
                       font=dict(color="#6b7280", size=14))
    _layout(fig, title=title, height=height)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def visible_token(token: str) -> str:
    """A token as a label: spaces (most of what a BPE token is about), newlines and tabs shown."""
    return token.replace(" ", "\u2423").replace("\n", "\u21b5").replace("\t", "\u21e5") or "\u2205"


def _unique_labels(tokens: Sequence[str]) -> list[str]:
    # A category axis merges equal labels; two byte-pieces of one character both show as U+FFFD.
    seen: dict[str, int] = {}
    labels = []
    for t in tokens:
        label = visible_token(t)
        seen[label] = seen.get(label, 0) + 1
        labels.append(label if seen[label] == 1 else f"{label} ({seen[label]})")
    return labels
