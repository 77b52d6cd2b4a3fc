"""What the page adds to Gradio's own styles and scripts so that a person can read it: the
message areas, no red badge over the outputs, and charts that fit the screen they are on."""

CSS = """
/* Gradio's red "Error" badge would sit on top of the outputs; the tab's message area explains. */
[data-testid="status-tracker"]:has(> .error) {display: none !important}
.block.message-area:has(.prose p) {border: 1px solid #fca5a5; background: #fef2f2; border-radius: 6px;
  padding: 4px 12px !important}
"""

# Plotly sizes a chart drawn while its tab is still hidden (zero wide) at its default 700 px
# and keeps that until the window is resized: on a phone the chart then runs off the screen.
# After any change to the page, a chart whose width is not its box's gets that resize.
JS = """() => {
  let pending = null;
  const fit = () => {
    pending = null;
    const wrong = [...document.querySelectorAll('.js-plotly-plot')].some(el => el._fullLayout
      && el.clientWidth > 0 && Math.abs(el._fullLayout.width - el.clientWidth) > 2);
    if (wrong) window.dispatchEvent(new Event('resize'));
  };
  new MutationObserver(() => { pending = pending || setTimeout(fit, 250); })
    .observe(document.body, {childList: true, subtree: true, attributes: true, attributeFilter: ['style', 'class']});
}"""
