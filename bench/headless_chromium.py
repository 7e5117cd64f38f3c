"""Debian's headless Chromium for the page benchmarks, and a quiet static file server.

A module without flags, so that each benchmark that uses it defines only its own.
"""

import functools
import http.server
import threading
import time


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files without a log line per request."""

    def log_message(self, *args):
        pass


def serve(folder):
    """Serves ``folder`` on a free local port in a daemon thread; returns the server."""
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(QuietHandler, directory=folder))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def chromium(profile_dir, timeout_s):
    """``/usr/bin/chromium`` through ``/usr/bin/chromedriver``, headless and without a GPU,
    with a profile in ``profile_dir`` and scripts allowed ``timeout_s`` seconds."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={profile_dir}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.set_script_timeout(timeout_s)
    return driver


def open_ready(driver, url, backend, timeout_s):
    """Opens the drum machine page at ``url`` with ``backend``; returns the seconds until its
    pads are generated (RuntimeError with the page's error, or after ``timeout_s``)."""
    start = time.perf_counter()
    driver.get(f"{url}index.html?backend={backend}")
    while driver.execute_script("return window.wavegan && window.wavegan.status") != "ready":
        error = driver.execute_script("return window.wavegan && window.wavegan.error")
        if error or time.perf_counter() - start > timeout_s:
            raise RuntimeError(f"the page did not get ready with {backend}: {error}")
        time.sleep(0.2)
    return time.perf_counter() - start
