"""What every request's strings must be, checked once for every API before a
handler sees them (the common interceptor calls these): valid UTF-8 (proto3
strings; protobuf refuses to parse anything else) and no NUL, which Postgres
text cannot store. Both name the field, so a client gets a 400 with a
google.rpc.BadRequest instead of a 500 from deep inside a driver."""

from __future__ import annotations

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from groundwork_shared.errors import FieldViolation

NUL = "must not contain NUL (U+0000)"
NOT_UTF8 = "must be valid UTF-8"


def string_violations(message: Message, prefix: str = "") -> list[FieldViolation]:
    """Every string field, at any depth, that holds a NUL."""
    found: list[FieldViolation] = []
    for field, value in message.ListFields():
        name = prefix + field.name
        if field.type == FieldDescriptor.TYPE_STRING:
            values = list(value) if field.is_repeated else [value]
            for index, text in enumerate(values):
                if "\x00" in text:
                    at = f"{name}[{index}]" if field.is_repeated else name
                    found.append(FieldViolation(at, NUL))
        elif field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type is not None:
            if field.message_type.GetOptions().map_entry:
                found.extend(_map_violations(name, field, value))
            elif field.is_repeated:
                for index, item in enumerate(value):
                    found.extend(string_violations(item, f"{name}[{index}]."))
            else:
                found.extend(string_violations(value, name + "."))
    return found


def _map_violations(name: str, field: FieldDescriptor, value: object) -> list[FieldViolation]:
    found: list[FieldViolation] = []
    entry = field.message_type
    assert entry is not None
    for key, item in value.items():  # type: ignore[attr-defined]
        if isinstance(key, str) and "\x00" in key:
            found.append(FieldViolation(f"{name}[key]", NUL))
        at = f"{name}[{key!r}]" if isinstance(key, str) else f"{name}[{key}]"
        if entry.fields_by_name["value"].type == FieldDescriptor.TYPE_STRING:
            if "\x00" in item:
                found.append(FieldViolation(at, NUL))
        elif isinstance(item, Message):
            found.extend(string_violations(item, at + "."))
    return found


def undecodable_field(descriptor: Descriptor, data: bytes, prefix: str = "") -> str | None:
    """The field of a message that protobuf refused to parse because a string in
    it is not UTF-8, found by walking the wire format; None when the bytes are
    broken in some other way."""
    position = 0
    try:
        while position < len(data):
            key, position = _varint(data, position)
            number, wire_type = key >> 3, key & 7
            if wire_type == 0:
                _, position = _varint(data, position)
            elif wire_type == 1:
                position += 8
            elif wire_type == 5:
                position += 4
            elif wire_type == 2:
                length, position = _varint(data, position)
                chunk, position = data[position : position + length], position + length
                field = descriptor.fields_by_number.get(number)
                if field is None:
                    continue
                found = _invalid_in(field, chunk, prefix)
                if found:
                    return found
            else:
                return None
    except IndexError:
        return None
    return None


def _invalid_in(field: FieldDescriptor, chunk: bytes, prefix: str) -> str | None:
    name = prefix + field.name
    if field.type == FieldDescriptor.TYPE_STRING:
        try:
            chunk.decode("utf-8")
        except UnicodeDecodeError:
            return name
        return None
    if field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type is not None:
        entry = field.message_type
        if entry.GetOptions().map_entry:
            return name if undecodable_field(entry, chunk) else None
        return undecodable_field(entry, chunk, name + ".")
    return None


def _varint(data: bytes, position: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
        shift += 7
