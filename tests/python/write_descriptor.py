"""Writes the binary FileDescriptorSet of shop.Click (typed_records.protobuf_click, with
its imports), as `protoc --include_imports --descriptor_set_out=OUT` would.

usage: write_descriptor.py OUT
"""
import sys

from google.protobuf import descriptor_pb2
from pulsar.schema.schema_protobuf import _collect_file_descriptors

from typed_records import protobuf_click


def main():
    files = descriptor_pb2.FileDescriptorSet()
    _collect_file_descriptors(protobuf_click().DESCRIPTOR.file, set(), files)
    with open(sys.argv[1], "wb") as out:
        out.write(files.SerializeToString())


if __name__ == "__main__":
    main()
