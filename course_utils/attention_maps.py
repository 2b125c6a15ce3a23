"""Cross-attention maps: where in the image each prompt token is read (notebook 06).

In a cross-attention layer every latent pixel p takes a softmax over the prompt's tokens k,

    A[p, k] = softmax_k( q_p . k_k / sqrt(d) ),      sum_k A[p, k] = 1,

per head (Vaswani et al. 2017, eq. 1; Rombach et al. 2022, section 3.3). Recording A while a model samples and
averaging it over heads, layers of one resolution and sampling steps gives one map per token: how much of each
pixel's reading comes from that token. Prompt-to-Prompt (Hertz et al. 2022, https://arxiv.org/abs/2208.01626,
section 3.1 and fig. 4) shows Stable Diffusion's per-word maps averaged over the sampling steps this way; DAAM
(Tang et al. 2023, https://arxiv.org/abs/2210.04885, section 3) upsamples the maps of all resolutions and sums them.

``record_cross_attention(unet)`` installs :class:`CrossAttentionRecorder`, a ``diffusers`` attention processor that
computes what ``diffusers.models.attention_processor.AttnProcessor`` computes and also stores A, on every
cross-attention layer, and puts the previous processors back afterwards. :func:`token_maps` averages what it
stored; :func:`ink_share` measures how much of each token's map lies on the ink of the final image;
:func:`token_groups` names the map of each token of a prompt.
"""
from __future__ import annotations

import contextlib
import math

import torch
from diffusers.models.attention_processor import AttnProcessor
from torch.nn import functional as F

from .captions import ink_masks
from .text import END, START, WORD_END, tokenize
from .validation import check_choice, check_images, check_integer, check_tensor

BATCH_HALVES = ("conditional", "unconditional", "all")


class CrossAttentionRecorder(AttnProcessor):
    """``AttnProcessor``, step for step, that also appends the softmax probabilities of every cross-attention
    call (``encoder_hidden_states`` given) to ``store`` as a tensor [batch, heads, pixels, tokens], detached.
    Self-attention calls are computed the same way and not stored."""

    def __init__(self, store: list):
        if not isinstance(store, list):
            raise TypeError(f"store must be a list (the recorded maps are appended to it), got {type(store).__name__}")
        self.store = store

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, *args, **kwargs):
        residual, cross = hidden_states, encoder_hidden_states is not None
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        input_ndim = hidden_states.ndim
        if input_ndim == 4:
            batch_size, channel, height, width = hidden_states.shape
            hidden_states = hidden_states.view(batch_size, channel, height * width).transpose(1, 2)
        batch_size, sequence_length, _ = (encoder_hidden_states if cross else hidden_states).shape
        attention_mask = attn.prepare_attention_mask(attention_mask, sequence_length, batch_size)
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        query = attn.to_q(hidden_states)
        if not cross:
            encoder_hidden_states = hidden_states
        elif attn.norm_cross:
            encoder_hidden_states = attn.norm_encoder_hidden_states(encoder_hidden_states)
        query, key, value = (attn.head_to_batch_dim(x) for x in
                             (query, attn.to_k(encoder_hidden_states), attn.to_v(encoder_hidden_states)))
        attention_probs = attn.get_attention_scores(query, key, attention_mask)  # [batch * heads, pixels, tokens]
        if cross:
            self.store.append(attention_probs.detach().unflatten(0, (batch_size, attn.heads)))
        hidden_states = attn.batch_to_head_dim(torch.bmm(attention_probs, value))
        hidden_states = attn.to_out[1](attn.to_out[0](hidden_states))  # linear projection, dropout
        if input_ndim == 4:
            hidden_states = hidden_states.transpose(-1, -2).reshape(batch_size, channel, height, width)
        if attn.residual_connection:
            hidden_states = hidden_states + residual
        return hidden_states / attn.rescale_output_factor


def cross_attention_layers(unet) -> list[str]:
    """The names of ``unet``'s cross-attention modules (``...attn2`` in Stable Diffusion's UNet)."""
    if not isinstance(unet, torch.nn.Module) or not hasattr(unet, "set_attn_processor"):
        raise TypeError(f"unet must be a diffusers model with attention processors (a UNet2DConditionModel), "
                        f"got {type(unet).__name__}")
    return [name for name, module in unet.named_modules()
            if hasattr(module, "set_processor") and getattr(module, "is_cross_attention", False)]


@contextlib.contextmanager
def record_cross_attention(unet):
    """``with record_cross_attention(unet) as maps: ...`` records, for every UNet call inside the block, each
    cross-attention layer's probabilities into ``maps[layer name]``, a list with one [batch, heads, pixels, tokens]
    tensor per call. Only the cross-attention layers get a :class:`CrossAttentionRecorder`; on leaving the block
    (also by an exception) every layer gets back the processor it had before."""
    layers = cross_attention_layers(unet)
    if not layers:
        raise ValueError("unet must have cross-attention layers (a UNet2DConditionModel), it has none")
    previous = unet.attn_processors  # {"<module>.processor": processor}, a new dict
    maps = {name: [] for name in layers}
    recorders = {f"{name}.processor": CrossAttentionRecorder(maps[name]) for name in layers}
    unet.set_attn_processor({**previous, **recorders})  # set_attn_processor empties the dict it is given
    try:
        yield maps
    finally:
        unet.set_attn_processor(dict(previous))


def _side(pixels: int, layer: str) -> int:
    side = math.isqrt(pixels)
    if side * side != pixels:
        raise ValueError(f"maps[{layer!r}] must come from a square latent, got {pixels} pixels")
    return side


