"""`hil report ...`: render, compare, seal and hand over certification records.

``keygen``, ``sign``, ``verify`` and ``bundle`` work on a run's MANIFEST.json
(framework.report.manifest). Exit codes: 0 done / verified, 1 does not verify (or, for
``diff``, some verdict changed), 2 bad input (a missing run or key, an unreadable bundle;
``diff`` of a run that does not verify without ``--unverified``).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from framework.records import CertificationDocument, RecordError, load_record
from framework.report import diff as diff_mod
from framework.report import html

app = typer.Typer(help="Certification reports: render, diff, merge, sign, verify, bundle.",
                  no_args_is_help=True)


def _load(path: Path) -> CertificationDocument:
    try:
        return load_record(path)
    except RecordError as exc:
        raise typer.BadParameter(str(exc)) from None


@app.command("html")
def html_command(run: Annotated[Path, typer.Argument(help="run directory or certification.json")],
                 out: Annotated[Path | None, typer.Option(help="output file")] = None) -> None:
    """Render the HTML certification report of a run."""
    doc = _load(run)
    target = out or ((run if run.is_dir() else run.parent) / "certification.html")
    html.write(doc, target)
    typer.echo(str(target))
    run_dir = run if run.is_dir() else run.parent
    if target.parent.resolve() == run_dir.resolve() and (run_dir / "MANIFEST.json").exists():
        typer.echo(f"note: {run_dir / 'MANIFEST.json'} lists the earlier {target.name}: "
                   f"`hil report sign {run_dir} --key KEY --force` to seal this one", err=True)


@app.command("pdf")
def pdf_command(
    run: Annotated[Path, typer.Argument(help="run directory (reports/latest too)")],
    key: Annotated[str | None, typer.Option(
        "--key", help="Ed25519 private key to sign the re-written manifest with: a PEM file "
                      "or env:NAME (never copied into the run); unsigned without it")] = None,
    force: Annotated[bool, typer.Option(
        "--force", help="re-write the manifest even if evidence changed since it was "
                        "written")] = False,
) -> None:
    """Print the run's report to certification.pdf (headless Chromium), then re-write
    MANIFEST.json so that it lists the PDF (signed with --key).

    The HTML is rendered again, showing the current evidence digest (and --key's
    fingerprint), and replaces certification.html once printed (a failed print changes
    nothing): the matrix is on page 1, the digest on every page. Exit 2 when no browser
    can print it; 1 when files other than the renderings changed since the manifest."""
    from framework.report import manifest
    from framework.report import pdf as pdf_mod
    from framework.report.signing import KeyFileError, fingerprint, load_private_key, short

    run_dir = _run_dir(run)
    try:
        browser = pdf_mod.find_browser()  # before anything in the run is re-written
    except pdf_mod.PdfError as exc:
        typer.echo(f"hil report pdf: error: {exc}", err=True)
        raise typer.Exit(2) from None
    try:
        private = load_private_key(key) if key is not None else None
    except KeyFileError as exc:
        raise typer.BadParameter(str(exc), param_hint="--key") from None
    if (run_dir / manifest.MANIFEST).exists() and not force:
        _refuse_changes("pdf", run_dir, [
            p for p in manifest.verify(run_dir).file_problems
            if not manifest.is_rendering(p.split(": ", 1)[1].split(" (", 1)[0])],
            "--force to list them")
    seal = manifest.Seal(manifest.evidence_digest(run_dir),
                         fingerprint(private) if private else None)
    page = html.render(_load(run_dir), html.load_explore(run_dir), seal)
    try:
        out = pdf_mod.write(run_dir, page=page, browser=browser)
    except pdf_mod.PdfError as exc:
        typer.echo(f"hil report pdf: error: {exc}", err=True)
        raise typer.Exit(2) from None
    sealed = manifest.write(run_dir, private)
    typer.echo(f"pdf      {out}")
    signed = f"signed by key {short(sealed.fingerprint)}" if sealed.fingerprint else "unsigned"
    typer.echo(f"manifest {run_dir / manifest.MANIFEST} ({signed}; evidence "
               f"sha256:{sealed.evidence_digest})")
    if sealed.evidence_digest != seal.evidence_digest:
        typer.echo("hil report pdf: the evidence changed while the PDF was printed: "
                   f"`hil report verify {run_dir}` and print it again", err=True)
        raise typer.Exit(1)


@app.command("diff")
def diff_command(
    a: Annotated[Path, typer.Argument(help="the earlier run (directory or certification.json)")],
    b: Annotated[Path, typer.Argument(help="the later run")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
    unverified: Annotated[bool, typer.Option(
        "--unverified", help="compare even runs that do not verify against their manifest")
                          ] = False,
) -> None:
    """Cases whose verdict changed between two runs; exit 1 when any did.

    Both runs must verify (`hil report verify`) unless --unverified: exit 2 otherwise."""
    if not unverified:
        _refuse_unverified([a, b])
    changes = diff_mod.diff(_load(a), _load(b))
    if as_json:
        typer.echo(json.dumps([c.__dict__ for c in changes], indent=2))
    else:
        table = Table(title=f"{len(changes)} case(s) changed verdict")
        for col in ("case", "model", "before", "after", "reason now"):
            table.add_column(col)
        for c in changes:
            table.add_row(c.case, c.model, c.before or "-", c.after or "-", c.reason_after)
        Console().print(table)
    raise typer.Exit(1 if changes else 0)


@app.command("merge")
def merge_command(
    runs: Annotated[list[Path], typer.Argument(help="run directories or certification.json files")],
    out: Annotated[Path, typer.Option(help="directory for the merged record and its HTML")],
    run_id: Annotated[str | None, typer.Option(help="id of the merged run (default: --out name)")
                      ] = None,
) -> None:
    """Merge several runs (e.g. one per rig) into one certification record and report.

    Each case is tagged with its rig and place (the rig name, or the run id when two runs
    share a rig)."""
    from framework.report.merge import SourceRun, merge, write_merged

    docs = [(r, _load(r)) for r in runs]
    rigs = [d.run.rig for _, d in docs]
    sources = [SourceRun(d, place=(rigs[i] if rigs.count(rigs[i]) == 1
                                   else d.run.id or str(r)),
                         path=r) for i, (r, d) in enumerate(docs)]
    try:
        doc = merge(sources, run_id=run_id or out.name)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    path = write_merged(doc, out)
    s = doc.summary
    typer.echo(f"merged {len(sources)} run(s): {s['total']} cases, {s['passed']} passed, "
               f"{s['failed']} failed, {s['broken']} broken, {s['observed']} observed")
    typer.echo(f"record  {path}")
    typer.echo(f"report  {out / 'certification.html'}")


def _refuse_unverified(runs: list[Path]) -> None:
    from framework.report.manifest import verify

    bad = []
    for r in runs:
        run_dir = r if r.is_dir() else r.parent
        if not (run_dir / "certification.json").exists():
            continue  # _load names it
        bad += [f"{run_dir}: {p}" for p in verify(run_dir).problems]
    if bad:
        for line in bad:
            typer.echo(line, err=True)
        typer.echo("hil report diff: refused: a run does not verify (--unverified to compare "
                   "anyway)", err=True)
        raise typer.Exit(2)


@app.command("keygen")
def keygen_command(out: Annotated[Path, typer.Argument(
        help="private key file to write (PEM PKCS#8, mode 0600); the public key goes to "
             "OUT.pub")]) -> None:
    """Write a new Ed25519 key pair for signing runs."""
    from framework.report.signing import KeyFileError, keygen, short

    try:
        private, public, fp = keygen(out)
    except KeyFileError as exc:
        raise typer.BadParameter(str(exc), param_hint="OUT") from None
    typer.echo(f"private {private}")
    typer.echo(f"public  {public}")
    typer.echo(f"key     {short(fp)} (sha256 {fp})")


def _run_dir(run: Path) -> Path:
    run_dir = run if run.is_dir() else run.parent
    if not (run_dir / "certification.json").is_file():
        raise typer.BadParameter(f"{run}: not a run directory (no certification.json)",
                                 param_hint="RUN")
    return run_dir


@app.command("sign")
def sign_command(
    run: Annotated[Path, typer.Argument(help="run directory")],
    key: Annotated[str, typer.Option("--key", help="Ed25519 private key: a PEM file or "
                                     "env:NAME (never copied into the run)")],
    force: Annotated[bool, typer.Option(
        "--force", help="sign even if files changed since the existing manifest")] = False,
) -> None:
    """Re-write a finished run's MANIFEST.json and sign it.

    Refuses (exit 1) when files were added, removed or changed since an existing manifest
    listed them, unless --force."""
    from framework.report import manifest
    from framework.report.signing import KeyFileError, load_private_key, short

    run_dir = _run_dir(run)
    try:
        private = load_private_key(key)
    except KeyFileError as exc:
        raise typer.BadParameter(str(exc), param_hint="--key") from None
    if (run_dir / manifest.MANIFEST).exists() and not force:
        _refuse_changes("sign", run_dir, manifest.verify(run_dir).file_problems,
                        "--force to sign them")
    seal = manifest.write(run_dir, private)
    typer.echo(f"manifest {run_dir / manifest.MANIFEST} signed by key "
               f"{short(seal.fingerprint or '')}; evidence sha256:{seal.evidence_digest}")


@app.command("verify")
def verify_command(
    run: Annotated[Path, typer.Argument(help="run directory or a bundle (.tar.gz)")],
    key: Annotated[str | None, typer.Option(
        "--key", help="the signer's Ed25519 public key (PEM file or env:NAME): the run "
                      "must be signed by it")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Recompute every hash of a run and check its manifest's signature.

    One line per problem; exit 0 when it verifies, 1 when not, 2 on bad input."""
    from framework.report import bundle, manifest
    from framework.report.signing import KeyFileError, load_public_key, raw_public

    expected = None
    if key is not None:
        try:
            expected = raw_public(load_public_key(key))
        except KeyFileError as exc:
            raise typer.BadParameter(str(exc), param_hint="--key") from None
    if not run.exists():
        raise typer.BadParameter(f"{run}: no such run directory or bundle", param_hint="RUN")
    with tempfile.TemporaryDirectory(prefix="hil-verify-") as tmp:
        if bundle.is_bundle(run):
            try:
                run_dir = bundle.extract(run, Path(tmp))
            except bundle.BundleError as exc:
                raise typer.BadParameter(str(exc), param_hint="RUN") from None
        elif run.is_dir():
            run_dir = run
        else:
            run_dir = run.parent
        result = manifest.verify(run_dir, expected)
    if as_json:
        typer.echo(json.dumps({**result.to_json(), "run": str(run)}, indent=2))
        raise typer.Exit(0 if result.ok else 1)
    for line in result.problems:
        typer.echo(line)
    signed = (f"signed by key {result.signed_by[:16]}" if result.signed_by
              else "not signed")
    if result.ok:
        typer.echo(f"verified {run}: {result.files} files, evidence sha256:"
                   f"{result.evidence_digest}, {signed}")
        raise typer.Exit(0)
    typer.echo(f"NOT verified {run}: {len(result.problems)} problem(s)")
    raise typer.Exit(1)


