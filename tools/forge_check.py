"""Check the AYS extension inside a real Stable Diffusion WebUI Forge, through its HTTP API as a
client uses it. Not part of `make test`: it needs a Forge installation and takes minutes.

Setting Forge up (once, about 5 minutes on 2 idle cores; keep it outside this repository):
  1. lllyasviel/stable-diffusion-webui-forge into FORGE, and in FORGE/repositories/ the three
     repositories its launcher would clone, at the commits modules/launch_utils.py pins:
     huggingface_guess, BLIP, stable-diffusion-webui-assets;
  2. a Python 3.11 venv with torch 2.14.1 and torchvision 0.29.1, then Forge's
     requirements_versions.txt with its setuptools line replaced by `setuptools>=77,<81`, plus
     `joblib`.
Then:
  python tools/forge_check.py --forge FORGE --python VENV/bin/python

What it does: builds a random-weight SD1.5 checkpoint from Forge's own classes if none is there
(tools/forge_random_sd15.py), copies this repository's files into FORGE/extensions/ays-check
(fresh each run), starts Forge on the CPU with `--nowebui --api --api-auth` on 127.0.0.1, runs
the checks below, printing one line each, stops Forge and exits 1 if any failed:
  - every /ays/v1 route answers 401 without the credentials and 200 with them, like /sdapi/v1;
  - POST routes refuse a form body (415); a server path in the body is refused (422);
    steps=10^12 is a one-line 422;
  - "AYS" at 10 steps gives the paper's published SD1.5 list; txt2img, img2img and hires fix
    with "AYS" name the schedule in the infotext;
  - an optimize job with a tiny budget runs on Forge's loaded model, stops, resumes, publishes,
    and the next generation's infotext names the new schedule.
Forge's console output goes to FORGE/ays-check.log.
"""
import argparse
import base64
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHECKPOINT = "random-sd15.safetensors"
USER, PASSWORD = "ays", "check-pass"
PUBLISHED_SD15 = [14.615, 6.475, 3.861, 2.697, 1.886, 1.396, 0.963, 0.652, 0.399, 0.152, 0.0]
TINY_JOB = {"prompts": "a photo of a cat\na castle at dusk", "steps": 3, "samples": 2, "data_samples": 2,
            "validation_samples": 1, "refine": 0, "resolution": 64, "mode": "fast", "solver": "euler"}


class Client:
    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}"

    def call(self, method, path, body=None, auth=True, content_type="application/json", timeout=1800):
        """(status, parsed JSON or text) of one request."""
        data = None
        headers = {}
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            headers["Content-Type"] = content_type
        if auth:
            headers["Authorization"] = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        request = urllib.request.Request(self.base + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read()
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode(errors="replace")


class Checks:
    def __init__(self):
        self.failed = []

    def check(self, name, ok, detail=""):
        print(f"{'PASS' if ok else 'FAIL'}  {name}" + (f"  ({detail})" if detail and not ok else ""), flush=True)
        if not ok:
            self.failed.append(name)
        return ok


def copy_extension(forge):
    """This repository's tracked and untracked, not ignored, files into FORGE/extensions/ays-check."""
    target = forge / "extensions" / "ays-check"
    shutil.rmtree(target, ignore_errors=True)
    names = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, check=True,
                           capture_output=True).stdout.decode().split("\0")
    for name in filter(None, names):
        source = REPO / name
        if source.is_file() and not source.is_symlink():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def ensure_checkpoint(forge, python):
    path = forge / "models" / "Stable-diffusion" / CHECKPOINT
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        print(f"building {path} (random weights)", flush=True)
        subprocess.run([python, str(REPO / "tools" / "forge_random_sd15.py"), str(path)], cwd=forge, check=True)
    return path


