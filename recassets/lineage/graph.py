"""The upstream lineage of a bento, a model version, a table partition or a served request,
down to the landing files it grew from.

Built only from what is recorded: the bento's lineage manifest (``recassets.bento.bundle``),
the checkpoints' ``source`` (partitions and the Delta versions they were read at), the index
and embeddings manifests, the feature store's and the ingest tables' lineage manifests, the
Delta logs (each commit's ``userMetadata``: run id, table, days) and the Dagster instance (runs,
their tags, check results). Where a link is not recorded today it is either inferred from the
Delta log and marked so (the versions a feature or example partition read: the versions as of
its commit), or named in the node's ``unrecorded`` list; nothing is made up. The result is a
DAG (``Lineage``): nodes keyed by an id, each listing its inputs; a node reached twice (a
users partition under every feature day) is one node."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from recassets.lake import partition_day
from recassets.lineage import records, targets
from recassets.lineage.changes import changed_outside, outside, said
from recassets.lineage.damage import CheckedLog, damaged
from recassets.lineage.nodes import ASSET_KEYS, Artifact, Check, Lineage, Node, floats
from recassets.lineage.records import Commit, DagsterRecords, read_record, read_version
from recassets.lineage.targets import (
    EXAMPLES_TABLE,
    FEATURE_TABLES,
    INGEST_TABLES,
    TABLES,
    WRITTEN_BY,
    Target,
    TargetError,
    is_bento_tag,
)
from recassets.paths import Paths

# what a bento's models/ folder holds: kind -> file suffix (the item similarity: the blend's)
MODEL_KINDS = {"two_tower": ".pt", "ranking": ".pt", "item_similarity": ".npz",
               "light_ranker": ".npz"}  # fmt: skip
# The longest feature window (recassets.features.schema.WINDOWS): a feature partition of day D
# reads raw_events over [D - 27, D]. tests/unit/lineage checks it against the schema.
FEATURE_WINDOW_DAYS = 28


def parse_target(text: str, day: str | None = None) -> Target:
    """``targets.parse_target``, ASCII only: every form it accepts is, while ``\\d`` and
    ``int()`` read any script's digits (``raw_events@`` and an Arabic-Indic one was version 1)."""
    if not text.isascii():
        raise TargetError(f"not a lineage target: {text[:80]!r} (ASCII only). {targets.USAGE}")
    return targets.parse_target(text, day)


def trace(paths: Paths, target: Target) -> Lineage:
    """The upstream lineage of ``target``. ``LookupError`` when it does not exist (no such
    bento, checkpoint, commit or partition)."""
    walker = _Walker(paths)
    try:
        if target.kind == "bento":
            root = walker.bento(target.name)
        elif target.kind == "request":
            root = walker.request(target.name)
        elif target.kind == "model":
            from recassets.lineage.verify import model_version

            root = walker.model(*model_version(paths, target.name))
        elif target.kind == "commit":
            assert target.version is not None
            root = walker.commit(target.name, target.version)
        else:
            assert target.day is not None
            root = walker.partition(target.name, target.day, None, must_exist=True)
        walker.expand()
        notes = () if walker.dagster.available else (walker.dagster.lost(),)
    finally:
        walker.dagster.close()
    return Lineage(root, walker.nodes, paths.home, walker.folders, notes)


