"""Readers for the formats relevance data arrives in, all producing :class:`~searchtune.data.records.Dataset`.

Supported layouts (detected by :func:`load_dataset`):

* BEIR: ``corpus.jsonl``, ``queries.jsonl``, ``qrels/{train,dev,test}.tsv``.
* Plain: ``corpus.jsonl`` + ``queries.jsonl`` + TREC qrels file(s) (``qrels*.txt``/``qrels``; split from file name).
* Cranfield (Glasgow distribution): ``cran.all.1400``, ``cran.qry``, ``cranqrel``.
* TREC-text collections such as NPL/Vaswani: ``corpus/*.trec`` (<DOC>/<DOCNO>), ``*query*.trec`` (<top>/<num>/<title>),
  TREC qrels.
* A graded-pairs or triplets JSONL file (see :mod:`searchtune.data.examples`), loaded as one ``train`` split.

Collections without predefined splits put every judged query in ``test``.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from pathlib import Path

from searchtune.data.records import Dataset, DatasetError, Document, Qrels, Query


def load_dataset(path: str | Path, name: str | None = None) -> Dataset:
    """Load any supported layout from a folder (or a BEIR ``corpus.jsonl`` path's folder)."""
    root = Path(path).expanduser()
    if root.is_file() and root.suffix == ".jsonl" and root.name not in ("corpus.jsonl", "queries.jsonl"):
        from searchtune.data.examples import detect_format, examples_to_dataset, load_examples

        if detect_format(root) is not None:  # a graded-pairs or triplets file: one "train" split
            _, examples = load_examples(root)
            return examples_to_dataset(examples, name or root.stem, source=str(root))
    if root.is_file():
        root = root.parent
    if not root.is_dir():
        raise DatasetError(root, "dataset folder does not exist")
    name = name or (root.parent.name if root.name.startswith("beir") else root.name)
    if (root / "corpus.jsonl").is_file() and (root / "queries.jsonl").is_file():
        if (root / "qrels").is_dir():
            return load_beir(root, name)
        return load_jsonl_trec(root, name)
    if (root / "cran.all.1400").is_file():
        return load_cranfield(root, name)
    if list(root.glob("corpus/*.trec")) or list(root.glob("*.trec")):
        return load_trec_collection(root, name)
    raise DatasetError(root, "unrecognised dataset layout: expected BEIR (corpus.jsonl, queries.jsonl, qrels/), "
                             "JSONL + TREC qrels, Cranfield (cran.all.1400) or TREC text files")


# ---------------------------------------------------------------- JSONL / BEIR

def utf8_lines(path: Path, errors: list[DatasetError] | None = None) -> Iterator[tuple[int, str]]:
    """Yield (line number, text) of a UTF-8 text file. A line that is not valid UTF-8 raises a DatasetError naming
    the file, line and column (a bare UnicodeDecodeError names neither), or, when ``errors`` is given, is recorded
    there and skipped."""
    try:
        handle = open(path, "rb")
    except OSError as exc:
        raise DatasetError(path, f"cannot read file ({exc.strerror or exc})") from None
    with handle:
        for lineno, raw in enumerate(handle, 1):
            try:
                yield lineno, raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                problem = DatasetError(path, f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1}); "
                                             "re-encode the file as UTF-8", line=lineno)
                if errors is None:
                    raise problem from None
                errors.append(problem)


def iter_jsonl(path: Path, errors: list[DatasetError] | None = None) -> Iterator[tuple[int, dict]]:
    """Yield (line number, object) for each non-blank line. Bad JSON (or bad UTF-8) raises with the line, or, when
    ``errors`` is given (validation collects every problem), is recorded there and skipped."""
    for lineno, line in utf8_lines(path, errors):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            problem = DatasetError(path, f"invalid JSON ({exc.msg}, column {exc.colno})", line=lineno)
        else:
            if isinstance(obj, dict):
                yield lineno, obj
                continue
            problem = DatasetError(path, f"expected a JSON object, got {type(obj).__name__}", line=lineno)
        if errors is None:
            raise problem
        errors.append(problem)


