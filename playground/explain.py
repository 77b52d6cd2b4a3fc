"""What each number on the page means and what a good value looks like, said where it stands.

`INFO[name]` is the short line under a field of the form (Gradio's `info=`); `NUMBERS`,
`DATA_NUMBERS` and `EVALUATE_NUMBERS` are the notes titled `TITLE` beside the training's metrics,
the Data tab's summary and the Evaluate tab's scores. English here, Chinese in playground/zh/page.py
like every other word of the page.
"""
import gradio as gr


INFO = {
    # the model (the book's GPT_CONFIG)
    "context_length": "How many tokens the model sees at once. The book: 256 to train, GPT-2 1024.",
    "emb_dim": "The width of each token's vector. GPT-2 small: 768.",
    "n_heads": "Attention heads per layer; emb_dim must divide by it. GPT-2 small: 12.",
    "n_layers": "Transformer blocks stacked. More layers: more capacity, slower steps.",
    "drop_rate": "Share of activations zeroed while training, against overfitting. 0.1 in the book; 0 for tiny texts.",
    "qkv_bias": "Bias terms in the query/key/value projections: off in the book, on in OpenAI's GPT-2.",
    # training
    "num_epochs": "Passes over the training part. The book: 10 on The Verdict.",
    "batch_size": "Windows per optimizer step. Larger: smoother loss, more memory.",
    "iterations": "Steps on windows drawn at random, as the BabyGPT notebook does. 0 = the book's epochs.",
    "learning_rate": "Step size of AdamW. The book: 4e-4 for 124M; small models take 1e-3 to 1e-2.",
    "weight_decay": "Pulls weights toward zero each step (AdamW). The book: 0.1.",
    "stride": "How far one window starts after the previous. Equal to the context: no overlap (the book).",
    "warmup_steps": "Steps over which the learning rate rises from 0 (the book's appendix D). Must be fewer than the run's steps.",
    "cosine": "After warmup, lower the learning rate along a cosine to a tenth of its peak.",
    "grad_clip": "Caps the gradient's norm at this value; 1.0 in the book's appendix D.",
    "label_smoothing": "Spreads this share of each target's probability over all tokens. 0 = the book's loss.",
    "seed": "The same seed gives the same weights, batches and samples: the book's numbers use 123.",
    "eval_freq": "Steps between two evaluations of the training and validation loss.",
    "eval_iter": "Batches averaged at each evaluation: more, steadier numbers but slower evaluations.",
    "start_context": "The model continues this text after each evaluation, so you see it learn.",
    # generation
    "max_new": "How many tokens to generate at most.",
    "temperature": "Divides the logits: below 1 sharper and safer, above 1 flatter and wilder; 0 = always the most likely token.",
    "top_k": "Draw only among the k most likely tokens (the book uses 25). 0 = all of them.",
    "top_p": "Draw only among the most likely tokens whose probabilities add up to p (nucleus sampling). 1 = all.",
    "generate_precision": "Exact gives the book's tokens. Fast reads bfloat16 weights: faster where the CPU computes "
                          "bfloat16 natively, and its tokens can differ.",
}

TITLE = "What these numbers mean"

NUMBERS = """- **Loss**: the cross-entropy of the next token, averaged. A model that guesses uniformly
  among 50,257 tokens scores ln(50257) ≈ 10.8; the book's 124M reaches about 0.8 on the
  training part of The Verdict after 10 epochs.
- **Perplexity** = e^loss: how many equally likely tokens the model is choosing among.
  Perplexity 420 ≈ choosing among 420 tokens; 1 would be certainty.
- **Training / validation loss**: the training part is what the model learns from; the
  validation part (the text's last 10%) it never trains on. Validation loss that rises
  while training loss falls is overfitting: the model memorises instead of generalising.
- **Tokens/s**: tokens of training text processed per second, forward and backward.
- **Tokens seen**: how much text the model has trained on so far."""

DATA_NUMBERS = """- **Tokens**: the pieces the model reads and predicts one at a time. GPT-2's BPE knows 50,257
  of them (an English word is one to three); the Characters tokenizer makes one per different
  character of the text.
- **Training / validation part**: the first 90% of the text trains the model, the last 10%
  only measures it (the book's split, by characters).
- **Windows**: stretches of context_length tokens; each one's targets are the same tokens
  shifted by one. Stride apart, so the stride sets how many there are.
- **Batches per epoch**: optimizer steps in one pass over the training part (windows / batch size).
- **Characters per token**: about 4 for English under BPE, 1 with the Characters tokenizer."""

EVALUATE_NUMBERS = """- **Loss (cross-entropy)**: how surprised the model is by each next token of the text, averaged;
  lower is better. Guessing uniformly scores ln(vocabulary size): 10.8 for GPT-2's 50,257 tokens.
- **Perplexity** = e^loss: perplexity 20 ≈ hesitating between 20 equally likely tokens at each step.
- **Bits per character**: the same surprise spread over the text's characters: it compares models
  with different tokenizers, which loss and perplexity do not.
- **Tokens given p > 0.5**: the share of the text's tokens the model found more likely than not.
- **The coloured tokens**: each token's probability under the model; hover or tap one for its
  rank and the model's own first guess."""


def numbers_note(text: str, elem_id: str) -> gr.Accordion:
    """`text` under a closed "What these numbers mean", made where it is called (in a layout):
    one click away, so the numbers themselves stay in view."""
    with gr.Accordion(TITLE, open=False, elem_id=elem_id) as note:
        gr.Markdown(text)
    return note
