"""Chinese for the generate part of the page (see __init__.py)."""

ZH: dict[str, str] = {
    '**Output**':
        '**输出**',
    "The prompt and the model's continuation appear here, told apart.":
        '提示词和模型的续写会显示在这里，并分开标出。',
    "This model knows none of the characters of {context}, nor of its text's first line: type a few characters from the text it learned.":
        '这个模型不认识 {context} 中的任何字符，也不认识其文本第一行的字符：请输入几个它学过的文本中的字符。',
    "{context} is in characters this model never saw in its text; it starts from the text's own first characters, {known}, instead.":
        '{context} 由这个模型在其文本中从未见过的字符组成；改为从文本开头的字符 {known} 开始。',
    'The prompt is empty: type a few words for the model to continue.':
        '提示词为空：请输入几个词让模型续写。',
    'The prompt is longer than {n} characters; shorten it.':
        '提示词超过 {n} 个字符，请缩短。',
    'This model never saw {chars} in its text; it reads them as {fallback}.':
        '这个模型在其文本中从未见过 {chars}；它会把它们读作 {fallback}。',
    'The prompt has no tokens this model knows.':
        '提示词中没有这个模型认识的词元。',
    'The prompt has {tokens} tokens; the model sees only its last {context} (its context length), so the struck-out start was cut.':
        '提示词有 {tokens} 个词元；模型只能看到最后 {context} 个（它的上下文长度），所以划掉的开头部分被截去了。',
}