def token_maps(maps: dict, size: int | None = None, batch_half: str = "conditional") -> torch.Tensor:
    """Average recorded probabilities over heads, sampling steps (UNet calls) and the layers of one resolution
    -> [batch, tokens, size, size]; each pixel's values still sum to 1 over the tokens.

    ``maps`` is what :func:`record_cross_attention` yields. ``size`` is the side of the layers to average (their
    pixels are size x size; default: the largest); layers of other resolutions are left out. Classifier-free
    guidance stacks the batch as [unconditional; conditional] (``guidance.sample_with_guidance``):
    ``batch_half="conditional"`` keeps the second half, the maps of the prompt; ``"all"`` keeps every row."""
    if not isinstance(maps, dict) or not maps:
        raise TypeError(f"maps must be the non-empty dict record_cross_attention yields, got {type(maps).__name__}")
    check_choice("batch_half", batch_half, BATCH_HALVES)
    sides = {}
    for layer, calls in maps.items():
        if not isinstance(calls, list) or not calls:
            raise ValueError(f"maps[{layer!r}] must be a non-empty list of recorded calls: run the UNet inside "
                             f"record_cross_attention, got {calls!r:.60}")
        check_tensor(f"maps[{layer!r}]", calls[0], dims=4, floating=True)  # [batch, heads, pixels, tokens]
        for call in calls[1:]:  # every call of a layer: one shape
            check_tensor(f"maps[{layer!r}]", call, floating=True, shape=tuple(calls[0].shape))
        sides[layer] = _side(calls[0].shape[2], layer)
    if size is None:
        size = max(sides.values())
    check_integer("size", size, 1, 4096)
    chosen = [torch.stack(calls).mean((0, 2)) for layer, calls in maps.items() if sides[layer] == size]
    if not chosen:
        raise ValueError(f"size must be the side of a recorded layer, one of {sorted(set(sides.values()))}, got {size}")
    if len({tuple(c.shape) for c in chosen}) > 1:
        raise ValueError(f"maps must hold one batch size and one token count, got {[tuple(c.shape) for c in chosen]}")
    averaged = torch.stack(chosen).mean(0)  # [batch, pixels, tokens]
    if batch_half != "all":
        if averaged.shape[0] % 2:
            raise ValueError(f"batch_half={batch_half!r} needs an even batch [unconditional; conditional], "
                             f"got {averaged.shape[0]} rows")
        averaged = averaged.chunk(2)[batch_half == "conditional"]
    return averaged.transpose(1, 2).unflatten(2, (size, size))


def ink_share(token_maps: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """Share of each token's attention mass that lies on ink -> [batch, tokens], in [0, 1]:

        share_k = sum_p A_k(p) ink(p) / sum_p A_k(p),

    ``token_maps`` [batch, tokens, h, w] (from :func:`token_maps`), ``images`` [batch, 1, H, W] in [-1, 1] at the
    resolution the latents decode to, H and W whole multiples of h and w (for the course's 28x28 digits:
    ``latents.pad_to_32``, since the VAE maps 32x32 images to 8x8 latents). ink(p) is the fraction of ink pixels
    (``captions.ink_masks``) in the image patch under latent pixel p, so each map is upsampled by repeating its
    values over the patch. A map spread evenly over the image gives the image's ink fraction; a map on the
    strokes gives more, one off the strokes less."""
    check_tensor("token_maps", token_maps, dims=4, floating=True)
    check_images("images", images, channels=1)
    (batch, _, h, w), (height, width) = token_maps.shape, images.shape[2:]
    if images.shape[0] != batch:
        raise ValueError(f"images must hold one image per map ({batch}), got {images.shape[0]}")
    if height % h or width % w:
        raise ValueError(f"images must be whole multiples of the maps' {h}x{w} in size (28x28 digits: pad them "
                         f"with latents.pad_to_32), got {height}x{width}")
    ink = F.avg_pool2d(ink_masks(images)[:, None].float(), (height // h, width // w)).to(token_maps)  # [batch, 1, h, w]
    return (token_maps * ink).sum((2, 3)) / token_maps.sum((2, 3)).clamp_min(1e-12)


def token_groups(tokenizer, prompt: str) -> list[tuple[str, list[int]]]:
    """Which token maps belong to what in a prompt: ``[(name, positions), ...]``, positions along the text
    encoder's context (the token axis of :func:`token_maps`).

    The tokenizer (:func:`text.tokenize`) writes a prompt as the start token, the prompt's tokens, the end token,
    then the end token again as padding up to the context length (16 for the course, 77 for Stable Diffusion),
    as CLIP does (Radford et al. 2021). One group per token from start to end, named "start", "end" or by its
    text (without the end-of-word mark ``</w>``), then one group "padding (n)" with the n padding positions,
    if there are any. Their positions together are 0 .. context length - 1."""
    if not isinstance(prompt, str):
        raise TypeError(f"prompt must be a string (one prompt), got {type(prompt).__name__}")
    ids = tokenize(tokenizer, [prompt], name="prompt")[0]  # checks the tokenizer and the prompt's characters
    tokens = tokenizer.convert_ids_to_tokens(ids)
    end = tokens.index(END)  # the first end token; what follows is padding
    names = {START: "start", END: "end"}
    groups = [(names.get(token, token.removesuffix(WORD_END)), [i]) for i, token in enumerate(tokens[:end + 1])]
    padding = list(range(end + 1, len(tokens)))
    if padding:
        groups.append((f"padding ({len(padding)})", padding))
    return groups
