"""Tests of the command lines train, evaluate and translate: in-process through main(argv), and via python -m."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys

import pytest
import torch
from checking import one_error_line

from transformer_lib import evaluate, train, translate
from transformer_lib.corpus import generate_pairs
from transformer_lib.data import sha256_file
from transformer_lib.tokenizer import BPETokenizer

torch.set_num_threads(1)

TRAIN_ARGS = ["--preset", "tiny", "--max-steps", "4", "--vocab-size", "300", "--max-tokens", "300", "--warmup", "10"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A .tsv file of 60 generated pairs."""
    path = tmp_path_factory.mktemp("corpus") / "pairs.tsv"
    path.write_text("".join(f"{en}\t{fr}\n" for en, fr in generate_pairs(60, seed=1)), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def run(corpus, tmp_path_factory):
    """The folder of one tiny training run (4 steps) and what main printed."""
    out = tmp_path_factory.mktemp("run")
    trainer = train.main(["--out", str(out), "--corpus", str(corpus), *TRAIN_ARGS])
    assert trainer.step == 4
    return out


# -- train ----------------------------------------------------------------------------------------------------


def test_train_writes_the_checkpoints_tokenizer_and_history(run, capsys):
    assert {p.name for p in run.iterdir()} == {"last.pt", "translator.pt", "tokenizer.json", "history.json"}
    history = json.loads((run / "history.json").read_text())
    assert [h["step"] for h in history if "loss" in h] == [4]
    assert BPETokenizer.load(run / "tokenizer.json").vocab_size <= 300
    state = torch.load(run / "translator.pt", weights_only=True)
    assert state["steps"] == 4 and state["corpus"].endswith("pairs.tsv")
    assert state["command"].startswith("python -m transformer_lib.train --out")


def test_train_prints_the_sha256_of_the_translator(corpus, tmp_path, capsys):
    train.main(["--out", str(tmp_path), "--corpus", str(corpus), *TRAIN_ARGS[:2], "--max-steps", "1"])
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert re.fullmatch(r"1 steps in \d+ s; (valid BLEU \d+\.\d; )?wrote .*translator\.pt \(SHA-256 [0-9a-f]{64}\)", last)
    assert sha256_file(tmp_path / "translator.pt") in last


def test_train_resume_continues_the_run(run, corpus, tmp_path):
    out = tmp_path / "again"
    shutil.copytree(run, out)
    trainer = train.main(["--out", str(out), "--resume", str(out / "last.pt"), "--max-steps", "6",
                          "--corpus", str(corpus)])
    assert trainer.step == 6 and trainer.settings.max_tokens == 300  # the saved settings, not the defaults
    steps = [h["step"] for h in json.loads((out / "history.json").read_text()) if "loss" in h]
    assert steps == [4, 6]  # the history of the first run goes on
    assert torch.load(out / "translator.pt", weights_only=True)["steps"] == 6


def test_train_without_a_stopping_rule_is_an_argparse_error(corpus, tmp_path, capsys):
    with pytest.raises(SystemExit) as excinfo:
        train.main(["--out", str(tmp_path), "--corpus", str(corpus), "--preset", "tiny"])
    assert excinfo.value.code == 2
    assert "error: give --epochs, --max-steps or --time-limit" in capsys.readouterr().err
    assert not tmp_path.joinpath("last.pt").exists()


def test_train_help_via_python_m():
    result = subprocess.run([sys.executable, "-m", "transformer_lib.train", "--help"], capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert "--preset" in result.stdout and "--resume" in result.stdout and "--max-steps" in result.stdout


# -- evaluate -------------------------------------------------------------------------------------------------


def test_evaluate_prints_the_signature_and_last_the_bleu_score(run, corpus, capsys):
    score = evaluate.main(["--checkpoint", str(run / "translator.pt"), "--corpus", str(corpus), "--limit", "5"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert re.fullmatch(r"BLEU \d+\.\d+", lines[-1]) and float(lines[-1].split()[1]) == pytest.approx(score, abs=0.01)
    assert lines[0].startswith("5 sentences of ") and lines[0].endswith("beam 4")
    assert "signature: nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:" in lines[-2]


def test_evaluate_reads_a_training_checkpoint_too(run, corpus, capsys):
    evaluate.main(["--checkpoint", str(run / "last.pt"), "--corpus", str(corpus), "--limit", "2", "--beam", "1"])
    assert re.fullmatch(r"BLEU \d+\.\d+", capsys.readouterr().out.strip().splitlines()[-1])


# -- translate ------------------------------------------------------------------------------------------------


def test_translate_prints_one_line_per_sentence(run, capsys):
    outputs = translate.main(["--checkpoint", str(run / "translator.pt"), "--beam", "1", "I see the car.",
                              "We will eat bread.", "She is tired."])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(outputs) == 3 and lines == outputs


def test_translate_reads_sentences_from_stdin(run, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("I see the car.\n\n  We will eat bread.  \n"))
    translate.main(["--checkpoint", str(run / "translator.pt"), "--beam", "2", "-"])
    assert len(capsys.readouterr().out.splitlines()) == 2  # the blank line is skipped


def test_translate_of_an_empty_sentence_is_an_argparse_error(run, capsys):
    with pytest.raises(SystemExit) as excinfo:
        translate.main(["--checkpoint", str(run / "translator.pt"), "  "])
    assert excinfo.value.code == 2 and "give at least one non-empty sentence" in capsys.readouterr().err


# -- errors of both --------------------------------------------------------------------------------------------


def _args(command, checkpoint, corpus):
    if command is evaluate:
        return ["--checkpoint", str(checkpoint), "--corpus", str(corpus), "--limit", "2"]
    return ["--checkpoint", str(checkpoint), "I see the car."]


@pytest.mark.parametrize("command", [evaluate, translate], ids=["evaluate", "translate"])
@pytest.mark.parametrize("problem", ["missing", "truncated", "text", "other torch file"])
def test_a_bad_checkpoint_exits_2_with_one_error_line(command, problem, run, corpus, tmp_path, capsys):
    path = tmp_path / "model.pt"
    if problem == "truncated":
        path.write_bytes((run / "translator.pt").read_bytes()[:5000])
    elif problem == "text":
        path.write_text("not a checkpoint\n")
    elif problem == "other torch file":
        torch.save({"weights": torch.zeros(2)}, path)
    with pytest.raises(SystemExit) as excinfo:
        command.main(_args(command, path, corpus))
    line = one_error_line(capsys, excinfo)
    assert line.startswith("error: ") and "model.pt" in line
    assert ("does not exist" if problem == "missing" else "checkpoint") in line


def test_evaluate_with_a_missing_corpus_exits_2(run, tmp_path, capsys):
    with pytest.raises(SystemExit) as excinfo:
        evaluate.main(["--checkpoint", str(run / "translator.pt"), "--corpus", str(tmp_path / "none.tsv")])
    assert "none.tsv does not exist" in one_error_line(capsys, excinfo)


def test_a_bad_checkpoint_via_python_m_prints_no_traceback(tmp_path):
    (tmp_path / "bad.pt").write_text("not a checkpoint\n")
    result = subprocess.run([sys.executable, "-m", "transformer_lib.evaluate", "--checkpoint",
                             str(tmp_path / "bad.pt")], capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 2 and result.stdout == ""
    assert re.fullmatch(r"error: .*bad\.pt is not a readable checkpoint .*\n", result.stderr), result.stderr


@pytest.mark.parametrize("command", [train, evaluate, translate], ids=["train", "evaluate", "translate"])
def test_help_exits_0(command, capsys):
    with pytest.raises(SystemExit) as excinfo:
        command.main(["--help"])
    assert excinfo.value.code == 0 and "usage: python -m transformer_lib." in capsys.readouterr().out
