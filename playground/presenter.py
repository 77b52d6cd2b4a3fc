"""Presenter mode, for a projector: large text everywhere and thick chart lines. The toggle (and
a `?present=1` link, read in `share.restore`) puts the class `presenter` on the page's body;
the rest is this stylesheet and a script in the browser. No server round trip: every chart,
drawn now or later, is restyled where it is shown.
"""

LABEL = "Presenter mode (large text, thick lines)"
CLASS = "presenter"
FONT_PX = 20  # the charts' text in presenter mode (Plotly's default is 12)
LINE_PX = 5  # the charts' lines (the page draws them 1-2 px wide)
FAINT_PX = 2.5

# Gradio's theme sizes (defined on :root, each derived size computed there), set again on the
# body so that every text on the page grows: 14 px body text becomes 22 px.
CSS = f"""
body.{CLASS} {{
  --text-xxs: 13px; --text-xs: 15px; --text-sm: 18px; --text-md: 22px; --text-lg: 26px;
  --text-xl: 32px; --text-xxl: 38px;
  --block-info-text-size: var(--text-sm); --block-label-text-size: var(--text-sm);
  --block-title-text-size: var(--text-md); --body-text-size: var(--text-md);
  --button-large-text-size: var(--text-lg); --button-medium-text-size: var(--text-md);
  --button-small-text-size: var(--text-sm); --checkbox-label-text-size: var(--text-md);
  --input-text-size: var(--text-md); --prose-text-size: var(--text-md);
  --section-header-text-size: var(--text-md);
}}
body.{CLASS} .gradio-container {{max-width: 100% !important}}
body.{CLASS} .tab-wrapper button, body.{CLASS} button[role=tab] {{font-size: var(--text-lg)}}
body.{CLASS} .run-progress {{font-size: var(--text-md)}}
body.{CLASS} .run-progress > div:first-child {{font-size: var(--text-md) !important}}
/* Plotly writes each line's width on the line itself; a rule marked important wins over it. */
body.{CLASS} .js-plotly-plot .scatterlayer .js-line,
body.{CLASS} .js-plotly-plot .legendlines path {{stroke-width: {LINE_PX}px !important}}
/* A faint line (the per-batch loss, drawn translucent) stays lighter than the curves over it. */
body.{CLASS} .js-plotly-plot .scatterlayer .js-line[style*="stroke-opacity: 0."] {{stroke-width: {FAINT_PX}px !important}}
/* The language switch, grown, takes a line of its own under the title (beside it, on a phone,
   it would squeeze the title into a narrow column). */
body.{CLASS} .form:has(> #language) {{min-width: 100% !important}}
body.{CLASS} #language {{flex-grow: 1 !important}}
/* The chart's floating name tag would cover its larger title. */
body.{CLASS} .block:has(.js-plotly-plot) > label[data-testid=block-label] {{display: none}}
"""

# The toggle (set by hand, or by a `?present=1` link on load): the class on the body, then
# every chart's text sized for it. Plotly sizes a chart's text in its layout (it measures the
# text to place it), so a stylesheet cannot enlarge it: each chart is relaid out with larger
# text and the room it needs (height, margins, the legend further down), and again after every
# redraw the server sends (Gradio replaces the layout with the server's each time); off again,
# each chart gets back the values it had. The watcher is installed the first time.
TOGGLE_JS = f"""(on) => {{
  document.body.classList.toggle('{CLASS}', !!on);
  if (!window.presenterCharts) {{
    const active = () => document.body.classList.contains('{CLASS}');
    const normal = (layout) => {{
      const font = (o) => ((o || {{}}).font || {{}}).size;
      const margin = layout.margin || {{}};
      const px = {{
        'font.size': font(layout) || 12, 'title.font.size': font(layout.title) || 17,
        'title.subtitle.font.size': font((layout.title || {{}}).subtitle) || 12,
        'legend.font.size': font(layout.legend) || 12, 'height': layout.height || 450,
        'margin.t': margin.t ?? 100, 'margin.b': margin.b ?? 80, 'margin.l': margin.l ?? 80,
        'legend.y': (layout.legend || {{}}).y ?? 1,
      }};
      (layout.annotations || []).forEach((a, i) => {{ px[`annotations[${{i}}].font.size`] = font(a) || 12; }});
      return px;
    }};
    const larger = (px) => Object.fromEntries(Object.entries(px).map(([key, value]) => [key,
      key.endsWith('font.size') ? Math.max(value, {FONT_PX}) + (key === 'title.font.size' ? 4 : 0)
      : key === 'legend.y' ? (value < 0 ? value * 1.6 : value) : Math.round(value * 1.35)]));
    const style = (el) => {{
      if (!window.Plotly || !el.layout) return;
      if (active() && el.__presented !== el.layout) {{
        el.__normal = normal(el.layout);
        el.__presented = el.layout;
        window.Plotly.relayout(el, larger(el.__normal));
      }} else if (!active() && el.__presented === el.layout && el.__normal) {{
        el.__presented = null;
        window.Plotly.relayout(el, el.__normal);
      }}
    }};
    window.presenterCharts = () => document.querySelectorAll('.js-plotly-plot').forEach((el) => {{
      if (!el.__presenterHook && el.on) {{
        el.__presenterHook = true;
        el.on('plotly_afterplot', () => style(el));
      }}
      style(el);
    }});
    setInterval(window.presenterCharts, 1000);  // charts drawn later, in tabs opened later
  }}
  window.presenterCharts();
}}"""
