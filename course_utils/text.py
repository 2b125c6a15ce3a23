"""The text side of text-to-image: a tokenizer and a small transformer text encoder (notebook 06).

Stable Diffusion v1 turns a prompt into 77 token embeddings with CLIP's text transformer (Radford et al.
2021): a byte-pair-encoding tokenizer, then a causal transformer whose last hidden states the UNet reads
through cross-attention. The course uses the same classes, ``transformers.CLIPTokenizer`` and
``CLIPTextModel``, with a vocabulary learned from the course's captions and a 2-layer, 64-wide encoder
trained from scratch together with the UNet (Stable Diffusion keeps CLIP's pretrained encoder frozen).
"""
from __future__ import annotations

import warnings

from collections import Counter

import regex

START, END = "<|startoftext|>", "<|endoftext|>"
WORD_END = "</w>"
# CLIP's pre-tokenizer: words, single digits, runs of punctuation
PRE_TOKENIZER = regex.compile(r"""[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""")
MAX_TOKENS = 16  # "<|startoftext|>" + the longest caption (11 tokens) + "<|endoftext|>", with room to spare


def _check_strings(name: str, value) -> None:
    """``value`` is a non-empty list (or tuple) of strings; a single string, the usual slip, is refused with a hint."""
    item = name.removesuffix("s")
    if isinstance(value, str):
        raise TypeError(f"{name} must be a list of strings, got the single string {value!r}: wrap it as [{item}]")
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"{name} must be a non-empty list of strings, got {type(value).__name__}")
    if not value:
        raise ValueError(f"{name} must be a non-empty list of strings, got {value!r}")
    wrong = [(i, text) for i, text in enumerate(value) if not isinstance(text, str)]
    if wrong:
        i, text = wrong[0]
        raise TypeError(f"every {item} must be a string, got {text!r} ({type(text).__name__}) as {name}[{i}]")


def _check_tokenizer(tokenizer) -> None:
    from transformers import PreTrainedTokenizerBase

    if not isinstance(tokenizer, PreTrainedTokenizerBase):
        raise TypeError(f"tokenizer must be a transformers tokenizer (make_tokenizer, or a pipeline's .tokenizer), "
                        f"got {type(tokenizer).__name__}")


def pre_tokenize(text: str) -> list[str]:
    """Lower-case and split into words, digits and punctuation, as CLIP does."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, got {type(text).__name__}")
    return PRE_TOKENIZER.findall(" ".join(text.lower().split()))


def learn_bpe(texts: list[str]) -> list[tuple[str, str]]:
    """Byte-pair encoding (Sennrich et al. 2016): start from characters, with ``</w>`` marking the end of
    a word, and repeatedly merge the most frequent adjacent pair of symbols into a new symbol, until
    every word of the corpus is a single symbol. Returns the merges in the order learned (their rank)."""
    _check_strings("texts", texts)
    words = Counter(tuple(word[:-1]) + (word[-1] + WORD_END,) for text in texts for word in pre_tokenize(text))
    merges = []
    while True:
        pairs = Counter()
        for symbols, count in words.items():
            for pair in zip(symbols, symbols[1:]):
                pairs[pair] += count
        if not pairs:
            return merges
        best = max(pairs, key=lambda pair: (pairs[pair], pair))  # ties broken by the pair itself: deterministic
        merges.append(best)
        merged = {}
        for symbols, count in words.items():
            out, i = [], 0
            while i < len(symbols):
                if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == best:
                    out.append(symbols[i] + symbols[i + 1])
                    i += 2
                else:
                    out.append(symbols[i])
                    i += 1
            merged[tuple(out)] = merged.get(tuple(out), 0) + count
        words = merged


def make_tokenizer(texts: list[str]):
    """A ``transformers.CLIPTokenizer`` whose vocabulary is learned from ``texts`` with :func:`learn_bpe`:
    the special tokens, every character (alone and word-final), then every merged symbol."""
    from transformers import CLIPTokenizer

    merges = learn_bpe(texts)  # checks texts
    characters = sorted({char for text in texts for word in pre_tokenize(text) for char in word})
    symbols = [START, END, *characters, *(c + WORD_END for c in characters), *(a + b for a, b in merges)]
    vocab = {symbol: index for index, symbol in enumerate(dict.fromkeys(symbols))}
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=MAX_TOKENS)


def text_encoder_config(tokenizer) -> dict:
    """``CLIPTextConfig`` of the course text encoder (0.1M parameters; Stable Diffusion v1's has 123M)."""
    _check_tokenizer(tokenizer)
    return {"vocab_size": len(tokenizer), "hidden_size": 64, "intermediate_size": 256, "num_hidden_layers": 2,
            "num_attention_heads": 4, "max_position_embeddings": MAX_TOKENS,
            "bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id, "projection_dim": 64}


def make_text_encoder(tokenizer):
    from transformers import CLIPTextConfig, CLIPTextModel

    return CLIPTextModel(CLIPTextConfig(**text_encoder_config(tokenizer)))


def check_prompts(tokenizer, prompts: list[str], name: str = "prompts") -> None:
    """Refuse what a tokenizer would silently turn into something else, and warn about what it cuts.

    - ``prompts`` must be a non-empty list of strings (a single string is a common slip: wrap it, ``[prompt]``).
    - A character outside a small vocabulary becomes the unknown token, which in CLIP-style tokenizers is
      ``<|endoftext|>``, the padding: "七" or an emoji would silently be the empty prompt. That is a
      ``ValueError`` naming the characters. (Stable Diffusion's byte-level tokenizer knows every character.)
    - A prompt longer than the text encoder's context (``model_max_length`` tokens, 16 for the course, 77 for
      Stable Diffusion) is cut by the tokenizer: a ``UserWarning`` says how much is lost.

    ``name`` is the parameter the messages name (``negative_prompts`` for a caller's negative prompts).
    """
    _check_tokenizer(tokenizer)
    _check_strings(name, prompts)
    unknown_id = tokenizer.unk_token_id
    characters = sorted({char for prompt in prompts for char in prompt if not char.isspace()})
    unknown = [char for char in characters if unknown_id in tokenizer(char).input_ids[1:-1]]
    if unknown:
        raise ValueError(f"{name} contain characters this tokenizer does not know: {' '.join(unknown)} "
                         f"(they would become {tokenizer.unk_token!r}, the same as padding); its vocabulary was "
                         f"learnt from the training captions")
    for prompt in dict.fromkeys(prompts):
        count = len(tokenizer(prompt).input_ids)
        if count > tokenizer.model_max_length:
            warnings.warn(f"the prompt {prompt!r} has {count} tokens with start and end; the text encoder reads "
                          f"{tokenizer.model_max_length}, so the last {count - tokenizer.model_max_length} are cut",
                          UserWarning, stacklevel=3)


def tokenize(tokenizer, prompts: list[str], name: str = "prompts"):
    """Token ids [N, MAX_TOKENS], padded with ``<|endoftext|>`` the way the Stable Diffusion pipeline pads,
    after :func:`check_prompts` (whose messages name ``name``)."""
    check_prompts(tokenizer, prompts, name)
    return tokenizer(list(prompts), padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                     return_tensors="pt").input_ids
