"""Chinese for the gpt2 part of the page (see __init__.py)."""

ZH: dict[str, str] = {
}