@app.command("bundle")
def bundle_command(
    run: Annotated[Path, typer.Argument(help="run directory")],
    out: Annotated[Path | None, typer.Option("-o", "--out", help="the .tar.gz to write "
                                             "(default: ./<run-id>.tar.gz)")] = None,
) -> None:
    """Write one .tar.gz of a run (with its MANIFEST.json) that `hil report verify` accepts.

    Refuses (exit 1) a run that does not verify; a run without a manifest gets an unsigned
    one first."""
    from framework.report import bundle, manifest

    run_dir = _run_dir(run).resolve()
    if not (run_dir / manifest.MANIFEST).exists():
        manifest.write(run_dir)
        typer.echo(f"manifest {run_dir / manifest.MANIFEST} (written now, unsigned)")
    result = manifest.verify(run_dir)
    if not result.ok:
        for line in result.problems:
            typer.echo(line, err=True)
        typer.echo("hil report bundle: refused: the run does not verify", err=True)
        raise typer.Exit(1)
    try:
        path = bundle.write(run_dir, out or Path(f"{run_dir.name}.tar.gz"))
    except bundle.BundleError as exc:
        raise typer.BadParameter(str(exc), param_hint="-o") from None
    signed = f"signed by key {result.signed_by[:16]}" if result.signed_by else "not signed"
    typer.echo(f"bundle  {path} ({result.files} files + MANIFEST.json, {signed}, evidence "
               f"sha256:{result.evidence_digest})")


def _refuse_changes(command: str, run_dir: Path, changed: list[str], hint: str) -> None:
    """Exit 1, naming each file changed since the run's manifest was written: re-sealing
    would make a tampered run verify again."""
    from framework.report import manifest

    if not changed:
        return
    for line in changed:
        typer.echo(line, err=True)
    typer.echo(f"hil report {command}: refused: {len(changed)} file(s) changed since "
               f"{run_dir / manifest.MANIFEST} was written ({hint})", err=True)
    raise typer.Exit(1)
