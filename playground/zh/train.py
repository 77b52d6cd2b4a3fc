"""Chinese for the train part of the page (see __init__.py)."""

ZH: dict[str, str] = {
    'Your model is unchanged ({label}).':
        '你的模型没有改变（{label}）。',
    'You still have no model of your own.':
        '你还没有自己的模型。',
    "The samples' start context: {note}":
        '样本的起始上下文：{note}',
    # the run's arithmetic (gpt_core/precision.py)
    "Precision": "计算精度",
    "Exact (float32: the book's numbers)": "精确（float32：与书中的数字一致）",
    "Fast (bfloat16)": "快速（bfloat16）",
    "Auto (Fast where this machine computes bfloat16 natively)": "自动（这台机器原生支持 bfloat16 时用快速模式）",
    "Precision: **{kind}**: {reason}.": "计算精度：**{kind}**：{reason}。",
    "Exact (float32)": "精确（float32）",
    "float32 was asked for: the book's numbers, bit for bit": "选择了 float32：与书中的数字逐位一致",
    "bfloat16 was asked for; {where} computes it natively": "选择了 bfloat16；{where}原生支持它",
    "bfloat16 was asked for; {where} has no native bfloat16 arithmetic, so it is emulated and may be slower "
    "than float32": "选择了 bfloat16；{where}没有原生的 bfloat16 运算，只能模拟，可能比 float32 还慢",
    "auto: {where} computes bfloat16 natively, about twice the float32 speed of its matrix products":
        "自动：{where}原生支持 bfloat16，矩阵乘法约为 float32 的两倍速度",
    "auto: this CPU has no bfloat16 instructions (AVX512_BF16 or AMX), so float32 is faster":
        "自动：这台 CPU 没有 bfloat16 指令（AVX512_BF16 或 AMX），所以 float32 更快",
    "auto: {where} does not compute bfloat16 natively, so float32 is faster":
        "自动：{where}不原生支持 bfloat16，所以 float32 更快",
    "auto: bfloat16 is not used on {where}": "自动：在 {where} 上不使用 bfloat16",
    "TF32 was asked for: float32 tensors, products in TF32 on {where}":
        "选择了 TF32：张量为 float32，乘法在{where}上以 TF32 计算",
    "TF32 was asked for, but only NVIDIA GPUs from Ampere on compute it; this run computes float32":
        "选择了 TF32，但只有 Ampere 及之后的 NVIDIA GPU 支持；本次训练用 float32 计算",
    "this CPU ({instructions})": "这台 CPU（{instructions}）",
    "this CPU": "这台 CPU",
    "the GPU ({name})": "GPU（{name}）",
    "this GPU": "这块 GPU",
    "{flops}, {share} of this machine's {precision} peak ({peak})":
        "{flops}，达到这台机器 {precision} 峰值（{peak}）的 {share}",
}
