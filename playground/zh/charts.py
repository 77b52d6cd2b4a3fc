"""Chinese for the charts gpt_core draws (gpt_core/plots.py), the Train tab's metrics line and
the estimate's parts (see __init__.py). playground.i18n.localize_figure reads the charts' words here.

`TR_ONLY` holds the pieces only tr() fills: their templates are too general to match a whole
sentence by ("{n} steps" would read any sentence ending in "steps"), so translate_message skips them."""

ZH: dict[str, str] = {
    # the loss chart
    "Training and validation loss": "训练集损失与验证集损失",
    "Batch loss": "批次损失",
    "Training loss": "训练集损失",
    "Validation loss": "验证集损失",
    "Tokens seen": "已见词元数",
    "Loss": "损失",
    "Press Train: the curves draw here as the model learns.": "按下“训练”：模型学习时，曲线会在这里画出来。",
    "Overfitting: validation loss rose at each of the last {n} evaluations while training loss kept falling.":
        "过拟合：最近 {n} 次评估中验证集损失每次都在上升，而训练集损失还在下降。",
    # the sampling lab and the attention map
    "Probabilities at temperature {t}": "温度为 {t} 时的概率",
    "Counts in {draws} draws": "{draws} 次抽样中的次数",
    "Temperature {t}": "温度 {t}",
    "weight": "权重",
    "attention": "注意力",
    "masked": "已掩码",
    "temperature {t}, top-k {top_k}, top-p {top_p}; {kept} tokens can be drawn":
        "温度 {t}，top-k {top_k}，top-p {top_p}；可抽取的词元有 {kept} 个",
    " = greedy": " = 贪婪解码",
    # the key under the generated text (gpt_core/render.py)
    "prompt": "提示词",
    "generated": "生成的",
    "not seen (cut to the context)": "模型没看到（超出上下文长度被截掉）",
}

