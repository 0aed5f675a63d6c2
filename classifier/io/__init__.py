"""The io wing: every input format read into threads, and threads and rows written out.

One job per module, in the order a file meets them:

- :mod:`~classifier.io.options`: input formats, column names, :class:`ReadOptions`,
  detecting a file's format and expanding folders into files;
- :mod:`~classifier.io.readers`: :func:`read_file` and :func:`read_paths`, which pick
  the reader for each file (and read article pages);
- :mod:`~classifier.io.pages`: article pages (text or HTML) and their comment layouts;
- :mod:`~classifier.io.jsonl`: thread JSONL and flat JSONL lines;
- :mod:`~classifier.io.flat`: the flat form (one comment a row) in CSV, TSV and Parquet;
- :mod:`~classifier.io.checks`: what every reader checks before a comment is kept;
- :mod:`~classifier.io.writers`: threads as JSONL, CSV or Parquet, and the row writers;
- :mod:`~classifier.io.ingest`: ``threadguard parse``, and the input loop ``score`` shares.

Nothing is re-exported here: import from the module that defines a name. The wing
imports only :mod:`classifier.schema` from the rest of the package (checked by the
import contracts in ``pyproject.toml``).
"""
