"""Chinese for the teach part of the page (see __init__.py): the run replayed, the token
inspector and the Attention tab (playground/replay.py, inspector.py, attention_tab.py)."""

ZH: dict[str, str] = {
    # --- the run replayed (under the loss chart) -----------------------------------------
    "Replay the run: evaluation": "回放训练过程：第几次评估",
    ("Each evaluation of a run keeps the model's greedy sample and its next-token candidates here. "
     "Then move the slider to replay the run; the curve marks where you are."):
        "训练中的每次评估都会在这里留下模型的贪婪解码样本和下一个词元的候选。之后拖动滑块即可回放训练过程，曲线上会标出当前位置。",
    "This model came without its run (weights only): there is nothing to replay.":
        "这个模型没有附带训练过程（只有权重），没有可回放的内容。",
    "Evaluation {i} of {n} · step {step:,} · epoch {epoch} · {tokens:,} tokens seen":
        "第 {i} / {n} 次评估 · 第 {step:,} 步 · 第 {epoch} 个训练轮次 · 已见 {tokens:,} 个词元",
    "Evaluation {i} of {n} · iteration {step:,} · {tokens:,} tokens seen":
        "第 {i} / {n} 次评估 · 第 {step:,} 次迭代 · 已见 {tokens:,} 个词元",
    "training loss <b>{train}</b> · validation loss <b>{val}</b>": "训练集损失 <b>{train}</b> · 验证集损失 <b>{val}</b>",
    "Greedy sample from the start context": "从起始上下文贪婪解码的样本",
    "Next-token candidates after “{start}”": "“{start}”之后的下一个词元候选",
    "step {step:,}": "第 {step:,} 步",
    "iteration {step:,}": "第 {step:,} 次迭代",
    "n/a": "无",
    "The replay's position must be a whole number, got {value}.": "回放位置必须是整数，收到的是 {value}。",

    # --- the inspector (Generate tab) ------------------------------------------------------
    "Inspect the generation token by token": "逐个词元查看生成过程",
    "What the clicked token was drawn from": "所点词元是从哪些候选中抽出的",
    "Click a generated token": "点按一个生成的词元",
    "Generate some text, then click any of its tokens to see the candidates it was drawn from.":
        "先生成一段文本，再点按其中任意一个词元，查看它是从哪些候选中抽出的。",
    "Click any generated token above: green ones were the model's first choice, red ones a surprise.":
        "点按上面任意一个生成的词元：绿色是模型的首选，红色是出乎模型意料的词元。",
    "That is the prompt (given, not drawn): click a generated token after it.":
        "这是提示词（是给定的，不是抽样得到的）：请点按它后面生成的词元。",
    "Click one of the {total} generated tokens (got item {index}).": "请点按这 {total} 个生成的词元之一（收到的是第 {index} 项）。",
    "Token {n} of {total}: “{token}”": "第 {n} / {total} 个词元：“{token}”",
    ("**Token {n} of {total}: “{token}”** was the model's **#{rank:,}** choice of {vocab:,} tokens. "
     "Its probability at each stage: {stages}. It was drawn from the {kept:,} tokens the filters left."):
        ("**第 {n} / {total} 个词元“{token}”** 在 {vocab:,} 个词元中是模型的 **第 {rank:,}** 选择。"
         "它在每一步的概率：{stages}。它是从筛选后剩下的 {kept:,} 个词元中抽出的。"),
    ("**Token {n} of {total}: “{token}”** was the model's **#{rank:,}** choice of {vocab:,} tokens "
     "(temperature 0: greedy decoding takes the most likely token). Its probability at each stage: {stages}."):
        ("**第 {n} / {total} 个词元“{token}”** 在 {vocab:,} 个词元中是模型的 **第 {rank:,}** 选择"
         "（温度为 0：贪婪解码总是选最可能的词元）。它在每一步的概率：{stages}。"),
    "temperature {temperature:g}, top-k {top_k}, top-p {top_p}": "温度 {temperature:g}，top-k {top_k}，top-p {top_p}",
    "off": "关闭",
    "softmax": "softmax",
    "after top-k": "top-k 之后",
    "after temperature": "温度缩放之后",
    "after top-p": "top-p 之后",
    "rank 1": "第 1 名",
    "rank 2–5": "第 2–5 名",
    "rank 6 or lower": "第 6 名及以后",
    # The candidates chart's words (gpt_core/plots.py), also drawn for the clicked token.
    "Model (softmax)": "模型（softmax）",
    "After top-k": "top-k 之后",
    "After temperature": "温度缩放之后",
    "After top-p: sampled from": "top-p 之后：从这里抽样",
    "Probability": "概率",

    # --- 6 · Attention ---------------------------------------------------------------------
    "6 · Attention": "6 · 注意力",
    ("Each row is a token of your text; its cells show how much that token attends to each token before it "
     "(the weights sum to 1 along a row). The grey triangle is the causal mask: a token never sees the tokens "
     "after it."):
        ("每一行是文本中的一个词元，格子表示这个词元对它之前每个词元的注意力权重（每一行的权重之和为 1）。"
         "灰色三角形是因果掩码：一个词元永远看不到它之后的词元。"),
    "Your model": "你的模型",
    "Text": "文本",
    "Layer": "层",
    "Head": "注意力头",
    "Average over heads": "所有注意力头的平均",
    "Head {n}": "第 {n} 个注意力头",
    "Compare with a fresh (untrained) model: same config and seed": "与同样配置、同样随机种子的未训练模型对比",
    "Show attention": "显示注意力",
    "Fresh (untrained)": "未训练的模型",
    "Trained": "训练后",
    "{which}<br>layer {layer} of {layers} · {head}": "{which}<br>第 {layer} / {layers} 层 · {head}",
    "masked: a token never sees the tokens after it": "已掩码：一个词元永远看不到它之后的词元",
    "attends to (key)": "被关注的词元（键）",
    "token (query)": "词元（查询）",
    "Press “Show attention” to draw the weights.": "按下“显示注意力”来画出权重。",
    "Tick “Compare with a fresh (untrained) model” to see the untrained weights beside these.":
        "勾选“与同样配置、同样随机种子的未训练模型对比”，即可在旁边看到未训练模型的权重。",
    "{n} tokens · {layers} layers × {heads} heads. The fresh model: {config}, seed {seed}.":
        "{n} 个词元 · {layers} 层 × {heads} 个注意力头。未训练的模型：{config}，随机种子 {seed}。",
    "{n} tokens · {layers} layers × {heads} heads.": "{n} 个词元 · {layers} 层 × {heads} 个注意力头。",
    "The text is empty: type a few words to see how the model reads them.": "文本是空的：输入几个词，看看模型怎样读它们。",
    "The text has {n} tokens; an attention map shows at most {limit} tokens readably. Shorten it.":
        "这段文本有 {n} 个词元；注意力图最多只能清楚地显示 {limit} 个词元。请缩短它。",
    "This model never saw {chars} in its text; they are read as {fallback}.":
        "这个模型在训练文本中从没见过 {chars}；它们会被当作 {fallback} 读入。",
    "The bigram baseline is a lookup table: it has no attention to show. Train a GPT preset, or choose GPT-2.":
        "二元语法模型 (Bigram) 基线只是一张查找表，没有注意力可显示。请训练一个 GPT 预设，或选择 GPT-2。",
    ("A fresh copy of this model would have {params:,} parameters; this server builds up to {limit:,} for the "
     "comparison. Untick the comparison to see the trained model alone."):
        "这个模型的未训练副本有 {params:,} 个参数；本服务器为对比最多只构建 {limit:,} 个参数的模型。取消勾选对比，即可只看训练后的模型。",
    "a fresh model to compare attention with": "用来对比注意力的未训练模型",
    "{layers} layers × {width}": "{layers} 层 × {width} 维",
    "Unknown head {head}; choose one of the list.": "未知的注意力头 {head}；请从列表中选择。",
}
