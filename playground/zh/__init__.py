"""The page in Chinese (zh-CN), keyed by the English text the code writes.

Terms follow ../shared/zh-glossary.md: the words the Chinese write-ups of chapter 5 and the
BabyGPT notebook use (词元, 困惑度, 训练集/验证集损失, 温度缩放, ...). A key with {name} is a
template: the Chinese keeps the same names. The book's config field names (context_length,
emb_dim, ...) stay in Latin letters, as in the book's code, with the Chinese term beside them.
One module a part of the page; tests/test_i18n.py fails on a visible string missing here.
"""
from . import charts, compare, data, evaluate, generate, gpt2, page, teach, train

ZH: dict[str, str] = {}
for _part in (page, data, train, charts, generate, gpt2, evaluate, teach, compare):
    ZH.update(_part.ZH)
ZH.update(charts.TR_ONLY)
TR_ONLY = frozenset(charts.TR_ONLY)  # filled by tr() only, never matched by translate_message
