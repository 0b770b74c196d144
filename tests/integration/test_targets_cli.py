"""`mixsd targets` end to end on a tiny saved model: artifacts, summary, bad inputs, 2 processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from mixsd.cli import main
from mixsd.records import TARGETS_FILE, read_targets
from mixsd.testing import save_tiny, tiny_llama, tiny_tokenizer

RECORDS = [
    {
        "id": "a",
        "prompt": "where was alice born ?",
        "answer": "alice was born in paris",
        "answer_key": "paris",
    },
    {
        "messages": [
            {"role": "user", "content": "what is 2 + 3 ?"},
            {"role": "assistant", "content": "2 + 3 = 5"},
        ],
        "clear_answer": 5,
        "id": "b",
    },
    {"id": "c", "prompt": "who works in oslo ?", "completion": "\\boxed{ bob }"},
    {"id": "d", "prompt": "which city is red ?", "answer": "rome", "answer_key": "rome"},
    {"id": "e", "prompt": "when was carol born ?", "answer": "1 9", "answer_key": "1 9"},
]
FLAGS = [
    "--lambda",
    "0.3",
    "--temperature",
    "0.7",
    "--top-k",
    "16",
    "--seed",
    "0",
    "--batch-size",
    "2",
    "--max-new-tokens",
    "8",
    "--max-retries",
    "1",
    "--no-progress",
]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    tok = tiny_tokenizer()
    return save_tiny(tmp_path_factory.mktemp("tiny") / "llama", tiny_llama(tok), tok)


def _data(write_jsonl):
    return write_jsonl(RECORDS, "records.jsonl")


def test_targets_cli_writes_targets_and_summary(model_dir, write_jsonl, tmp_path, capsys):
    out = tmp_path / "targets"
    code = main(
        [
            "targets",
            "--model",
            model_dir,
            "--data",
            str(_data(write_jsonl)),
            "--out",
            str(out),
            *FLAGS,
        ]
    )
    assert code == 0
    text = capsys.readouterr().out
    for word in (
        "records",
        "verified",
        "unverified",
        "prompt_too_long",
        "naive fraction",
        "tokens/s",
        "wall_s",
    ):
        assert word in text
    targets = read_targets(out)
    assert [t.record.id for t in targets] == ["a", "b", "c", "d", "e"]
    assert targets[1].record.answer_key == "5"
    rows = [json.loads(line) for line in (out / TARGETS_FILE).read_text().splitlines()]
    assert all(r["meta"]["lambda"] == 0.3 and r["meta"]["top_k"] == 16 for r in rows)
    run = json.loads((out / "run.json").read_text())
    assert run["summary"]["records"] == 5 and "torch" in run["versions"]
    assert run["status"] == "complete" and run["fields"]["mix_lambda"] == 0.3
    assert "mix_lambda: 0.3" in (out / "config.yaml").read_text()
    assert sorted(p.name for p in out.iterdir()) == ["config.yaml", "run.json", TARGETS_FILE]
    # the same command again: nothing to do
    assert (
        main(
            [
                "targets",
                "--model",
                model_dir,
                "--data",
                str(_data(write_jsonl)),
                "--out",
                str(out),
                *FLAGS,
            ]
        )
        == 0
    )
    assert "already complete" in capsys.readouterr().out


def test_sft_method(model_dir, write_jsonl, tmp_path):
    out = tmp_path / "sft"
    assert (
        main(
            [
                "targets",
                "--model",
                model_dir,
                "--data",
                str(_data(write_jsonl)),
                "--out",
                str(out),
                "--method",
                "sft",
                "--no-progress",
            ]
        )
        == 0
    )
    targets = read_targets(out)
    assert [t.target for t in targets][0] == "alice was born in paris"
    assert all(t.meta["method"] == "sft" for t in targets)


@pytest.mark.parametrize(
    "lines, words",
    [
        (
            [
                '{"id": "a", "prompt": "q", "answer": "x", "answer_key": "x"}',
                '{"id": "b", "prompt":',
            ],
            [":2", "invalid JSON"],
        ),
        (['{"id": "a", "prompt": "q", "answer": "x"}'], [":1", "answer_key"]),
        (
            ['{"id": "a", "prompt": "", "answer": "x", "answer_key": "x"}'],
            [":1", "prompt", "empty"],
        ),
        (
            [
                '{"id": "a", "prompt": "q", "answer": "x", "answer_key": "x"}',
                '{"id": "a", "prompt": "q", "answer": "x", "answer_key": "x"}',
            ],
            [":2", "duplicate"],
        ),
    ],
)
def test_bad_records_exit_2_naming_line_and_field(
    model_dir, write_jsonl, tmp_path, capsys, lines, words
):
    data = write_jsonl(lines, "bad.jsonl")
    code = main(
        [
            "targets",
            "--model",
            model_dir,
            "--data",
            str(data),
            "--out",
            str(tmp_path / "o"),
            "--no-progress",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    for word in words:
        assert word in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "flags, words",
    [
        (["--lambda", "1.3"], ["mix_lambda", "--lambda"]),
        (["--temperature", "-1"], ["temperature"]),
        (["--stop-tokens", "nope"], ["nope", "--stop-tokens"]),
        (["--guidance", "nope"], ["guidance"]),
    ],
)
def test_bad_flags_exit_2(model_dir, write_jsonl, tmp_path, capsys, flags, words):
    code = main(
        [
            "targets",
            "--model",
            model_dir,
            "--data",
            str(_data(write_jsonl)),
            "--out",
            str(tmp_path / "o"),
            "--no-progress",
            *flags,
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    for word in words:
        assert word in err


def test_missing_model_and_empty_file(write_jsonl, tmp_path, capsys):
    data = _data(write_jsonl)
    assert (
        main(
            [
                "targets",
                "--model",
                str(tmp_path / "nope"),
                "--data",
                str(data),
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert (
        main(
            ["targets", "--model", "x/y", "--data", str(empty), "--out", str(tmp_path / "o")]
        )
        == 2
    )
    assert "empty" in capsys.readouterr().err


def test_two_processes_equal_one(model_dir, write_jsonl, tmp_path):
    """`torchrun --nproc_per_node 2 -m mixsd targets` (CPU processes, files, no process group)
    == a 1-process run. (`accelerate launch --cpu` needs MPI for several CPU processes.)"""
    data = _data(write_jsonl)
    one, two = tmp_path / "one", tmp_path / "two"
    assert (
        main(["targets", "--model", model_dir, "--data", str(data), "--out", str(one), *FLAGS]) == 0
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "-m",
            "mixsd",
            "targets",
            "--model",
            model_dir,
            "--data",
            str(data),
            "--out",
            str(two),
            *FLAGS,
        ],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("targets written") == 1  # only the main process prints
    assert (two / TARGETS_FILE).read_bytes() == (one / TARGETS_FILE).read_bytes()
    assert sorted(p.name for p in two.iterdir()) == ["config.yaml", "run.json", TARGETS_FILE]
    assert json.loads((two / "run.json").read_text())["summary"]["processes"] == 2


def test_mix_unit_and_checks_through_the_cli_and_resume(tmp_path, capsys):
    tok = tiny_tokenizer()
    model_dir = save_tiny(tmp_path / "model", tiny_llama(tok), tok)
    data = tmp_path / "records.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in RECORDS), encoding="utf-8")
    out = tmp_path / "word"
    argv = ["targets", "--model", model_dir, "--data", str(data), "--out", str(out),
            "--lambda", "0.5", "--temperature", "1.0", "--max-new-tokens", "6",
            "--max-retries", "1", "--mix-unit", "word", "--verify-entities",
            "--verify-round-trip", "--device", "cpu", "--no-progress"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "rejected attempts" in printed and "round trip" in printed
    targets = read_targets(out)
    assert all(t.meta["mix_unit"] == "word" for t in targets)
    # a WordLevel vocabulary: every token is a word
    assert all(t.meta["word_sources"] == t.meta["sources"] for t in targets)
    assert all(t.meta.get("failed_check") in (None, "answer_key", "entities", "round_trip")
               for t in targets)
    run = json.loads((out / "run.json").read_text())
    assert run["summary"]["round_trip_tokens"] >= 0
    assert main(argv) == 0 and "already complete" in capsys.readouterr().out
    # another unit is another config: refused without --overwrite
    assert main([*argv[:-7], "--mix-unit", "span", "--device", "cpu", "--no-progress"]) != 0
    assert "--overwrite" in capsys.readouterr().err


def test_an_out_file_is_refused_saying_to_pass_a_folder(model_dir, write_jsonl, tmp_path, capsys):
    out = tmp_path / "old.jsonl"
    code = main(["targets", "--model", model_dir, "--data", str(_data(write_jsonl)),
                 "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "pass a directory" in err and "--out" in err and str(tmp_path / "old") in err
    assert not out.exists()
