"""Files API benchmark: PDF text extraction (pages/s) and upload throughput (MB/s).

    python -m bench.files [--pages 300] [--upload-mb 64] [--rounds 3]

1. extraction in-process: ``extract_path`` (pypdf) on a generated PDF, pages per second;
2. end to end through a live gateway (``smartoken serve`` on a loopback port, SQLite, local
   blob store) with the openai SDK:
   - ``file-extract`` upload of the same PDF (multipart parse, hash, staged write, extraction
     in the process pool, commit), pages/s and MB/s;
   - ``batch`` upload of a large JSONL file (hash, staged write, line validation), MB/s.
Prints one JSON object with the medians.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from smartoken.files.extract import extract_path
from tests.fakes import documents
from tests.harness import Gateway

MB = 1024 * 1024


def _jsonl(size: int) -> bytes:
    line = json.dumps({"custom_id": "r", "method": "POST", "url": "/v1/chat/completions",
                       "body": {"model": "kimi-k2", "messages": [
                           {"role": "user", "content": "x" * 400}]}}).encode() + b"\n"
    return line * (size // len(line) + 1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pages", type=int, default=300)
    ap.add_argument("--upload-mb", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    pdf = documents.pdf(pages=args.pages, lines=30)
    out: dict[str, object] = {"pdf_pages": args.pages, "pdf_mb": round(len(pdf) / MB, 2)}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.pdf"
        path.write_bytes(pdf)
        times = []
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            text = extract_path(str(path), "pdf", 10**9)
            times.append(time.perf_counter() - t0)
        out["extract_pages_per_s"] = round(args.pages / statistics.median(times), 1)
        out["extract_chars"] = len(text or "")

        gw = Gateway(Path(tmp), config={"files": {"max_file_mb": args.upload_mb + 1,
                                                  "max_total_mb": 100 * args.upload_mb}})
        gw.start()
        try:
            client = gw.client(gw.key(credit="1"), timeout=600)
            client.files.create(file=("warm.txt", b"warm up the pool"), purpose="assistants")
            up = []
            for i in range(args.rounds):
                t0 = time.perf_counter()
                client.files.create(file=(f"b{i}.pdf", pdf), purpose="file-extract")
                up.append(time.perf_counter() - t0)
            med = statistics.median(up)
            out["upload_pdf_pages_per_s"] = round(args.pages / med, 1)
            out["upload_pdf_mb_per_s"] = round(len(pdf) / MB / med, 1)
            big = _jsonl(args.upload_mb * MB)
            up = []
            for i in range(args.rounds):
                t0 = time.perf_counter()
                client.files.create(file=(f"b{i}.jsonl", b"{\"round\": %d}\n" % i + big),
                                    purpose="batch")
                up.append(time.perf_counter() - t0)
            out["upload_batch_mb"] = round(len(big) / MB, 1)
            out["upload_batch_mb_per_s"] = round(len(big) / MB / statistics.median(up), 1)
        finally:
            gw.stop()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
