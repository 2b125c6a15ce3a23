"""Cross-attention maps (notebook 06): the recording processor computes what diffusers' default processor computes,
stores the softmax probabilities of cross-attention calls only, and the processors are put back afterwards."""
import pytest
import torch
from diffusers import UNet2DConditionModel, UNet2DModel
from diffusers.models.attention_processor import Attention, AttnProcessor, AttnProcessor2_0

from course_utils import attention_maps, guidance

TOKENS, WIDTH = 16, 64  # the course text encoder's context and width


@pytest.fixture(scope="module")
def unet():
    torch.manual_seed(0)
    model = guidance.make_conditional_unet().eval()
    for name in attention_maps.cross_attention_layers(model):  # larger queries: sharper, less uniform attention
        model.get_submodule(name).to_q.weight.data.mul_(4)
    return model


def inputs(batch=2, seed=1):
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, 4, 8, 8, generator=generator), torch.tensor(500),
            torch.randn(batch, TOKENS, WIDTH, generator=generator))


def test_recording_gives_the_default_processors_output(unet):
    z, t, c = inputs()
    assert all(isinstance(p, AttnProcessor2_0) for p in unet.attn_processors.values())
    with torch.no_grad():
        expected = unet(z, t, encoder_hidden_states=c).sample
        with attention_maps.record_cross_attention(unet):
            got = unet(z, t, encoder_hidden_states=c).sample
        other_prompt = unet(z, t, encoder_hidden_states=inputs(seed=2)[2]).sample  # the prompt matters: it can fail
    torch.testing.assert_close(got, expected)
    assert not torch.allclose(other_prompt, expected, atol=1e-3)


MASK = torch.tensor([0.0, 0.0, 0.0, -3.0, -1e4]).expand(2, 1, 5)  # additive, over the 5 tokens; the last one masked


@pytest.mark.parametrize("options, mask", [({}, None), ({"residual_connection": True, "rescale_output_factor": 2.0}, None),
                                           ({"cross_attention_norm": "layer_norm"}, None), ({}, MASK)])
def test_recorder_equals_attn_processor_on_one_layer(options, mask):
    torch.manual_seed(0)
    attn = Attention(32, cross_attention_dim=WIDTH, heads=4, dim_head=8, **options).eval()
    self_attn = Attention(32, heads=4, dim_head=8, **options).eval()
    pixels, tokens = torch.randn(2, 32, 3, 3), torch.randn(2, 5, WIDTH)  # 4-D input: the processor flattens it
    store = []
    for layer, states, layer_mask in ((attn, tokens, mask), (self_attn, None, None)):  # cross-, then self-attention
        expected = AttnProcessor()(layer, pixels, states, layer_mask)
        torch.testing.assert_close(attention_maps.CrossAttentionRecorder(store)(layer, pixels, states, layer_mask), expected)
    assert len(store) == 1 and store[0].shape == (2, 4, 9, 5)  # only the cross-attention call is stored
    scores = attn.to_q(pixels.flatten(2).transpose(1, 2)).unflatten(2, (4, 8)).transpose(1, 2) @ \
        attn.to_k(attn.norm_encoder_hidden_states(tokens) if attn.norm_cross else tokens).unflatten(2, (4, 8)).permute(0, 2, 3, 1)
    bias = 0.0 if mask is None else mask[:, None]
    torch.testing.assert_close(store[0], torch.softmax(scores / 8**0.5 + bias, dim=-1))


def test_recorded_probabilities_have_the_expected_shapes_and_sum_to_one(unet):
    z, t, c = inputs(batch=3)
    with torch.no_grad(), attention_maps.record_cross_attention(unet) as maps:
        for _ in range(2):
            unet(z, t, encoder_hidden_states=c)
    assert list(maps) == attention_maps.cross_attention_layers(unet)
    assert all(name.endswith("attn2") for name in maps) and len(maps) == 7  # cross-attention only
    pixels = {name: 64 if name.startswith(("down_blocks.0", "up_blocks.2")) else 4 if "mid" in name else 16
              for name in maps}
    for name, calls in maps.items():
        assert len(calls) == 2  # one per UNet call
        assert all(call.shape == (3, 8, pixels[name], TOKENS) for call in calls)
        torch.testing.assert_close(torch.stack(calls).sum(-1), torch.ones(2, 3, 8, pixels[name]))
        assert calls[0].amax() > 2 / TOKENS  # not uniform: the sum-to-one check is not trivial


def test_processors_are_restored_also_after_an_error(unet):
    before = unet.attn_processors
    with pytest.raises(RuntimeError, match="inside"):
        with attention_maps.record_cross_attention(unet):
            assert sum(isinstance(p, attention_maps.CrossAttentionRecorder) for p in unet.attn_processors.values()) == 7
            raise RuntimeError("an error inside the block")
    after = unet.attn_processors
    assert after.keys() == before.keys() and all(after[name] is before[name] for name in before)


def test_token_maps_average_the_conditional_half(unet):
    z, t, c = inputs(batch=2)
    with torch.no_grad(), attention_maps.record_cross_attention(unet) as maps:
        for step in range(3):
            unet(z, t - 100 * step, encoder_hidden_states=c)
    fine = [name for name in maps if maps[name][0].shape[2] == 64]
    expected = torch.stack([torch.stack(maps[name]) for name in fine])[:, :, 1:].mean((0, 1, 3))  # second row
    result = attention_maps.token_maps(maps)
    assert result.shape == (1, TOKENS, 8, 8)
    torch.testing.assert_close(result, expected.transpose(1, 2).reshape(1, TOKENS, 8, 8))
    torch.testing.assert_close(result.sum(1), torch.ones(1, 8, 8))
    assert not torch.allclose(attention_maps.token_maps(maps, batch_half="unconditional"), result)
    assert attention_maps.token_maps(maps, size=4, batch_half="all").shape == (2, TOKENS, 4, 4)


