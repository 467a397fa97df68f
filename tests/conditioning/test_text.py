"""The text encoder with the network switched off (HF_HUB_OFFLINE=1 and sockets refused)."""
import shutil
import socket

import pytest
import torch

from conditioning.text import PromptTruncatedWarning, TextEncoder, resolve_model_path


@pytest.fixture(scope="module")
def offline():
    mp = pytest.MonkeyPatch()
    mp.setenv("HF_HUB_OFFLINE", "1")
    mp.setenv("TRANSFORMERS_OFFLINE", "1")

    def refuse(*args, **kwargs):
        raise OSError("network access attempted in an offline test")

    mp.setattr(socket.socket, "connect", refuse)
    mp.setattr(socket, "create_connection", refuse)
    yield
    mp.undo()


@pytest.fixture(scope="module")
def encoder(offline):
    return TextEncoder(max_length=16)


def test_shapes_mask_and_pooled(encoder):
    rec = encoder(["a thick, slanted seven", "two"])
    assert rec.tokens.shape[0] == 2 and rec.tokens.shape[2] == 384
    # [CLS] two [SEP] = 3 real tokens, the rest padding
    assert rec.mask[1].sum() == 3 and rec.mask[0].sum() > 3
    assert torch.allclose(rec.pooled.norm(dim=1), torch.ones(2), atol=1e-5)


def test_same_prompt_identical_different_prompts_differ(encoder):
    a = encoder(["a thin upright two", "a thick slanted seven", "a thin upright two"])
    assert torch.equal(a.pooled[0], a.pooled[2]) and torch.equal(a.tokens[0], a.tokens[2])
    b = encoder(["a thin upright two"])  # served from the per-prompt cache: bit-identical
    assert torch.equal(a.tokens[0][a.mask[0]], b.tokens[0][b.mask[0]])
    encoder.clear_cache()
    c = encoder(["a thin upright two"])  # recomputed in another batch: equal up to float rounding
    assert torch.allclose(a.pooled[0], c.pooled[0], atol=1e-5)
    assert (a.pooled[0] - a.pooled[1]).abs().max() > 1e-2


def test_padding_does_not_change_a_prompts_encoding(encoder):
    alone = encoder(["seven"])
    batched = encoder(["seven", "a very small and thin digit seven slanted to the right"])
    n = int(alone.mask.sum())
    assert torch.allclose(batched.tokens[0, :n], alone.tokens[0, :n], atol=1e-5)


def test_matches_sentence_transformers_embedding(encoder):
    st = pytest.importorskip("sentence_transformers")
    model = st.SentenceTransformer(str(resolve_model_path(None)), device="cpu")
    prompts = ["a thick, slanted seven", "the digit 2"]
    ref = torch.as_tensor(model.encode(prompts))
    assert torch.allclose(encoder(prompts).pooled, ref, atol=1e-5)


def test_cache_counts_hits(encoder):
    encoder.clear_cache()
    encoder(["one", "two", "one"])
    assert (encoder.cache_misses, encoder.cache_hits) == (2, 1)
    encoder(["two"])
    assert encoder.cache_hits == 2


def test_truncation_is_reported(encoder, offline):
    long = " ".join(["seven"] * 30)
    with pytest.warns(PromptTruncatedWarning, match="max_length=16"):
        rec = encoder([long])
    assert rec.tokens.shape[1] == 16
    strict = TextEncoder(max_length=16, on_truncate="error")
    with pytest.raises(ValueError, match="exceed max_length=16"):
        strict([long])


def test_null_and_drop(encoder):
    rec = encoder(["a", "b", "c"])
    null = encoder.null(3)
    assert null.tokens.shape == (3, 1, 384) and null.mask.all()
    g = torch.Generator().manual_seed(0)
    assert torch.equal(encoder.drop(rec, 0.0, g).pooled, rec.pooled)
    dropped = encoder.drop(rec, 1.0, g)
    assert torch.equal(dropped.pooled, null.pooled)
    assert dropped.mask[:, 1:].sum() == 0
    with pytest.raises(ValueError, match="p must be in"):
        encoder.drop(rec, -0.1)


def test_projection_trains_backbone_frozen_and_not_saved(offline, tmp_path):
    enc = TextEncoder(projection_dim=32)
    rec = enc(["a thick seven"])
    assert rec.tokens.shape[-1] == 32 and rec.pooled.shape == (1, 32)
    rec.pooled.sum().backward()
    assert enc.pooled_proj.weight.grad is not None
    assert all(not k.startswith("_") and "embeddings" not in k for k in enc.state_dict())
    enc.save_pretrained(tmp_path)
    assert sum(f.stat().st_size for f in tmp_path.iterdir()) < 200_000
    again = TextEncoder.from_pretrained(tmp_path)
    assert torch.allclose(again(["a thick seven"]).pooled, rec.pooled.detach())


def test_any_local_folder_by_path(offline, tmp_path):
    from transformers import BertConfig, BertModel

    src = resolve_model_path(None)
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(src / name, tmp_path / name)
    cfg = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    BertModel(cfg).save_pretrained(tmp_path)
    rec = TextEncoder(model_path=str(tmp_path))(["a thin two"])
    assert rec.tokens.shape[-1] == 32 and rec.pooled.shape == (1, 32)


def test_bad_inputs_name_the_parameter(encoder, offline, tmp_path):
    with pytest.raises(ValueError, match="model_path"):
        TextEncoder(model_path=str(tmp_path / "nope"))
    with pytest.raises(ValueError, match="on_truncate"):
        TextEncoder(on_truncate="ignore")
    with pytest.raises(ValueError, match="max_length=100000 exceeds"):
        TextEncoder(max_length=100000)
    with pytest.raises(TypeError, match="prompts must be strings"):
        encoder(["ok", 3])
    with pytest.raises(ValueError, match="prompts must be a non-empty"):
        encoder([])
