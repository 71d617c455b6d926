"""Code references: each asset's page in the UI links to the body that wires it (Dagster's
``with_source_code_references``) and to the library function that computes it, so an auditor
reads the code that made what they are looking at. With ``RECASSETS_GIT_URL`` (a GitHub or
GitLab repository URL; ``RECASSETS_GIT_BRANCH``, default ``main``) the links point into the
repository (``link_code_references_to_git``) instead of to local files."""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from dagster import (
    AnchorBasedFilePathMapping,
    AssetsDefinition,
    AssetSpec,
    BetaWarning,
    CodeReferencesMetadataValue,
    LocalFileCodeReference,
    link_code_references_to_git,
    map_asset_specs,
    with_source_code_references,
)

from assets import keys

ROOT = Path(__file__).resolve().parents[1]
GIT_URL_ENV, GIT_BRANCH_ENV = "RECASSETS_GIT_URL", "RECASSETS_GIT_BRANCH"
CODE_REFERENCES = "dagster/code_references"

# The library function each asset body calls: (module file under the repo root, function).
# Named by file, not imported: the model modules load torch (tests/unit/test_layering.py).
LIBRARY: dict = {
    **{key: ("recassets/ingest/pipeline.py", "ingest") for key in keys.INGESTED.values()},
    **{key: ("recassets/features/pipelines.py", "build_features") for key in keys.FEATURE_TABLES},
    keys.TRAINING_EXAMPLES: ("recassets/training/examples.py", "build_training_examples"),
    keys.FEATURE_STORE: ("recassets/featurestore/store.py", "materialize_days"),
    keys.TWO_TOWER: ("recassets/training/policy.py", "train_next"),
    keys.RANKING: ("recassets/training/policy.py", "train_next"),
    keys.SEQUENCE_RANKING: ("recassets/training/policy.py", "train_next"),
    keys.SIMILARITY: ("recassets/training/similarity.py", "train_next"),
    keys.LIGHT: ("recassets/training/light.py", "train_next"),
    keys.EVALUATION: ("recassets/training/evaluation.py", "evaluate"),
    keys.ITEM_EMBEDDINGS: ("recassets/bento/retrieval_build.py", "compute_item_embeddings"),
    keys.ITEM_INDEX: ("recassets/bento/retrieval_build.py", "build_item_index"),
    keys.RECOMMENDER_BENTO: ("recassets/bento/bundle.py", "write_bundle"),
    keys.SERVING_LOG: ("recassets/ingest/pipeline.py", "ingest"),
}


def library_reference(file: str, function: str | None) -> LocalFileCodeReference | None:
    """The line where ``function`` is defined in ``file`` (1 for the module); None when the
    file is not there (an image without the sources)."""
    path = ROOT / file
    if not path.is_file():
        return None
    line = 1
    if function:
        for n, text in enumerate(path.read_text().splitlines(), 1):
            if re.match(rf"def {re.escape(function)}\(", text):
                line = n
                break
    label = f"{file}: {function}" if function else file
    return LocalFileCodeReference(file_path=str(path), line_number=line, label=label)


def _add_library(spec: AssetSpec) -> AssetSpec:
    found = LIBRARY.get(spec.key)
    ref = library_reference(*found) if found else None
    if ref is None:
        return spec
    existing = spec.metadata.get(CODE_REFERENCES)
    refs = list(existing.code_references) if existing else []
    return spec.replace_attributes(
        metadata={
            **spec.metadata,
            CODE_REFERENCES: CodeReferencesMetadataValue(code_references=[*refs, ref]),
        }
    )


def with_code_references(
    assets: Sequence[AssetsDefinition | AssetSpec],
) -> Sequence[AssetsDefinition | AssetSpec]:
    """``assets`` with code references to their bodies and library functions; as repository
    URLs when ``RECASSETS_GIT_URL`` is set."""
    with warnings.catch_warnings():  # the code-reference API is beta in Dagster 1.13
        warnings.simplefilter("ignore", BetaWarning)
        referenced = cast(list[Any], with_source_code_references(list(assets)))
        out: Sequence[Any] = map_asset_specs(_add_library, referenced)
        url = os.environ.get(GIT_URL_ENV)
        if url:
            out = link_code_references_to_git(
                list(out),
                git_url=url.rstrip("/"),
                git_branch=os.environ.get(GIT_BRANCH_ENV, "main"),
                file_path_mapping=AnchorBasedFilePathMapping(
                    local_file_anchor=ROOT / "definitions.py",
                    file_anchor_path_in_repository="definitions.py",
                ),
            )
        return list(out)
