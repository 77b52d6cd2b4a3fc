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
    # generation's precision and the line under a finished generation (playground/generate_tab.py)
    "Exact (float32: the book's tokens)": "精确（float32：与书中的词元一致）",
    "Generated {tokens} in {seconds} ({rate}).": "生成了 {tokens}，用时 {seconds}（{rate}）。",
    "{n} token": "{n} 个词元",
    "{n} tokens": "{n} 个词元",
    "{why}: Fast may be no faster than Exact here.": "{why}：在这里快速模式可能并不比精确模式快。",
    # gpt_core.bf16_matvec.status(): what one-row bfloat16 products run on
    "one-row bfloat16 products: torch.mv ({why})": "单行 bfloat16 乘法：torch.mv（{why}）",
    "turned off (GPT_CORE_NATIVE=0)": "已关闭（GPT_CORE_NATIVE=0）",
    "this CPU has no AVX512_BF16": "这台 CPU 没有 AVX512_BF16 指令",
    "no C compiler to build it with": "没有可以编译它的 C 编译器",
    "it could not be built: {error}": "无法编译：{error}",
    "Unknown precision {label}; choose Exact, Fast or Auto.": "未知的计算精度 {label}；请选择精确、快速或自动。",
    "Unknown precision {name}; choose float32 (Exact), bfloat16 (Fast) or auto.":
        "未知的计算精度 {name}；请选择 float32（精确）、bfloat16（快速）或 auto（自动）。",
}