TR_ONLY: dict[str, str] = {
    # the probability view of the Evaluate tab (gpt_core/render.py PROBABILITY_WORDS)
    "rank {rank}": "排第 {rank} 名",
    "rank {rank} of {vocab}": "在 {vocab} 个词元中排第 {rank} 名",
    "the model's own first guess": "正是模型自己的首选",
    "the model's first guess was {guess}": "模型的首选是 {guess}",
    "probability:": "概率：",
    "The first token: nothing comes before it, so it is not predicted.": "第一个词元：它前面什么都没有，所以不预测它。",
    ("Hover or tap a token: its probability, its rank among the model's guesses, and the model's own first "
     "guess."): "把鼠标停在一个词元上或点一下：显示它的概率、它在模型猜测中的排名，以及模型自己的首选。",
    # the metrics under the chart (playground/train_view.py)
    "batch loss **{loss}**": "批次损失 **{loss}**",
    "{rate} tokens/s": "每秒 {rate} 个词元",
    "lr {lr}": "学习率 {lr}",
    "train loss **{loss}** (perplexity {ppl})": "训练集损失 **{loss}**（困惑度 {ppl}）",
    "val loss **{loss}** (perplexity {ppl})": "验证集损失 **{loss}**（困惑度 {ppl}）",
    "val loss n/a (validation text too short)": "验证集损失 无（验证文本太短）",
    "**{hint}** Stop here, or add data, dropout or weight decay.": "**{hint}** 可以在这里停止，或者增加数据、dropout 或权重衰减。",
    "Runs on this text, last validation loss (best): ": "这段文本上的各次训练，最后的验证集损失（最好）：",
    "{label} **{val}** ({best} at step {best_step} of {steps})": "{label} **{val}**（{best}，第 {best_step} / {steps} 步）",
    "No run yet. The demo preset trains in seconds.": "还没有训练。演示预设几秒钟就能训练完。",
    "Starting...": "正在开始……",
    "preparing data and model": "正在准备数据和模型",
    "Preparing the data and building the model...": "正在准备数据并构建模型……",
    "an uploaded model, no run of its own: train it further with Start from: your model":
        "上传的模型，没有自己的训练记录：选择“起点：你的模型”继续训练它",
    # the estimate (playground/train_estimate.py) and the preset fitted to the text (preset_fit.py)
    "**{count} parameters** ({exact}) · weights {weights} · training needs about {training}":
        "**{count} 个参数**（{exact}）· 权重 {weights} · 训练约需 {training} 内存",
    "{iterations}, each over {windows} windows at random starts (80/20 split of the tokens); loss estimated every "
    "{every} over {batches} of each split, with a sample each time":
        "{iterations}，每次取 {windows} 个随机起点的窗口（词元按 80/20 划分）；每隔 {every}估计一次损失，"
        "每个划分取 {batches}，每次都生成一个样本",
    "{batches} per epoch × {epochs} = {steps}; loss estimated every {every} over {eval_batches} of the two splits":
        "每个训练轮次 {batches} × {epochs} = {steps}；每隔 {every}估计一次损失，两个划分各取 {eval_batches}",
    ", {duration} per epoch": "，每个训练轮次 {duration}",
    "{steps}, {evaluations}, {samples}": "{steps}、{evaluations}、{samples}",
    "The iterations read the training part about {passes} times over": "这些迭代大约把训练集读了 {passes} 遍",
    ("⚠️ The iterations read the training part about **{passes} times over**: expect the model to memorise this "
     "text (the validation loss turns up early). Fewer iterations, dropout or a longer text keep it learning."):
        ("⚠️ 这些迭代大约把训练集读了 **{passes} 遍**：模型多半会背下这段文本（验证集损失会很早回升）。"
         "减少迭代次数、使用 dropout 或换更长的文本，能让它继续学习。"),
    "{batches} an evaluation": "每次评估 {batches}",
    "an evaluation every {every}": "每隔 {every}评估一次",
    ", ": "，",
    "{n} step": "{n} 步",
    "{n} steps": "{n} 步",
    "{n} iteration": "{n} 次迭代",
    "{n} iterations": "{n} 次迭代",
    "{n} epoch": "{n} 个训练轮次",
    "{n} epochs": "{n} 个训练轮次",
    "{n} batch": "{n} 个批次",
    "{n} batches": "{n} 个批次",
    "{n} random batch": "{n} 个随机批次",
    "{n} random batches": "{n} 个随机批次",
    "{n} evaluation batch": "{n} 个评估批次",
    "{n} evaluation batches": "{n} 个评估批次",
    "{n} evaluation": "{n} 次评估",
    "{n} evaluations": "{n} 次评估",
    "{n} sample": "{n} 个样本",
    "{n} samples": "{n} 个样本",
    "{n} warmup step": "{n} 个预热步",
    "{n} warmup steps": "{n} 个预热步",
    "{batches}: all the validation part has (the preset's {preset})": "{batches}：验证集一共就这么多（预设为 {preset}）",
    "{warmup} (the preset's {preset}): warmup stays within the first fifth of the run's {steps} steps":
        "{warmup}（预设为 {preset}）：学习率预热不超过这次训练 {steps} 步的前五分之一",
    "{epochs} (the preset's {preset}) to stay within the time budget of {budget}: an epoch of this text takes "
    "{per_epoch} here": "{epochs}（预设为 {preset}），以不超出 {budget} 的时间预算：这段文本的一个训练轮次在这里要{per_epoch}",
    "{epochs} (the preset's {preset}): an epoch of this text takes {one} here, a little over the time budget of "
    "{budget}": "{epochs}（预设为 {preset}）：这段文本的一个训练轮次在这里要{one}，略超出 {budget} 的时间预算",
    "{iterations} over random windows instead of epochs: one epoch of this text is {steps} steps, {one} here, "
    "longer than the time budget of {budget}":
        "改用随机窗口上的 {iterations}，而不是训练轮次：这段文本的一个训练轮次是 {steps} 步，在这里要{one}，"
        "超过 {budget} 的时间预算",
    "to keep evaluating within a third of the time budget": "让评估不超过时间预算的三分之一",
    "about the {tokens} tokens of the validation part once": "大约把验证集的 {tokens} 个词元读一遍",
    "{batches} an evaluation (the preset's {preset}): {why}": "每次评估 {batches}（预设为 {preset}）：{why}",
    "{iterations} (the preset's {preset}) to stay within the time budget of {budget}: a step of {windows} windows "
    "takes {ms} ms here": "{iterations}（预设为 {preset}），以不超出 {budget} 的时间预算：{windows} 个窗口的一步在这里要 {ms} 毫秒",
    "a moment": "一眨眼",
    "an evaluation every {every} (the preset's {preset}): {n} in the run, each with a sample ({sample} each)":
        "每隔 {every}评估一次（预设为 {preset}）：这次训练共 {n} 次，每次生成一个样本（每个 {sample}）",
    ", fewer to keep within a third of the time budget": "，减少次数以不超过时间预算的三分之一",
}