def start_forge(forge, python, port, log):
    flags = ["--nowebui", "--api", "--api-auth", f"{USER}:{PASSWORD}", "--always-cpu", "--skip-prepare-environment",
             "--skip-install", "--skip-torch-cuda-test", "--skip-version-check", "--server-name", "127.0.0.1",
             "--port", str(port)]
    return subprocess.Popen(["nice", python, "launch.py", *flags], cwd=forge, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def wait_until_up(client, process, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if process.poll() is not None:
            return False
        try:
            if client.call("GET", "/sdapi/v1/sd-models", timeout=10)[0] == 200:
                return True
        except OSError:
            pass
        time.sleep(3)
    return False


def infotext(result):
    """The parameters line of a txt2img/img2img response."""
    info = json.loads(result["info"]) if isinstance(result.get("info"), str) else result.get("info", {})
    return (info.get("infotexts") or [""])[0]


def png_base64(size=64):
    """A plain grey PNG for img2img (no PIL needed here)."""
    import struct
    import zlib

    row = b"\x00" + b"\x80" * (3 * size)
    chunks = [(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)), (b"IDAT", zlib.compress(row * size)),
              (b"IEND", b"")]
    out = io.BytesIO()
    out.write(b"\x89PNG\r\n\x1a\n")
    for kind, data in chunks:
        out.write(struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    return base64.b64encode(out.getvalue()).decode()


def wait_for_job(client, states, seconds):
    deadline = time.time() + seconds
    status = {}
    while time.time() < deadline:
        status = client.call("GET", "/ays/v1/optimize")[1]
        if status.get("state") in states:
            return status
        time.sleep(2)
    return status


def run_checks(client, checks):
    generation = {"prompt": "a cat", "steps": 10, "width": 64, "height": 64, "sampler_name": "Euler",
                  "scheduler": "AYS", "seed": 1, "cfg_scale": 7}

    # -- authentication, exactly as /sdapi/v1
    checks.check("/sdapi/v1/options: 401 without credentials", client.call("GET", "/sdapi/v1/options", auth=False)[0] == 401)
    for path in ("/ays/v1/schedules", "/ays/v1/schedule?steps=10", "/ays/v1/optimize"):
        checks.check(f"GET {path}: 401 without credentials", client.call("GET", path, auth=False)[0] == 401)
        checks.check(f"GET {path}: 200 with them", client.call("GET", path)[0] == 200)
    for path in ("/ays/v1/optimize", "/ays/v1/optimize/stop", "/ays/v1/optimize/resume"):
        checks.check(f"POST {path}: 401 without credentials", client.call("POST", path, {}, auth=False)[0] == 401)
    checks.check("POST /ays/v1/optimize/stop: 200 with them", client.call("POST", "/ays/v1/optimize/stop", {})[0] == 200)

    # -- bounded, JSON-only, no server paths
    status, body = client.call("POST", "/ays/v1/optimize/stop", b"x=1", content_type="application/x-www-form-urlencoded")
    checks.check("a form POST is refused (415)", status == 415, f"{status} {body}")
    status, body = client.call("POST", "/ays/v1/optimize", {"prompts_file": "/etc/passwd"})
    checks.check("prompts_file=/etc/passwd is refused (422)", status == 422 and "server files" in str(body), f"{status} {body}")
    status, body = client.call("GET", "/ays/v1/schedule?steps=1000000000000")
    checks.check("steps=10^12 is a one-line 422", status == 422 and isinstance(body.get("detail"), str), f"{status} {body}")

    # -- the scheduler on the real sampler
    schedulers = [s["name"] for s in client.call("GET", "/sdapi/v1/schedulers")[1]]
    checks.check("AYS is a schedule type", "ays" in schedulers, str(schedulers))
    status, result = client.call("POST", "/sdapi/v1/txt2img", generation)
    text = infotext(result) if status == 200 else str(result)
    checks.check("txt2img with AYS names sd15@v2", status == 200 and "AYS schedule: sd15@v2" in text, text[-300:])
    sigmas = client.call("GET", "/ays/v1/schedule?steps=10")[1].get("sigmas")
    checks.check("AYS at 10 steps is the paper's published SD1.5 list", sigmas == PUBLISHED_SD15, str(sigmas))
    status, result = client.call("POST", "/sdapi/v1/img2img", {**generation, "init_images": [png_base64()],
                                                                "denoising_strength": 0.5})
    checks.check("img2img with AYS", status == 200 and "AYS schedule: sd15@v2" in infotext(result), str(result)[-300:])
    status, result = client.call("POST", "/sdapi/v1/txt2img", {**generation, "steps": 4, "enable_hr": True, "hr_scale": 1.5,
                                                                "hr_second_pass_steps": 2, "denoising_strength": 0.5,
                                                                "hr_additional_modules": ["Use same choices"]})
    checks.check("hires fix with AYS", status == 200 and "AYS schedule: sd15@v2" in infotext(result), str(result)[-300:])

    # -- optimize on Forge's loaded model: progress, stop, resume, publish
    started = time.time()
    status, body = client.call("POST", "/ays/v1/optimize", TINY_JOB)
    checks.check("an optimize job starts", status == 200 and body.get("state") == "running", f"{status} {body}")
    progress = {}
    deadline = time.time() + 1800
    while time.time() < deadline:  # stop once the search has started counting denoiser calls
        progress = client.call("GET", "/ays/v1/optimize")[1]
        if progress.get("state") != "running" or progress.get("evaluations", 0) > 0:
            break
        time.sleep(2)
    checks.check("it reports progress (phase, denoiser evaluations)",
                 progress.get("evaluations", 0) > 0 and bool(progress.get("expected_evaluations")), str(progress)[:300])
    client.call("POST", "/ays/v1/optimize/stop", {})
    stopped = wait_for_job(client, ("stopped", "done", "failed"), 1800)
    checks.check("stop: stopped and resumable (or already done)",
                 (stopped.get("state") == "stopped" and stopped.get("resumable")) or stopped.get("state") == "done",
                 str(stopped)[:300])
    if stopped.get("state") == "stopped":
        status, body = client.call("POST", "/ays/v1/optimize/resume", {})
        checks.check("resume starts", status == 200, f"{status} {body}")
    done = wait_for_job(client, ("done", "failed"), 3600)
    ref = (done.get("result") or {}).get("ref") or ""
    checks.check("the job finishes and publishes", done.get("state") == "done" and ref.startswith("sd15-"),
                 str(done)[:400])
    print(f"      job: {done.get('evaluations')} denoiser evaluations, {time.time() - started:.0f} s, "
          f"{done.get('message')}", flush=True)
    status, result = client.call("POST", "/sdapi/v1/txt2img", generation)
    text = infotext(result) if status == 200 else str(result)
    checks.check("the next generation's infotext names it", bool(ref) and f"AYS schedule: {ref}" in text, text[-300:])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--forge", type=Path, required=True, help="the Forge folder (webui root)")
    parser.add_argument("--python", required=True, help="Forge's venv python")
    parser.add_argument("--port", type=int, default=7861)
    parser.add_argument("--start-timeout", type=int, default=1800, help="seconds to wait for Forge to answer")
    args = parser.parse_args(argv)
    forge = args.forge.resolve()
    ensure_checkpoint(forge, args.python)
    copy_extension(forge)
    client, checks = Client(args.port), Checks()
    with open(forge / "ays-check.log", "w") as log:
        process = start_forge(forge, args.python, args.port, log)
        try:
            started = time.time()
            if checks.check("Forge starts with the extension", wait_until_up(client, process, args.start_timeout),
                            f"see {forge / 'ays-check.log'}"):
                print(f"      Forge answered after {time.time() - started:.0f} s", flush=True)
                run_checks(client, checks)
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
    print(f"{len(checks.failed)} failed" + (": " + "; ".join(checks.failed) if checks.failed else ""))
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main())
