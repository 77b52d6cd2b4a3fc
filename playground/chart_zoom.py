"""The loss chart keeps the user's zoom while it redraws itself during a run.

Plotly keeps a zoom across `Plotly.react` calls when the layout's `uirevision` stays the same,
but Gradio's gr.Plot remounts its chart on every new value (a fresh <div>, so a fresh plot),
and the zoom is gone a few hundred milliseconds later (checked in Chromium: test_browser_runs.py).
This script, in the page's <head>, gives `uirevision` its meaning back: it remembers the axis
ranges the user sets on a chart (per element id and uirevision) and writes them into each new
figure's layout before Plotly draws it. A double click (Plotly's reset) forgets them; a new run
(a new uirevision, `RunHistory.revision`) starts unzoomed.
"""

KEEP_ZOOM_HEAD = """<script>
(() => {
  const views = {};  // element id -> {rev: uirevision, ranges: {xaxis: [a, b], ...}, resetAt: ms}
  const AXIS = /^([xy]axis\\d*)\\.(range(?:\\[[01]\\])?|autorange)$/;
  const chartId = gd => { const box = gd.parentElement && gd.parentElement.closest('[id]'); return box ? box.id : null; };

  function remember(gd, id, ev) {
    const rev = gd.layout && gd.layout.uirevision;
    if (rev === undefined || rev === null) return;
    let view = views[id];
    if (!view || view.rev !== rev) view = views[id] = {rev, ranges: {}, resetAt: 0};
    if (Date.now() - view.resetAt < 800) return;  // the relayout of a double-click reset
    for (const [key, value] of Object.entries(ev || {})) {
      const m = AXIS.exec(key);
      if (!m) continue;
      const axis = m[1];
      if (m[2] === 'autorange') { delete view.ranges[axis]; continue; }
      const full = gd._fullLayout && gd._fullLayout[axis];
      if (full && full.range) view.ranges[axis] = full.range.slice();  // as drawn, both ends
    }
  }

  function keepZoom(Plotly) {
    if (Plotly.__keepsZoom) return;
    Plotly.__keepsZoom = true;
    const react = Plotly.react;
    Plotly.react = function (gd, data, layout, config) {
      const id = chartId(gd);
      const view = id && views[id];
      if (view && layout && layout.uirevision === view.rev) {
        for (const [axis, range] of Object.entries(view.ranges)) {
          layout[axis] = Object.assign({}, layout[axis], {range: range.slice(), autorange: false});
        }
      }
      const drawn = react.apply(this, arguments);
      Promise.resolve(drawn).then(() => {
        if (!id || gd.__keepsZoom || typeof gd.on !== 'function') return;
        gd.__keepsZoom = true;
        gd.on('plotly_relayout', ev => remember(gd, id, ev));
        gd.on('plotly_doubleclick', () => {
          views[id] = {rev: gd.layout && gd.layout.uirevision, ranges: {}, resetAt: Date.now()};
        });
      });
      return drawn;
    };
  }

  // Plotly arrives with the first chart; wrap it before anyone can zoom.
  const wait = setInterval(() => { if (window.Plotly && window.Plotly.react) { keepZoom(window.Plotly); clearInterval(wait); } }, 50);
})();
</script>"""