def test_recording_does_not_change_guided_sampling(unet):
    c, c_empty = inputs(batch=2)[2], torch.zeros(2, TOKENS, WIDTH)
    run = lambda: guidance.sample_with_guidance(unet, guidance.latent_scheduler("ddim"), c, c_empty, 4.0, 3,
                                                torch.Generator().manual_seed(0), progress=False)
    expected = run()
    with attention_maps.record_cross_attention(unet) as maps:
        got = run()
    torch.testing.assert_close(got, expected)
    assert all(len(calls) == 3 and calls[0].shape[0] == 4 for calls in maps.values())  # [uncond; cond] per step


def test_ink_share():
    images = -torch.ones(2, 1, 32, 32)
    images[:, :, :16, :8] = 1.0  # ink in the top-left 16x8 pixels: the patches of latent pixels [0:4, 0:2]
    on_ink, everywhere = torch.zeros(2, 3, 8, 8), torch.ones(2, 3, 8, 8)
    on_ink[:, :, :4, :2] = 1.0
    half = on_ink + torch.flip(on_ink, dims=(2, 3))  # half of its mass on ink
    torch.testing.assert_close(attention_maps.ink_share(on_ink, images), torch.ones(2, 3))
    torch.testing.assert_close(attention_maps.ink_share(everywhere, images), torch.full((2, 3), 128 / 1024))
    torch.testing.assert_close(attention_maps.ink_share(half, images), torch.full((2, 3), 0.5))


def test_bad_inputs_are_refused_by_name(unet):
    with pytest.raises(TypeError, match="unet"):
        attention_maps.record_cross_attention(torch.nn.Linear(2, 2)).__enter__()
    no_text = UNet2DModel(sample_size=8, in_channels=1, out_channels=1, block_out_channels=(8, 8), norm_num_groups=4,
                          down_block_types=("DownBlock2D", "AttnDownBlock2D"), up_block_types=("AttnUpBlock2D", "UpBlock2D"))
    with pytest.raises(TypeError, match="unet"):  # no attention processors to set
        attention_maps.record_cross_attention(no_text).__enter__()
    self_attention_only = UNet2DConditionModel(sample_size=8, block_out_channels=(8, 8), norm_num_groups=4,
                                               down_block_types=("DownBlock2D", "AttnDownBlock2D"),
                                               up_block_types=("AttnUpBlock2D", "UpBlock2D"), mid_block_type=None)
    assert self_attention_only.attn_processors  # it has attention, but none reads a prompt
    with pytest.raises(ValueError, match="unet"):
        attention_maps.record_cross_attention(self_attention_only).__enter__()
    with pytest.raises(TypeError, match="store"):
        attention_maps.CrossAttentionRecorder({})
    z, t, c = inputs(batch=3)
    with torch.no_grad(), attention_maps.record_cross_attention(unet) as maps:
        unet(z, t, encoder_hidden_states=c)
    for kwargs, error, name in [({"maps": {}}, TypeError, "maps"), ({"maps": {"x": []}}, ValueError, "maps"),
                                ({"maps": {n: [c[:2] for c in calls] for n, calls in maps.items()}, "batch_half": "cond"},
                                 ValueError, "batch_half"),
                                ({"maps": maps, "size": 3}, ValueError, "size"), ({"maps": maps, "size": 8.0}, TypeError, "size"),
                                ({"maps": maps}, ValueError, "batch_half"),  # 3 rows: no [unconditional; conditional] halves
                                ({"maps": {"x": [torch.rand(2, 1, 5, 3)]}}, ValueError, "maps"),  # 5 pixels: not square
                                ({"maps": {"x": ["not a tensor"]}}, TypeError, "maps"),
                                ({"maps": {"x": [torch.rand(2, 1, 4, 3), torch.rand(2, 1, 4, 5)]}}, ValueError, "maps")]:
        with pytest.raises(error, match=name):
            attention_maps.token_maps(**kwargs)
    good = attention_maps.token_maps(maps, batch_half="all")
    for args, error, name in [((good, torch.zeros(2, 1, 32, 32)), ValueError, "images"),
                              ((good, torch.zeros(3, 1, 28, 28)), ValueError, "images"),
                              ((good[0], torch.zeros(3, 1, 32, 32)), ValueError, "token_maps"),
                              ((good, torch.zeros(3, 1, 32, 32, dtype=torch.long)), TypeError, "images")]:
        with pytest.raises(error, match=name):
            attention_maps.ink_share(*args)


def test_token_groups_name_the_prompt_tokens_and_gather_the_padding():
    from course_utils import text

    tokenizer = text.make_tokenizer(["a thick seven", "the digit 7, thin", "a handwritten three"])
    groups = attention_maps.token_groups(tokenizer, "a thick seven")
    assert groups[:5] == [("start", [0]), ("a", [1]), ("thick", [2]), ("seven", [3]), ("end", [4])]
    assert groups[5] == (f"padding ({text.MAX_TOKENS - 5})", list(range(5, text.MAX_TOKENS)))
    empty = attention_maps.token_groups(tokenizer, "")  # the empty prompt is start, end and padding, not nothing
    assert [name for name, _ in empty] == ["start", "end", f"padding ({text.MAX_TOKENS - 2})"]
    assert sorted(p for _, positions in groups for p in positions) == list(range(text.MAX_TOKENS))
    with pytest.raises(TypeError, match="prompt"):
        attention_maps.token_groups(tokenizer, ["a thick seven"])
    with pytest.raises(TypeError, match="tokenizer"):
        attention_maps.token_groups("not a tokenizer", "a seven")
