"""What a hostile user does to a stage folder, done for real (issue 27): two processes on
one --out, an interrupted --overwrite, a file-size limit hit while a checkpoint is saved, a
folder the process may not write, a start that fails on its inputs, targets of another
guidance, a device torch does not have. Each failure is provoked by the real mechanism
(another process, SIGSTOP/SIGKILL, ``RLIMIT_FSIZE``, a read-only directory), never by an
invented exception."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from stage_helpers import records

from mixsd.cli import main
from mixsd.records import TARGETS_FILE, read_targets
from mixsd.testing import save_tiny, tiny_llama, tiny_tokenizer

TARGET_FLAGS = ["--lambda", "0.5", "--temperature", "0.8", "--top-k", "8", "--batch-size", "1",
                "--max-new-tokens", "24", "--max-retries", "0", "--no-progress"]



def _second_while_stopped(first, args):
    """Run the same command again while ``first`` is frozen (SIGSTOP) holding its folder."""
    first.send_signal(signal.SIGSTOP)
    try:
        return subprocess.run([sys.executable, "-m", "mixsd", *args], capture_output=True,
                              text=True, env=_env(), timeout=600)
    finally:
        first.send_signal(signal.SIGCONT)

def _targets_rows(n):
    return [{**r, "target": r["answer"], "meta": {"method": "sft", "verified": True}}
            for r in records(n)]


def _train_args(model_dir, targets, out):
    """``mixsd train`` of ``targets`` into ``out``: 2 epochs, batch 2, on the CPU."""
    return ["train", "--model", model_dir, "--targets", str(targets), "--out", str(out),
            "--epochs", "2", "--lr", "1e-3", "--batch-size", "2", "--device", "cpu",
            "--no-progress"]


def _env(**extra):
    return {**os.environ, "OMP_NUM_THREADS": "1", **extra}


def _start(args, **popen):
    # A shell that starts the suite in the background ignores SIGINT for it: reset it.
    return subprocess.Popen([sys.executable, "-m", "mixsd", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=popen.pop("env", _env()),
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
                            **popen)


def _wait_for(proc, ready, timeout=600, poll_s=0.05):
    deadline = time.time() + timeout
    while not ready():
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            pytest.fail(f"the process ended before the moment the test needs: "
                        f"{proc.communicate()[1][-3000:]}")
        time.sleep(poll_s)


def _one_error_line(err, verb, *words):
    lines = [ln for ln in err.strip().splitlines() if ln.startswith(f"mixsd {verb}: ")]
    assert len(lines) == 1, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def _lines(path):
    return Path(path).read_text().count("\n") if Path(path).is_file() else 0


# -- 1. one writer per folder ---------------------------------------------------------------
def test_a_second_targets_run_into_the_same_out_is_refused_naming_the_first(model_dir,
                                                                            write_jsonl,
                                                                            tmp_path):
    data = write_jsonl(records(60), "records.jsonl")
    out = tmp_path / "t"
    args = ["targets", "--model", model_dir, "--data", str(data), "--out", str(out),
            *TARGET_FLAGS]
    first = _start(args)
    _wait_for(first, lambda: _lines(out / f"{TARGETS_FILE}.partial") >= 2)
    second = _second_while_stopped(first, args)  # the first holds the folder meanwhile
    assert second.returncode == 2, second.stderr[-3000:]
    _one_error_line(second.stderr, "targets", str(out), "being written by another process",
                    f"pid {first.pid}")
    # SIGKILL: no cleanup runs, the lock file stays; the kernel released the lock with the
    # process, so the same command resumes.
    first.kill()
    first.communicate()
    assert main(args) == 0
    ids = [row["id"] for row in map(json.loads, (out / TARGETS_FILE).read_text().splitlines())]
    assert ids == [f"r{i}" for i in range(60)]  # every record once, in order
    assert json.loads((out / "run.json").read_text())["status"] == "complete"
    assert not list(tmp_path.glob(".t*.lock"))  # released and removed by the last writer


def test_a_second_train_run_into_the_same_out_is_refused(model_dir, write_jsonl, tmp_path):
    targets = write_jsonl(_targets_rows(8), "targets.jsonl")
    out = tmp_path / "run"
    args = _train_args(model_dir, targets, out)
    first = _start(args)
    _wait_for(first, lambda: (out / "run.json").is_file())
    second = _second_while_stopped(first, args)
    assert second.returncode == 2, second.stderr[-3000:]
    _one_error_line(second.stderr, "train", str(out), f"pid {first.pid}")
    _, err = first.communicate(timeout=600)
    assert first.returncode == 0, err[-3000:]
    rows = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(r)["epoch"] for r in rows] == [1, 2]


# -- 2. an interrupted --overwrite leaves the old targets whole -----------------------------
def test_an_interrupted_overwrite_leaves_the_old_targets_whole(model_dir, write_jsonl,
                                                               tmp_path):
    data = write_jsonl(records(40), "records.jsonl")
    out = tmp_path / "t"
    common = ["targets", "--model", model_dir, "--data", str(data), "--out", str(out)]
    assert main([*common, *TARGET_FLAGS]) == 0
    before = {name: (out / name).read_bytes() for name in (TARGETS_FILE, "run.json")}
    again = [*common, *TARGET_FLAGS, "--lambda", "0.2", "--overwrite"]
    proc = _start(again)
    # Wherever the new run writes (its build folder, or the old folder itself as before
    # issue 27), it is killed once it has written 3 new targets.
    partials = [tmp_path / ".t.overwrite" / f"{TARGETS_FILE}.partial",
                out / f"{TARGETS_FILE}.partial"]
    _wait_for(proc, lambda: max(map(_lines, partials)) >= 3)
    proc.kill()  # SIGKILL: nothing of the new run gets to clean up
    proc.communicate()
    after = {name: (out / name).read_bytes() for name in (TARGETS_FILE, "run.json")}
    assert after == before  # the old folder, whole: its targets beside its own run.json
    assert json.loads(before["run.json"])["fields"]["mix_lambda"] == 0.5
    assert len(read_targets(out)) == 40
    # The same --overwrite command resumes the build and then replaces the folder.
    assert main(again) == 0
    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "complete" and info["fields"]["mix_lambda"] == 0.2
    assert all(t.meta["lambda"] == 0.2 for t in read_targets(out))
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".t.")]


def test_train_refuses_a_targets_folder_whose_run_is_not_complete(model_dir, write_jsonl,
                                                                  tmp_path, capsys):
    # The state an interrupted --overwrite left before issue 27: the old targets file beside
    # a run.json that says a run of other values is still running.
    data = write_jsonl(records(4), "records.jsonl")
    out = tmp_path / "t"
    assert main(["targets", "--model", model_dir, "--data", str(data), "--out", str(out),
                 "--method", "sft", "--no-progress"]) == 0
    info = json.loads((out / "run.json").read_text())
    (out / "run.json").write_text(json.dumps({**info, "status": "running"}))
    capsys.readouterr()
    assert main(["train", "--model", model_dir, "--targets", str(out), "--out",
                 str(tmp_path / "run"), "--epochs", "1", "--device", "cpu"]) == 2
    _one_error_line(capsys.readouterr().err, "train", str(out), "not a complete targets folder",
                    "status running")
    assert not (tmp_path / "run" / "epoch-1").exists()


# -- 3. a file-size limit while a checkpoint is saved ---------------------------------------
def test_a_file_size_limit_while_saving_names_the_checkpoint_and_keeps_epoch_1(
        model_dir, write_jsonl, tmp_path):
    if not hasattr(resource, "prlimit"):
        pytest.skip("resource.prlimit (Linux) is needed to limit a running process")
    # 30 steps an epoch: epoch 2 runs long after the poll sees epoch 1 complete.
    targets = write_jsonl(_targets_rows(60), "targets.jsonl")
    out = tmp_path / "run"
    args = _train_args(model_dir, targets, out)
    proc = _start(args)
    # Once epoch 1 is complete, every file the process writes is limited to 16 KiB (Python
    # ignores SIGXFSZ, so a write past it fails with EFBIG, as on a full disk).
    _wait_for(proc, lambda: (out / "epoch-1" / "mixsd_checkpoint.json").is_file(),
              poll_s=0.005)
    resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, (16384, 16384))
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 2, err[-3000:]
    line = _one_error_line(err, "train", str(out / "checkpoint-"), "re-run the same command",
                           "epoch-1")
    assert "free disk space" in line
    assert (out / "epoch-1" / "model.safetensors").is_file()  # the newest complete epoch
    assert not list(out.glob("checkpoint-*"))  # the cut save is gone, and its space
    assert json.loads((out / "run.json").read_text())["status"] == "running"
    result = subprocess.run([sys.executable, "-m", "mixsd", *args], capture_output=True,
                            text=True, env=_env(), timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resumed after epoch 1" in result.stdout


# -- 4. a folder the process may not write --------------------------------------------------
DROP_CAPABILITIES = (1, 2, 3)  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER
PR_CAPBSET_DROP = 24

DRIVER = """
import contextlib, io, json, sys
from mixsd.cli import main
found = []
for argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code
        except BaseException:
            import traceback
            code, err = 1, io.StringIO(traceback.format_exc())
    found.append([code, err.getvalue()])
