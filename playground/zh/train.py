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
    # the queue, Stop, where a run stands (playground/train_view.py, train_tab.py)
    "Waiting: **{ahead}** training ahead of you (the server trains {slots} at a time). Press **Stop** to leave the queue.":
        "排队中：前面还有 **{ahead}** 个训练任务（服务器一次训练 {slots} 个）。按 **停止** 可退出队列。",
    "Waiting: **{ahead}** trainings ahead of you (the server trains {slots} at a time). Press **Stop** to leave the queue.":
        "排队中：前面还有 **{ahead}** 个训练任务（服务器一次训练 {slots} 个）。按 **停止** 可退出队列。",
    "Waiting for memory: {reason} Press **Stop** to leave the queue.":
        "等待内存：{reason} 按 **停止** 可退出队列。",
    "waiting for a training slot: {ahead} ahead of you": "等待训练名额：前面还有 {ahead} 个",
    "Waiting… ({ahead} ahead)": "排队中…（前面 {ahead} 个）",
    "You left the queue; nothing was trained.": "你已退出队列，没有进行任何训练。",
    "left the queue: nothing was trained": "已退出队列：没有进行任何训练",
    "Nothing is training in this session.": "这个会话中没有正在进行的训练。",
    "Stopping after the current step...": "当前这一步结束后停止……",
    "Stopping: the current step is still running; the run ends right after it.":
        "正在停止：当前这一步还在计算，结束后训练随即停止。",
    "stopping after the current step": "当前这一步结束后停止",
    "done step {done}/{total} · {tokens} tokens": "完成 第 {done}/{total} 步 · {tokens} 个词元",
    "done iteration {done}/{total} · {tokens} tokens": "完成 第 {done}/{total} 次迭代 · {tokens} 个词元",
    "stopped at step {done}/{total} · {tokens} tokens": "停在第 {done}/{total} 步 · {tokens} 个词元",
    "stopped at iteration {done}/{total} · {tokens} tokens": "停在第 {done}/{total} 次迭代 · {tokens} 个词元",
    "failed after step {done}/{total} · {tokens} tokens": "在第 {done}/{total} 步后失败 · {tokens} 个词元",
    "failed after iteration {done}/{total} · {tokens} tokens": "在第 {done}/{total} 次迭代后失败 · {tokens} 个词元",
    "loaded at step {done}/{total} · {tokens} tokens": "已载入，停在第 {done}/{total} 步 · {tokens} 个词元",
    "loaded at iteration {done}/{total} · {tokens} tokens": "已载入，停在第 {done}/{total} 次迭代 · {tokens} 个词元",
    # the estimate and the preset fitted to the text (playground/train_estimate.py, preset_fit.py)
    "Time: press *Measure speed* (times the parts of a run of this model here).":
        "时间：请按 *在这台机器上测速*（在本机上为这个模型的一次训练计时）。",
    "Measured here: {step} ms a step, {batch} ms an evaluation batch → **{total}** on this machine ({parts})":
        "本机实测：每步 {step} 毫秒，每个评估批次 {batch} 毫秒 → 在本机上 **{total}**（{parts}）",
    "Fitted to <i>{text}</i> and the time budget of {budget}: {chosen} (why?)":
        "已按 <i>{text}</i> 和 {budget} 的时间预算调整：{chosen}（为什么？）",
    "Fitted to <i>{text}</i>: {chosen} (why?)": "已按 <i>{text}</i> 调整：{chosen}（为什么？）",
    "about {duration}": "约 {duration}",
    "{n} s": "{n} 秒",
    "{n} minute": "{n} 分钟",
    "{n} minutes": "{n} 分钟",
    "{n} hour": "{n} 小时",
    "{n} hours": "{n} 小时",
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
    "Paused after step {step} to give the next student a turn after {share}; press **Resume** to queue again.":
        "第 {step} 步后暂停，训练 {share} 后让下一位同学使用；按 **继续** 重新排队。",
    "Stopped after step {step}: {reason}. Press **Resume** to continue.": "在第 {step} 步后停止：{reason}。按 **继续** 接着训练。",
    "Done: {steps} steps, {tokens} tokens in {time}, in {kind}. Try your model in **Generate**.":
        "完成：{steps} 步，{tokens} 个词元，用时 {time}，计算精度 {kind}。到 **生成** 页试试你的模型。",
    "Training failed: {error}": "训练失败：{error}",
    "Done: {steps} steps. Try your model in **Generate**.": "完成：{steps} 步。到 **生成** 页试试你的模型。",
    "Stopped after step {step} of {total}. Press **Resume** to continue.": "在第 {step} 步（共 {total} 步）后停止。按 **继续** 接着训练。",
}
