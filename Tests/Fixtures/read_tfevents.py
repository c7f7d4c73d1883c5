#!/usr/bin/env python3
"""An independent reader of TensorBoard event files, written from the documented record format
(TFRecord: uint64 length, uint32 masked CRC-32C of the length, data, uint32 masked CRC-32C of the
data) and protobuf's wire format, for tests: it shares no code with the writer.

Prints one JSON object: {"file_version": ..., "scalars": {tag: [[step, value], ...]}}; exits 1 with a
message on a bad checksum or a malformed record."""
import json
import struct
import sys


def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def masked(crc):
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def varint(data, at):
    value, shift = 0, 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at


def fields(data):
    """(number, wire type, value) of each field of a message."""
    at = 0
    while at < len(data):
        key, at = varint(data, at)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, at = varint(data, at)
        elif wire == 1:
            value, at = data[at:at + 8], at + 8
        elif wire == 2:
            length, at = varint(data, at)
            value, at = data[at:at + length], at + length
        elif wire == 5:
            value, at = data[at:at + 4], at + 4
        else:
            raise ValueError("wire type %d" % wire)
        yield number, wire, value


def main(path):
    data = open(path, "rb").read()
    at, result = 0, {"file_version": None, "scalars": {}, "records": 0}
    while at < len(data):
        header = data[at:at + 8]
        (length,) = struct.unpack("<Q", header)
        (length_crc,) = struct.unpack("<I", data[at + 8:at + 12])
        if masked(crc32c(header)) != length_crc:
            sys.exit("record at byte %d: length checksum mismatch" % at)
        body = data[at + 12:at + 12 + length]
        (body_crc,) = struct.unpack("<I", data[at + 12 + length:at + 16 + length])
        if len(body) != length or masked(crc32c(body)) != body_crc:
            sys.exit("record at byte %d: data checksum mismatch" % at)
        at += 16 + length
        result["records"] += 1
        step, summary = 0, None
        for number, wire, value in fields(body):
            if number == 2 and wire == 0:
                step = value
            elif number == 3 and wire == 2:
                result["file_version"] = value.decode()
            elif number == 5 and wire == 2:
                summary = value
        if summary is not None:
            for number, wire, value in fields(summary):
                if number != 1:
                    continue
                tag, scalar = None, None
                for n, w, v in fields(value):
                    if n == 1 and w == 2:
                        tag = v.decode()
                    elif n == 2 and w == 5:
                        (scalar,) = struct.unpack("<f", v)
                result["scalars"].setdefault(tag, []).append([step, scalar])
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main(sys.argv[1])
