"""The benchmark command runs end to end at its smallest sizes (figures are printed, not asserted)."""

import json
import subprocess
import sys


def test_bench_quick_smoke(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, "-m", "scratchgpt.bench", "--quick", "--json", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    print(proc.stdout)
    results = json.loads(out.read_text())
    assert results["matmul_gflops"] > 0
    assert [t["model"] for t in results["training"]] == ["tiny profile", "GPT-2 124M"]
    assert all(t["tokens_per_s"] > 0 and t["mfu"] > 0 for t in results["training"])
    assert results["generation"]["ratio"] > 0 and results["attention"][0]["ratio"] > 0
    assert "fp32 matmul rate" in proc.stdout and "with KV cache" in proc.stdout


def test_flops_per_token_formula():
    from scratchgpt.bench import flops_per_token
    from scratchgpt.config import GPT2_SIZES

    cfg = GPT2_SIZES["124M"]
    non_embedding = 12 * (12 * 768 * 768 + 13 * 768) + 2 * 768
    assert flops_per_token(cfg, 256) == 6 * (non_embedding + 50257 * 768) + 12 * 12 * 768 * 256
