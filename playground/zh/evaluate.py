"""Chinese for the evaluate part of the page (see __init__.py)."""

ZH: dict[str, str] = {
    'None (score with model A only)':
        '无（只用模型 A 评分）',
    'Measure': '指标',
    'Value': '数值',
    'Loss (cross-entropy)': '损失（交叉熵）',
    'Perplexity': '困惑度',
    'Bits per character': '每字符比特数',
    'Tokens scored': '评分的词元数',
    '(first part of the text)': '（文本的前一部分）',
    'Tokens given p > 0.5': 'p > 0.5 的词元',
    'Choose a model to compare.': '选择一个模型来比较。',
    'Loss and perplexity compare only between models with the same tokenizer; bits per character compare any two.':
        '损失和困惑度只能在分词器相同的模型之间比较；每字符比特数可以比较任意两个模型。',
    'The text has {n} token for {model}; scoring needs at least two.': '对 {model} 来说这段文本只有 {n} 个词元；评分至少需要两个。',
    'The text has {count} characters; evaluation takes up to {limit}. Shorten it.': '这段文本有 {count} 个字符；评估最多接受 {limit} 个。请缩短。',
    'Choose at least one model to evaluate.': '至少选择一个要评估的模型。',
}
