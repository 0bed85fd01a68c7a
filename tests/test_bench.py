"""Tests of transformer_lib.bench: the --quick smoke run (tables, JSON), the nn.Transformer twin, bad arguments."""

from __future__ import annotations

import contextlib
import io
import json
import time

import pytest
import torch
from torch.testing import assert_close

from transformer_lib import bench
from transformer_lib.bench import TorchTransformer, train_flops
from transformer_lib.model import Transformer, TransformerConfig

torch.set_num_threads(1)

V = 20


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """One ``--quick`` run: (results returned, what it printed, the JSON file read back, seconds)."""
    path = tmp_path_factory.mktemp("bench") / "bench.json"
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()) as out:  # capsys is function-scoped
        results = bench.main(["--quick", "--device", "cpu", "--json", str(path)])
    return results, out.getvalue(), json.loads(path.read_text(encoding="utf-8")), time.perf_counter() - start


# -- the smoke run ------------------------------------------------------------------------------------


def test_quick_run_takes_seconds(quick):
    assert quick[3] < 60, f"bench --quick took {quick[3]:.0f} s"


def test_quick_run_prints_the_three_tables(quick):
    out = quick[1]
    for expected in ["training, target tokens/s", "library", "nn.Transformer", "library/nn", "TFLOP/s",
                     "greedy decoding", "KV cache", "no cache", "speed-up",
                     "attention forward + backward", "naive ms", "fused ms", "FLOPs per training step"]:
        assert expected in out, f"{expected!r} missing from:\n{out}"
    lines = out.splitlines()
    assert any(line.startswith("fp32 ") for line in lines), "no fp32 training row on CPU"
    assert any(line.startswith("tokens/s ") for line in lines), "no decoding row"
    assert [line.split()[0] for line in lines if line.split()[:1] in (["16"], ["32"])] == ["16", "32"]


def test_quick_run_writes_json_with_the_expected_keys(quick):
    results, _, data, _ = quick
    assert data == json.loads(json.dumps(results))  # the file holds what main returned
    assert set(data) == {"env", "settings", "config", "flops_formula", "train", "decode", "attention"}
    assert data["env"]["device"] == "cpu" and data["settings"]["quick"] is True
    assert [(r["impl"], r["precision"]) for r in data["train"]] == [("library", "fp32"), ("nn.Transformer", "fp32")]
    for row in data["train"]:
        assert row["tokens_per_s"] > 0 and row["step_ms"] > 0 and row["tflops"] > 0 and row["peak_mib"] is None
    decode = data["decode"]
    assert decode["generated_tokens"] == decode["batch"] * data["settings"]["gen_len"]  # the length was forced
    assert decode["cache_tokens_per_s"] > 0 and decode["no_cache_tokens_per_s"] > 0 and decode["speedup"] > 0
    assert [r["seq_len"] for r in data["attention"]] == data["settings"]["attn_lengths"]
    for row in data["attention"]:
        assert row["naive_ms"] > 0 and row["fused_ms"] > 0 and row["naive_peak_mib"] is None


def test_both_models_have_the_same_parameter_count(quick):
    cfg = TransformerConfig(**{k: v for k, v in quick[0]["config"].items() if k != "params"})
    assert sum(p.numel() for p in TorchTransformer(cfg).parameters()) == quick[0]["config"]["params"]


def test_train_flops_formula_by_hand():
    cfg = TransformerConfig.tiny(n_encoder_layers=2, n_decoder_layers=3)  # d_model 32
    n, B, T = 10_000, 4, 16
    assert train_flops(n, cfg, B, T) == 6 * n * B * T + 12 * 32 * B * T * T * (2 + 2 * 3)


# -- TorchTransformer: the same function as the library's model ---------------------------------------


def twins(copy_layer, norm_first: bool = False) -> tuple[Transformer, TorchTransformer]:
    """The library's model and TorchTransformer with the same weights (LayerNorms randomised first)."""
    cfg = TransformerConfig.tiny(src_vocab_size=V, tgt_vocab_size=V, norm_first=norm_first)
    ref = TorchTransformer(cfg)  # train mode (dropout 0): nn.Transformer's eval fast path zeroes padded rows
    with torch.no_grad():
        for m in ref.modules():
            if isinstance(m, torch.nn.LayerNorm):
                m.weight.normal_(1.0, 0.2)
                m.bias.normal_(0.0, 0.2)
    model = Transformer(cfg)
    model.src_embed.load_state_dict(ref.src_embed.state_dict())  # tied: also the target embedding and output
    for ours, theirs in [*zip(model.encoder_layers, ref.core.encoder.layers),
                         *zip(model.decoder_layers, ref.core.decoder.layers)]:
        copy_layer(ours, theirs)
    if norm_first:
        model.encoder_norm.load_state_dict(ref.core.encoder.norm.state_dict())
        model.decoder_norm.load_state_dict(ref.core.decoder.norm.state_dict())
    return model, ref