class _Walker:
    def __init__(self, paths: Paths) -> None:
        self.paths = paths
        self.log = CheckedLog()
        self.dagster = DagsterRecords(paths.dagster_home)
        self.nodes: dict[str, Node] = {}
        self.pending: list[tuple[Node, str, str, Commit]] = []
        # this home's folders (a file outside is another home's); an object store's are not
        folders = (paths.home, paths.landing, paths.artifacts, paths.lineage, paths.bentoml)
        self.folders = tuple(f for f in folders if "://" not in f)
        self.roots = [Path(f).resolve() for f in self.folders]

    def _elsewhere(self, path: str) -> Path | None:
        """The home a record names when it is another's (a home copied or restored elsewhere:
        ``/old`` of ``/old/artifacts/models/two_tower/0001.pt``), else None."""
        if "://" in path or any(Path(path).resolve().is_relative_to(r) for r in self.roots):
            return None
        parts = Path(path).parts
        return Path(*parts[:-4]) if len(parts) > 4 and parts[-4] == "artifacts" else None

    def _run(self, node: Node, run_id: str | None, what: str) -> None:
        """Fill ``node``'s run from the Dagster instance, or say what is missing."""
        node.run_id = run_id or None
        record = self.dagster.run(run_id) if run_id else None
        if record is None:
            node.unrecorded.append(self.dagster.no_run(run_id, what))
            return
        node.run_status, node.launched_by = record.status, record.launched_by
        if record.launched_by is None:
            node.unrecorded.append(
                "what launched the run (no recassets/launched_by, sensor, schedule or backfill "
                "tag: the UI or the API)"
            )

    def _checks(self, node: Node, partition: str | None) -> None:
        for c in self.dagster.checks(node.job, partition, node.run_id):
            node.checks.append(
                Check(c["name"], c["status"], c["figures"], c["severity"], "dagster")
            )

    # --- serving and models ---------------------------------------------------------------

    def request(self, request_id: str) -> str:
        """An answer of the decision log, what vouches for it, then its bento."""
        from recassets.lineage.walk_requests import request

        return request(self, request_id)

    def bento(self, tag: str) -> str:
        from recassets.bento import bundle as B

        if tag == "latest":
            found = B.latest_bento(self.paths)
            if found is None:
                raise LookupError(f"no bento in {B.bentoml_home(self.paths)}")
            tag = found.lower()
        if not is_bento_tag(tag):  # a record's field, never a path (../.. led out of the store)
            raise LookupError(f"{tag[:80]!r} is not a bento tag (name:version)")
        folder = B.bento_folder(self.paths, tag)
        manifest_path = folder / "src" / "bundle" / "manifest.json"
        if not manifest_path.is_file():
            raise LookupError(f"no bento {tag} with a bundle manifest ({manifest_path})")
        manifest = read_record(manifest_path)
        lineage = manifest.get("lineage", {})
        node = Node(f"bento {tag}", "bento", ASSET_KEYS["bento"], dataset=str(folder))
        policy = manifest.get("policy", {})
        feast = lineage.get("feast") or {}
        node.facts = {
            "policy": policy.get("policy"),
            "digest": manifest.get("digest"),
            "created_at": manifest.get("created_at"),
            "features_day": (feast.get("online") or {}).get("day"),
        }
        self._run(node, self.dagster.materialization_run(node.job, "tag", tag), "built it")
        self._checks(node, None)
        if lineage.get("evaluation"):
            node.checks.append(
                Check("promotion gate (what the promoted candidate scored)", "recorded",
                      floats(lineage["evaluation"]), source="bundle manifest")
            )  # fmt: skip
        for kind, suffix in MODEL_KINDS.items():
            rec = lineage.get(kind)
            if not rec:
                continue
            copy = folder / "src" / "bundle" / "models" / f"{kind}{suffix}"
            node.artifacts.append(Artifact(str(copy), rec.get("sha256"), f"{kind} checkpoint copy"))
            node.inputs.append(self.model(rec["checkpoint"], rec.get("sha256"), copy))
        if policy.get("policy") != "model":
            node.unrecorded.append("no model: the bento serves the popularity policy")
        if counts := lineage.get("popularity"):  # the all_time policy's, frozen at build
            what = f"all-time positives of training_examples {counts.get('days')}"
            path = str(folder / "src" / "bundle" / "popularity.npz")
            node.artifacts.append(Artifact(path, counts.get("sha256"), what))
        contents = lineage.get("contents") if isinstance(lineage.get("contents"), dict) else {}
        node.artifacts += [Artifact(str(folder / "src" / "bundle" / str(r)), d, "bundle copy") for r, d in contents.items()]  # fmt: skip
        if "code" not in manifest:  # bentos since 2026-12-07 record it (verify's _code_check)
            node.unrecorded.append("sha256 of the bento's other files (service.py, recassets/"
                                   + ("" if contents else ", the index copy") + ")")  # fmt: skip
        if lineage.get("index"):
            node.inputs.append(self.index(lineage["index"]))
        if feast:
            node.inputs.append(self.feature_store(feast))
        return self._add(node)

    def model(self, path: str, sha256: str | None = None, copy: Path | None = None) -> str:
        """The model version at ``path``. ``copy``: a bento's copy of it, read in its place
        when the checkpoint is gone and the copy holds the recorded ``sha256`` (old versions
        are what a retention job deletes first; the trace then still reaches the training
        days)."""
        p = Path(path)
        kind, number = p.parent.name, p.stem
        node_id = f"model {kind}/{number}"
        if node_id in self.nodes:
            return node_id
        job, label = WRITTEN_BY.get(kind, (ASSET_KEYS.get(kind, f"models/{kind}"), "checkpoint"))
        node = Node(node_id, "model", job, dataset=path)
        node.artifacts.append(Artifact(path, sha256, f"{kind} checkpoint"))
        if sha256 is None:
            node.unrecorded.append("the checkpoint's sha256 (recorded only in a bento's lineage)")
        self._run(node, self.dagster.materialization_run(job, label, path), "trained it")
        self._checks(node, None)
        from recassets.lineage.verify import _in_this_home, sha256_or_none

        home = self._elsewhere(path)
        here = _in_this_home(path, self.roots) if home else None
        if here is not None:  # this home's place, never the original home's file
            node.unrecorded.append(f"recorded in another home as {path}: read at {here}")
            p, path = here, str(here)
        # hashed only when a copy could stand in (verify hashes every file anyway)
        intact = p.is_file() and (sha256 is None or copy is None or sha256_or_none(p) == sha256)
        if not intact and copy is not None and sha256 and copy.is_file():
            if sha256_or_none(copy) == sha256:
                node.unrecorded.append(
                    f"the checkpoint file itself: {path} is gone (or holds other bytes); "
                    f"read from the bento's copy {copy}, which holds its recorded sha256"
                )
                node.artifacts.append(Artifact(str(copy), sha256, f"{kind} checkpoint copy"))
                p, path = copy, str(copy)
        if not p.is_file():
            node.unrecorded.append(f"the checkpoint file itself: {path} is missing")
            return self._add(node)
        if p.suffix == ".npz":  # the item similarity or the light ranker: its fit, its days
            from recassets.training.light import LightRanker
            from recassets.training.similarity import ItemSimilarity

            light = kind == "light_ranker"
            try:
                meta = (LightRanker if light else ItemSimilarity).load(path).meta
            except (OSError, ValueError) as e:
                return self._unreadable(node, path, e)
            facts = ("rows", "holdout_auc") if light else ("l2", "items")
            node.facts = {k: meta.get(k) for k in ("created_at", "code_version", *facts)}
            if light:  # it learned from that two-tower's scores
                node.inputs.append(self.model(meta["two_tower"]))
            versions = {d: meta.get("table_version") for d in meta.get("partitions", [])}
            return self._examples(node, meta.get("table"), versions, home)
        from recassets.training.checkpoint import Checkpoint

        try:
            ckpt = Checkpoint.load(path)
        except (OSError, ValueError) as e:
            return self._unreadable(node, path, e)
        last = ckpt.runs[-1] if ckpt.runs else {}
        node.facts = {
            "created_at": ckpt.created_at,
            "code_version": ckpt.code_version,
            "seed": (ckpt.config.get("train") or {}).get("seed"),
            "runs": len(ckpt.runs),
            "warm_start": last.get("warm_start"),
            "examples": last.get("examples"),
        }
        if ckpt.metrics:
            node.checks.append(
                Check(
                    "training metrics",
                    "recorded",
                    floats(ckpt.metrics, nested=False),
                    source="checkpoint",
                )
            )
        return self._examples(node, ckpt.source.get("table"), ckpt.versions, home)

    def _examples(
        self, node: Node, table: str | None, versions: Mapping[str, Any], home: Path | None
    ) -> str:
        """The model node with the training_examples partitions (and versions) it read.
        ``home``: the other home its checkpoint's record names (a home copied or restored
        elsewhere), whose ``lake/training_examples`` is then this home's; a table recorded
        anywhere else (another lake, an object store) is outside, never taken for this one."""
        here = Path(self.paths.table(EXAMPLES_TABLE))
        if table and Path(table) != here:
            from recassets.lineage.verify import _in_this_home

            same_home = (
                home is not None and "://" not in table and Path(table).parent.parent == home
            )
            lake = [Path(self.paths.lake).resolve()] if "://" not in self.paths.lake else []
            if not same_home or _in_this_home(table, lake) != here.resolve():
                node.unrecorded.append(f"its training table {table} lies outside this home's lake")
                return self._add(node)
            node.unrecorded.append(
                f"its training table was recorded as {table}, in the home its checkpoint's "
                "record names: traced in this home's lake, at the same place"
            )
        for day, version in sorted(versions.items()):
            node.inputs.append(self.partition(EXAMPLES_TABLE, day, version))
        return self._add(node)

    def index(self, rec: Mapping[str, Any]) -> str:
        folder = Path(str(rec.get("folder", "")))
        node_id = f"index {folder.name}"
        if node_id in self.nodes:
            return node_id
        node = Node(node_id, "index", ASSET_KEYS["index"], dataset=str(folder))
        node.facts = {
            k: rec.get(k) for k in ("features_day", "item_features_version", "created_at")
        }
        self._run(
            node, self.dagster.materialization_run(node.job, "folder", str(folder)), "built it"
        )
        self._checks(node, None)
        check = rec.get("check") or {}
        recall = next((v for k, v in check.items() if k.startswith("recall@")), None)
        if check:
            from recassets.retrieval.index import MIN_RECALL

            status = "passed" if recall is not None and recall >= MIN_RECALL else "failed"
            node.checks.append(
                Check("item_index_recall", status, {**check, "min": MIN_RECALL},
                      source="index manifest")
            )  # fmt: skip
        node.unrecorded.append("sha256 of the index files")
        if rec.get("embeddings"):
            node.inputs.append(self.embeddings(str(rec["embeddings"])))
        elif rec.get("two_tower"):
            node.inputs.append(self.model(str(rec["two_tower"])))
        return self._add(node)

    def embeddings(self, folder: str) -> str:
        node_id = f"embeddings {Path(folder).name}"
        if node_id in self.nodes:
            return node_id
        node = Node(node_id, "embeddings", ASSET_KEYS["embeddings"], dataset=folder)
        self._run(
            node, self.dagster.materialization_run(node.job, "folder", folder), "computed them"
        )
        manifest_path = Path(folder) / "manifest.json"
        if not manifest_path.is_file():
            node.unrecorded.append(f"the embeddings manifest ({manifest_path} is missing)")
            return self._add(node)
        if (m := self._record(node, manifest_path, records.EMBEDDINGS_SHAPE)) is None:
            return self._add(node)
        node.facts = {
            k: m.get(k)
            for k in ("features_day", "item_features_version", "items", "dim", "created_at")
        }
        node.unrecorded.append("sha256 of the embeddings files")
        if m.get("two_tower"):
            node.inputs.append(self.model(str(m["two_tower"])))
        if m.get("features_day") and m.get("item_features_version") is not None:
            node.inputs.append(
                self.partition("item_features", m["features_day"], int(m["item_features_version"]))
            )
        return self._add(node)

    def feature_store(self, feast: Mapping[str, Any]) -> str:
        online = feast.get("online") or {}
        day = online.get("day")
        node_id = f"feature_store dt={day}"
        if node_id in self.nodes:
            return node_id
        node = Node(node_id, "feature_store", ASSET_KEYS["feature_store"],
                    dataset=feast.get("registry"))  # fmt: skip
        node.facts = {"online_day": day}
        if feast.get("registry"):  # rewritten by every materialization: a difference is said
            node.artifacts.append(Artifact(str(feast["registry"]), feast.get("registry_sha256"),
                                           "Feast registry", mutable=True))  # fmt: skip
        if not day:
            self._run(node, None, "materialized it")
            node.unrecorded.append("the day the online store serves")
            return self._add(node)
        run_id = self.dagster.materialization_run(node.job, None, "", partition_day(day))
        self._run(node, run_id, "materialized it")
        self._checks(node, partition_day(day))
        manifest_path = Path(self.paths.lineage) / "feature_store" / f"dt={partition_day(day)}.json"
        if not manifest_path.is_file():
            node.unrecorded.append(f"the feature store's lineage manifest ({manifest_path})")
            return self._add(node)
        if (m := self._record(node, manifest_path, records.FEATURE_STORE_SHAPE)) is None:
            return self._add(node)
        node.facts["wrote_online"] = m.get("wrote_online")
        from recassets.lineage.store_inputs import feature_inputs

        feature_inputs(self, node, m, str(day), str(manifest_path))  # checks what it names
        return self._add(node)

    # --- tables ---------------------------------------------------------------------------

    def commit(self, table: str, version: int) -> str:
        path = self.paths.table(table)
        c = self.log.commit(path, version)
        if c is None and path in self.log.unreadable:  # said on the node: the page is written
            why = str(self.log.damage(path, version))
            return self._add(damaged(table, ASSET_KEYS[table], path, version, why))
        if c is None:
            why = self.log.not_held(path, version, exact=True)
            raise LookupError(f"{table} {why} ({path})")
        node = Node(f"{table}@{version}", "commit", ASSET_KEYS[table], dataset=path)
        node.facts = {"delta_version": version, "committed_at": c.time, "operation": c.operation,
                      "code_version": c.meta.get("code_version")}  # fmt: skip
        if not c.meta:
            node.unrecorded.append(f"what this {c.operation} commit was (no userMetadata)")
        self._run(node, c.meta.get("run_id"), "made this commit")
        for day in c.days(ranges=table in FEATURE_TABLES):
            node.inputs.append(self.partition(table, day, version))
        return self._add(node)

    def partition(
        self, table: str, day: str, at_version: int | None, *, must_exist: bool = False
    ) -> str:
        """The partition ``day`` of ``table`` as of ``at_version`` (None: the latest), keyed
        by the commit that wrote it; damaged where the log cannot say (``damage.CheckedLog``)."""
        path = self.paths.table(table)
        if (why := self.log.damage(path, at_version)) is not None:
            node = damaged(table, ASSET_KEYS[table], path, at_version, why, day)
            return node.id if node.id in self.nodes else self._add(node)
        c = self.log.writer(path, day, at_version, ranges=table in FEATURE_TABLES)
        if c is None:
            if must_exist:  # a RESTORE or a DELETE outside recassets that removed it: named
                gone = [said(x, table, day) for x in changed_outside(
                    self.log, path, day, at_version, ranges=table in FEATURE_TABLES)]  # fmt: skip
                raise LookupError(
                    "; ".join([f"no commit of {table} ({path}) wrote dt={day}", *gone])
                )
            node_id = f"{table} dt={day} (no commit)"
            if node_id not in self.nodes:
                node = Node(node_id, "partition", ASSET_KEYS[table], dataset=path)
                why = self.log.not_held(path, at_version)
                node.unrecorded.append(f"the commit that wrote it: {why}")
                outside(self.log, node, table, path, day, at_version)
                self._add(node)
            return node_id
        node_id = f"{table}@{c.version} dt={day}"
        if node_id in self.nodes:
            return node_id
        node = Node(node_id, "partition", ASSET_KEYS[table], dataset=path)
        node.facts = {"day": day, "written_at_version": c.version, "committed_at": c.time,
                      "code_version": c.meta.get("code_version")}  # fmt: skip
        outside(self.log, node, table, path, day, at_version)
        if at_version is not None and at_version != c.version:
            node.facts["read_at_version"] = at_version
        self._add(node)
        # Its inputs are found later (expand): a user_features day reads the day before, so a
        # history of a thousand days would otherwise recurse a thousand partitions deep.
        self.pending.append((node, table, day, c))
        return node_id

    def expand(self) -> None:
        """Find the inputs of every partition met so far, and of those they meet."""
        while self.pending:
            node, table, day, c = self.pending.pop()
            self._run(node, c.meta.get("run_id"), "wrote it")
            self._checks(node, day)
            if table in INGEST_TABLES:
                self._ingest_inputs(node, table, day, c)
            elif table in FEATURE_TABLES:
                self._feature_inputs(node, table, day, c)
            else:
                self._example_inputs(node, day, c)

    def _ingest_inputs(self, node: Node, table: str, day: str, c: Commit) -> None:
        from recassets.ingest.lineage import lineage_path

        manifest_path = Path(lineage_path(self.paths, table, day))
        try:
            m = (
                read_record(manifest_path, records.INGEST_SHAPE)
                if manifest_path.is_file()
                else None
            )
            found = self.log.manifest_problem(self.paths.table(table), m, day, c)
        except records.RecordError as e:  # the page marks it, and the rest of the path is traced
            m, found = None, ("damaged", str(e))
        if found is not None:  # verify names it: missing, changed, or superseded by a re-run
            node.manifest = (str(manifest_path), *found)
            node.unrecorded.append(f"the landing files of this version: {found[1]}")
            return
        assert m is not None
        node.facts.update({k: m.get(k) for k in ("rows", "quarantined", "quarantine_version")})
        node.unrecorded += self.log.manifest_notes(m, c)
        if m.get("empty"):
            node.facts["empty"] = f"no landing files in {m.get('looked_in')}"
        for f in m.get("inputs", []):
            node.inputs.append(self.landing(f, INGEST_TABLES[table]))

    def _read(
        self, node: Node, table: str, days: list[str], as_of_ms: int, version: int | None = None
    ) -> None:
        """The partitions ``days`` of ``table`` at ``version`` when the reader recorded it,
        else as of ``as_of_ms`` (the reader's commit time), those that existed then."""
        version = self._version_read(node, table, as_of_ms, version)
        if version is None:
            return
        held = self._partitions(node, table, version)
        for day in days:
            if day in held:
                node.inputs.append(self.partition(table, day, version))

    def _version_read(
        self, node: Node, table: str, as_of_ms: int, recorded: int | None
    ) -> int | None:
        """The version recorded, else the one current at ``as_of_ms``; None (said) if none."""
        version, path = recorded, self.paths.table(table)
        if version is None and (why := self.log.damage(path, None)) is not None:
            node.manifest = (str(Path(path) / "_delta_log"), "damaged", why)
            node.unrecorded.append(f"{table}: {why}")
            return None
        if version is None:
            version = self.log.version_at(path, as_of_ms)
        if version is None:
            node.unrecorded.append(f"{table}: no version of it existed at its commit time")
        return version

    def _inferred_note(self, node: Node, tables: str) -> None:
        node.unrecorded.append(
            f"the Delta versions of {tables} it read: inferred as those current at its commit"
        )

    def _feature_inputs(self, node: Node, table: str, day: str, c: Commit) -> None:
        d = dt.date.fromisoformat(day)
        window = [(d - dt.timedelta(n)).isoformat() for n in range(FEATURE_WINDOW_DAYS)][::-1]
        read = c.meta.get("read")  # the versions the writer read, where it recorded them
        read = read if isinstance(read, Mapping) else {}
        if not read:
            self._inferred_note(node, "raw_events, users and items")
        self._read(node, "raw_events", window, c.timestamp_ms, read_version(read, "raw_events"))
        for dim in ("users", "items"):
            self._dimension(node, dim, day, c.timestamp_ms, read_version(read, dim))
        if table == "user_features":  # sequences carry on from the day before
            prev = (d - dt.timedelta(1)).isoformat()
            path = self.paths.table(table)
            if self.log.writer(path, prev, c.version, ranges=True) is not None:
                node.inputs.append(self.partition(table, prev, c.version))

    def _dimension(
        self, node: Node, table: str, day: str, as_of_ms: int, version: int | None = None
    ) -> None:
        """A dimension is the union of its partitions up to ``day``."""
        version = self._version_read(node, table, as_of_ms, version)
        if version is None:
            return
        upto = [p for p in self._partitions(node, table, version) if p <= day]
        self._read(node, table, upto, as_of_ms, version)

    def _partitions(self, node: Node, table: str, version: int) -> set[str]:
        """The partitions of ``table`` at ``version``; none, with the node marked damaged
        (``--verify`` fails it by name), where its Delta log cannot be read."""
        path = self.paths.table(table)
        try:
            return set(self.log.partitions(path, version))
        except records.RecordError as e:
            node.manifest = (str(Path(path) / "_delta_log"), "damaged", str(e))
            node.unrecorded.append(f"{table} at version {version}: {e}")
            return set()

    def _example_inputs(self, node: Node, day: str, c: Commit) -> None:
        recipe, features_day = c.meta.get("recipe"), c.meta.get("features_day")
        recipe = recipe.get(day) if isinstance(recipe, Mapping) else recipe
        fday = features_day.get(day) if isinstance(features_day, Mapping) else features_day
        node.facts.update({"recipe": recipe, "features_day": fday})
        read = c.meta.get("read")
        read = read if isinstance(read, Mapping) else {}
        if not read:  # a commit from before the examples recorded what they read
            self._inferred_note(node, "raw_events, users, items and the feature tables")
        self._read(node, "raw_events", [day], c.timestamp_ms, read_version(read, "raw_events"))
        for dim in ("users", "items"):
            self._dimension(node, dim, day, c.timestamp_ms, read_version(read, dim))
        for table in FEATURE_TABLES if fday else ():
            self._read(node, table, [str(fday)], c.timestamp_ms, read_version(read, table))

    def landing(self, f: Mapping[str, Any], dataset: str) -> str:
        node_id = f"landing {f.get('path')}"
        if node_id not in self.nodes:
            node = Node(node_id, "landing", "landing", dataset=str(f.get("path")))
            node.facts = {k: f.get(k) for k in ("day", "format", "size")}
            node.facts["dataset"] = dataset
            if f.get("problem"):
                node.facts["problem"] = f.get("problem")
            node.artifacts.append(
                Artifact(str(f.get("path")), f.get("sha256"), "landing file", f.get("size"))
            )
            self._add(node)
        return node_id

    def _record(self, node: Node, path: Path, shape: records.Shape) -> dict[str, Any] | None:
        """A node's record, or None with the node marked damaged (verify fails it by name)."""
        try:
            return read_record(path, shape)
        except records.RecordError as e:
            node.manifest = (str(path), "damaged", str(e))
            return None

    def _unreadable(self, node: Node, path: str, e: Exception) -> str:
        """A model file that cannot be read (damaged, or its recorded path names no file:
        ``0001.pt/``): marked damaged, the rest traced (it stopped the trace, and no page)."""
        node.manifest = (path, "damaged", f"it cannot be read: {e}")
        return self._add(node)

    def _add(self, node: Node) -> str:
        self.nodes[node.id] = node
        return node.id


__all__ = ["ASSET_KEYS", "TABLES", "Artifact", "Check", "Lineage", "Node", "Target",
           "TargetError", "parse_target", "trace"]  # fmt: skip
