"""How long serve's browser pages take in headless Chromium (docs/performance.md, "Browser pages").

- a folder of N files (hard links of one 128 x 96 LZW sample, served as blosc): until the page is
  laid out (every entry's metadata read, cards placed), and until every card's thumbnail is drawn
  (each card scrolled into view, as a reader would);
- the viewer of a large pyramid (realdata's 8448 x 8448 RGB COG, 6 levels): until the whole image
  is drawn at fit, then at 1:1 in its middle.

Times are the driver's (tests/e2e/browser/drive_pages.mjs), wall clock, per round; the median is
printed. Usage: browser_bench.py BUILD_DIR WORK_DIR [--files N] [--rounds R]
Needs what e2e.browser_pages needs (chromium, node, npm; playwright-core is installed as it is)."""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "cli", "http"))
import e2e_common as c  # noqa: E402
import serve_e2e  # noqa: E402

COG = "tiff/cogeotiff+rio-cogeo/tests/fixtures/image_web_z5_z11.tif"


def main():
    a = argparse.ArgumentParser()
    a.add_argument("build")
    a.add_argument("work")
    a.add_argument("--files", type=int, default=1000)
    a.add_argument("--rounds", type=int, default=3)
    args = a.parse_args()
    refzarr = os.path.join(args.build, "bin", "refzarr")
    shared = os.path.join(here, "..", "..", "..", "shared", "realdata")
    source = os.path.join(here, "..", "e2e", "browser")
    js = c.npm_ci(source, os.path.join(args.work, "js"), "the browser benchmark")
    shutil.copy(os.path.join(source, "drive_pages.mjs"), js)

    data = os.path.join(args.work, "data")
    shutil.rmtree(data, ignore_errors=True)
    samples = os.path.join(args.work, "samples")
    subprocess.run([os.path.join(args.build, "bin", "refzarr-samples"), samples], check=True,
                   stdout=subprocess.DEVNULL)
    many = os.path.join(data, "many")
    os.makedirs(many)
    for i in range(args.files):
        os.link(os.path.join(samples, "tiled", "u8_lzw_pred2.tif"), os.path.join(many, f"f{i:05d}.tif"))
    os.makedirs(os.path.join(data, "cog"))
    shutil.copy(os.path.join(shared, COG), os.path.join(data, "cog", "cog.tif"))
    index = os.path.join(args.work, "bench.refs.db")
    for f in (index, index + "-wal", index + "-shm"):
        if os.path.exists(f):
            os.remove(f)
    subprocess.run([refzarr, "index", "-o", index, data], check=True, stdout=subprocess.DEVNULL)

    steps = [{"open": "/many/", "wait": "cards"},
             {"open": "/cog/cog.tif/0/", "wait": "viewer"},
             {"open": "/cog/cog.tif/0/#zoom=1&x=3584&y=3584", "wait": "viewer"}]
    names = [f"folder of {args.files} files, laid out", f"folder of {args.files} files, every thumbnail",
             "8448 x 8448 COG, fit", "8448 x 8448 COG, 1:1 in the middle"]
    times = {n: [] for n in names}
    with serve_e2e.Server(refzarr, index, 2, args.work) as server:
        jobs = os.path.join(args.work, "steps.json")
        with open(jobs, "w") as f:
            json.dump({"base": f"http://127.0.0.1:{server.port}/", "chromium": "/usr/bin/chromium",
                       "steps": steps, "timeout_ms": 300000}, f)
        for _ in range(args.rounds):
            done = subprocess.run(["node", os.path.join(js, "drive_pages.mjs"), jobs],
                                  capture_output=True, text=True, timeout=900)
            if done.returncode != 0:
                sys.exit(f"driver failed: {done.stderr[-2000:]}")
            report = json.loads(done.stdout)
            problems = report["console"] + report["failed"] + report["outside"]
            problems += [r["error"] for r in report["results"] if "error" in r]
            if problems:
                sys.exit("FAIL: " + "\n".join(problems[:20]))
            results = report["results"]
            times[names[0]].append(results[0]["laid_out_ms"])
            for n, r in zip(names[1:], results):
                times[n].append(r["ms"])
    for n in names:
        print(f"{n}: median {statistics.median(times[n]):.0f} ms "
              f"({', '.join(f'{t:.0f}' for t in times[n])})")


if __name__ == "__main__":
    main()