def _required_str(obj: dict, key: str, path: Path, lineno: int, aliases: tuple[str, ...] = ()) -> str:
    for candidate in (key, *aliases):
        if candidate in obj:
            value = obj[candidate]
            if isinstance(value, (int, float)) and not isinstance(value, bool) and candidate.endswith("id"):
                return str(value)
            if not isinstance(value, str):
                raise DatasetError(path, f"must be a string, got {type(value).__name__}", line=lineno, field=candidate)
            return value
    raise DatasetError(path, "missing required field", line=lineno, field=key)


def read_corpus_jsonl(path: Path) -> dict[str, Document]:
    corpus: dict[str, Document] = {}
    for lineno, obj in iter_jsonl(path):
        doc_id = _required_str(obj, "_id", path, lineno, aliases=("id", "doc_id"))
        text = _required_str(obj, "text", path, lineno)
        title = obj.get("title") or ""
        if not isinstance(title, str):
            raise DatasetError(path, "must be a string", line=lineno, field="title")
        if doc_id in corpus:
            raise DatasetError(path, f"duplicate document id '{doc_id}'", line=lineno, field="_id")
        corpus[doc_id] = Document(id=doc_id, text=text, title=title)
    return corpus


def read_queries_jsonl(path: Path) -> dict[str, Query]:
    queries: dict[str, Query] = {}
    for lineno, obj in iter_jsonl(path):
        qid = _required_str(obj, "_id", path, lineno, aliases=("id", "query_id"))
        text = _required_str(obj, "text", path, lineno, aliases=("query",))
        if qid in queries:
            raise DatasetError(path, f"duplicate query id '{qid}'", line=lineno, field="_id")
        queries[qid] = Query(id=qid, text=text)
    return queries


def read_beir_qrels(path: Path) -> Qrels:
    """BEIR qrels: tab-separated ``query-id corpus-id score`` with a header line."""
    qrels: Qrels = {}
    reader = csv.reader((text for _, text in utf8_lines(path)), delimiter="\t")
    for lineno, row in enumerate(reader, 1):
        if not row or not "".join(row).strip():
            continue
        if lineno == 1 and row[0].strip().lower() in {"query-id", "query_id", "qid"}:
            continue
        if len(row) != 3:
            raise DatasetError(path, f"expected 3 tab-separated columns (query-id, corpus-id, score), got {len(row)}", line=lineno)
        qid, did, score = (cell.strip() for cell in row)
        qrels.setdefault(qid, {})[did] = _parse_grade(score, path, lineno, "score")
    return qrels


def load_beir(root: Path, name: str) -> Dataset:
    corpus = read_corpus_jsonl(root / "corpus.jsonl")
    queries = read_queries_jsonl(root / "queries.jsonl")
    qrels = {p.stem: read_beir_qrels(p) for p in sorted((root / "qrels").glob("*.tsv"))}
    if not qrels:
        raise DatasetError(root / "qrels", "no qrels/*.tsv files found")
    return Dataset(name=name, corpus=corpus, queries=queries, qrels=qrels, source=str(root))


# ---------------------------------------------------------------- TREC qrels

def read_trec_qrels(path: Path) -> Qrels:
    """TREC qrels: whitespace-separated ``qid iteration docno relevance``."""
    qrels: Qrels = {}
    for lineno, line in utf8_lines(path):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 4:
            raise DatasetError(path, f"expected 4 columns (qid iter docno rel), got {len(parts)}", line=lineno)
        qid, _, did, rel = parts
        qrels.setdefault(qid, {})[did] = _parse_grade(rel, path, lineno, "relevance")
    return qrels


def _parse_grade(value: str, path: Path, lineno: int, field: str) -> int:
    try:
        number = float(value)
    except ValueError:
        raise DatasetError(path, f"not a number: {value!r}", line=lineno, field=field) from None
    if number != int(number):
        raise DatasetError(path, f"graded relevance must be an integer, got {value!r}", line=lineno, field=field)
    return int(number)


