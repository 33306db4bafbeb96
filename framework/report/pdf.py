"""The PDF certification report: ``certification.html`` printed by headless Chromium.

``hil report pdf RUN`` hands a run over as one searchable PDF (Chromium prints text as
text). The HTML's print stylesheet (framework/report/html.py) puts the matrix alone on the
first page and repeats its ``<footer id="manifest-digest">evidence sha256:...</footer>`` on
every page. The browser is Debian's ``chromium`` (``make setup`` installs it with a font);
``chromium-headless-shell``, ``chromium-browser`` or ``google-chrome`` on PATH do as well.

Each print runs in a private profile in a temporary directory, with a time limit; the
browser writes ``.certification.pdf.partial`` next to the PDF, which it replaces only once
complete. No browser, a browser that fails or hangs, or a missing HTML is one line
(:class:`PdfError`), never a traceback.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from framework.errors import InputError

__all__ = ["BROWSERS", "HTML", "PDF", "TIMEOUT_S", "PdfError", "find_browser", "print_to_pdf",
           "write"]

HTML = "certification.html"
PDF = "certification.pdf"
BROWSERS = ("chromium", "chromium-headless-shell", "chromium-browser", "google-chrome")
TIMEOUT_S = 60.0

# Headless, no sandbox (root in CI containers), nothing fetched or synced while printing,
# no date/URL header and footer of the browser's own (the page has its footer).
_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-pdf-header-footer",
          "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
          "--disable-component-update", "--disable-sync", "--disable-extensions",
          "--disable-quic", "--mute-audio", "--hide-scrollbars")

# Chromium's stderr is full of harmless noise in a container (no D-Bus, no GPU...).
_NOISE = ("dbus", "bus.cc", "object_proxy", "gpu", "unexpected operator", "bytes written",
          "fontconfig", "sandbox", "devtools listening")


class PdfError(InputError):
    """The PDF could not be made: no browser, no HTML to print, or the browser failed."""


def find_browser(path: str | None = None) -> str:
    """The first Chromium on ``path`` (default PATH), as an absolute path."""
    for name in BROWSERS:
        found = shutil.which(name, path=path)
        if found:
            return found
    raise PdfError(f"no Chromium to print the PDF with: none of {', '.join(BROWSERS)} is on "
                   "PATH (`make setup` installs Debian's chromium)")


def _why(stderr: str) -> str:
    """The browser's last line that says something, for a one-line error."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    useful = [ln for ln in lines if not any(n in ln.lower() for n in _NOISE)]
    last = (useful or lines or ["no message"])[-1]
    return last if len(last) <= 200 else last[:197] + "..."


def _kill(proc: subprocess.Popen[str]) -> None:
    """End the browser we started and every process it started (its own session)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.communicate()


def print_to_pdf(html_path: Path, out: Path, *, browser: str | None = None,
                 timeout: float = TIMEOUT_S) -> Path:
    """Print ``html_path`` to ``out`` with headless Chromium; ``out`` is replaced whole."""
    if not html_path.is_file():
        raise PdfError(f"{html_path}: no such HTML report to print")
    exe = browser or find_browser()
    # The browser writes next to the PDF (a snap's browser has a private /tmp), then the
    # complete file replaces the PDF.
    out = out.absolute()
    scratch = out.with_name(f".{out.name}.partial")
    with tempfile.TemporaryDirectory(prefix="hil-pdf-") as tmp:
        env = {**os.environ, "XDG_CONFIG_HOME": tmp, "XDG_CACHE_HOME": tmp}
        cmd = [exe, *_FLAGS, f"--user-data-dir={Path(tmp) / 'profile'}",
               f"--print-to-pdf={scratch}", html_path.resolve().as_uri()]
        scratch.unlink(missing_ok=True)
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True, errors="replace",
                                    env=env, cwd=tmp, start_new_session=True)
        except OSError as exc:
            raise PdfError(f"{exe}: cannot start the browser: {exc.strerror or exc}") from None
        try:
            _, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill(proc)
            scratch.unlink(missing_ok=True)
            raise PdfError(f"{exe} did not print {html_path} within {timeout:g} s") from None
    try:
        if proc.returncode != 0:
            raise PdfError(f"{exe} failed to print {html_path} (exit {proc.returncode}): "
                           f"{_why(stderr)}")
        if not _is_pdf(scratch):
            raise PdfError(f"{exe} wrote no PDF for {html_path}: {_why(stderr)}")
        try:
            scratch.replace(out)
        except OSError as exc:
            raise PdfError(f"{out}: cannot write the PDF: {exc.strerror or exc}") from None
    finally:
        scratch.unlink(missing_ok=True)
    return out


def _is_pdf(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(5) == b"%PDF-"
    except OSError:
        return False


def write(run: Path, *, page: str | None = None, browser: str | None = None,
          timeout: float = TIMEOUT_S) -> Path:
    """Print a run's ``certification.html`` to ``certification.pdf`` next to it.

    ``run`` is the run directory (``reports/latest`` too) or its HTML file. With ``page``
    (the HTML text, e.g. rendered again with the current seal) that page is printed and
    becomes ``certification.html`` only once its PDF is written: a failed print leaves the
    run as it was. Returns the PDF.
    """
    if not run.exists():
        raise PdfError(f"{run}: no such run directory")
    html_path = run / HTML if run.is_dir() else run
    if page is None:
        if not html_path.is_file():
            raise PdfError(f"{run}: no {HTML} to print (render it with "
                           f"`hil report html {run}`)")
        return print_to_pdf(html_path, html_path.parent / PDF, browser=browser,
                            timeout=timeout)
    pending = html_path.with_name(f".partial.{html_path.name}")  # a browser goes by suffix
    try:
        pending.write_text(page)
        out = print_to_pdf(pending, html_path.parent / PDF, browser=browser, timeout=timeout)
        pending.replace(html_path)
    except OSError as exc:
        raise PdfError(f"{html_path}: cannot write the HTML: {exc.strerror or exc}") from None
    finally:
        pending.unlink(missing_ok=True)
    return out
