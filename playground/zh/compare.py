"""Chinese for runs compared, the settings link and presenter mode (see __init__.py):
playground/compare.py, runs.py, share.py, presenter.py."""

ZH: dict[str, str] = {
    # --- runs compared (under the Train tab's sample log) ----------------------------------
    "Compare runs and export": "比较各次运行并导出",
    "Runs on the chart": "图上显示的运行",
    "Runs compared": "各次运行的比较",
    "solid: training loss, dotted: validation loss": "实线：训练集损失，点线：验证集损失",
    "No run with an evaluation yet. Each run you train in this session is kept here, to compare.":
        "还没有做过评估的运行。你在本会话中训练的每次运行都会保留在这里，供比较。",
    "Download the curves (CSV)": "下载曲线（CSV）",
    "Download the settings (JSON)": "下载设置（JSON）",
    "Download the chart (PNG)": "下载图表（PNG）",
    "Train a run to export its curve and settings.": "先训练一次，才能导出它的曲线和设置。",
    "The runs to compare must be a list of run numbers, got {value}.": "要比较的运行必须是运行编号的列表，收到的是 {value}。",
    "There is no run {value} in this session; choose among runs {kept}.":
        "本会话中没有运行 {value}；请从这些运行中选择：{kept}。",
    "(none yet)": "（还没有）",
    # The runs' labels: "run 2: lr 6e-3 → 1e-3, drop 0.1 → 0".
    "run {number}": "第 {number} 次运行",
    "run {number}: {values}": "第 {number} 次运行：{values}",
    "run {number}: {changes}": "第 {number} 次运行：{changes}",
    "run {number}: same settings as run {reference}": "第 {number} 次运行：设置与第 {reference} 次运行相同",
    "+{count} more": "另有 {count} 项",
    "on": "开启", "none": "无",  # "off" (关闭) is the teach views' already
    ", ": "，",
    "preset": "预设", "tokens": "分词器", "from": "起点", "text": "文本",
    "ctx": "上下文长度", "emb": "嵌入维度", "heads": "注意力头数", "layers": "层数", "drop": "dropout",
    "qkv": "qkv 偏置", "epochs": "训练轮次", "batch": "批次大小", "lr": "学习率", "wd": "权重衰减",
    "eval every": "评估间隔", "eval batches": "评估批次", "warmup": "学习率预热", "cosine": "余弦衰减",
    "clip": "梯度裁剪", "smoothing": "标签平滑", "seed": "随机种子", "context": "起始上下文",
    "stride": "步幅", "iters": "迭代次数",

    # --- the settings link (top of the page) ------------------------------------------------
    "Copy a link to these settings": "复制带有这些设置的链接",
    "Link to these settings": "带有这些设置的链接",
    "The link is {length:,} characters long; a link of this page is at most {limit:,}.":
        "这个链接有 {length:,} 个字符；本页面的链接最多 {limit:,} 个字符。",
    "{name} is not a setting of this page; it knows: {known}.": "{name} 不是本页面的设置；可用的设置有：{known}。",
    "{name} is given twice.": "{name} 出现了两次。",
    "{name} must be one of {choices}, got {value}.": "{name} 必须是 {choices} 之一，收到的是 {value}。",
    "{name} must be 1 or 0, got {value}.": "{name} 必须是 1 或 0，收到的是 {value}。",
    "Unknown start {value}; choose one of: {choices}.": "未知的起点 {value}；请选择：{choices}。",
    "⚠️ This link's settings were not used: {reason}": "⚠️ 没有使用这个链接的设置：{reason}",
    "The settings of the link you opened are filled in: press **Train** to run them.":
        "已填入你打开的链接中的设置：按 **训练** 即可运行。",
    ("⚠️ The link leaves out the text: only a bundled sample text travels in a link, and "
     "this session trains on {name}."):
        "⚠️ 链接里没有包含文本：只有自带的示例文本能放进链接，而本会话训练用的是 {name}。",

    # --- presenter mode ------------------------------------------------------------------------
    "Presenter mode (large text, thick lines)": "演示模式（大字号、粗线条）",
}