def _split_name(path: Path) -> str:
    stem = path.name.lower()
    for split in ("train", "dev", "test"):
        if split in stem:
            return split
    return "test"


def load_jsonl_trec(root: Path, name: str) -> Dataset:
    corpus = read_corpus_jsonl(root / "corpus.jsonl")
    queries = read_queries_jsonl(root / "queries.jsonl")
    files = [p for p in sorted(root.iterdir()) if p.is_file() and p.name.lower().startswith("qrels")]
    if not files:
        raise DatasetError(root, "no qrels file (qrels, qrels.txt, qrels.train.txt, ...) found beside corpus.jsonl")
    qrels: dict[str, Qrels] = {}
    for path in files:
        qrels.setdefault(_split_name(path), {}).update(read_trec_qrels(path))
    return Dataset(name=name, corpus=corpus, queries=queries, qrels=qrels, source=str(root))


# ---------------------------------------------------------------- Cranfield

_FIELD_MARK = re.compile(r"^\.([ITABW])(?:\s+(\S+))?\s*$")


def _iter_dot_records(path: Path) -> Iterator[tuple[int, str, dict[str, str]]]:
    """Parse the SMART ``.I/.T/.A/.B/.W`` record format: yields (line, .I id, {field: text})."""
    record_id: str | None = None
    record_line = 0
    fields: dict[str, list[str]] = {}
    current: str | None = None
    with open(path, encoding="utf-8", errors="replace") as handle:
        for lineno, raw in enumerate(handle, 1):
            line = raw.rstrip("\r\n")
            mark = _FIELD_MARK.match(line)
            if mark and mark.group(1) == "I":
                if record_id is not None:
                    yield record_line, record_id, {k: " ".join(v).strip() for k, v in fields.items()}
                if not mark.group(2):
                    raise DatasetError(path, ".I without an id", line=lineno, field=".I")
                record_id, record_line, fields, current = mark.group(2), lineno, {}, None
            elif mark:
                current = mark.group(1)
                fields.setdefault(current, [])
            elif current is not None:
                fields[current].append(line.strip())
            elif line.strip():
                raise DatasetError(path, "text before the first field marker", line=lineno)
    if record_id is not None:
        yield record_line, record_id, {k: " ".join(v).strip() for k, v in fields.items()}


def load_cranfield(root: Path, name: str) -> Dataset:
    """Cranfield: gain = 5 - code for Cleverdon codes 1..4 (1 = most relevant), 0 for -1; the n-th query in
    ``cran.qry`` is qrels query ``n`` (its ``.I`` numbers are not contiguous). See the collection's SOURCE.txt."""
    doc_path, qry_path, rel_path = root / "cran.all.1400", root / "cran.qry", root / "cranqrel"
    corpus: dict[str, Document] = {}
    for lineno, rid, fields in _iter_dot_records(doc_path):
        doc_id = str(int(rid))
        title = fields.get("T", "")
        body = fields.get("W", "")
        if body.startswith(title) and title:
            body = body[len(title):].strip()
        corpus[doc_id] = Document(id=doc_id, title=title, text=body or title)
    queries: dict[str, Query] = {}
    for position, (lineno, _rid, fields) in enumerate(_iter_dot_records(qry_path), 1):
        if "W" not in fields:
            raise DatasetError(qry_path, "query without .W text", line=lineno, field=".W")
        queries[str(position)] = Query(id=str(position), text=fields["W"])
    qrels: Qrels = {}
    for lineno, line in utf8_lines(rel_path):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 3:
            raise DatasetError(rel_path, f"expected 3 columns (query doc code), got {len(parts)}", line=lineno)
        qid, did, code = parts
        grade = _parse_grade(code, rel_path, lineno, "code")
        if grade not in (-1, 1, 2, 3, 4):
            raise DatasetError(rel_path, f"relevance code must be -1 or 1..4, got {grade}", line=lineno, field="code")
        qrels.setdefault(qid, {})[did] = 0 if grade == -1 else 5 - grade
    return Dataset(name=name, corpus=corpus, queries=queries, qrels={"test": qrels}, source=str(root))


