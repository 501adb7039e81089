"""Screenshots of the AYS extension in the real Forge UI, taken with headless Chromium.

Needs a Forge set up as tools/forge_check.py describes (it copies the extension the same way),
Debian's `chromium`, and a Python with the `websockets` package (Forge's venv has it):
  FORGE_VENV/bin/python tools/forge_screenshots.py --forge FORGE --python FORGE_VENV/bin/python --out docs/

Starts Forge with its UI (CPU, 127.0.0.1), drives Chromium over the DevTools protocol and writes
  webui-schedule-type.png  the Schedule type dropdown of txt2img, opened, "AYS" typed into it
  webui-ays-tab.png        the AYS tab (optimize a schedule for the loaded checkpoint)
  webui-settings.png       Settings > AYS
then stops both.
"""
import argparse
import asyncio
import base64
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from forge_check import copy_extension, ensure_checkpoint  # noqa: E402

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1400,1000", "--hide-scrollbars"]

SCHEDULE_TYPE_BOX = """(() => {
  const input = document.querySelector('#txt2img_scheduler input');
  input.scrollIntoView({block: 'start'});
  window.scrollBy(0, -120);
  const r = input.getBoundingClientRect();
  return {x: r.left + r.width / 2, y: r.top + r.height / 2};
})()"""

# the open dropdown and its list, in page coordinates (what Page.captureScreenshot's clip takes)
SCHEDULE_TYPE_CLIP = """(() => {
  const r = document.querySelector('#txt2img_scheduler').getBoundingClientRect();
  const list = document.querySelector('#txt2img_scheduler ul.options, ul.options');
  const bottom = list ? Math.max(list.getBoundingClientRect().bottom, r.bottom) : r.bottom + 200;
  return {x: Math.max(0, r.left - 20 + window.scrollX), y: Math.max(0, r.top - 20 + window.scrollY),
          width: r.width + 40, height: bottom - r.top + 40};
})()"""

CLICK_BUTTON = """((selector, text) => {
  const button = [...document.querySelectorAll(selector)].find(b => b.innerText.trim() === text);
  if (!button) return false;
  button.click();
  return true;
})(%s, %s)"""


class Page:
    """One Chromium tab over the DevTools protocol."""

    def __init__(self, socket):
        self.socket, self.next_id = socket, 0

    async def send(self, method, **params):
        self.next_id += 1
        await self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(await self.socket.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    async def evaluate(self, expression):
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        return result.get("result", {}).get("value")

    async def wait_for(self, expression, seconds=600):
        deadline = time.time() + seconds
        while time.time() < deadline:
            if await self.evaluate(expression):
                return True
            await asyncio.sleep(1)
        raise RuntimeError(f"timed out waiting for {expression}")

    async def click(self, selector, text):
        if not await self.evaluate(CLICK_BUTTON % (json.dumps(selector), json.dumps(text))):
            raise RuntimeError(f"no {selector} button {text!r}")
        await asyncio.sleep(2)

    async def screenshot(self, path, clip=None):
        params = {"format": "png"}
        if clip:
            params["clip"] = {**clip, "scale": 1}
        data = (await self.send("Page.captureScreenshot", **params))["data"]
        Path(path).write_bytes(base64.b64decode(data))
        print(f"wrote {path}", flush=True)


async def shoot(debug_port, url, out):
    import websockets

    targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{debug_port}/json/list"))
    target = next(t for t in targets if t["type"] == "page")
    async with websockets.connect(target["webSocketDebuggerUrl"], max_size=64 << 20) as socket:
        page = Page(socket)
        await page.send("Page.enable")
        await page.send("Page.navigate", url=url)
        await page.wait_for("!!document.querySelector('#txt2img_scheduler input')")
        await asyncio.sleep(5)  # let the page settle (fonts, model dropdowns)
        point = await page.evaluate(SCHEDULE_TYPE_BOX)
        for kind in ("mousePressed", "mouseReleased"):  # a real click: Gradio opens the list on it
            await page.send("Input.dispatchMouseEvent", type=kind, x=point["x"], y=point["y"], button="left",
                            clickCount=1)
        await asyncio.sleep(1)
        await page.evaluate("document.querySelector('#txt2img_scheduler input').select()")
        await page.send("Input.insertText", text="AYS")  # replaces "Automatic"; the list keeps the matches
        await asyncio.sleep(2)
        await page.screenshot(out / "webui-schedule-type.png", clip=await page.evaluate(SCHEDULE_TYPE_CLIP))
        await page.send("Input.dispatchKeyEvent", type="keyDown", key="Escape", code="Escape", windowsVirtualKeyCode=27)
        await page.evaluate("document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0)")
        await page.click("#tabs > .tab-nav button, #tabs button", "AYS")
        await page.screenshot(out / "webui-ays-tab.png")
        await page.click("#tabs > .tab-nav button, #tabs button", "Settings")
        await page.click("#settings button, #settings .tab-nav button", "AYS")
        await page.screenshot(out / "webui-settings.png")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--forge", type=Path, required=True)
    parser.add_argument("--python", required=True, help="Forge's venv python")
    parser.add_argument("--out", type=Path, default=Path("docs"))
    parser.add_argument("--port", type=int, default=7862)
    parser.add_argument("--chromium", default="chromium")
    args = parser.parse_args(argv)
    forge = args.forge.resolve()
    ensure_checkpoint(forge, args.python)
    copy_extension(forge)
    args.out.mkdir(parents=True, exist_ok=True)
    flags = ["--api", "--always-cpu", "--skip-prepare-environment", "--skip-install", "--skip-torch-cuda-test",
             "--skip-version-check", "--server-name", "127.0.0.1", "--port", str(args.port)]
    with open(forge / "ays-screenshots.log", "w") as log, tempfile.TemporaryDirectory() as profile:
        webui = subprocess.Popen(["nice", args.python, "launch.py", *flags], cwd=forge, stdout=log,
                                 stderr=subprocess.STDOUT, start_new_session=True)
        browser = subprocess.Popen([args.chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                                    "--remote-debugging-port=9333", "about:blank"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            deadline = time.time() + 1800
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{args.port}/sdapi/v1/sd-models", timeout=10)
                    break
                except OSError:
                    if webui.poll() is not None or time.time() > deadline:
                        raise SystemExit(f"Forge did not start; see {forge / 'ays-screenshots.log'}")
                    time.sleep(3)
            asyncio.run(shoot(9333, f"http://127.0.0.1:{args.port}/", args.out))
        finally:
            for process in (browser, webui):
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(60)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)


if __name__ == "__main__":
    main()
