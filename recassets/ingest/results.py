"""What an ingestion reports: the tables it wrote, and per day the rows landed and quarantined.

Apart from the orchestration (``pipeline``) because the lineage manifest is written from the
same result, and the Dagster asset turns it into metadata.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from recassets.ingest.files import LandedFile

# Dataset -> its Delta table: the names under the lake, in lineage manifests and asset keys.
# The pipeline's landing datasets (recassets.events.CONTRACTS).
TABLE_NAMES = {"events": "raw_events", "users": "users", "items": "items"}
# The serving decision log: landed by the service, ingested alike into a table of its name.
SERVING_LOG = "serving_log"
# Every table ingestion writes, by landing dataset.
INGESTED_TABLES = {**TABLE_NAMES, SERVING_LOG: SERVING_LOG}


@dataclass
class PartitionResult:
    day: str
    rows: int
    quarantined: int
    files: list[LandedFile]
    # Set when the day had no landing file and became an empty partition: the folder looked in.
    empty_folder: str | None = None

    @property
    def empty(self) -> bool:
        return self.empty_folder is not None


@dataclass
class IngestResult:
    dataset: str
    table_path: str
    delta_version: int
    quarantine_version: int
    partitions: dict[str, PartitionResult] = field(default_factory=dict)
    run_id: str = ""

    @property
    def rows(self) -> int:
        return sum(p.rows for p in self.partitions.values())

    @property
    def quarantined(self) -> int:
        return sum(p.quarantined for p in self.partitions.values())
