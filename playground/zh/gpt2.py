"""Chinese for the gpt2 part of the page (see __init__.py)."""

ZH: dict[str, str] = {
    'No answer from the download server yet (try {n}); trying again…':
        '下载服务器暂无响应（第 {n} 次尝试）；正在重试…',
    'Another student is downloading this model; waiting for it…':
        '另一位同学正在下载这个模型；正在等待…',
    'Downloading GPT-2 {size} ({file})':
        '正在下载 GPT-2 {size}（{file}）',
    "| Size | Layers × width | Parameters | Memory (float32) | Here |": "| 规模 | 层数 × 宽度 | 参数量 | 内存（float32） | 本服务器 |",
    "not on this server": "本服务器不提供",
    "The download is about the size of the memory figure (one copy per server).":
        "下载量约等于内存一栏的大小（每台服务器只存一份）。",
    ("Without internet, copy OpenAI's GPT-2 files (the 7 files of a size: `checkpoint`, "
     "`encoder.json`, `hparams.json`, `model.ckpt.data-00000-of-00001`, `model.ckpt.index`, "
     "`model.ckpt.meta`, `vocab.bpe`) or a Hugging Face `model.safetensors` into a folder "
     "on the server, e.g. `{example}`, and import it here; or upload the files. "
     "Folders are accepted under: {roots}."):
        ("没有网络时，把 OpenAI 的 GPT-2 文件（某个规模的 7 个文件：`checkpoint`、`encoder.json`、`hparams.json`、"
         "`model.ckpt.data-00000-of-00001`、`model.ckpt.index`、`model.ckpt.meta`、`vocab.bpe`）或 Hugging Face 的 "
         "`model.safetensors` 复制到服务器上的一个文件夹，例如 `{example}`，再在这里导入；也可以直接上传这些文件。"
         "可以导入的文件夹位于：{roots}。"),
}
