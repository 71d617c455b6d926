"""Every asset key, in one place: the assets, the sensors, the jobs and the checks name assets
through these constants, never by spelling the key again.

Asset keys are a public API (Feast, BentoML, partition history and lineage hang on them):
``tests/dagster/test_definitions.py`` compares the definitions with a snapshot, and
``tests/dagster/test_keys.py`` that the ``lake`` keys name the library's Delta tables. Plain
``AssetKey`` literals on purpose: this module imports nothing of ours, so any module may
import it without a cycle.
"""

from dagster import AssetKey

# -- ingest: landing folders (external: producers write them) and the ingested tables ------
# "event_files", not "events": the UI labels an asset by the last part of its key, and the
# landing folders would read "users" and "items" beside the lake tables of the same names.
LANDING = {
    name: AssetKey(["landing", f"{name[:-1]}_files"]) for name in ("events", "users", "items")
}
RAW_EVENTS = AssetKey(["lake", "raw_events"])
USERS = AssetKey(["lake", "users"])
ITEMS = AssetKey(["lake", "items"])
# by landing dataset (recassets.events.CONTRACTS' names)
INGESTED = {"events": RAW_EVENTS, "users": USERS, "items": ITEMS}

# -- features ---------------------------------------------------------------------------------
USER_FEATURES = AssetKey(["lake", "user_features"])
ITEM_FEATURES = AssetKey(["lake", "item_features"])
COHORT_FEATURES = AssetKey(["lake", "cohort_features"])
FEATURE_TABLES = (USER_FEATURES, ITEM_FEATURES, COHORT_FEATURES)
FEATURE_STORE = AssetKey(["featurestore", "feature_store"])

# -- training ---------------------------------------------------------------------------------
TRAINING_EXAMPLES = AssetKey(["lake", "training_examples"])
# training_examples taken whole, as the unpartitioned models read it: external, observed by
# the runs that change it (assets/training.py), so that the models' staleness can follow it.
TRAINING_DATA = AssetKey(["training", "examples_version"])
TWO_TOWER = AssetKey(["models", "two_tower_model"])
RANKING = AssetKey(["models", "ranking_model"])
SEQUENCE_RANKING = AssetKey(["models", "sequence_ranking_model"])
SIMILARITY = AssetKey(["models", "item_similarity"])
LIGHT = AssetKey(["models", "light_ranker"])
EVALUATION = AssetKey(["models", "model_evaluation"])
MODELS = (TWO_TOWER, RANKING, SEQUENCE_RANKING, SIMILARITY, LIGHT, EVALUATION)

# -- retrieval and serving --------------------------------------------------------------------
ITEM_EMBEDDINGS = AssetKey(["retrieval", "item_embeddings"])
ITEM_INDEX = AssetKey(["retrieval", "item_index"])
RECOMMENDER_BENTO = AssetKey(["serving", "recommender_bento"])
# The decision log: the service lands it (external), lake/serving_log ingests it. Apart from
# LANDING and INGESTED: the landing sensor and ingest_job leave it alone.
SERVING_LOG_FILES = AssetKey(["landing", "serving_log_files"])
SERVING_LOG = AssetKey(["lake", "serving_log"])
