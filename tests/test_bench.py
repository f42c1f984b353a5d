"""The benchmark command runs end to end at its smallest sizes (figures are printed, not asserted)."""

import json
import subprocess
import sys

import pytest
import torch


@pytest.mark.slow
def test_bench_quick_smoke(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, "-m", "scratchgpt.bench", "--quick", "--json", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    print(proc.stdout)
    results = json.loads(out.read_text())
    assert results["matmul_gflops"] > 0 and results["bf16_matmul_gflops"] > 0 and results["read_gb_s"] > 0
    assert [(t["model"], t["precision"]) for t in results["training"]] == \
        [("tiny profile", "fp32"), ("GPT-2 124M", "fp32")] + \
        [("GPT-2 124M", "bf16")] * results["bf16_training"]
    assert all(t["tokens_per_s"] > 0 and t["mfu"] > 0 for t in results["training"])
    assert results["generation"]["ratio"] > 0 and results["attention"][0]["ratio"] > 0
    assert 0 < results["generation"]["bandwidth_share"]
    assert [r["batch"] for r in results["batched_generation"]["rows"]] == [1, 4]
    assert "measured limits: fp32 matmul" in proc.stdout and "with KV cache" in proc.stdout
    assert "CPU features:" in proc.stdout and "predicted crossover" in proc.stdout


def test_weight_bytes_of_a_decoding_step_are_the_models_own():
    """What one cached step must read: every parameter but the embeddings' rows, with the tied head
    counted as the matrix it multiplies by (the embedding, read whole)."""
    from scratchgpt.config import GPT2_SIZES
    from scratchgpt.model import GPT
    from scratchgpt.tools.bench import weight_bytes_per_step

    cfg = GPT2_SIZES["124M"].with_(n_layer=2)
    model = GPT(cfg)
    read = sum(p.numel() for n, p in model.named_parameters() if not n.startswith("transformer.wpe"))
    assert weight_bytes_per_step(cfg) == 4 * read                     # wte is read whole, as the head
    assert weight_bytes_per_step(cfg, bytes_per_weight=2) == 2 * read


def test_limits_are_measured_beside_each_figure_and_the_higher_counts(monkeypatch):
    """`Limits.beside` measures the limit just before and just after the workload and keeps the higher:
    a hand-worked sequence of stand-in measurements."""
    from scratchgpt.tools import bench

    readings = iter([30e9, 50e9, 40e9, 35e9])
    monkeypatch.setattr(bench, "memory_bandwidth", lambda megabytes: next(readings))
    calls = []
    limits = bench.Limits()
    assert limits.measure("read") == 30e9
    assert limits.beside("read", lambda: calls.append("work") or 7.0) == (7.0, 50e9)   # before 50, after 40
    assert calls == ["work"]
    assert limits.samples["read"] == [30e9, 50e9, 40e9] and limits.samples["fp32"] == []
    with pytest.raises(ValueError, match="kind must be one of"):
        limits.measure("fp16")


def test_bad_counts_are_refused_by_name(capsys):
    from scratchgpt.tools import bench

    for flag in ("--gpt2-steps", "--decode-rounds"):
        with pytest.raises(SystemExit):
            bench.main([flag, "0"])
        assert f"{flag} must be 1 or more, got 0" in capsys.readouterr().err


def test_paired_training_speed_alternates_the_precisions_and_compares_within_each_round(monkeypatch):
    """Stand-in steps that log their calls and take known times: fp32 steps 2 units, bf16 steps 1 unit
    in round 1 and, after the host "slows down" 3x, 3 units in round 2 (fp32 6 units). The calls must
    alternate round by round after one warm-up each, and each round's ratio must be 2.0 however the
    host drifted; the medians over all steps are of all the steps."""
    from scratchgpt.tools import bench

    clock, calls, state = [0.0], [], {"slow": 1.0}

    def fake_training_step(cfg, batch, T, fused=True, compile=False, amp_dtype=None):
        name, cost = ("bf16", 1.0) if amp_dtype is torch.bfloat16 else ("fp32", 2.0)

        def step():
            calls.append(name)
            clock[0] += cost * state["slow"]
            if calls.count("bf16") == 3:          # the host slows after the first round (warm-up + 2 steps)
                state["slow"] = 3.0
        return step

    monkeypatch.setattr(bench, "training_step", fake_training_step)
    monkeypatch.setattr(bench.time, "perf_counter", lambda: clock[0])
    (fp32, bf16), ratios = bench.paired_training_speed(None, 2, 5, 4, [None, torch.bfloat16], rounds=2)
    assert calls == ["fp32", "bf16"] + ["fp32"] * 2 + ["bf16"] * 2 + ["fp32"] * 2 + ["bf16"] * 2
    assert ratios == [[1.0, 2.0], [1.0, 2.0]]
    assert fp32 == 10 / 4.0                   # steps 2, 2, 6, 6 units: median 4, 10 tokens a step
    assert bf16 == 10 / 2.0                   # steps 1, 1, 3, 3 units: median 2


def test_matmul_rate_fits_its_time_budget_by_timing_fewer_rows(monkeypatch):
    """A stand-in product whose time is 1 unit per row: the probe's 8 rows estimate 1 unit per row,
    so a budget of 44 units leaves (44 / 11 =) 4 rows for 10 repeats; the probe's 8 is the floor."""
    from scratchgpt.engine import precision

    clock, rows_timed = [0.0], []

    class Timed(torch.Tensor):
        def __matmul__(self, other):
            clock[0] += self.size(0)
            rows_timed.append(self.size(0))
            return torch.Tensor.__matmul__(self.as_subclass(torch.Tensor), other)

    real_randn = torch.randn
    monkeypatch.setattr(precision.torch, "randn", lambda *a, **k: real_randn(*a, **k).as_subclass(Timed))
    monkeypatch.setattr(precision.time, "perf_counter", lambda: clock[0])
    rate = precision.matmul_rate(n=1024, k=4, m=4, repeats=10, max_seconds=44.0)
    assert set(rows_timed) == {8}                      # 1024 rows would take 1024 units each: too long
    assert rate == 2 * 8 * 4 * 4 / 8                   # FLOPs of one 8-row product over its 8 units
    rows_timed.clear()
    precision.matmul_rate(n=16, k=4, m=4, repeats=3, max_seconds=1e6)
    assert rows_timed == [8, 8] + [16] * 4             # a generous budget: all 16 rows, every repeat


@pytest.mark.parametrize("argv, message", [
    (["--gen-tokens", "0"], "--gen-tokens must be 1 or more, got 0"),       # divided by zero after training
    (["--gpt2-batch", "-1"], "--gpt2-batch must be 1 or more, got -1"),
    (["--quick", "--gen-tokens", "50"], "--quick sets its own sizes: give --gen-tokens or --quick"),
    (["--quick", "--gpt2-steps", "4", "--decode-rounds", "2"],
     "give --gpt2-steps, --decode-rounds or --quick"),
])
def test_bad_or_ignored_flags_are_refused_before_any_measuring(argv, message, capsys, monkeypatch):
    from scratchgpt.tools import bench

    monkeypatch.setattr(bench, "run", lambda *a: pytest.fail("measured before refusing"))
    with pytest.raises(SystemExit):
        bench.main(argv)
    assert message in capsys.readouterr().err


def test_an_unwritable_json_path_is_refused_before_the_run(tmp_path, capsys, monkeypatch):
    from scratchgpt.tools import bench

    monkeypatch.setattr(bench, "run", lambda *a: pytest.fail("measured before refusing"))
    for path, message in [(tmp_path / "missing" / "b.json", "there is no folder"), (tmp_path, "is a folder")]:
        with pytest.raises(SystemExit):
            bench.main(["--quick", "--json", str(path)])
        assert f"--json {path}: {message}" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []                  # the writability check leaves nothing behind


def test_results_are_kept_when_the_json_file_cannot_be_written_at_the_end(tmp_path, capsys, monkeypatch):
    from scratchgpt.tools import bench

    gone = tmp_path / "taken.json"
    gone.mkdir()                                            # a folder took its name during the run
    bench.save_results({"wall_s": 1.5}, str(gone))
    err = capsys.readouterr().err
    kept = err.split("the results are in ")[1].strip()
    try:
        assert f"could not write {gone}" in err and json.loads(open(kept).read()) == {"wall_s": 1.5}
    finally:
        import os
        os.unlink(kept)
    bench.save_results({"wall_s": 2.0}, str(tmp_path / "b.json"))
    assert json.loads((tmp_path / "b.json").read_text()) == {"wall_s": 2.0}