@pytest.mark.filterwarnings("ignore:enable_nested_tensor is True")
@pytest.mark.parametrize("norm_first", [False, True], ids=["post-norm", "pre-norm"])
def test_torch_twin_computes_the_library_function(copy_layer, norm_first):
    model, ref = twins(copy_layer, norm_first)
    src, tgt = torch.randint(3, V, (3, 9)), torch.randint(3, V, (3, 7))
    src[0, 6:], src[1, 8:] = 0, 0  # padded sources: the key padding masks are converted
    tgt[:, 0], tgt[2, 5:] = 1, 0  # BOS first, a padded target
    logits = ref(src, tgt)
    assert logits.shape == (3, 7, V)
    assert_close(logits, model(src, tgt))


def test_torch_twin_is_causal(copy_layer):
    _, ref = twins(copy_layer)
    src, tgt = torch.randint(3, V, (2, 6)), torch.randint(3, V, (2, 8))
    changed = tgt.clone()
    changed[:, 5:] = (changed[:, 5:] + 1 - 3) % (V - 3) + 3  # a different future
    assert_close(ref(src, tgt)[:, :5], ref(src, changed)[:, :5])
    assert not torch.allclose(ref(src, tgt)[:, 5:], ref(src, changed)[:, 5:])


def test_torch_twin_ignores_source_padding(copy_layer):
    _, ref = twins(copy_layer)
    src, tgt = torch.randint(3, V, (2, 6)), torch.randint(3, V, (2, 5))
    padded = torch.cat([src, torch.zeros(2, 3, dtype=torch.long)], dim=1)  # (2, 9): 3 padding keys more
    assert_close(ref(src, tgt), ref(padded, tgt))


def test_torch_twin_rejects_a_non_config():
    with pytest.raises(TypeError, match="TransformerConfig"):
        TorchTransformer({"d_model": 32})


# -- bad arguments: one clear line, exit code 2 ---------------------------------------------------------


@pytest.mark.parametrize("argv, message", [
    (["--batch", "0"], "expected a positive int; got '0'"),
    (["--d-model", "x"], "expected a positive int; got 'x'"),
    (["--attn-lengths", "16,-1"], "expected a positive int; got '-1'"),
    (["--d-model", "30", "--heads", "4"], "n_heads must divide d_model"),
    (["--vocab-size", "3"], "--vocab-size must be at least 4"),
    (["--device", "nonsense"], "--device must name a device"),
    (["--json", "no/such/folder/b.json"], "--json: the folder of 'no/such/folder/b.json' does not exist"),
])
def test_bad_arguments_give_one_clear_error_line(capsys, argv, message):
    with pytest.raises(SystemExit) as excinfo:
        bench.main(["--quick", "--device", "cpu", *argv] if "--device" not in argv else ["--quick", *argv])
    assert excinfo.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and message in err.strip().splitlines()[-1], err


# -- the targets of issue 10 that hold on any CPU --------------------------------------------------------


def test_kv_cache_is_at_least_3x_faster_at_128_generated_tokens():
    """The same 128 tokens with the KV cache and without it (measured 26-34x with bench's defaults)."""
    from transformer_lib.decoding import greedy_decode

    torch.manual_seed(0)
    config = TransformerConfig(src_vocab_size=500, tgt_vocab_size=500, d_model=128, n_heads=4, n_encoder_layers=2,
                               n_decoder_layers=2, d_ff=512, dropout=0.0, max_len=160)
    model = Transformer(config).eval()
    torch.nn.init.zeros_(model.output_proj.weight[bench.EOS_ID])  # EOS never wins: all 128 tokens are generated
    src = torch.randint(3, 500, (4, 32))  # (B, S)
    seconds, outputs = {}, {}
    for cache in (True, False):
        best = float("inf")
        for _ in range(2):
            start = time.perf_counter()
            outputs[cache] = greedy_decode(model, src, 129, bench.BOS_ID, bench.EOS_ID, use_cache=cache)
            best = min(best, time.perf_counter() - start)
        seconds[cache] = best
    assert outputs[True].shape == (4, 129) and torch.equal(outputs[True], outputs[False])  # the same tokens
    assert seconds[False] >= 3 * seconds[True], f"cache {seconds[True]:.3f} s, no cache {seconds[False]:.3f} s"
