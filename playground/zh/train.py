"""Chinese for the train part of the page (see __init__.py)."""

ZH: dict[str, str] = {
    'Your model is unchanged ({label}).':
        '你的模型没有改变（{label}）。',
    'You still have no model of your own.':
        '你还没有自己的模型。',
    "The samples' start context: {note}":
        '样本的起始上下文：{note}',
}
