"""Chinese for the data part of the page (see __init__.py)."""

ZH: dict[str, str] = {
    'GPT-2 BPE splits this text mostly into pieces of characters: {share} of its tokens are single bytes of a character (the “�” tokens), not whole characters. The Characters tokenizer gives every character a token of its own, as the BabyGPT notebook does for Chinese: choose Characters, or a character-level preset.':
        'GPT-2 BPE 把这段文本大多切成了字符的碎片：{share} 的词元只是某个字符的单个字节（显示为“�”的词元），而不是完整的字符。字符级分词器让每个字符都有自己的词元，BabyGPT 笔记本处理中文时就是这样做的：请选择“字符级”，或选用字符级的预设。',
    'The active text is still **{name}**, as the summary shows.':
        '当前使用的文本仍是 **{name}**，如旁边的摘要所示。',
    'Active text: **{name}** (read as {encoding})': '当前文本：**{name}**（按 {encoding} 编码读取）',
    'What the model sees': '模型看到的内容',
    '{count} ({unique} different)': '{count}（{unique} 个不同的字符）',
    'Tokens ({tokenizer})': '词元数（{tokenizer}）',
    'Vocabulary size': '词表大小',
    'Training part (90%)': '训练集（90%）',
    'Validation part (10%)': '验证集（10%）',
    '{tokens} tokens, {windows} windows': '{tokens} 个词元，{windows} 个窗口',
    'Batches per epoch': '每个训练轮次的批次数',
    '{batches} of {size} x {context} tokens': '{batches} 个，每批 {size} x {context} 个词元',
    'Characters per token': '每个词元的字符数',
    '... and {more} more tokens': '……还有 {more} 个词元',
    'Uploaded: {name}': '上传的文件：{name}',
    'Pasted text ({count} characters)': '粘贴的文本（{count} 个字符）',
}
