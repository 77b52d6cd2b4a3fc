"""The Gradio side of the playground: one module of handlers per tab, and what they share.

Handlers take the session's `playground.session.Workspace` first and plain values after it;
`app.py` lays out the page and binds them to events.
"""
