"""A small GGUF v3 writer (numpy only) for the converter: metadata of every type, tensors streamed in chunks.

Tensors are declared with their GGML shape (ne[0] innermost) and type, and a producer: a callable that
returns an iterable of bytes-like chunks, called when the file is written, so a model far larger than
memory streams through. The file is written to a temporary name beside the target and renamed at the
end; a failure leaves nothing behind.
"""

import os
import struct
import tempfile

import numpy as np

GGUF_MAGIC = b"GGUF"
GGUF_VERSION = 3
DEFAULT_ALIGNMENT = 32

# metadata value types
UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY, UINT64, INT64, FLOAT64 = range(13)
_SCALAR_FORMATS = {UINT8: "<B", INT8: "<b", UINT16: "<H", INT16: "<h", UINT32: "<I", INT32: "<i",
                   FLOAT32: "<f", BOOL: "<?", UINT64: "<Q", INT64: "<q", FLOAT64: "<d"}
_NUMPY_TYPES = {UINT8: "<u1", INT8: "<i1", UINT16: "<u2", INT16: "<i2", UINT32: "<u4", INT32: "<i4",
                FLOAT32: "<f4", BOOL: "<u1", UINT64: "<u8", INT64: "<i8", FLOAT64: "<f8"}

# tensor types: GGML ids, (elements per block, bytes per block)
F32, F16, Q4_0, Q8_0, BF16 = 0, 1, 2, 8, 30
TENSOR_TYPES = {F32: (1, 4), F16: (1, 2), Q4_0: (32, 18), Q8_0: (32, 34), BF16: (1, 2)}


def tensor_nbytes(ne, ggml_type):
    block, block_bytes = TENSOR_TYPES[ggml_type]
    if ne[0] % block:
        raise ValueError(f"row of {ne[0]} elements is not a multiple of the block size {block}")
    n = 1
    for d in ne:
        n *= d
    return n // block * block_bytes


def _string(s):
    b = s.encode("utf-8") if isinstance(s, str) else bytes(s)
    return struct.pack("<Q", len(b)) + b


class GGUFWriter:
    def __init__(self, alignment=DEFAULT_ALIGNMENT):
        self._kv = {}          # key -> encoded (type id + value); dicts keep insertion order
        self._tensors = []     # (name, ne, type, nbytes, producer)
        self._names = set()
        self.alignment = alignment
        if alignment != DEFAULT_ALIGNMENT:
            self.add_scalar("general.alignment", UINT32, alignment)

    def add_scalar(self, key, vtype, value):
        self._kv[key] = struct.pack("<I", vtype) + struct.pack(_SCALAR_FORMATS[vtype], value)

    def add_uint32(self, key, value):
        self.add_scalar(key, UINT32, value)

    def add_float32(self, key, value):
        self.add_scalar(key, FLOAT32, value)

    def add_bool(self, key, value):
        self.add_scalar(key, BOOL, bool(value))

    def add_string(self, key, value):
        self._kv[key] = struct.pack("<I", STRING) + _string(value)

    def add_array(self, key, elem_type, values):
        """values: a sequence of numbers (elem_type a fixed-size type) or of strings (elem_type STRING)."""
        head = struct.pack("<IIQ", ARRAY, elem_type, len(values))
        if elem_type == STRING:
            body = b"".join(_string(v) for v in values)
        else:
            body = np.asarray(values).astype(_NUMPY_TYPES[elem_type]).tobytes()
        self._kv[key] = head + body

    def add_tensor(self, name, ne, ggml_type, producer):
        """ne: GGML shape (reverse of the torch shape); producer() -> iterable of bytes-like chunks."""
        if name in self._names:
            raise ValueError(f"duplicate tensor name {name}")
        if not 1 <= len(ne) <= 4:
            raise ValueError(f"tensor {name}: {len(ne)} dimensions")
        self._names.add(name)
        self._tensors.append((name, tuple(int(d) for d in ne), ggml_type, tensor_nbytes(ne, ggml_type), producer))

    def _pad(self, n):
        return (self.alignment - n % self.alignment) % self.alignment

    def _header(self):
        parts = [GGUF_MAGIC, struct.pack("<IQQ", GGUF_VERSION, len(self._tensors), len(self._kv))]
        for key, value in self._kv.items():
            parts += [_string(key), value]
        offset = 0
        for name, ne, ggml_type, nbytes, _ in self._tensors:
            parts += [_string(name), struct.pack("<I", len(ne)), struct.pack(f"<{len(ne)}Q", *ne),
                      struct.pack("<IQ", ggml_type, offset)]
            offset += nbytes + self._pad(nbytes)
        head = b"".join(parts)
        return head + bytes(self._pad(len(head)))

    def total_size(self):
        return len(self._header()) + sum(n + self._pad(n) for _, _, _, n, _ in self._tensors)

    def write(self, path, progress=None):
        """Writes the file; progress(name, index, count) is called before each tensor."""
        directory = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", dir=directory)
        try:
            os.fchmod(fd, 0o644)
            with os.fdopen(fd, "wb") as f:
                f.write(self._header())
                for i, (name, _, _, nbytes, producer) in enumerate(self._tensors):
                    if progress:
                        progress(name, i, len(self._tensors))
                    written = 0
                    for chunk in producer():
                        chunk = memoryview(chunk).cast("B")
                        f.write(chunk)
                        written += len(chunk)
                    if written != nbytes:
                        raise ValueError(f"tensor {name}: produced {written} bytes, expected {nbytes}")
                    f.write(bytes(self._pad(nbytes)))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
