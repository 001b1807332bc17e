#!/usr/bin/env python3
"""Stopgap until `bun bench` (issue 4): the highest constant rate of accepted
POST /process, against the validate-only reference, with vegeta (open loop:
a fixed arrival rate, so a slow server cannot slow the load down).

Start the two servers first (Redis from `bun run services:up`):
  ROLES=api PORT=8002 LOG_LEVEL=warn REDIS_URL=redis://127.0.0.1:6379/8 bun src/main.ts &
  PORT=8001 bun bench/validate-only-server.ts &
then:  python3 bench/vegeta-accept.py 8000,10500,12000 3
It warms both up, then for each rate runs each target `reps` times (5 s each),
alternating, and prints the median throughput and latency percentiles.
VEGETA points at the vegeta binary (default: vegeta on PATH).
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile

VEGETA = os.environ.get("VEGETA", "vegeta")
BODY = b'{"text":"The delivery was fast and the product works well, but the manual is confusing.","task_type":"sentiment_analysis"}'
TARGETS = {"validate-only": 8001, "process": 8002}


def target_file(port, body_path):
    handle = tempfile.NamedTemporaryFile("w", suffix=".targets", delete=False)
    handle.write(f"POST http://127.0.0.1:{port}/process\nContent-Type: application/json\n@{body_path}\n")
    handle.close()
    return handle.name


def attack(targets, rate, duration="5s"):
    command = f"{VEGETA} attack -targets={targets} -rate={rate} -duration={duration} -timeout=5s | {VEGETA} report -type=json"
    report = json.loads(subprocess.run(command, shell=True, check=True, capture_output=True, text=True).stdout)
    latencies = report["latencies"]
    return {
        "throughput": report["throughput"],
        "p50": latencies["50th"] / 1e6,
        "p95": latencies["95th"] / 1e6,
        "p99": latencies["99th"] / 1e6,
        "success": report["success"],
    }


def main():
    rates = [int(rate) for rate in sys.argv[1].split(",")]
    reps = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    with tempfile.NamedTemporaryFile("wb", suffix=".json", delete=False) as body:
        body.write(BODY)
    files = {name: target_file(port, body.name) for name, port in TARGETS.items()}
    for path in files.values():
        attack(path, 3000, "3s")  # warm-up: JIT, connections
    for rate in rates:
        runs = {name: [] for name in files}
        for _ in range(reps):
            for name, path in files.items():
                runs[name].append(attack(path, rate))
        for name, results in runs.items():
            median = {key: statistics.median(r[key] for r in results) for key in results[0]}
            each = " ".join(f"{r['p99']:.1f}" for r in results)
            print(
                f"{name:14s} rate={rate:6d}/s throughput={median['throughput']:.0f}/s "
                f"p50={median['p50']:.2f} p95={median['p95']:.2f} p99={median['p99']:.2f} ms "
                f"(p99 per run: {each}) success={median['success']:.4f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
