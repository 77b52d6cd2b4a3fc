"""Chinese for the page's frame and the layout's fixed words (see __init__.py)."""
from ..explain import DATA_NUMBERS, EVALUATE_NUMBERS, NUMBERS, TITLE

ZH: dict[str, str] = {
    # --- the page ------------------------------------------------------------------------
    "Watch a GPT learn": "看 GPT 如何学习",
    "Language": "语言",
    "English": "English",  # each language is named in its own on the switch
    ("# Watch a GPT learn\nPick a text in **Data**, press **Train** and watch the loss fall while the model "
     "learns to\nwrite like it; then sample from it in **Generate**, load OpenAI's **GPT-2** into the same\n"
     "model, and compare them in **Evaluate**. After chapter 5 of *Build a Large Language Model\n"
     "(From Scratch)*."):
        ("# 看 GPT 如何学习\n在 **数据** 中选一段文本，按下 **训练**，看着损失下降，模型学着写出同样风格的文字；"
         "然后在 **生成** 中从模型采样，把 OpenAI 的 **GPT-2** 载入同一个模型，并在 **评估** 中比较它们。"
         "内容对应《从零构建大模型》(*Build a Large Language Model (From Scratch)*) 第 5 章。"),

    # --- Data ----------------------------------------------------------------------------
    "1 · Data": "1 · 数据",
    "Sample text": "示例文本",
    "The Verdict (Edith Wharton)": "The Verdict（伊迪丝·华顿，英文）",
    "Tiny Shakespeare": "Tiny Shakespeare（莎士比亚，英文）",
    "论语 (The Analects)": "论语",
    "...or upload a .txt (any common encoding)": "……或上传 .txt 文件（常见编码均可）",
    "...or paste a text": "……或粘贴一段文本",
    "Paste at least a few paragraphs here": "在这里粘贴至少几段文字",
    "Use the pasted text": "使用粘贴的文本",
    "Tokenizer to show (the Train tab uses the same)": "显示所用的分词器（训练页使用同一个）",
    "GPT-2 BPE": "GPT-2 BPE",
    "Characters": "字符级",
    "**The first tokens, as the model sees them** (hover a token for its id)":
        "**模型看到的前几个词元**（悬停或点按词元可看它的编号）",
    "The text": "文本",

    # --- Train ---------------------------------------------------------------------------
    "2 · Train": "2 · 训练",
    "Preset": "预设",
    "Fast demo: 2 layers, GPT-2 BPE (seconds)": "快速演示：2 层，GPT-2 BPE（几秒钟）",
    "Characters: 4 layers, character tokens": "字符级：4 层，字符词元",
    "BabyGPT notebook: 4 layers, characters, random windows": "BabyGPT 笔记本：4 层，字符级，随机窗口",
    "Bigram baseline (BabyGPT notebook): a lookup table": "二元语法模型 (Bigram) 基线（BabyGPT 笔记本）：一张查找表",
    "The book's GPT-124M (slow on CPU)": "书中的 GPT-124M（在 CPU 上很慢）",
    "Custom (edit the fields below)": "自定义（修改下面的字段）",
    "Tokenizer": "分词器",
    "Start from": "起点",
    "Scratch (random weights)": "从零开始（随机权重）",
    "GPT-2 (load it in the GPT-2 tab)": "GPT-2（先在 GPT-2 页载入）",
    "Your model (continue training it)": "你的模型（继续训练）",
    "Model (the book's GPT_CONFIG fields)": "模型（书中 GPT_CONFIG 的字段）",
    "context_length": "context_length（上下文长度）",
    "emb_dim": "emb_dim（嵌入维度）",
    "n_heads": "n_heads（注意力头数）",
    "n_layers": "n_layers（层数）",
    "drop_rate": "drop_rate（丢弃率）",
    "qkv_bias": "qkv_bias（查询/键/值偏置）",
    "Training options": "训练选项",
    "Epochs": "训练轮次",
    "Batch size": "批次大小",
    "Iterations over random windows (0 = epochs over sliding windows, the book's way)":
        "随机窗口的迭代次数（0 = 按书中的方式，在滑动窗口上按训练轮次训练）",
    "Learning rate": "学习率",
    "Weight decay": "权重衰减",
    "Stride (0 = context length)": "步幅（0 = 上下文长度）",
    "Warmup steps": "学习率预热步数",
    "Cosine decay": "余弦衰减",
    "Gradient clipping (0 = off)": "梯度裁剪（0 = 关闭）",
    "Label smoothing": "标签平滑",
    "Seed": "随机种子",
    "Evaluate every (steps)": "每隔多少步评估一次",
    "Evaluation batches": "评估批次数",
    "Start context (sampled after each epoch)": "起始上下文（每个训练轮次后从它生成样例）",
    "Measure speed on this machine": "在这台机器上测速",
    "Train": "训练",
    "Stop": "停止",
    "Resume": "继续",
    "Checkpoint": "检查点",
    "Save checkpoint": "保存检查点",
    "Download checkpoint": "下载检查点",
    "Upload a checkpoint (.pt / .pth: ours or the book's model.pth)":
        "上传检查点（.pt / .pth：本站的，或书中的 model.pth）",
    "Ready. Press **Train**.": "准备就绪。按下 **训练**。",
    "Loss": "损失",
    "Samples after each epoch (random windows: at each evaluation), newest first (greedy, from the start context)":
        "每个训练轮次后的样例（随机窗口：每次评估后），最新的在前（贪婪解码，从起始上下文开始）",

    # --- Generate ------------------------------------------------------------------------
    "3 · Generate": "3 · 生成",
    "Model": "模型",
    "Prompt": "提示词",
    "Max new tokens": "最多生成的词元数",
    "Temperature (0 = greedy)": "温度（0 = 贪婪解码）",
    "Top-k (0 = off)": "top-k（0 = 关闭）",
    "Top-p (1 = off)": "top-p（1 = 关闭）",
    "Seed (empty = random)": "随机种子（留空 = 随机）",
    "Stop at end-of-text": "遇到文本结束符时停止",
    "Generate": "生成",
    "Output": "输出",
    "Show next-token candidates for the prompt": "显示提示词之后的下一个词元候选",
    "Next-token candidates": "下一个词元的候选",
    "Sampling lab: the book's 9-word example": "采样实验室：书中 9 个词的例子",
    ("After *every effort moves you* the book's toy model gives these nine words logits. Move the "
     "temperature and see how the probabilities and the counts of 1,000 draws change."):
        ("在 *every effort moves you* 之后，书中的玩具模型给这九个词打出 logits。移动温度滑块，"
         "看概率和 1,000 次抽样的计数如何变化（温度缩放）。"),
    "Temperature": "温度",
    "Draws": "抽样次数",
    "Sampling lab": "采样实验室",

    # --- GPT-2 ---------------------------------------------------------------------------
    "4 · GPT-2": "4 · GPT-2",
    "GPT-2 size": "GPT-2 规模",
    "Download and load": "下载并载入",
    "Offline? Import from a folder or upload": "没有网络？从文件夹导入或上传",
    "Folder on the server": "服务器上的文件夹",
    "Import from folder": "从文件夹导入",
    "Upload the files (.safetensors, or the 7 files of OpenAI's release)":
        "上传文件（.safetensors，或 OpenAI 发布的 7 个文件）",
    "No GPT-2 loaded yet. Loaded models are shared by everyone on this server, read-only.":
        "还没有载入 GPT-2。载入的模型由这台服务器上的所有人只读共享。",

    # --- Evaluate ------------------------------------------------------------------------
    "5 · Evaluate": "5 · 评估",
    "Text to score (empty = the validation part of the corpus)": "要评分的文本（留空 = 语料的验证集部分）",
    "Model A": "模型 A",
    "Model B (optional)": "模型 B（可选）",
    "Score": "评分",

    # --- what the numbers mean (playground/explain.py) ----------------------------------
    "How many tokens the model sees at once. The book: 256 to train, GPT-2 1024.":
        "模型一次能看到的词元数。书中训练用 256，GPT-2 为 1024。",
    "The width of each token's vector. GPT-2 small: 768.": "每个词元向量的维度。GPT-2 small：768。",
    "Attention heads per layer; emb_dim must divide by it. GPT-2 small: 12.":
        "每层的注意力头数；emb_dim 必须能被它整除。GPT-2 small：12。",
    "Transformer blocks stacked. More layers: more capacity, slower steps.":
        "堆叠的 Transformer 块数。层数越多，容量越大，每步越慢。",
    "Share of activations zeroed while training, against overfitting. 0.1 in the book; 0 for tiny texts.":
        "训练时被置零的激活比例，用来防止过拟合。书中为 0.1；很小的文本用 0。",
    "Bias terms in the query/key/value projections: off in the book, on in OpenAI's GPT-2.":
        "查询/键/值投影中的偏置项：书中关闭，OpenAI 的 GPT-2 中开启。",
    "Passes over the training part. The book: 10 on The Verdict.": "遍历训练集的次数。书中在 The Verdict 上训练 10 个轮次。",
    "Windows per optimizer step. Larger: smoother loss, more memory.": "每次优化器更新使用的窗口数。越大，损失越平滑，占用内存越多。",
    "Steps on windows drawn at random, as the BabyGPT notebook does. 0 = the book's epochs.":
        "在随机抽取的窗口上训练的步数，和 BabyGPT 笔记本一样。0 = 按书中的训练轮次。",
    "Step size of AdamW. The book: 4e-4 for 124M; small models take 1e-3 to 1e-2.":
        "AdamW 的步长。书中 124M 模型用 4e-4；小模型可用 1e-3 到 1e-2。",
    "Pulls weights toward zero each step (AdamW). The book: 0.1.": "每一步把权重往零拉一点（AdamW）。书中为 0.1。",
    "How far one window starts after the previous. Equal to the context: no overlap (the book).":
        "相邻两个窗口起点之间的距离。等于上下文长度时窗口不重叠（书中的做法）。",
    "Steps over which the learning rate rises from 0 (the book's appendix D). Must be fewer than the run's steps.":
        "学习率从 0 升到峰值所用的步数（书中附录 D 的学习率预热）。必须少于整个训练的步数。",
    "After warmup, lower the learning rate along a cosine to a tenth of its peak.":
        "预热之后，学习率沿余弦曲线降到峰值的十分之一（余弦衰减）。",
    "Caps the gradient's norm at this value; 1.0 in the book's appendix D.": "把梯度的范数限制在这个值以内（梯度裁剪）；书中附录 D 用 1.0。",
    "Spreads this share of each target's probability over all tokens. 0 = the book's loss.":
        "把每个目标词元的这部分概率分给所有词元。0 = 书中的损失。",
    "The same seed gives the same weights, batches and samples: the book's numbers use 123.":
        "同一个随机种子给出同样的权重、批次和样例：书中的数字用 123。",
    "Steps between two evaluations of the training and validation loss.": "两次评估训练集损失和验证集损失之间相隔的步数。",
    "Batches averaged at each evaluation: more, steadier numbers but slower evaluations.":
        "每次评估取平均的批次数：越多，数字越稳定，但评估越慢。",
    "The model continues this text after each evaluation, so you see it learn.": "每次评估后模型接着这段文字往下写，让你看到它如何学习。",
    "How many tokens to generate at most.": "最多生成多少个词元。",
    "Divides the logits: below 1 sharper and safer, above 1 flatter and wilder; 0 = always the most likely token.":
        "用温度去除 logits（温度缩放）：小于 1 分布更尖锐、更保守，大于 1 更平坦、更随意；0 = 总是选最可能的词元（贪婪解码）。",
    "Draw only among the k most likely tokens (the book uses 25). 0 = all of them.":
        "只在最可能的 k 个词元中抽样（top-k 采样，书中用 25）。0 = 全部词元。",
    "Draw only among the most likely tokens whose probabilities add up to p (nucleus sampling). 1 = all.":
        "只在概率加起来达到 p 的那些最可能的词元中抽样（top-p（核）采样）。1 = 全部词元。",
    "Exact gives the book's tokens. Fast reads bfloat16 weights: faster where the CPU computes bfloat16 natively, "
    "and its tokens can differ.":
        "精确模式给出与书中相同的词元。快速模式读取 bfloat16 权重：在原生支持 bfloat16 的 CPU 上更快，生成的词元可能不同。",
    # the memory budget's refusals (playground/memory.py) and what they were for
    "The server has no memory left for {what}: it needs about {need} and {free} is free now ({capacity} in all for "
    "everyone's models). Choose a smaller model, batch size or context length, or try again when other runs have "
    "finished.":
        "服务器没有足够的内存用于{what}：大约需要 {need}，现在只有 {free} 空闲（所有人的模型一共可用 {capacity}）。"
        "请选择更小的模型、批次大小或上下文长度，或等其他训练结束后再试。",
    "generating with {model} (a bfloat16 copy of its weights)": "{model}生成文本（需要它的权重的一份 bfloat16 副本）",
    "generating with {model} (a copy of its weights laid out for generation)":
        "{model}生成文本（需要它的权重按生成时的读取方式排布的一份副本）",
    "your model": "你的模型",
    "training this model ({params} parameters, batch {batch} × context {context})":
        "训练这个模型（{params} 个参数，批次 {batch} × 上下文 {context}）",
    "timing a training step of this model": "为这个模型的一个训练步计时",
    "reading your model back": "读回你的模型",
    "{model}, shared by everyone": "{model}（所有人共用）",
    NUMBERS:
        ("- **损失**：下一个词元的交叉熵的平均值。在 50,257 个词元中均匀乱猜的模型得到 "
         "ln(50257) ≈ 10.8；书中的 124M 模型在 The Verdict 的训练集上训练 10 个轮次后约为 0.8。\n"
         "- **困惑度** = e^损失：模型相当于在多少个同样可能的词元中做选择。困惑度 420 ≈ 在 420 个词元中挑一个；1 表示完全确定。越低越好。\n"
         "- **训练集损失 / 验证集损失**：模型从训练集学习；验证集（文本最后的 10%）从不参与训练。"
         "训练集损失下降而验证集损失上升，就是过拟合：模型在死记硬背，而不是学会规律。\n"
         "- **每秒词元数**：每秒处理（前向和反向传播）的训练文本词元数。\n"
         "- **已见词元数**：模型到目前为止训练过的文本量。"),
    TITLE: "这些数字是什么意思",
    DATA_NUMBERS:
        ("- **词元**：模型一次读入并预测的单位。GPT-2 的 BPE 有 50,257 个词元（一个英文单词是一到三个）；"
         "字符级分词器为文本中每个不同的字符建一个词元。\n"
         "- **训练集 / 验证集**：文本的前 90% 用来训练模型，最后 10% 只用来衡量它（书中按字符划分）。\n"
         "- **窗口**：长度为 context_length 的一段词元；它的目标是同样的词元右移一位。相邻窗口相隔一个步幅，"
         "所以步幅决定窗口的数量。\n"
         "- **每个训练轮次的批次数**：遍历一次训练集要做的优化器更新次数（窗口数 / 批次大小）。\n"
         "- **每个词元的字符数**：英文用 BPE 约为 4，用字符级分词器为 1。"),
    EVALUATE_NUMBERS:
        ("- **损失（交叉熵）**：模型对文本中每个下一个词元有多“意外”的平均值；越低越好。"
         "均匀乱猜得到 ln(词表大小)：GPT-2 的 50,257 个词元是 10.8。\n"
         "- **困惑度** = e^损失：困惑度 20 ≈ 每一步都在 20 个同样可能的词元之间犹豫。\n"
         "- **每字符比特数**：把同样的“意外”摊到文本的每个字符上（以比特计）：分词器不同的模型也能用它比较，"
         "损失和困惑度则不能。\n"
         "- **p > 0.5 的词元**：模型认为可能性超过一半的词元所占的比例。\n"
         "- **着色的词元**：每个词元在模型下的概率；悬停或点按一个词元可看它的排名和模型自己的首选。"),
}
