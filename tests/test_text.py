"""The course tokenizer (BPE learned from captions) and text encoder."""
import pytest
import torch
from transformers import CLIPTokenizer

from course_utils import text

CORPUS = ["a thick seven", "the digit 7, thin", "a handwritten three", "three thin threes"]


def test_bpe_learns_merges_until_every_word_is_one_symbol():
    merges = text.learn_bpe(CORPUS)
    assert ("t", "h") in merges  # the most frequent pair of the corpus comes early
    assert merges.index(("t", "h")) < 3
    tokenizer = text.make_tokenizer(CORPUS)
    for word in ["thick", "seven", "handwritten", "threes", "7", ","]:
        assert len(tokenizer.tokenize(word)) == 1, word


def test_unknown_words_fall_back_to_characters():
    tokenizer = text.make_tokenizer(CORPUS)
    pieces = tokenizer.tokenize("ten")
    assert len(pieces) > 1 and tokenizer.unk_token not in pieces


def test_tokenize_pads_like_the_pipeline(tmp_path):
    tokenizer = text.make_tokenizer(CORPUS)
    ids = text.tokenize(tokenizer, ["a thick seven", ""])
    assert ids.shape == (2, text.MAX_TOKENS)
    assert ids[0, :5].tolist() == [tokenizer.bos_token_id, *tokenizer.convert_tokens_to_ids(["a</w>", "thick</w>", "seven</w>"]),
                                   tokenizer.eos_token_id]
    assert torch.all(ids[1, 2:] == tokenizer.pad_token_id)
    tokenizer.save_pretrained(tmp_path)
    reloaded = CLIPTokenizer.from_pretrained(tmp_path)
    assert torch.equal(text.tokenize(reloaded, ["a thick seven"]), ids[:1])


def test_text_encoder_gives_one_embedding_per_token():
    tokenizer = text.make_tokenizer(CORPUS)
    encoder = text.make_text_encoder(tokenizer)
    hidden = encoder(text.tokenize(tokenizer, CORPUS)).last_hidden_state
    assert hidden.shape == (len(CORPUS), text.MAX_TOKENS, 64)


def test_prompts_the_tokenizer_would_change_silently_are_refused_or_warned():
    tokenizer = text.make_tokenizer(CORPUS)
    with pytest.raises(TypeError, match="wrap it as"):
        text.tokenize(tokenizer, "a thick seven")
    with pytest.raises(ValueError, match="non-empty list"):
        text.tokenize(tokenizer, [])
    with pytest.raises(TypeError, match="every prompt must be a string, got 123"):
        text.tokenize(tokenizer, ["a seven", 123])
    with pytest.raises(ValueError, match="does not know: 七"):
        text.tokenize(tokenizer, ["a thick 七"])
    with pytest.warns(UserWarning, match="tokens with start and end; the text encoder reads 16"):
        text.tokenize(tokenizer, [" ".join(["seven"] * 30)])
    assert text.tokenize(tokenizer, ["A SEVEN"]).shape == (1, 16)  # capitals are lower-cased, not unknown
