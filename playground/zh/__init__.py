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
TR_ONLY = frozenset(charts.TR_ONLY)
# Words of Gradio's own page that its zh-CN table lacks (the footer's "Runs", an event's "complete"), by Gradio's keys;
# the browser's table only (playground.i18n.I18N).
GRADIO_ZH: dict[str, str] = {
    "common.runs": "运行记录",
    "common.runs_description": "查看保存在这个浏览器中的运行记录",
    "common.complete": "完成",  # a finished event's status, otherwise shown as its key
    "common.progress": "进度",
    "common.run": "运行",
    "common.download_all": "全部下载",
    "common.back_to_app": "应用",
    "common.back_to_app_description": "回到应用",
    # An event waiting its turn in Gradio's queue (a student behind others on a shared server).
    "status.queue_position": "排队中：第 {position} / {size} 位",
}  # filled by tr() only, never matched by translate_message
