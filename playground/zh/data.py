"""Chinese for the data part of the page (see __init__.py)."""

ZH: dict[str, str] = {
    'GPT-2 BPE splits this text mostly into pieces of characters: {share} of its tokens are single bytes of a character (the “�” tokens), not whole characters. The Characters tokenizer gives every character a token of its own, as the BabyGPT notebook does for Chinese: choose Characters, or a character-level preset.':
        'GPT-2 BPE 把这段文本大多切成了字符的碎片：{share} 的词元只是某个字符的单个字节（显示为“�”的词元），而不是完整的字符。字符级分词器让每个字符都有自己的词元，BabyGPT 笔记本处理中文时就是这样做的：请选择“字符级”，或选用字符级的预设。',
    'The active text is still **{name}**, as the summary shows.':
        '当前使用的文本仍是 **{name}**，如旁边的摘要所示。',
}
