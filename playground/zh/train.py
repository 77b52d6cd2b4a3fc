"""Chinese for the train part of the page (see __init__.py)."""

ZH: dict[str, str] = {
    'Your model is unchanged ({label}).':
        '你的模型没有改变（{label}）。',
    'You still have no model of your own.':
        '你还没有自己的模型。',
    "The samples' start context: {note}":
        '样本的起始上下文：{note}',
    # the run's arithmetic (gpt_core/precision.py)
    "Precision": "计算精度",
    "Exact (float32: the book's numbers)": "精确（float32：与书中的数字一致）",
    "Fast (bfloat16)": "快速（bfloat16）",
    "Auto (Fast where this machine computes bfloat16 natively)": "自动（这台机器原生支持 bfloat16 时用快速模式）",
}
