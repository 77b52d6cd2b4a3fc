"""Chinese for the data part of the page (see __init__.py)."""

ZH: dict[str, str] = {
}
