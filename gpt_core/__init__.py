"""gpt_core: pretraining a GPT on unlabeled text, faithful to "Build a Large Language Model
(From Scratch)" and fast underneath. No gradio here; usable from notebooks and the CLI."""
from .checkpoint import CheckpointError, inspect_checkpoint, load_model, read_checkpoint, save_checkpoint
from .config import GPT2_SIZES, GPT_CONFIG_124M, PRESETS, GPTConfig, TrainConfig, get_preset
from .corpus import CorpusError, corpus_stats, decode_text, split_text
from .data import GPTDatasetV1, create_dataloader_v1, create_train_val_loaders
from .generate import (generate, next_token_distribution, score_text, stream_generate, text_to_token_ids,
                       token_ids_to_text)
from .gpt2 import download_and_load_gpt2, load_gpt2, load_weights_into_gpt
from .losses import calc_loss_batch, calc_loss_loader, perplexity
from .model import GPTModel
from .prepare import prepare_training, select_device
from .schedule import BatchSchedule, EpochLoaderSchedule
from .tokenizers import CharTokenizer, GPT2Tokenizer, get_tokenizer
from .train import Trainer, TrainState, train_model_simple  # not `train`: it would hide the module

__all__ = [
    "CheckpointError", "inspect_checkpoint", "load_model", "read_checkpoint", "save_checkpoint",
    "GPT2_SIZES", "GPT_CONFIG_124M", "PRESETS", "GPTConfig", "TrainConfig", "get_preset",
    "CorpusError", "corpus_stats", "decode_text", "split_text",
    "GPTDatasetV1", "create_dataloader_v1", "create_train_val_loaders",
    "generate", "next_token_distribution", "score_text", "stream_generate", "text_to_token_ids", "token_ids_to_text",
    "download_and_load_gpt2", "load_gpt2", "load_weights_into_gpt",
    "calc_loss_batch", "calc_loss_loader", "perplexity",
    "GPTModel",
    "prepare_training", "select_device", "BatchSchedule", "EpochLoaderSchedule",
    "CharTokenizer", "GPT2Tokenizer", "get_tokenizer",
    "Trainer", "TrainState", "train_model_simple",
]
