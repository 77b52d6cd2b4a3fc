"""The page's words and looks beside its layout (app.py): the introduction, the theme, and what
the page adds to Gradio's styles and scripts so that a person can read it: the message areas,
no red badge over the outputs, tables and charts that fit the screen they are on."""
import gradio as gr

INTRO = """# Watch a GPT learn
Pick a text in **Data**, press **Train** and watch the loss fall while the model learns to
write like it; then sample from it in **Generate**, load OpenAI's **GPT-2** into the same
model, and compare them in **Evaluate**. After chapter 5 of *Build a Large Language Model
(From Scratch)*."""


def theme() -> gr.themes.Base:
    # System fonts only: a classroom server may have no internet for web fonts.
    return gr.themes.Default(primary_hue="blue", font=["ui-sans-serif", "system-ui", "sans-serif"],
                             font_mono=["ui-monospace", "Consolas", "monospace"])

CSS = """
/* Gradio's red "Error" badge would sit on top of the outputs; the tab's message area explains. */
[data-testid="status-tracker"]:has(> .error) {display: none !important}
.block.message-area:has(.prose p) {border: 1px solid #fca5a5; background: #fef2f2; border-radius: 6px;
  padding: 4px 12px !important}
/* Tables on a phone: lines break between words, never inside "124M"; what still does not
   fit scrolls sideways. */
.prose table {display: block; overflow-x: auto; width: max-content; max-width: 100%; border: none}
.prose th, .prose td {word-break: normal; overflow-wrap: normal}
/* The line under a generation (what it did): quieter than the text, wrapping on a phone. */
#generate-status .prose {font-size: 13px; color: var(--body-text-color-subdued)}
/* The introduction and the language switch: side by side on a wide screen, stacked on a phone
   (side by side there, the introduction was a column a few words wide). */
@media (max-width: 640px) {#intro-row {flex-wrap: wrap} #intro-row > * {flex: 1 1 100% !important}
  #intro-row #language {flex: 1 1 100% !important; min-width: 100% !important}}
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
