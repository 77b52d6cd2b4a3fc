"""The page in Chinese (zh-CN), keyed by the English text the code writes.

Terms follow ../shared/zh-glossary.md: the words the Chinese write-ups of chapter 5 and the
BabyGPT notebook use (词元, 困惑度, 训练集/验证集损失, 温度缩放, ...). A key with {name} is a
template: the Chinese keeps the same names. The book's config field names (context_length,
emb_dim, ...) stay in Latin letters, as in the book's code, with the Chinese term beside them.
tests/test_i18n.py fails on a visible string missing here.
"""

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
    "Samples after each epoch, newest first (greedy, from the start context)":
        "每个训练轮次后的样例，最新的在前（贪婪解码，从起始上下文开始）",

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
}
