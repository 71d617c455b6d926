"""What ``landing`` writes reads back as the table it was given."""

from __future__ import annotations

import json

import pyarrow as pa

from recassets.landing import table_to_jsonl


def test_jsonl_keeps_every_double_whole_and_other_bytes_as_they_were():
    """pandas writes 15 significant digits: a rating of 3.9999999999999996 landed as 4.0 (a
    positive, where the same rating landed as Parquet is a negative), 3.6666666666666665 as
    3.666666666666666. A key-like string is not touched; a row without such a double keeps
    pandas' bytes."""
    values = [3.6666666666666665, 3.9999999999999996, None, 0.5, -1.2345678901234567e-7, 1e22]
    table = pa.table({
        "event_id": ['a","value":1', "b", "c", "d", "e", "f"],
        "value": pa.array(values, pa.float64()),
        "n": [1, 2, 3, 4, 5, 6],
    })  # fmt: skip
    rows = [json.loads(line) for line in table_to_jsonl(table).decode().splitlines()]
    assert [r["value"] for r in rows] == values
    assert rows[0]["event_id"] == 'a","value":1' and [r["n"] for r in rows] == [1, 2, 3, 4, 5, 6]
    plain = table.slice(2, 2)  # null and 0.5: nothing to rewrite
    assert table_to_jsonl(plain) == b'{"event_id":"c","value":null,"n":3}\n' + (
        b'{"event_id":"d","value":0.5,"n":4}\n'
    )