print(json.dumps(found))
"""


def _without_write_permission():
    """A child that may not write a folder its mode makes read-only. As root, chmod does not
    stop a write: the child drops the capabilities that override file modes from its bounding
    set before it runs Python (prctl), so the kernel checks the mode bits as for any user."""
    if os.geteuid() != 0:
        return None
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)

    def drop():
        for cap in DROP_CAPABILITIES:
            if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
                os._exit(97)

    return drop


def _run_read_only(cases, env):
    result = subprocess.run([sys.executable, "-c", DRIVER, json.dumps(cases)],
                            capture_output=True, text=True, env=env, timeout=900,
                            preexec_fn=_without_write_permission())
    if result.returncode == 97:
        pytest.skip("cannot drop CAP_DAC_OVERRIDE here (prctl refused), so a read-only folder "
                    "cannot be made for a root process")
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_a_read_only_out_or_mixsd_home_is_one_line_naming_the_path(model_dir, write_jsonl,
                                                                   tmp_path):
    data = write_jsonl(records(3), "records.jsonl")
    targets = write_jsonl(_targets_rows(4), "targets.jsonl")
    ro = tmp_path / "ro"
    (ro / "existing").mkdir(parents=True)
    (ro / "home").mkdir()
    for folder in (ro / "existing", ro / "home", ro):
        folder.chmod(0o555)
    small = ["--max-new-tokens", "4", "--no-progress"]
    cases = [
        ["targets", "--model", model_dir, "--data", str(data), "--out", str(ro / "t"), *small],
        ["targets", "--model", model_dir, "--data", str(data), "--out", str(ro / "existing"),
         *small],
        ["train", "--model", model_dir, "--targets", str(targets), "--out", str(ro / "run"),
         "--epochs", "1", "--device", "cpu"],
        ["compare", "--model", model_dir, "--corpus", str(data), "--methods", "sft",
         "--epochs", "1", "--out", str(ro / "cmp"), "--fisher-examples", "0", "--device",
         "cpu"],
        ["corpus", "kgfact", "--out", str(ro / "corpus"), "--size", "small"],
        # $MIXSD_HOME read-only: the toy model is installed there on first use
        ["targets", "--model", "toy", "--data", str(data), "--out", str(tmp_path / "toy-t"),
         *small],
    ]
    try:
        found = _run_read_only(cases, _env(MIXSD_HOME=str(ro / "home")))
    finally:
        for folder in (ro, ro / "existing", ro / "home"):
            folder.chmod(0o755)
    expected = [ro, ro / "existing", ro, ro, ro / "corpus", ro / "home"]
    for argv, (code, err), path in zip(cases, found, expected, strict=True):
        assert code == 2, (argv, err[-3000:])
        line = _one_error_line(err, argv[0], f"could not write {path}")
        assert "Permission denied" in line and "writable" in line, line
    assert "$MIXSD_HOME" in found[-1][1]


# -- 6. a start that fails on its inputs does not block the corrected command ---------------
def test_a_failed_start_does_not_block_the_corrected_targets_command(model_dir, write_jsonl,
                                                                     tmp_path, capsys):
    data = write_jsonl(records(3), "records.jsonl")
    out = tmp_path / "t"
    common = ["targets", "--data", str(data), "--out", str(out), "--max-new-tokens", "4",
              "--no-progress"]
    missing = tmp_path / "no" / "such" / "model"
    assert main([*common, "--model", str(missing)]) == 2
    _one_error_line(capsys.readouterr().err, "targets", str(missing))
    assert main([*common, "--model", model_dir]) == 0  # not refused by the failed start
    assert len(read_targets(out)) == 3


@pytest.fixture
def compare_setup(tmp_path):
    tok = tiny_tokenizer()
    model = save_tiny(tmp_path / "model", tiny_llama(tok, hidden=32), tok)
    facts = tmp_path / "facts.jsonl"
    facts.write_text("".join(json.dumps(r) + "\n" for r in records(3)))
    return model, facts


def _compare_args(model, facts, out, *extra, held=None):
    return ["compare", "--model", model, "--corpus", str(facts), "--methods", "sft",
            "--epochs", "1", "--lr", "1e-2", "--out", str(out), "--suites",
            f"records:{held or facts}",
            "--max-new-tokens", "4", "--batch-size", "2", "--fisher-examples", "0",
            "--device", "cpu", "--no-report", "--include-unverified", *extra]


def test_a_failed_compare_start_does_not_block_and_compare_overwrites(compare_setup, tmp_path,
                                                                      capsys):
    model, facts = compare_setup
    out = tmp_path / "cmp"
    assert main(_compare_args(model, tmp_path / "no-such.jsonl", out, held=facts)) == 2
    _one_error_line(capsys.readouterr().err, "compare", "no-such.jsonl")
    assert main(_compare_args(str(tmp_path / "no-model"), facts, out)) == 2
    _one_error_line(capsys.readouterr().err, "compare", str(tmp_path / "no-model"))
    assert not (out / "run.json").exists()
    assert main(_compare_args(model, facts, out)) == 0  # the corrected command is not refused
    first = json.loads((out / "results.json").read_text())
    assert [len(r["epochs"]) for r in first["runs"]] == [1]
    capsys.readouterr()
    # other decisive values: refused, naming --overwrite; with it, replaced
    assert main(_compare_args(model, facts, out, "--epochs", "2")) == 2
    _one_error_line(capsys.readouterr().err, "compare", "other values of epochs",
                    "--overwrite")
    assert main(_compare_args(model, facts, out, "--epochs", "2", "--overwrite")) == 0
    second = json.loads((out / "results.json").read_text())
    assert [len(r["epochs"]) for r in second["runs"]] == [2]
    assert not (tmp_path / ".cmp.replaced").exists()
    # the replacement resumes like any comparison: the same command reuses every run
    before = (out / "runs").stat().st_mtime_ns, sorted(p.name for p in (out / "runs").iterdir())
    assert main(_compare_args(model, facts, out, "--epochs", "2")) == 0
    assert sorted(p.name for p in (out / "runs").iterdir()) == before[1]


# -- 7. train checks --guidance against the targets' guidance -------------------------------
def test_train_refuses_targets_built_with_another_guidance(model_dir, write_jsonl, tmp_path,
                                                           capsys):
    data = write_jsonl(records(4), "records.jsonl")
    out = tmp_path / "t"
    assert main(["targets", "--model", model_dir, "--data", str(data), "--out", str(out),
                 "--method", "sft", "--guidance", "toy", "--no-progress"]) == 0
    capsys.readouterr()
    args = ["train", "--model", model_dir, "--targets", str(out), "--epochs", "1",
            "--device", "cpu", "--batch-size", "2"]
    assert main([*args, "--out", str(tmp_path / "run")]) == 2  # default guidance: knowledge
    _one_error_line(capsys.readouterr().err, "train", "built with guidance 'toy'",
                    "--guidance toy")
    assert not (tmp_path / "run" / "epoch-1").exists()
    assert main([*args, "--out", str(tmp_path / "run-toy"), "--guidance", "toy"]) == 0


# -- 8. a device torch does not have --------------------------------------------------------
def test_device_cuda_without_cuda_is_one_line(model_dir, write_jsonl, tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this torch has a CUDA device")
    data = write_jsonl(records(2), "records.jsonl")
    out = tmp_path / "t"
    assert main(["targets", "--model", model_dir, "--data", str(data), "--out", str(out),
                 "--device", "cuda", "--no-progress"]) == 2
    _one_error_line(capsys.readouterr().err, "targets", "device 'cuda' requested",
                    "--device cpu", "(flag --device)")
    assert not (out / "run.json").exists()
    assert main(["eval", "--model", model_dir, "--device", "cuda:1"]) == 2
    _one_error_line(capsys.readouterr().err, "eval", "device 'cuda:1' requested")
