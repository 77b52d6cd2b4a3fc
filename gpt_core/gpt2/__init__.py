"""OpenAI GPT-2 weights in our GPTModel: downloads that verify, a crash-proof TensorFlow read,
a memory-mapped cache, and the book's API.

The first load of a release folder checks every file's size against hparams.json, then a
child process (convert.py) reads the TensorFlow checkpoint one tensor at a time into
`gpt_core_weights.safetensors` beside it, already in our names and layouts. The model is
built without random init and its parameters become views of that file, memory-mapped
copy-on-write: one copy of the weights, shared page cache between processes that load the
same model, and later loads take a fraction of a second. TensorFlow is never imported by
this process on that path, and a TensorFlow crash is an error message.

    download.py  resumable, verified downloads of named files, with retries and mirrors
    fetch.py     one HTTP attempt at one file, resuming with a Range request
    verified.py  the cross-process file lock and the record of verified files
                 (these three are the download leaf: standard library only)
    release.py   the release: its files and their sizes, the download of a size, folder checks
    convert.py   the name table, shape checks, and the TensorFlow converter (a child process)
    cache.py     the safetensors cache: made once, validated, mapped into a GPTModel
    load.py      load_gpt2 and import_gpt2
    book.py      the book's download_and_load_gpt2, load_gpt2_params_from_tf_ckpt, load_weights_into_gpt
"""
from .book import download_and_load_gpt2, load_gpt2_params_from_tf_ckpt, load_weights_into_gpt
from .cache import CACHE_NAME, prepare_cache
from .convert import GPT2LoadError, WeightError
from .download import DownloadError, DownloadProgress
from .load import import_gpt2, load_gpt2
from .release import (GPT2_FILES, check_release_files, check_release_folder, config_from_hparams,
                      default_models_dir, download_gpt2, read_hparams, size_of)

__all__ = ["GPT2LoadError", "WeightError", "DownloadError", "DownloadProgress", "load_gpt2", "import_gpt2",
           "prepare_cache", "download_gpt2", "default_models_dir", "config_from_hparams", "read_hparams",
           "check_release_folder", "check_release_files", "size_of", "GPT2_FILES", "CACHE_NAME",
           "download_and_load_gpt2", "load_gpt2_params_from_tf_ckpt", "load_weights_into_gpt"]
