"""latentdb: a memory-mapped sparse feature database for interpretability research.

Open a database and read it::

    import latentdb
    with latentdb.open("data/demo-small/db") as db:
        db.info()                          # sequences, tokens, dictionaries
        top = db.top("res", 9962, k=5)     # best examples, with context
        top[0].seq, top[0].value, top[0].context.text
        db.density("res").density          # numpy: every latent's density
        seq, pos, value = db.activations("res", 9962)
        m = db.codes("res", range(0, 10))  # scipy.sparse CSR [positions, d_sae]

Encode with a dictionary::

    d = latentdb.Dictionary.open("path/to/sae")
    indptr, indices, data = d.encode(x)    # x: numpy [n, d_in]

Stream a model's activations into a database (nothing else written to disk)::

    with latentdb.open("db", write=True) as db, db.writer("res", source="my-corpus") as w:
        for tokens, acts in batches:       # [rows, ctx] ints, [rows, ctx, d_model] floats
            w.add(tokens, acts)

Errors raise ``latentdb.Error`` subclasses carrying the library's message. The C
library is ``liblatentdb.so`` (the copy installed with the package, or
``LATENTDB_LIB``); docs/PYTHON.md has the whole guide.
"""
from ._ffi import (BadValueError, Error, FormatError, InvalidArgumentError, NotFoundError,
                   OutOfMemoryError, UnsupportedError, version)
from ._ffi import IOError_ as IOError  # noqa: A001 (latentdb.IOError)
from .db import DB, Activations, ClosedError, CSRArrays, open  # noqa: A001
from .dictionary import Dictionary
from .results import (Context, CoocResult, DensityResult, Example, ExampleList, LatentStats,
                      Row, SampleGroup, SamplesResult, SearchResult, SeqResult, TopResult)
from .writer import Writer

__version__ = "0.2.0"

__all__ = [
    "open", "DB", "Dictionary", "Writer", "version",
    "Error", "NotFoundError", "InvalidArgumentError", "FormatError", "UnsupportedError",
    "BadValueError", "IOError", "OutOfMemoryError", "ClosedError",
    "Activations", "CSRArrays", "Context", "CoocResult", "DensityResult", "Example",
    "ExampleList", "LatentStats", "Row", "SampleGroup", "SamplesResult", "SearchResult",
    "SeqResult", "TopResult",
]
