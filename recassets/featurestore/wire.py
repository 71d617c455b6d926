"""Feast's online-store encodings, read without ``import feast`` (which takes seconds).

Three stable formats, as Feast 0.67 writes them (``feast/infra/key_encoding_utils.py``,
``feast/infra/online_stores/{sqlite,redis,helpers}.py``, ``protos/feast/types/Value.proto``):

- entity keys, serialization version 3: ``<I n_keys>``, per key ``<I STRING><I len><name>``,
  per value ``<I type><I len><bytes>`` (int64 as ``<q``, strings as UTF-8);
- feature values: the ``feast.types.Value`` protobuf message (a oneof of scalars and lists);
- Redis: one hash per entity at ``entity_key_bytes + project``, one field per feature named
  by the 4 little-endian bytes of ``murmur3_32("<view>:<feature>")``.

The Value message is rebuilt here from its field numbers in a private descriptor pool, so it
parses with the same C (upb) parser as Feast's class yet never clashes with Feast's own
registration when both live in one process. ``tests/unit/featurestore/test_online.py``
checks each encoding against Feast's.
"""

from __future__ import annotations

import struct
from typing import Any

# feast.types.ValueType.Enum numbers (Value.proto)
STRING, INT64 = 2, 4
ENTITY_KEY_SERIALIZATION_VERSION = 3

# oneof member -> (field number, scalar type or list message); Value.proto's numbering.
_SCALARS = {
    "bytes_val": (1, "TYPE_BYTES"),
    "string_val": (2, "TYPE_STRING"),
    "int32_val": (3, "TYPE_INT32"),
    "int64_val": (4, "TYPE_INT64"),
    "double_val": (5, "TYPE_DOUBLE"),
    "float_val": (6, "TYPE_FLOAT"),
    "bool_val": (7, "TYPE_BOOL"),
}
_LISTS = {
    "bytes_list_val": (11, "BytesList", "TYPE_BYTES"),
    "string_list_val": (12, "StringList", "TYPE_STRING"),
    "int32_list_val": (13, "Int32List", "TYPE_INT32"),
    "int64_list_val": (14, "Int64List", "TYPE_INT64"),
    "double_list_val": (15, "DoubleList", "TYPE_DOUBLE"),
    "float_list_val": (16, "FloatList", "TYPE_FLOAT"),
    "bool_list_val": (17, "BoolList", "TYPE_BOOL"),
}
SUPPORTED = frozenset(_SCALARS) | frozenset(_LISTS)
_Value: Any = None


def value_class() -> Any:
    """A protobuf class wire-compatible with ``feast.types.Value`` for the scalar and list
    members recassets' views use (built once; unknown members parse as unset)."""
    global _Value
    if _Value is None:
        from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

        F = descriptor_pb2.FieldDescriptorProto
        fd = descriptor_pb2.FileDescriptorProto(
            name="recassets_feast_value.proto", package="recassets.feastwire", syntax="proto3"
        )
        for _, message, scalar in _LISTS.values():
            m = fd.message_type.add(name=message)
            m.field.add(name="val", number=1, label=F.LABEL_REPEATED, type=getattr(F, scalar))
        value = fd.message_type.add(name="Value")
        value.oneof_decl.add(name="val")
        for name, (number, scalar) in _SCALARS.items():
            value.field.add(
                name=name,
                number=number,
                label=F.LABEL_OPTIONAL,
                type=getattr(F, scalar),
                oneof_index=0,
            )
        for name, (number, message, _) in _LISTS.items():
            value.field.add(
                name=name, number=number, label=F.LABEL_OPTIONAL, type=F.TYPE_MESSAGE,
                type_name=f".recassets.feastwire.{message}", oneof_index=0,
            )  # fmt: skip
        pool = descriptor_pool.DescriptorPool()
        pool.Add(fd)
        _Value = message_factory.GetMessageClass(
            pool.FindMessageTypeByName("recassets.feastwire.Value")
        )
    return _Value


def decode_value(blob: bytes | None) -> Any:
    """A serialized Value -> the Python value Feast's ``to_dict()`` gives: None when unset,
    scalars as int/float/str/bool/bytes, lists as Python lists."""
    if not blob:
        return None
    msg = value_class().FromString(blob)
    which = msg.WhichOneof("val")
    if which is None:
        return None
    value = getattr(msg, which)
    return list(value.val) if which in _LISTS else value


def serialize_entity_key(join_key: str, value: int | str) -> bytes:
    """Feast's ``serialize_entity_key`` (v3) for a single join key of type INT64 or STRING."""
    name = join_key.encode()
    if isinstance(value, str):
        raw, vtype = value.encode(), STRING
    else:
        raw, vtype = struct.pack("<q", int(value)), INT64
    return b"".join(
        (struct.pack("<III", 1, STRING, len(name)), name, struct.pack("<II", vtype, len(raw)), raw)
    )


def int64_key_prefix(join_key: str) -> bytes:
    """Everything of an INT64 entity key before its 8 value bytes."""
    return serialize_entity_key(join_key, 0)[:-8]


def redis_key(join_key: str, value: int | str, project: str) -> bytes:
    return serialize_entity_key(join_key, value) + project.encode()


def redis_field(view: str, feature: str) -> bytes:
    """The hash field of one feature in Feast's Redis layout (murmur3_32, little-endian)."""
    import mmh3

    return struct.pack("<I", mmh3.hash(f"{view}:{feature}", signed=False))


def redis_ts_field(view: str) -> bytes:
    return f"_ts:{view}".encode()


def entity_key_head(join_key: str) -> bytes:
    """The bytes every v3 entity key of one join key starts with (before the value's type)."""
    name = join_key.encode()
    return struct.pack("<III", 1, STRING, len(name)) + name


def parse_entity_key(blob: bytes, join_key: str) -> tuple[int | str, bytes] | None:
    """``serialize_entity_key``'s inverse for one join key: ``(value, rest)``, ``rest`` being
    the bytes after the key (Redis appends the project); None for a key of another join key
    or value type."""
    head = entity_key_head(join_key)
    if not blob.startswith(head) or len(blob) < len(head) + 8:
        return None
    vtype, size = struct.unpack_from("<II", blob, len(head))
    start = len(head) + 8
    raw, rest = blob[start : start + size], blob[start + size :]
    if len(raw) != size:
        return None
    if vtype == INT64 and size == 8:
        return struct.unpack("<q", raw)[0], rest
    if vtype == STRING:
        return raw.decode(), rest
    return None
