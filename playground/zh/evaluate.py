"""Chinese for the evaluate part of the page (see __init__.py)."""

ZH: dict[str, str] = {
    'None (score with model A only)':
        '无（只用模型 A 评分）',
}
