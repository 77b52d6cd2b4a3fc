"""Chinese for the gpt2 part of the page (see __init__.py)."""

ZH: dict[str, str] = {
    'No answer from the download server yet (try {n}); trying again…':
        '下载服务器暂无响应（第 {n} 次尝试）；正在重试…',
    'Another student is downloading this model; waiting for it…':
        '另一位同学正在下载这个模型；正在等待…',
    'Downloading GPT-2 {size} ({file})':
        '正在下载 GPT-2 {size}（{file}）',
}