# ---------------------------------------------------------------- TREC text collections (NPL)

_DOC_RE = re.compile(r"<DOC>(.*?)</DOC>", re.S | re.I)
_DOCNO_RE = re.compile(r"<DOCNO>\s*(.*?)\s*</DOCNO>", re.S | re.I)
_TOP_RE = re.compile(r"<top>(.*?)</top>", re.S | re.I)
_NUM_RE = re.compile(r"<num>\s*(?:Number:)?\s*(\S+?)\s*(?:</num>|\n|<)", re.S | re.I)
_TITLE_RE = re.compile(r"<title>\s*(.*?)\s*(?:</title>|<desc>|<narr>|$)", re.S | re.I)
_TITLE_TAG = re.compile(r"<TITLE>\s*(.*?)\s*</TITLE>", re.S | re.I)


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def read_trec_documents(path: Path) -> dict[str, Document]:
    content = path.read_text(encoding="utf-8", errors="replace")
    corpus: dict[str, Document] = {}
    for match in _DOC_RE.finditer(content):
        body = match.group(1)
        docno = _DOCNO_RE.search(body)
        if not docno:
            raise DatasetError(path, "<DOC> without <DOCNO>", line=_line_of(content, match.start()), field="DOCNO")
        title_match = _TITLE_TAG.search(body)
        title = title_match.group(1).strip() if title_match else ""
        text = _TITLE_TAG.sub(" ", _DOCNO_RE.sub(" ", body))
        text = " ".join(re.sub(r"<[^>]+>", " ", text).split())
        corpus[docno.group(1)] = Document(id=docno.group(1), title=title, text=text)
    if not corpus:
        raise DatasetError(path, "no <DOC> records found")
    return corpus


def read_trec_topics(path: Path) -> dict[str, Query]:
    content = path.read_text(encoding="utf-8", errors="replace")
    queries: dict[str, Query] = {}
    for match in _TOP_RE.finditer(content):
        body = match.group(1)
        num, title = _NUM_RE.search(body), _TITLE_RE.search(body)
        if not num:
            raise DatasetError(path, "<top> without <num>", line=_line_of(content, match.start()), field="num")
        if not title or not title.group(1).strip():
            raise DatasetError(path, "<top> without <title> text", line=_line_of(content, match.start()), field="title")
        text = " ".join(re.sub(r"<[^>]+>", " ", title.group(1)).split())
        queries[num.group(1)] = Query(id=num.group(1), text=text.lower() if text.isupper() else text)
    if not queries:
        raise DatasetError(path, "no <top> records found")
    return queries


def load_trec_collection(root: Path, name: str) -> Dataset:
    doc_files = sorted(root.glob("corpus/*.trec")) or sorted(p for p in root.glob("*.trec") if "quer" not in p.name and "topic" not in p.name)
    topic_files = sorted(p for p in root.glob("*.trec") if "quer" in p.name or "topic" in p.name)
    qrel_files = sorted(p for p in root.iterdir() if p.is_file() and p.name.lower().startswith("qrels"))
    if not doc_files or not topic_files or not qrel_files:
        raise DatasetError(root, "TREC collection needs document .trec file(s), a *query*/*topic* .trec file and a qrels file")
    corpus: dict[str, Document] = {}
    for path in doc_files:
        corpus.update(read_trec_documents(path))
    queries: dict[str, Query] = {}
    for path in topic_files:
        queries.update(read_trec_topics(path))
    qrels: dict[str, Qrels] = {}
    for path in qrel_files:
        qrels.setdefault(_split_name(path), {}).update(read_trec_qrels(path))
    return Dataset(name=name, corpus=corpus, queries=queries, qrels=qrels, source=str(root))
